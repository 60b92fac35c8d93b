"""The command line: ``python -m mwa_lightning {fit,validate,test,predict} --config FILE``.

A LightningCLI with the project's defaults:

- the model is :class:`~mwa_lightning.module.ImageClassifier`; its token mixer is chosen by class path
  (``model.mixer``); the data is any :class:`~mwa_lightning.data.ImageDataModule` by class path (``data``);
- ``num_classes`` and ``image_size`` are linked from the DataModule to the model, never written twice;
- ``experiment`` names the run: TensorBoard logs, the resolved ``config.yaml`` and ``checkpoints/`` go to
  ``logs/<experiment>/version_N/``, or to the fixed folder ``logs/<experiment>/<run>/`` with ``--run NAME``;
- with ``--run``, ``fit`` resumes from the folder's ``checkpoints/last.ckpt`` when there is one (a killed or
  requeued job continues where it stopped) and refuses a folder that holds a run of a different config;
- a fit that ends normally writes ``finished.json`` (epochs, steps, final metrics) into its run folder;
- checkpoints keep ``last.ckpt`` (every epoch, :class:`~mwa_lightning.callbacks.LastCheckpoint`) and the best
  by ``val/acc``; a learning-rate monitor, a throughput monitor
  (``train/device/samples_per_sec``) and per-epoch reseeding (:class:`~mwa_lightning.callbacks.EpochSeed`) are on;
- the seed defaults to 0;
- ``fit --config <run>/config.yaml --ckpt_path <run>/checkpoints/last.ckpt`` resumes a run into its own
  folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Literal

import torch
import yaml
from jsonargparse import Namespace
from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ThroughputMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from mwa_lightning.callbacks import EpochSeed, LastCheckpoint, samples_in_batch
from mwa_lightning.data import ImageDataModule
from mwa_lightning.malloc import tune_malloc
from mwa_lightning.metrics import HP_TOP1_BEST, HP_TOP1_LAST, TEST, VAL, VAL_ACC, VAL_ACC_BEST
from mwa_lightning.module import ImageClassifier, NonFiniteLossError
from mwa_lightning.predict import CSVPredictionWriter
from mwa_lightning.requeue import REQUEUED_EXIT_CODE, RequeuedError, RequeueOnSignal
from mwa_lightning.runs import (
    CHECKPOINTS,
    CONFIG_FILE,
    LAST_CKPT,
    RunFolderError,
    check_run_name,
    config_differences,
    flatten,
    mark_finished,
)

LOGGER = {
    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
    "init_args": {"save_dir": "logs", "name": "default", "default_hp_metric": False},
}


TRACEBACK_ENV = "MWA_TRACEBACK"  # =1: show the traceback of errors found before training starts


class SetupError(RuntimeError):
    """An error found before the first training step (missing or corrupt data, a bad option); the run folder it
    may have started is gone. The command line prints it as one line."""


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class MWACLI(LightningCLI):
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
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.image_size", "model.image_size", apply_on="instantiate")
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
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"lr_monitor.logging_interval": "step"})
        parser.add_lightning_class_args(ThroughputMonitor, "throughput")
        parser.set_defaults({"throughput.batch_size_fn": samples_in_batch, "throughput.window_size": 20})

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        if self.subcommand not in (None, "fit"):
            self.save_config_callback = None  # validate/test/predict never rewrite a run's config.yaml
        if self.subcommand == "predict":
            cfg.trainer.logger = False  # predictions go to the CSV file, nothing into the run folder
        logger = cfg.trainer.logger
        if not (isinstance(logger, Namespace) and "name" in logger.get("init_args", {})):
            return
        logger.init_args.name = cfg.experiment
        if cfg.get("run"):
            check_run_name(cfg.run)
            logger.init_args.version = cfg.run
            if self.subcommand == "fit":
                run_dir = Path(logger.init_args.save_dir) / cfg.experiment / cfg.run
                self._check_same_run(run_dir, cfg)
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

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except Exception as e:  # a bad option found when building the model, the data or the trainer
            raise SetupError(_one_line(e)) from e
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        if isinstance(self.trainer.accelerator, CUDAAccelerator):
            torch.set_float32_matmul_precision(cfg.float32_matmul_precision)
        elif isinstance(self.trainer.accelerator, CPUAccelerator):
            tune_malloc()  # CPU only: keep freed memory for reuse (mwa_lightning.malloc)

    def _run_subcommand(self, subcommand: str) -> None:
        """Run it; an error before the first training step removes the run folder this command started and
        becomes a :class:`SetupError`; errors during training pass through as they are."""
        logger = self.trainer.logger
        run_dir = Path(logger.log_dir) if logger is not None and logger.log_dir else None
        existed = run_dir is not None and run_dir.exists()
        try:
            super()._run_subcommand(subcommand)
        except (NonFiniteLossError, RequeuedError, KeyboardInterrupt):
            raise
        except Exception as e:
            if self.trainer.fit_loop.epoch_loop.batch_progress.total.started > 0:
                raise  # during training: the traceback and the last good checkpoint, as they are
            if run_dir is not None and not existed and self.trainer.is_global_zero:
                shutil.rmtree(run_dir, ignore_errors=True)
                for parent in run_dir.parents:  # and the experiment folders it created, when left empty
                    if parent == Path(logger.save_dir) or not parent.is_dir() or any(parent.iterdir()):
                        break
                    parent.rmdir()
            raise SetupError(_one_line(e)) from e

    def _check_same_run(self, run_dir: Path, cfg: Namespace) -> None:
        """Refuse to continue a fixed run folder with a config other than the one it was started with."""
        saved_path = run_dir / CONFIG_FILE
        if not saved_path.is_file():
            return
        saved = yaml.safe_load(saved_path.read_text()) or {}
        current = yaml.safe_load(self._parser(self.subcommand).dump(cfg, skip_none=False, skip_check=True))
        differ = config_differences(saved, current)
        if differ:
            raise RunFolderError(
                f"{run_dir} holds a run with a different config (differs in: {', '.join(differ[:6])}); "
                "use another --run (or --experiment), or delete the folder to start over"
            )

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
        if trainer.is_global_zero and trainer.state.finished and not trainer.interrupted and not trainer.fast_dev_run:
            mark_finished(Path(log_dir), trainer)
            self._log_hparams()

    def _log_hparams(self) -> None:
        """The run's settings with its best and last top-1, for TensorBoard's HPARAMS tab."""
        logger = self.trainer.logger
        if not isinstance(logger, TensorBoardLogger):
            return
        config = yaml.safe_load(self._parser(self.subcommand).dump(self.config[self.subcommand], skip_none=False))
        params = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in flatten(config).items()}
        metrics = self.trainer.callback_metrics
        results = {HP_TOP1_LAST: metrics.get(VAL_ACC), HP_TOP1_BEST: metrics.get(VAL_ACC_BEST)}
        logger.log_hyperparams(params, {k: float(v) for k, v in results.items() if v is not None})
        # the trainer already closed the event writer; writing reopened it: close it again, or the summary stays
        # in a background thread's buffer (and is flushed later into a cwd that may have changed, or lost at exit)
        logger.experiment.close()
        ckpt = self.trainer.checkpoint_callback
        if self.trainer.is_global_zero and ckpt is not None and ckpt.best_model_score is not None:
            print(f"  best checkpoint: {ckpt.best_model_path} (val/acc={float(ckpt.best_model_score):.4f})")

    def after_validate(self) -> None:
        self._report(VAL)

    def after_test(self) -> None:
        self._report(TEST)


def entry_point() -> None:
    """The ``mwa-lightning`` console script: the same as ``python -m mwa_lightning``."""
    main()


def main(args: list[str] | None = None, run: bool = True) -> MWACLI:
    """Run the command line (``run=False``: parse and instantiate only, for inspection and tests)."""
    package_log = logging.getLogger("mwa_lightning")  # the package's own messages (e.g. cache building)
    if not package_log.handlers:
        package_log.setLevel(logging.INFO)
        package_log.addHandler(logging.StreamHandler(sys.stderr))
    try:
        return MWACLI(
            ImageClassifier,
            ImageDataModule,
            subclass_mode_data=True,
            seed_everything_default=0,
            trainer_defaults={"logger": LOGGER},
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,  # the module's configure_optimizers is the recipe
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
