"""The one command: ``mwa-lightning {fit,validate,test,predict} --config FILE`` and the tools beside it.

``mwa-lightning fit|validate|test|predict ...`` is a LightningCLI with the project's defaults:

- the model is :class:`~mwa_lightning.training.classifier.Classifier`; its token mixer is chosen by class
  path (``model.mixer``); the data is any :class:`~mwa_lightning.data.ClassificationDataModule` by class path
  (``data``);
- ``num_classes``, ``image_size`` (or a sequence's ``seq_len``) and ``in_chans`` are linked from the DataModule to
  the model, never written twice;
- ``experiment`` names the run: TensorBoard logs, the resolved ``config.yaml`` and ``checkpoints/`` go to
  ``logs/<experiment>/version_N/``, or to the fixed folder ``logs/<experiment>/<run>/`` with ``--run NAME``;
- with ``--run``, ``fit`` resumes from the folder's ``checkpoints/last.ckpt`` when there is one (a killed or
  requeued job continues where it stopped) and refuses a folder that holds a run of a different config
  (:mod:`mwa_lightning.training.runs`);
- a fit that ends normally writes ``finished.json`` (epochs, steps, final metrics) into its run folder;
- checkpoints keep ``last.ckpt`` (every epoch, :class:`~mwa_lightning.training.callbacks.LastCheckpoint`) and
  the best by ``val/acc``; a learning-rate monitor, a throughput monitor (``train/device/samples_per_sec``) and
  per-epoch reseeding (:class:`~mwa_lightning.training.rng.EpochSeed`) are on; the seed defaults to 0;
- an error before the first training step (a bad option, missing data) is one line, and leaves no run folder.

``mwa-lightning TOOL ...`` runs one of the tools (``study``, ``report``, ...), which
:mod:`mwa_lightning.tools` names and dispatches; ``mwa-lightning --help`` lists them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pkgutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from jsonargparse import Namespace
from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ThroughputMonitor
from lightning.pytorch.cli import LightningArgumentParser

from mwa_lightning import SUBCOMMANDS, data, models, packaged
from mwa_lightning.cli_usage import OneLineErrors, UsageError, quiet_lightning, registered_mixer_names
from mwa_lightning.data import ClassificationDataModule
from mwa_lightning.lightning_compat import GuardedCLI, training_started
from mwa_lightning.training.callbacks import LastCheckpoint, ModelSummaryWithFlops, samples_in_batch
from mwa_lightning.training.classifier import Classifier, NonFiniteLossError
from mwa_lightning.training.malloc import tune_malloc
from mwa_lightning.training.metric_names import HP_TOP1_BEST, HP_TOP1_LAST, TEST, VAL, VAL_ACC, VAL_ACC_BEST
from mwa_lightning.training.precision import native_precision
from mwa_lightning.training.predict import CSVPredictionWriter, TestPredictions
from mwa_lightning.training.requeue import REQUEUED_EXIT_CODE, RequeuedError, RequeueOnSignal
from mwa_lightning.training.rng import EpochSeed
from mwa_lightning.training.runs import (
    CHECKPOINTS,
    LAST_CKPT,
    LOGS,
    RunFolderError,
    check_run_name,
    check_same_run,
    log_hparams,
    mark_finished,
    remove_new_run_folder,
    scalar_metrics,
)

# The package's DataModules and mixers are imported on first use (their packages' __init__); the command line
# imports them all, so that jsonargparse finds each by its short name (``--data CIFAR10DataModule``) and lists it
for _name in (*data.__all__, *models.__all__):
    getattr(data if _name in data.__all__ else models, _name)

LOGGER = {
    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
    "init_args": {"save_dir": LOGS, "name": "default", "default_hp_metric": False},
}


TRACEBACK_ENV = "MWA_TRACEBACK"  # =1: show the traceback of errors found before training starts


class SetupError(RuntimeError):
    """An error found before the first training step (missing or corrupt data, a bad option); the run folder it
    may have started is gone. The command line prints it as one line."""


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class MWACLI(GuardedCLI):
    """LightningCLI with the links, callbacks and run naming described in the module docstring."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--experiment", default="default", help="run name: logs/<experiment>/version_N/")
        parser.add_argument(
            "--float32_matmul_precision",
            type=Literal["highest", "high", "medium"],
            default="high",
            help="torch.set_float32_matmul_precision on GPUs ('high': TF32 matmuls); CPU runs leave it alone",
        )
        parser.add_argument(
            "--keep_precision",
            type=bool,
            default=False,
            help="keep a bf16 trainer.precision on a device without native bf16 (by default such a run trains in "
            "32-true on a CPU, 16-mixed on a GPU, and says so)",
        )
        parser.add_argument(
            "--traceback",
            action="store_true",
            help=f"show the traceback of errors found before training ({TRACEBACK_ENV}=1)",
        )
        parser.add_argument(
            "--run",
            type=str | None,
            default=None,
            help="a fixed run folder, logs/<experiment>/<run>/ (e.g. seed0), resumed from its last.ckpt if present",
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="after fit ends, evaluate the test split once on the final weights: test metrics in finished.json, "
            "per-image predictions in <run folder>/test_predictions.csv (nothing of the test split during fit)",
        )
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.image_size", "model.image_size", apply_on="instantiate")
        parser.link_arguments("data.seq_len", "model.seq_len", apply_on="instantiate")
        parser.link_arguments("data.in_chans", "model.in_chans", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": VAL_ACC,
                "checkpoint.mode": "max",
                "checkpoint.save_last": False,  # last.ckpt is LastCheckpoint's, written every epoch
                "checkpoint.filename": "best-epoch{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(EpochSeed, "epoch_seed")
        parser.add_lightning_class_args(RequeueOnSignal, "requeue")
        parser.add_lightning_class_args(CSVPredictionWriter, "prediction_writer")
        parser.add_lightning_class_args(TestPredictions, "test_predictions")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"lr_monitor.logging_interval": "step"})
        parser.add_lightning_class_args(ThroughputMonitor, "throughput")
        parser.set_defaults({"throughput.batch_size_fn": samples_in_batch, "throughput.window_size": 20})

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        added = {"keep_precision": False} | {f"model.{k}": v for k, v in self._record_backbone_defaults(cfg).items()}
        if not cfg.get("keep_precision"):
            precision, note = native_precision(cfg.trainer.precision, cfg.trainer.accelerator)
            if note is not None:
                cfg.trainer.precision = precision  # what the run trains in, and so what its config.yaml records
                if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
                    print(note, file=sys.stderr)
        if self.subcommand not in (None, "fit"):
            self.save_config_callback = None  # validate/test/predict never rewrite a run's config.yaml
        if self.subcommand == "predict":
            cfg.trainer.logger = False  # predictions go to the CSV file, nothing into the run folder
        logger = self._run_folder_logger(cfg)
        if logger is None:
            return
        logger.init_args.name = cfg.experiment
        if cfg.get("run"):
            check_run_name(cfg.run)
            logger.init_args.version = cfg.run
            if self.subcommand == "fit":
                run_dir = Path(logger.init_args.save_dir) / cfg.experiment / cfg.run
                check_same_run(run_dir, self._resolved(cfg, skip_check=True), added)
                last = run_dir / CHECKPOINTS / LAST_CKPT
                if cfg.get("ckpt_path") is None and last.is_file():
                    cfg.ckpt_path = str(last)
                    print(f"resuming {run_dir} from {last}", file=sys.stderr)
            return
        ckpt = cfg.get("ckpt_path")
        if self.subcommand == "fit" and ckpt and "version" in logger.init_args:
            run_dir = Path(ckpt).resolve().parent.parent  # <save_dir>/<experiment>/<version>/checkpoints/x.ckpt
            if run_dir.parent == (Path(logger.init_args.save_dir) / cfg.experiment).resolve():
                logger.init_args.version = run_dir.name  # resume into the run's own folder

    @staticmethod
    def _run_folder_logger(cfg: Namespace) -> Namespace | None:
        """The logger whose folder is the run folder (``name``/``version``: TensorBoard's, CSV's), or None.

        A tracking logger (MLflow's ``experiment_name``/``run_name``) takes ``--experiment`` and ``--run`` as its
        own names; Lightning would put the run folder's files (``config.yaml``, ``finished.json``) into its
        ``save_dir``, shared by all its runs, so the default TensorBoard logger goes first and keeps the run folder,
        and the tracking logger gets the same metrics."""
        logger = cfg.trainer.logger
        loggers = list(logger) if isinstance(logger, list) else [logger]
        tracking = [x for x in loggers if isinstance(x, Namespace) and "experiment_name" in x.get("init_args", {})]
        for other in tracking:
            other.init_args.experiment_name = cfg.experiment
            if cfg.get("run"):
                other.init_args.run_name = cfg.run
        folder = [x for x in loggers if isinstance(x, Namespace) and "name" in x.get("init_args", {})]
        if tracking and not folder:
            folder = [Namespace(class_path=LOGGER["class_path"], init_args=Namespace(**LOGGER["init_args"]))]
            cfg.trainer.logger = [*folder, *loggers]
        elif folder and folder[0] is not loggers[0]:
            cfg.trainer.logger = [folder[0], *(x for x in loggers if x is not folder[0])]  # first: Lightning's log_dir
        return folder[0] if folder else None

    @staticmethod
    def _record_backbone_defaults(cfg: Namespace) -> dict[str, Any]:
        """Set every backbone option the config leaves to the code's default to that default, so that the run
        folder's ``config.yaml`` records the whole model (:meth:`Classifier.backbone_defaults`); the ones set."""
        data = cfg.get("data")
        class_path = data.get("class_path") if isinstance(data, Namespace) else None
        if not class_path:
            return {}
        sequence = getattr(pkgutil.resolve_name(class_path), "seq_len", None) is not None
        filled = {}
        for name, default in Classifier.backbone_defaults(sequence).items():
            if name not in cfg.model or (cfg.model[name] is None and default is not None):
                cfg.model[name] = filled[name] = default
        return filled

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except Exception as e:  # a bad option found when building the model, the data or the trainer
            raise SetupError(_one_line(e)) from e
        ModelSummaryWithFlops.promote(self.trainer)
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        if isinstance(self.trainer.accelerator, CUDAAccelerator):
            torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
        elif isinstance(self.trainer.accelerator, CPUAccelerator):
            tune_malloc()  # CPU only: keep freed memory for reuse (mwa_lightning.training.malloc)

    @contextlib.contextmanager
    def guard_subcommand(self, subcommand: str) -> Iterator[None]:
        """An error before the first training step removes the run folder this command started and becomes a
        :class:`SetupError`; errors during training pass through as they are."""
        logger = self.trainer.logger
        run_dir = Path(logger.log_dir) if logger is not None and logger.log_dir else None
        existed = run_dir is not None and run_dir.exists()
        with warnings.catch_warnings():
            if subcommand != "fit":
                # the checkpoint's ModelCheckpoint state names the folder it was trained in; outside fit no checkpoint
                # is written, so Lightning's notice that the folder changed says nothing a user can act on
                warnings.filterwarnings("ignore", message=r"The dirpath has changed from")
            try:
                yield
            except (NonFiniteLossError, RequeuedError, KeyboardInterrupt):
                raise
            except Exception as e:
                if training_started(self.trainer):
                    raise  # during training: the traceback and the last good checkpoint, as they are
                if run_dir is not None and not existed and self.trainer.is_global_zero:
                    remove_new_run_folder(run_dir, Path(logger.save_dir))
                raise SetupError(_one_line(e)) from e

    def _resolved(self, cfg: Namespace, skip_check: bool = False) -> dict:
        """The config as plain data, as ``config.yaml`` holds it."""
        dumped = self.subcommand_parser(self.subcommand).dump(cfg, skip_none=False, skip_check=skip_check)
        return yaml.safe_load(dumped)

    def _report(self, stage: str) -> None:
        """Print the run folder and the ``stage`` metrics (rank 0 only), one ``name=value`` per metric."""
        trainer = self.trainer
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(f"{stage}/")}
        print(f"\nrun folder: {log_dir}")
        if metrics:
            print("  " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))

    def after_fit(self) -> None:
        self._report(VAL)
        trainer = self.trainer
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        finished = trainer.state.finished and not trainer.interrupted and not trainer.fast_dev_run
        if not finished:
            return
        metrics = scalar_metrics(trainer)
        if self.config[self.subcommand].get("test_after_fit"):
            # once, on the last epoch's weights; every process takes part; before finished.json, so that a run
            # killed during its test is not done and a rerun (which resumes after the last epoch) tests it
            hparams = {HP_TOP1_LAST: metrics.get(VAL_ACC), HP_TOP1_BEST: metrics.get(VAL_ACC_BEST)}
            self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
            metrics |= {k: v for k, v in scalar_metrics(trainer).items() if k.startswith(f"{TEST}/")}
        else:
            hparams = None
        if trainer.is_global_zero:
            mark_finished(Path(log_dir), trainer, metrics)
            self._log_hparams(hparams)

    def _log_hparams(self, results: dict | None = None) -> None:
        """The run's settings with its best and last top-1, for TensorBoard's HPARAMS tab."""
        metrics = self.trainer.callback_metrics
        if results is None:
            results = {HP_TOP1_LAST: metrics.get(VAL_ACC), HP_TOP1_BEST: metrics.get(VAL_ACC_BEST)}
        log_hparams(self.trainer, self._resolved(self.config[self.subcommand]), results)
        ckpt = self.trainer.checkpoint_callback
        if self.trainer.is_global_zero and ckpt is not None and ckpt.best_model_score is not None:
            print(f"  best checkpoint: {ckpt.best_model_path} (val/acc={float(ckpt.best_model_score):.4f})")

    def after_validate(self) -> None:
        self._report(VAL)

    def after_test(self) -> None:
        self._report(TEST)


