"""The private Lightning and torch internals the project relies on are all still there, each named if not."""

import pytest
import torch
from lightning.pytorch.cli import LightningCLI

from mwa_lightning import lightning_compat
from mwa_lightning.lightning_compat import GuardedCLI, check, is_compiled
from tests.helpers import PLAIN, tiny_data, tiny_trainer


def test_every_internal_is_there_in_the_installed_versions():
    assert check() == [], "changed internals (see mwa_lightning/lightning_compat.py): " + "; ".join(check())


def test_the_check_names_an_internal_that_disappears(monkeypatch):
    monkeypatch.delattr(LightningCLI, "_run_subcommand")
    assert check() == ["LightningCLI._run_subcommand(self, subcommand) is gone or changed"]


def test_the_check_names_a_changed_flop_counter(monkeypatch):
    monkeypatch.setattr(lightning_compat, "flop_formula_on_raw_args", lambda fn: fn)  # formulas get shapes
    assert check() == ["torch.utils.flop_counter no longer passes raw arguments to a formula marked `_get_raw`"]


def test_the_check_names_a_changed_flop_helper(monkeypatch):
    from torch.utils import flop_counter

    monkeypatch.delattr(flop_counter, "sdpa_flop")
    assert check() == [
        "torch.utils.flop_counter.sdpa_flop(query_shape, key_shape, value_shape, ...) is gone or changed"
    ]


def test_the_check_names_a_randaugment_that_no_longer_reads_its_magnitude(monkeypatch):
    from torchvision.transforms import v2

    def forward(self, *inputs):  # a RandAugment whose strength no longer comes from the attribute
        return inputs

    monkeypatch.setattr(v2.RandAugment, "forward", forward)
    assert check() == ["torchvision's RandAugment.forward no longer reads self.magnitude: ScaledRandAugment's noise"]


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

    from mwa_lightning.training.classifier import Classifier

    seen = []

    class Probe(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append((lightning_compat.at_last_batch(trainer), lightning_compat.in_middle_of_epoch(trainer)))

    trainer = tiny_trainer(tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[Probe()])
    assert not lightning_compat.training_started(trainer)
    trainer.fit(Classifier(size="tiny"), tiny_data(augment=PLAIN))
    assert lightning_compat.training_started(trainer)
    assert [last for last, _ in seen] == [False] * (len(seen) - 1) + [True]
    assert [middle for _, middle in seen] == [True] * (len(seen) - 1) + [False]
    assert lightning_compat.epoch_for_sampler(trainer) == 1 and not lightning_compat.restarted_mid_epoch(trainer)


def test_is_compiled_sees_module_compile():
    layer = torch.nn.Linear(2, 2)
    assert not is_compiled(layer)
    layer.compile()
    assert is_compiled(layer)


def test_no_module_but_the_compat_one_touches_a_private_internal():
    """A private name (``x._name``) the package reads or calls must be the package's own (defined somewhere in it);
    one of Lightning's, torch's or another library's is reached only through lightning_compat, listed in INTERNALS
    and verified by check(). (Found by walking every module: ``self._parser`` and ``aten._fft_r2c`` were the last.)"""
    import ast

    from tests.helpers import ROOT

    trees = {path: ast.parse(path.read_text()) for path in (ROOT / "mwa_lightning").rglob("*.py")}
    own = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.arg):
                own.add(node.arg)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                own.update(alias.asname or alias.name for alias in node.names)
    foreign = [
        f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}"
        for path, tree in trees.items()
        if path.name != "lightning_compat.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and node.attr not in own
    ]
    assert foreign == [], foreign
