"""A study's per-image test predictions, collected in one committed file, and its contrasts computed from it.

``results/<study>/predictions.csv`` holds one row per test image: ``index``, ``label`` (or one ``label/seed<k>`` per
seed where each seed has its own test split), then one column per finished run, ``<variant>/seed<k>``, with the class
that run predicted (from the run folder's ``test_predictions.csv``). Everything the contrasts need is in it, so that the
report recomputes them from the committed results alone, without ``logs/``. The contrasts
(:mod:`mwa_lightning.experiments.stats`) go to ``contrasts.md``, ``contrasts.csv`` and the forest plot ``contrasts.png``
beside it. A study with tasks (each its own data and test set) has one ``results/<study>/<task>/predictions.csv`` per
task, and its contrasts are made within each task."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mwa_lightning.experiments.archive import RUNS, CommittedRunsError
from mwa_lightning.experiments.prereg import verdicts_markdown
from mwa_lightning.experiments.stats import RESAMPLED, ContrastResult, analyse, contrast_variants, interval
from mwa_lightning.experiments.studyfile import Study
from mwa_lightning.tables import markdown_table, write_csv
from mwa_lightning.training.runs import TEST_PREDICTIONS, RunState, read_test_predictions, seed_run_name

if TYPE_CHECKING:
    from mwa_lightning.experiments.runspec import RunSpec

PREDICTIONS = "predictions.csv"
CONTRASTS_FILES = ("contrasts.md", "contrasts.csv", "contrasts.png")


def predictions_path(study: Study, task: str = "") -> Path:
    """``results/<study>/predictions.csv``, or ``results/<study>/<task>/predictions.csv`` for a task's."""
    return study.results_dir / task / PREDICTIONS if task else study.results_dir / PREDICTIONS


def collect_predictions(study: Study) -> list[Path]:
    """Write each task's ``predictions.csv`` from its finished runs' test predictions (one file without tasks;
    none for a task without any): a run folder's ``test_predictions.csv``, or for a committed run (finished on
    another machine) its column of the committed ``predictions.csv`` -- this study's, or for a ``same_as`` variant
    the other study's.

    Every run of a seed must have the same test labels (the same test images). When all seeds share them there is
    one ``label`` column; when each seed has its own test split (a UCR set with ``resample: seed``, one replicate
    per seed) there is one ``label/seed<k>`` column per seed, and row i is the i-th test series of each seed's
    split."""
    written = []
    for task in study.tasks:
        prefix = f"{task}/" if task else ""
        runs = [r for r in study.runs() if r.variant.startswith(prefix)]
        sources = {}  # a committed run -> (the predictions.csv holding it, its column there)
        for run in runs:
            if run.state == RunState.COMMITTED:
                other, variant = study.aliases.get(run.variant, (study, run.variant.removeprefix(prefix)))
                sources[run] = (predictions_path(other, task), f"{variant}/{seed_run_name(run.seed)}")
        path = _collect(runs, prefix, predictions_path(study, task), sources)
        if path is not None:
            written.append(path)
    return written


def _collect(runs: list[RunSpec], prefix: str, out: Path, sources: dict[RunSpec, tuple[Path, str]]) -> Path | None:
    labels: dict[int, np.ndarray] = {}
    columns: dict[str, np.ndarray] = {}
    committed = {path: _read_columns(path) for path in {path for path, _ in sources.values()}}
    for run in runs:
        column = f"{run.variant.removeprefix(prefix)}/{seed_run_name(run.seed)}"
        path = run.folder / TEST_PREDICTIONS
        if run in sources:  # finished elsewhere: its column of the committed file, and that file's labels
            path, name = sources[run]
            held = committed[path]
            label_column = "label" if "label" in held else f"label/{seed_run_name(run.seed)}"
            if name not in held or label_column not in held:
                raise CommittedRunsError(
                    f"{path} has no column {name!r} (or {label_column!r}), but the committed run {run.name} is "
                    f"listed in {RUNS} beside it: the committed results disagree"
                )
            label, prediction = held[label_column], held[name]
        elif run.state != RunState.DONE or not path.is_file():
            continue
        else:
            index, label, prediction = read_test_predictions(path)
            if not np.array_equal(index, np.arange(len(index))):
                raise ValueError(f"{path}: expected one row per test image in order, 0..{len(index) - 1}")
        known = labels.setdefault(run.seed, label)
        if not np.array_equal(known, label):
            raise ValueError(f"{path}: its test labels differ from seed {run.seed}'s other runs': not the same images")
        columns[column] = prediction
    if not labels:
        return None
    sizes = sorted({len(v) for v in labels.values()})
    if len(sizes) != 1:
        raise ValueError(f"{out}: the seeds' test splits differ in size: {sizes}")
    seeds = sorted(labels)
    shared = all(np.array_equal(labels[seeds[0]], labels[k]) for k in seeds)
    label_names = ["label"] if shared else [f"label/{seed_run_name(k)}" for k in seeds]
    label_columns = [labels[seeds[0]]] if shared else [labels[k] for k in seeds]
    out.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(columns)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", *label_names, *names])
        table = np.stack([np.arange(sizes[0]), *label_columns, *(columns[n] for n in names)], 1)
        writer.writerows(table.tolist())
    return out