def main(args: list[str] | None = None, run: bool = True) -> MWACLI:
    """Run the command line (``run=False``: parse and instantiate only, for inspection and tests)."""
    quiet_lightning()
    try:
        # a mixer's registered name, and a configs/... path read from the package's copy outside a clone
        if args is None:  # the console script: LightningCLI reads sys.argv itself
            sys.argv[1:] = registered_mixer_names(packaged.resolve_argv(sys.argv[1:]))
        else:
            args = registered_mixer_names(packaged.resolve_argv(args))
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    package_log = logging.getLogger("mwa_lightning")  # the package's own messages (e.g. cache building)
    if not package_log.handlers:
        package_log.setLevel(logging.INFO)
        package_log.addHandler(logging.StreamHandler(sys.stderr))
    try:
        return MWACLI(
            Classifier,
            ClassificationDataModule,
            subclass_mode_data=True,
            seed_everything_default=0,
            trainer_defaults={"logger": LOGGER},
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,  # the module's configure_optimizers is the recipe
            parser_class=OneLineErrors,
            # no argparse abbreviations: --trainer.max_epoch is a typo to report, not --trainer.max_epochs
            parser_kwargs={
                "allow_abbrev": False,
                **{c: {"allow_abbrev": False} for c in SUBCOMMANDS},
            },
            run=run,
            args=args,
        )
    except (NonFiniteLossError, RunFolderError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from e
    except RequeuedError as e:
        print(f"requeue: {e}", file=sys.stderr)
        raise SystemExit(REQUEUED_EXIT_CODE) from e
    except SetupError as e:
        if os.environ.get(TRACEBACK_ENV) == "1" or "--traceback" in (sys.argv if args is None else args):
            raise e.__cause__ from None
        print(f"error: {e} (nothing was trained; --traceback or {TRACEBACK_ENV}=1 shows where)", file=sys.stderr)
        raise SystemExit(2) from e
    finally:
        # a gloo/NCCL group left to interpreter shutdown can abort the process ("terminate called ...")
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
