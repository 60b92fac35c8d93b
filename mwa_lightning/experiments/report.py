"""Tabulate training runs: ``mwa-lightning report DIR [--out OUT]``.

Every run folder under DIR (one that holds the ``config.yaml`` the command line saves and TensorBoard event
files) is a run. Runs whose configs differ only in the seed (``seed_everything``, the run folder's name) are
grouped into a row: experiment, mixer, options (the settings that tell the row from the report's other rows:
the local branch, the rate, a mixer's levels...; ``experiments/labels.py``), backbone (``ViT`` or ``Seq``, depth x
width / patch; ``-`` for MiniRocket), dataset, the seeds, epochs,
validation top-1 and top-5 **of the last epoch** as mean +- std over the seeds, how much top-1 rose over the last
3 epochs (has it flattened?), parameters, FLOPs per image, median training throughput, and the run-hours the
row's runs took (from their event files), with the total under the table. The maximum of top-1 over epochs is
kept only as a secondary column: when the validation split is the test split (as in the paper), picking the best
epoch is selection on the test set.

Only finished runs (a ``finished.json`` in the folder, written when ``fit`` ends normally) count in mean +- std;
unfinished ones (killed, preempted, still running) are counted in their own column and left out. A run resumed
into its own folder -- a requeued job -- is one run, however many times it was started. Writes ``report.md``,
``report.csv`` and ``curves.png`` (validation top-1 and training loss against epochs, a line per group, mean
over the finished seeds) to OUT (default: DIR).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from mwa_lightning import COMMAND
from mwa_lightning.experiments.labels import row_labels, short_name
from mwa_lightning.experiments.record import SCALARS, RunRecord
from mwa_lightning.tables import markdown_table, write_csv
from mwa_lightning.training.metric_names import (
    FLOPS,
    PARAMS,
    TEST_ACC,
    TRAIN_LOSS_EPOCH,
    VAL_ACC,
    VAL_ACC_TOP5,
)
from mwa_lightning.training.runs import (
    CONFIG_FILE,
    IDENTITY_KEYS,
    LOGGER_KEYS,
    RESUME_KEYS,
)

RISE_EPOCHS = 3  # the report's "has it flattened?" column: the rise of validation top-1 over the last 3 epochs


CSV_METRICS = "metrics.csv"  # what a CSVLogger run folder holds instead of event files


def _csv_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """The report's scalars from a CSVLogger's ``metrics.csv`` (one row per logging call, a column per metric,
    empty where that call did not log it)."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            for tag in SCALARS:
                if row.get(tag) not in (None, ""):
                    scalars.setdefault(tag, []).append((int(float(row["step"])), float(row[tag])))
    return scalars


def find_runs(root: Path) -> list[RunRecord]:
    """Run folders under ``root``, each with its config and scalars: from its TensorBoard event files, or from a
    CSVLogger's ``metrics.csv`` (which keeps no wall time: such a run counts no run-hours)."""
    runs = []
    for config_path in sorted(root.rglob(CONFIG_FILE)):
        folder = config_path.parent
        events = sorted(folder.glob("events.out.tfevents.*"))
        if not events:
            if (folder / CSV_METRICS).is_file():
                config = yaml.safe_load(config_path.read_text()) or {}
                runs.append(RunRecord(folder, config, _csv_scalars(folder / CSV_METRICS)))
            continue
        config = yaml.safe_load(config_path.read_text()) or {}
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        acc.Reload()
        tags = set(acc.Tags().get("scalars", []))
        scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in SCALARS if t in tags}
        runs.append(RunRecord(folder, config, scalars, run_seconds(folder)))
    return runs


def _span(event_file: Path) -> float:
    """Seconds from the first to the last logged value of one event file (one process, one stage): the gaps
    between a killed run and its resumption fall between files, so they do not count."""
    times = [event.wall_time for event in EventFileLoader(str(event_file)).Load() if event.HasField("summary")]
    return max(times) - min(times) if times else 0.0


def run_seconds(folder: Path) -> float:
    """A run's wall time with its logger open: the spans of its event files, summed."""
    return sum(map(_span, sorted(folder.glob("events.out.tfevents.*"))))


def _rise(curve: list[float], epochs: int = RISE_EPOCHS) -> float:
    """How much a validation curve rose over its last ``epochs`` epochs (NaN when it is not that long)."""
    return curve[-1] - curve[-1 - epochs] if len(curve) > epochs else math.nan