def _read_columns(path: Path) -> dict[str, np.ndarray]:
    """A ``predictions.csv``'s columns by name ({} when there is none)."""
    if not path.is_file():
        return {}
    with path.open() as f:
        header = next(csv.reader(f))
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    return {name: data[:, j] for j, name in enumerate(header)}


def _per_seed_labels(path: Path) -> bool:
    """Whether a ``predictions.csv`` has one ``label/seed<k>`` column per seed (each seed its own test split)."""
    with path.open() as f:
        return any(name.startswith("label/") for name in next(csv.reader(f)))


def read_predictions(path: Path) -> tuple[dict[int, np.ndarray], dict[str, dict[int, np.ndarray]]]:
    """(``{seed: labels}``, ``{variant: {seed: correct}}``) from a ``predictions.csv`` (one shared ``label``
    column, or one ``label/seed<k>`` per seed)."""
    columns = _read_columns(path)
    shared = "label" in columns
    labels: dict[int, np.ndarray] = {}
    correct: dict[str, dict[int, np.ndarray]] = {}
    for name, column in columns.items():
        if name in ("index", "label") or name.startswith("label/"):
            continue
        variant, _, run = name.rpartition("/")
        seed = int(run.removeprefix("seed"))
        labels[seed] = columns["label" if shared else f"label/{seed_run_name(seed)}"]
        correct.setdefault(variant, {})[seed] = column == labels[seed]
    return labels, correct


def contrasts_markdown(results: list[ContrastResult], across: str = "this study's contrasts") -> str:
    """The contrasts' table and how to read it; ``across``: what Holm's adjustment ran over."""
    margin = next((r.margin for r in results if not np.isnan(r.margin)), None)
    rows = [
        {
            "contrast": r.name,
            "difference": r.formula,
            "seeds": r.seeds,
            "test images": r.images,
            "mean (points)": f"{r.mean:+.2f}",
            "95 % interval": interval(r.low, r.high),
            "90 % interval": interval(r.low90, r.high90),
            "seed share": f"{r.seed_share:.2f}",
            "p": f"{r.p:.3f}",
            "p (Holm)": f"{r.p_holm:.3f}",
            "verdict": r.verdict,
        }
        for r in results
    ]
    methods = {r.method for r in results}
    note = (
        "\nMean paired difference in test top-1 (points), seeds paired by number. Intervals: the seed part of the "
        "variance (the per-seed means' spread) with Student's t at seeds - 1 df, the test-set part (the image effect "
        "shared by every seed) with the normal quantile, added in quadrature (mwa_lightning.experiments.stats); "
        '"seed share": the seed part\'s share of the variance. p two-sided, consistent with the 95 % interval, '
        f'Holm-adjusted across {across}; "difference (Holm)" when p (Holm) < 0.05. '
    )
    if RESAMPLED in methods:
        note += (
            'Where each seed has its own resample of the data (method "resampled" in contrasts.csv), the variance is '
            "Nadeau & Bengio's corrected resampled t: (1/seeds + n_test/n_train) times the per-seed means' variance. "
        )
    note += (
        f'"equivalent within +-{margin:g}" when the 90 % interval lies inside the study\'s margin (delta = {margin:g} '
        'points); otherwise a contrast that is not significant is "no difference detected".\n'
        if margin is not None
        else 'The study names no equivalence margin (delta): a contrast that is not significant is "no difference '
        'detected", never "equivalent".\n'
    )
    return markdown_table(rows, list(rows[0])) + note


