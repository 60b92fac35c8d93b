"""The command line: ``python -m mwa_lightning {fit,validate,test,predict} --config FILE``.

A LightningCLI with the project's defaults:

- the model is :class:`~mwa_lightning.module.ImageClassifier`; its token mixer is chosen by class path
  (``model.mixer``); the data is any :class:`~mwa_lightning.data.ImageDataModule` by class path (``data``);
- ``num_classes`` and ``image_size`` are linked from the DataModule to the model, never written twice;
- ``experiment`` names the run: TensorBoard logs, the resolved ``config.yaml`` and ``checkpoints/`` go to
  ``logs/<experiment>/version_N/``;
- checkpoints keep ``last.ckpt`` and the best by ``val/acc``; a learning-rate monitor, a throughput monitor
  (``train/device/samples_per_sec``) and per-epoch reseeding (:class:`~mwa_lightning.callbacks.EpochSeed`) are on;
- the seed defaults to 0;
- ``fit --config <run>/config.yaml --ckpt_path <run>/checkpoints/last.ckpt`` resumes a run into its own
  folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from jsonargparse import Namespace
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ThroughputMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from mwa_lightning.callbacks import EpochSeed, batch_size
from mwa_lightning.data import ImageDataModule
from mwa_lightning.module import ImageClassifier, NonFiniteLossError
from mwa_lightning.runtime import tune_malloc

LOGGER = {
    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
    "init_args": {"save_dir": "logs", "name": "default", "default_hp_metric": False},
}


class MWACLI(LightningCLI):
    """LightningCLI with the links, callbacks and run naming described in the module docstring."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--experiment", default="default", help="run name: logs/<experiment>/version_N/")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.image_size", "model.image_size", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(EpochSeed, "epoch_seed")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"lr_monitor.logging_interval": "step"})
        parser.add_lightning_class_args(ThroughputMonitor, "throughput")
        parser.set_defaults({"throughput.batch_size_fn": batch_size, "throughput.window_size": 20})

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        logger = cfg.trainer.logger
        if isinstance(logger, Namespace) and "name" in logger.get("init_args", {}):
            logger.init_args.name = cfg.experiment
            ckpt = cfg.get("ckpt_path")
            if self.subcommand == "fit" and ckpt and "version" in logger.init_args:
                run_dir = Path(ckpt).resolve().parent.parent  # <save_dir>/<experiment>/<version>/checkpoints/x.ckpt
                if run_dir.parent == (Path(logger.init_args.save_dir) / cfg.experiment).resolve():
                    logger.init_args.version = run_dir.name  # resume into the run's own folder

    def _report(self, prefix: str) -> None:
        """Print the run folder and the ``prefix`` metrics (rank 0 only), one ``name=value`` per metric."""
        trainer = self.trainer
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask
        if not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}
        print(f"\nrun folder: {log_dir}")
        if metrics:
            print("  " + "  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))

    def after_fit(self) -> None:
        self._report("val/")
        ckpt = self.trainer.checkpoint_callback
        if self.trainer.is_global_zero and ckpt is not None and ckpt.best_model_score is not None:
            print(f"  best checkpoint: {ckpt.best_model_path} (val/acc={float(ckpt.best_model_score):.4f})")

    def after_validate(self) -> None:
        self._report("val/")

    def after_test(self) -> None:
        self._report("test/")


def main(args: list[str] | None = None, run: bool = True) -> MWACLI:
    """Run the command line (``run=False``: parse and instantiate only, for inspection and tests)."""
    tune_malloc()
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
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from e
    finally:
        # a gloo/NCCL group left to interpreter shutdown can abort the process ("terminate called ...")
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
