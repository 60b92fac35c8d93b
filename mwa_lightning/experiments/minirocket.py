"""MiniRocket, the non-deep reference for the time-series sets, run like a study's variant.

``mwa-lightning minirocket <the arguments of a fit run>`` (a study variant ``{command: minirocket}``) builds the
DataModule exactly as ``fit`` would from the same arguments (the same set, resample, length and validation
split), fits aeon's ``MiniRocketClassifier`` (Dempster, Schmidt and Webb 2021: 10,000 random convolution
kernels, proportion-of-positive-values features, a ridge classifier with cross-validated regularisation) on
the training split the deep runs train on, and scores it once on the validation and the test series. It
writes what a fit writes for the study's report: ``config.yaml``, the TensorBoard scalars ``val/acc`` and
``test/acc``, ``test_predictions.csv`` and ``finished.json``, in the same fixed run folder, so that the report
lists it beside the deep variants and contrasts can name it. The series are cut back to their raw length (the
deep models' zero padding to a multiple of 2^m removed); the validation series are not used to fit. Needs
the ``timeseries`` extra (``pip install 'mwa-lightning[timeseries]'``). Why aeon's classifier and not one
written here: it is the authors' algorithm as the time-series community maintains and benchmarks it.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from mwa_lightning import COMMAND
from mwa_lightning.experiments.runspec import MINIROCKET
from mwa_lightning.training.metric_names import TEST_ACC, VAL_ACC
from mwa_lightning.training.runs import CONFIG_FILE, RunState, run_state, write_finished, write_test_predictions


def series(split) -> tuple[np.ndarray, np.ndarray]:
    """(``(N, channels, L)`` float64, labels) of a DataModule split."""
    return split.images.double().numpy(), split.labels.numpy()


def fit_and_score(train, others: dict, seed: int, raw_length: int | None) -> dict[str, np.ndarray]:
    """MiniRocket fitted on ``train``; its predictions on each of ``others`` (name -> split)."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    x, y = series(train)
    cut = slice(None, raw_length)
    model = MiniRocketClassifier(random_state=seed, n_jobs=1).fit(x[..., cut], y)
    return {name: model.predict(series(split)[0][..., cut]) for name, split in others.items()}


HELP = f"""usage: {COMMAND} {MINIROCKET} --config FILE [the other arguments of a fit run]

Fit aeon's MiniRocket classifier on the sequence DataModule a fit run with these arguments would build, score it
once on the validation and test series, and write the run folder a fit would (config.yaml, val/acc, test/acc,
test_predictions.csv, finished.json). Needs the timeseries extra: pip install 'mwa-lightning[timeseries]'.
{COMMAND} fit --help lists the arguments."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(HELP)
        return 0
    from mwa_lightning.cli import main as cli_main  # torch and Lightning: after --help
    from mwa_lightning.data.sequences import SequenceDataModule

    if importlib.util.find_spec("aeon") is None:
        print(f"error: {MINIROCKET} needs the aeon package: pip install 'mwa-lightning[timeseries]'", file=sys.stderr)
        return 2
    cli = cli_main([*argv], run=False)  # parsed and instantiated as fit would; nothing trained
    dm, seed = cli.datamodule, int(cli.config["seed_everything"])
    if not isinstance(dm, SequenceDataModule):
        print(f"error: {MINIROCKET} needs a sequence DataModule; got {type(dm).__name__}", file=sys.stderr)
        return 2
    run_dir = Path(cli.trainer.log_dir)
    if run_state(run_dir) == RunState.DONE:
        print(f"{run_dir} is done")
        return 0
    dm.setup("fit")
    dm.setup("test")
    t0 = time.perf_counter()
    predicted = fit_and_score(
        dm.splits["train"], {"val": dm.splits["val"], "test": dm.splits["test"]}, seed, getattr(dm, "raw_length", None)
    )
    took = time.perf_counter() - t0
    metrics = {
        VAL_ACC: float(np.mean(predicted["val"] == dm.splits["val"].labels.numpy())),
        TEST_ACC: float(np.mean(predicted["test"] == dm.splits["test"].labels.numpy())),
    }
    from torch.utils.tensorboard import SummaryWriter

    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"experiment": cli.config["experiment"], "command": MINIROCKET, "seed_everything": seed}
    config["data"] = yaml.safe_load(cli.parser.dump(cli.config, skip_check=True)).get("data")
    (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False))
    with SummaryWriter(str(run_dir)) as writer:
        for name, value in metrics.items():
            writer.add_scalar(name, value, 0)
    labels = dm.splits["test"].labels.numpy()
    rows = np.stack([np.arange(len(labels)), labels, predicted["test"]], 1).astype(np.int64)
    write_test_predictions(run_dir, rows.tolist())
    write_finished(run_dir, 0, 0, metrics)
    print(f"\nrun folder: {run_dir}\n{MINIROCKET} fitted and scored in {took:.1f} s")
    for name, value in metrics.items():
        print(f"{name}={value:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
