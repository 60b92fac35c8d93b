"""Contrasts against scale: one line per contrast, its mean and intervals at each scale of a study.

A study that repeats its contrasts at several scales names them ``<scale>-<contrast>``: ``n2250-mwa-vs-gfn`` (2,250
training images), ``n9000-...``, and ``e45-...`` (45 epochs; the others train 15). :func:`plot_trend` reads the
study's ``contrasts.csv`` and draws two panels: the contrasts against the training-set size (``n<N>``, 15 epochs),
and against the training length (15 epochs, which is the largest ``n<N>``, and ``e<E>``), each point its mean with
the 95 % interval (thin) and the 90 % one (thick), in points of top-1::

    python -m mwa_lightning.experiments.trend results/scale-trend/contrasts.csv   # writes trend.png beside it

``scale-trend``'s README reads the figure; the trend contrasts themselves (``data-trend-...``, ``length-trend-...``:
the change of a contrast between two scales, with its interval) are rows of the same table.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Sequence
from pathlib import Path

SCALED = re.compile(r"^(?P<kind>[ne])(?P<value>\d+)-(?P<contrast>.+)$")
BASE_EPOCHS = 15  # the n<N> rows' training length (configs/cifar10_fair.yaml)


def read_scaled(path: Path) -> dict[str, dict[tuple[str, int], dict[str, float]]]:
    """contrast -> (kind "n" or "e", value) -> {mean, low, high, low90, high90} from a ``contrasts.csv``."""
    out: dict[str, dict[tuple[str, int], dict[str, float]]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            match = SCALED.match(row["name"])
            if match is None:
                continue
            figures = {k: float(row[k]) for k in ("mean", "low", "high", "low90", "high90")}
            out.setdefault(match["contrast"], {})[(match["kind"], int(match["value"]))] = figures
    return out


def plot_trend(contrasts_csv: Path, out: Path | None = None) -> Path:
    """Draw the contrasts of ``contrasts_csv`` against scale (module docstring); the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scaled = read_scaled(contrasts_csv)
    if not scaled:
        raise ValueError(f"{contrasts_csv} has no <scale>-<contrast> rows (n<N>-... or e<E>-...)")
    out = out or contrasts_csv.with_name("trend.png")
    fig, (by_data, by_length) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for i, (name, points) in enumerate(sorted(scaled.items())):
        color = f"C{i}"
        sizes = sorted(v for kind, v in points if kind == "n")
        lengths = [(BASE_EPOCHS, points[("n", sizes[-1])])] if sizes else []
        lengths += sorted((v, fig_) for (kind, v), fig_ in points.items() if kind == "e")
        for ax, xs, rows in (
            (by_data, sizes, [points[("n", v)] for v in sizes]),
            (by_length, [x for x, _ in lengths], [r for _, r in lengths]),
        ):
            if not xs:
                continue
            offset = [x * (1 + 0.03 * (i - len(scaled) / 2)) for x in xs]  # side by side, not on top
            ax.plot(offset, [r["mean"] for r in rows], "o-", color=color, label=name)
            ax.vlines(offset, [r["low"] for r in rows], [r["high"] for r in rows], color=color, lw=1)
            ax.vlines(offset, [r["low90"] for r in rows], [r["high90"] for r in rows], color=color, lw=3)
    by_data.set(
        xscale="log", xlabel=f"training images ({BASE_EPOCHS} epochs)", ylabel="difference in test top-1 (points)"
    )
    by_length.set(xscale="log", xlabel="epochs (the largest training set)")
    all_sizes = sorted({v for points in scaled.values() for kind, v in points if kind == "n"})
    all_lengths = sorted({BASE_EPOCHS} | {v for points in scaled.values() for kind, v in points if kind == "e"})
    for ax, ticks in ((by_data, all_sizes), (by_length, all_lengths)):
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
        ax.minorticks_off()
        ax.axhline(0, color="grey", lw=0.8)
        ax.grid(True, alpha=0.3)
    by_data.legend(fontsize=8)
    fig.suptitle("contrasts against scale: mean, 90 % (thick) and 95 % (thin) intervals")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mwa_lightning.experiments.trend", description=__doc__.split("\n")[0]
    )
    parser.add_argument("contrasts", type=Path, help="a study's contrasts.csv")
    parser.add_argument("--out", type=Path, default=None, help="the PNG (default: trend.png beside the CSV)")
    args = parser.parse_args(argv)
    try:
        print(f"wrote {plot_trend(args.contrasts, args.out)}")
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
