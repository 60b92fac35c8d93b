"""The private Lightning and torch internals the project relies on are all still there, each named if not."""

import pytest
import torch
from lightning.pytorch.cli import LightningCLI

from mwa_lightning.training import lightning_compat
from mwa_lightning.training.lightning_compat import GuardedCLI, check, is_compiled
from tests.helpers import PLAIN, tiny_data, tiny_trainer


def test_every_internal_is_there_in_the_installed_versions():
    assert check() == [], "changed internals (see mwa_lightning/training/lightning_compat.py): " + "; ".join(check())


def test_the_check_names_an_internal_that_disappears(monkeypatch):
    monkeypatch.delattr(LightningCLI, "_run_subcommand")
    assert check() == ["LightningCLI._run_subcommand(self, subcommand) is gone or changed"]


def test_the_check_names_a_changed_flop_counter(monkeypatch):
    monkeypatch.setattr(lightning_compat, "flop_formula_on_raw_args", lambda fn: fn)  # formulas get shapes
    assert check() == ["torch.utils.flop_counter no longer passes raw arguments to a formula marked `_get_raw`"]


def test_the_guard_wraps_the_trainer_call():
    calls = []

    class Probe(GuardedCLI):
        def __init__(self):  # no parsing: only the hook
            pass

        def guard_subcommand(self, subcommand):
            import contextlib

            @contextlib.contextmanager
            def guard():
                calls.append(("enter", subcommand))
                yield
                calls.append(("exit", subcommand))

            return guard()

    def fake_run(self, subcommand):
        calls.append(("run", subcommand))

    probe = Probe()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LightningCLI, "_run_subcommand", fake_run)
        probe._run_subcommand("fit")
    assert calls == [("enter", "fit"), ("run", "fit"), ("exit", "fit")]


def test_loop_progress_readers_follow_a_real_fit(tmp_path):
    from lightning.pytorch.callbacks import Callback

    from mwa_lightning.training.classifier import ImageClassifier

    seen = []

    class Probe(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append((lightning_compat.at_last_batch(trainer), lightning_compat.in_middle_of_epoch(trainer)))

    trainer = tiny_trainer(tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[Probe()])
    assert not lightning_compat.training_started(trainer)
    trainer.fit(ImageClassifier(size="tiny"), tiny_data(augment=PLAIN))
    assert lightning_compat.training_started(trainer)
    assert [last for last, _ in seen] == [False] * (len(seen) - 1) + [True]
    assert [middle for _, middle in seen] == [True] * (len(seen) - 1) + [False]
    assert lightning_compat.epoch_for_sampler(trainer) == 1 and not lightning_compat.restarted_mid_epoch(trainer)


def test_is_compiled_sees_module_compile():
    layer = torch.nn.Linear(2, 2)
    assert not is_compiled(layer)
    layer.compile()
    assert is_compiled(layer)