def plot_contrasts(results: list[ContrastResult], path: Path, title: str) -> None:
    """A forest plot: each contrast's mean and 95 % interval, zero marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.5 * len(results) + 1.5))
    y = np.arange(len(results))[::-1]
    for yi, r in zip(y, results, strict=True):
        color = "tab:blue" if r.significant else "tab:gray"
        ax.plot([r.low, r.high], [yi, yi], color=color, lw=2)
        ax.plot([r.mean], [yi], "o", color=color)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{r.name}\n{r.formula}" for r in results], fontsize=7)
    margin = next((r.margin for r in results if not np.isnan(r.margin)), None)
    if margin is not None:
        for edge in (-margin, margin):
            ax.axvline(edge, color="tab:green", lw=0.8, ls="--")
    ax.set(xlabel="difference in test top-1 (points), 95 % interval", title=title)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_contrasts(study: Study, predictions: Path | None = None) -> list[ContrastResult]:
    """Compute the study's contrasts from its ``predictions.csv`` (each task's); write ``contrasts.{md,csv,png}``."""
    if not study.contrasts:
        return []
    correct: dict[str, dict[int, np.ndarray]] = {}
    resampled_tasks: dict[str, tuple[int, int]] = {}  # task -> (n_train, n_test) where each seed has its own split
    for task in study.tasks:
        path = predictions if predictions is not None and not task else predictions_path(study, task)
        if path.is_file():
            prefix = f"{task}/" if task else ""
            labels, by_variant = read_predictions(path)
            correct |= {f"{prefix}{v}": c for v, c in by_variant.items()}
            if _per_seed_labels(path):
                resampled_tasks[task] = (study.resample_train_size(task), len(next(iter(labels.values()))))
    ready = {n: c for n, c in study.contrasts.items() if all(v in correct for v in contrast_variants(c))}
    out = study.results_dir
    if not ready:  # none can be computed from the predictions as they are: no earlier figures left beside them
        for name in CONTRASTS_FILES:
            (out / name).unlink(missing_ok=True)
        return []
    task_of = (lambda name: name.partition("/")[0]) if any(study.tasks) else (lambda name: "")
    resampled = {n: resampled_tasks[task_of(n)] for n in ready if task_of(n) in resampled_tasks}
    results = analyse(correct, ready, margin=study.delta, resampled=resampled)
    waiting = sorted(set(study.contrasts) - set(ready))
    note = f"\nNot yet computed (a variant has no finished run): {', '.join(waiting)}.\n" if waiting else ""
    predicted = {}
    if study.predictions:  # the pre-registered prediction of each contrast that has one, and its verdict
        for r in results:
            prediction = study.predictions.get(r.name)
            predicted[r.name] = {
                "predicted": prediction.says if prediction else "",
                "prediction verdict": prediction.verdict(r) if prediction else "",
            }
    markdown = contrasts_markdown(results) + note + verdicts_markdown(study.predictions, results)
    write_contrast_files(results, out, f"{study.name}: paired contrasts", markdown, predicted)
    return results


def write_contrast_files(
    results: list[ContrastResult],
    out: Path,
    title: str,
    markdown: str | None = None,
    extra: dict[str, dict[str, str]] | None = None,
) -> None:
    """``contrasts.md`` (``markdown``, by default :func:`contrasts_markdown` of contrasts asked of a predictions
    file), ``contrasts.csv`` (a row per contrast, with the columns ``extra`` gives by its name) and the forest plot
    ``contrasts.png`` in ``out``."""
    md, table, plot = CONTRASTS_FILES
    out.mkdir(parents=True, exist_ok=True)
    (out / md).write_text(contrasts_markdown(results, "the contrasts asked") if markdown is None else markdown)
    extra = extra or {}
    write_csv(out / table, [{**vars(r), "verdict": r.verdict, **extra.get(r.name, {})} for r in results], quiet=True)
    plot_contrasts(results, out / plot, title)


def main(argv: list[str] | None = None) -> int:
    """``python -m mwa_lightning.experiments.paired PREDICTIONS [A:B ...] [--delta M] [--out DIR]``: contrasts of a
    committed ``predictions.csv`` (A - B for each ``A:B``, Holm-adjusted across the ones asked; with ``--out`` also
    written as a study writes its own), or without pairs the planning figures of every pair of its variants (the seed
    std and the disagreement the dry run's power line uses)."""
    import argparse
    import sys
    from itertools import combinations

    from mwa_lightning.experiments.stats import planning_figures

    parser = argparse.ArgumentParser(prog="python -m mwa_lightning.experiments.paired", description=main.__doc__)
    parser.add_argument("predictions", type=Path, help="a study's predictions.csv")
    parser.add_argument("pairs", nargs="*", metavar="A:B", help="a contrast, variant A minus variant B")
    parser.add_argument("--delta", type=float, default=None, help="an equivalence margin in points (default: none)")
    parser.add_argument("--out", type=Path, default=None, help="also write contrasts.md, .csv and .png to this folder")
    args = parser.parse_args(argv)
    if not args.predictions.is_file():
        print(f"error: no predictions file at {args.predictions}", file=sys.stderr)
        return 2
    _, correct = read_predictions(args.predictions)
    if not args.pairs:
        pairs = {f"{a}-{b}": (a, b) for a, b in combinations(sorted(correct), 2)}
        std, rate = planning_figures(correct, pairs)
        print(f"{args.predictions}: seed std {std:.4f}, disagreement {rate:.3f} (medians over {len(pairs)} pairs)")
        return 0
    contrasts: dict[str, tuple[str, str]] = {}
    for pair in args.pairs:
        a, colon, b = pair.partition(":")
        unknown = [v for v in (a, b) if v not in correct]
        if not colon or unknown:
            what = f"no variant {', '.join(map(repr, unknown))}" if colon else "not of the form A:B"
            print(f"error: {pair!r}: {what}; the variants are {', '.join(sorted(correct))}", file=sys.stderr)
            return 2
        contrasts[f"{a} - {b}"] = (a, b)
    print(
        f"Contrasts asked of {args.predictions}, Holm-adjusted across these {len(contrasts)} (exploratory unless the "
        "study's file named them before its runs):\n"
    )
    results = analyse(correct, contrasts, margin=args.delta)
    print(contrasts_markdown(results, "the contrasts asked"), end="")
    if args.out is not None:
        write_contrast_files(results, args.out, f"{args.predictions.parent.name}: contrasts asked of its predictions")
        print(f"wrote {args.out}/{', '.join(CONTRASTS_FILES)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