# The run contract's volatile keys (mwa_lightning.training.runs) that the report's groups leave out: what differs
# between the seeds of one experiment (not the experiment itself), and the logger's folder (not its name, which is the
# experiment's)
SEED_KEYS = tuple(key for key in (*IDENTITY_KEYS, *RESUME_KEYS) if key != "experiment")
FOLDER_KEYS = tuple(key.rsplit(".", 1)[1] for key in LOGGER_KEYS if not key.endswith(".name"))


def group_key(run: RunRecord) -> str:
    """The run's config without what changes between seeds of one experiment (and the folder it was logged to: a
    study's runs finished on several machines are one experiment)."""
    config = copy.deepcopy(run.config)
    for key in SEED_KEYS:
        config.pop(key, None)
    logger = (config.get("trainer") or {}).get("logger")
    if isinstance(logger, dict):  # the run's folder: where it was written, not what was trained
        for key in FOLDER_KEYS:
            (logger.get("init_args") or {}).pop(key, None)
    return json.dumps(config, sort_keys=True, default=str)


def _stats(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(runs: list[RunRecord], strip_prefix: str = "") -> list[dict[str, Any]]:
    """One row per group of seeds; figures over the group's finished runs."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    rows = []
    labels = row_labels([everyone[0].config for everyone in groups.values()])
    for everyone, (mixer, options, backbone) in zip(groups.values(), labels, strict=True):
        members = [r for r in everyone if r.finished]
        first = everyone[0]
        data = first.config.get("data") or {}
        per_run = {
            "last_top1": [(r.by_epoch(VAL_ACC) or [math.nan])[-1] for r in members],
            "last_top5": [(r.by_epoch(VAL_ACC_TOP5) or [math.nan])[-1] for r in members],
            "rise_top1": [_rise(r.by_epoch(VAL_ACC)) for r in members],
            "max_top1": [max(r.series(VAL_ACC), default=math.nan) for r in members],
            "epochs": [r.epochs_trained() for r in members],
            "images_per_s": [statistics.median(r.throughput() or [math.nan]) for r in members],
            "test_top1": [r.final_metric(TEST_ACC) for r in members],
        }
        params = (first.series(PARAMS) or [math.nan])[0]
        flops = (first.series(FLOPS) or [math.nan])[0]
        row: dict[str, Any] = {
            "experiment": first.experiment.removeprefix(strip_prefix),
            "mixer": mixer,
            "options": options,
            "backbone": backbone,
            "dataset": short_name(data.get("class_path")).removesuffix("DataModule"),
            "seeds": ",".join(str(r.config.get("seed_everything")) for r in members),
            "runs": len(members),
            "unfinished": len(everyone) - len(members),
            "params_M": params / 1e6,
            "GFLOPs": flops / 1e9,
            "run_hours": sum(r.seconds for r in everyone) / 3600,
        }
        for name, values in per_run.items():
            row[f"{name}_mean"], row[f"{name}_std"] = _stats(values)
        row["folders"] = " ".join(str(r.path) for r in everyone)
        row["_runs"] = members
        rows.append(row)
    rows.sort(key=lambda r: (r["dataset"], r["experiment"]))
    return rows


def _pm(row: dict[str, Any], name: str, scale: float = 100.0, digits: int = 2) -> str:
    mean, std = row[f"{name}_mean"], row[f"{name}_std"]
    if math.isnan(mean):
        return "-"
    text = f"{scale * mean:.{digits}f}"
    return text + (f" ± {scale * std:.{digits}f}" if row["runs"] > 1 else "")


def _num(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


MD_COLUMNS = (
    "experiment",
    "mixer",
    "options",
    "backbone",
    "dataset",
    "seeds",
    "unfinished",
    "epochs",
    "test top-1 % (once, last epoch)",
    "top-1 % (last epoch)",
    f"rise over the last {RISE_EPOCHS} epochs (points)",
    "top-5 % (last epoch)",
    "max top-1 % over epochs",
    "params (M)",
    "GFLOPs",
    "images/s",
    "run-hours",
)


def markdown(rows: list[dict[str, Any]]) -> str:
    table = []
    for r in rows:
        cells = [
            r["experiment"],
            r["mixer"],
            r["options"] or "-",
            r["backbone"],
            r["dataset"],
            str(r["runs"]),
            str(r["unfinished"]),
            _num(r["epochs_mean"], 0) if not r["epochs_std"] else _pm(r, "epochs", 1, 1),
            _pm(r, "test_top1"),
            _pm(r, "last_top1"),
            _pm(r, "rise_top1", digits=1),
            _pm(r, "last_top5"),
            _pm(r, "max_top1"),
            _num(r["params_M"], 3),
            _num(r["GFLOPs"], 4),
            _pm(r, "images_per_s", 1, 0),
            _num(r["run_hours"], 2),
        ]
        table.append(dict(zip(MD_COLUMNS, cells, strict=True)))
    notes = (
        "\nTest top-1: the test split evaluated once per run, after the last epoch, on its weights (`-`: not "
        "tested; runs with `--test_after_fit`). "
        "Top-1/top-5: the last epoch's validation accuracy, mean ± sample std over the finished seeds (`seeds`). "
        "`max top-1 % over epochs` picks the best epoch on the validation split, which is selection on the test "
        "set when validation is the test split: a secondary figure only. `unfinished`: runs left out of the "
        "figures (killed, preempted or still running). images/s: median training throughput of one process. "
        f"Rise: validation top-1 at the last epoch minus {RISE_EPOCHS} epochs before (has it flattened?). "
        "Run-hours: wall time with each run's logger open (from its event files; every start of a resumed run "
        "counted, the time between them not), summed over the row's runs, finished or not; one process per run "
        "makes them core- or device-hours.\n"
    )
    total = sum(r["run_hours"] for r in rows)
    runs = sum(r["runs"] + r["unfinished"] for r in rows)
    return (
        markdown_table(table, MD_COLUMNS) + notes + f"\nIn all: {runs} run{'s' * (runs != 1)}, {total:.1f} run-hours.\n"
    )


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation top-1 and training loss against epochs, mean over the finished seeds, a line per row; one row
    of panels per dataset when the rows span several."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend (e.g. a notebook's) alone

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig = Figure(figsize=(11, 4 * len(datasets)))
    axes = fig.subplots(len(datasets), 2, squeeze=False)
    for (acc_ax, loss_ax), dataset in zip(axes, datasets, strict=True):
        for row in (r for r in rows if r["dataset"] == dataset):
            label = f"{row['experiment']} ({row['runs']} seed{'s' if row['runs'] != 1 else ''})"
            for ax, tag in ((acc_ax, VAL_ACC), (loss_ax, TRAIN_LOSS_EPOCH)):
                curves = [c for c in (r.by_epoch(tag) for r in row["_runs"]) if c]
                if not curves:
                    continue
                n = min(map(len, curves))
                ax.plot(range(1, n + 1), [statistics.fmean(c[i] for c in curves) for i in range(n)], label=label)
        where = f"{dataset}: " if len(datasets) > 1 else ""
        acc_ax.set(xlabel="epoch", ylabel="validation top-1", title=f"{where}validation accuracy (mean over seeds)")
        loss_ax.set(xlabel="epoch", ylabel="training loss", title=f"{where}training loss (mean over seeds)")
        for ax in (acc_ax, loss_ax):
            ax.grid(True, alpha=0.3)
        acc_ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def report(root: Path, out: Path | None = None, strip_prefix: str = "") -> list[dict[str, Any]]:
    """Find the runs under ``root``, write report.md, report.csv and curves.png to ``out``, return the rows."""
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    runs = find_runs(root)
    if not runs:
        raise FileNotFoundError(
            f"no runs under {root}: expected folders with config.yaml and TensorBoard events "
            "(or a CSVLogger's metrics.csv)"
        )
    return report_runs(runs, out or root, strip_prefix)


def report_runs(runs: list[RunRecord], out: Path, strip_prefix: str = "") -> list[dict[str, Any]]:
    """Write report.md, report.csv and curves.png of ``runs`` to ``out``; return the rows."""
    rows = summarize(runs, strip_prefix)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(rows))
    write_csv(out / "report.csv", rows, quiet=True)
    plot_curves(rows, out / "curves.png")
    return rows


def read_report(path: Path) -> list[dict[str, Any]]:
    """The rows of a written ``report.csv`` (a committed study's ``results/<study>/report.csv``), numbers as floats:
    what :func:`report` returned when it wrote the file, for :func:`markdown` and the notebooks."""

    def value(text: str) -> Any:
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with path.open(newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"{COMMAND} report", description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="folder to search for runs (e.g. logs/)")
    parser.add_argument("--out", type=Path, default=None, help="where report.md, report.csv, curves.png go")
    args = parser.parse_args(argv)
    try:
        rows = report(args.dir, args.out)
    except FileNotFoundError as e:
        parser.error(str(e))
    out = args.out or args.dir
    print(markdown(rows))
    print(f"wrote {out / 'report.md'}, {out / 'report.csv'}, {out / 'curves.png'} ({len(rows)} groups)")


if __name__ == "__main__":
    main()
