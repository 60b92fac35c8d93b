import pytest
import torch
import torch.nn.functional as F

from mwa_lightning.models import AFNO, GlobalFilter, MultiscaleWaveletAttention
from mwa_lightning.training.classifier import Classifier, NonFiniteLossError, parameter_groups
from mwa_lightning.training.metric_names import TRAIN_LOSS_EPOCH, TRAIN_LOSS_STEP, VAL_ACC
from tests.helpers import PLAIN, tiny_data, tiny_trainer


def test_weight_decay_groups():
    model = Classifier(size="tiny", mixer=AFNO)
    decay, no_decay = parameter_groups(model.net, 0.05)
    names = {id(p): n for n, p in model.net.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    exempt = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {"pos_embed", "norm.weight", "norm.bias", "head.bias", "blocks.0.mixer.b1", "blocks.0.mixer.b2"} <= exempt
    assert {"head.weight", "patch_embed.weight", "blocks.0.mixer.w1", "blocks.0.mlp.0.weight"} <= decayed
    assert decayed.isdisjoint(exempt) and len(decayed) + len(exempt) == len(names)
    gfn = Classifier(size="tiny", mixer=GlobalFilter)
    decay, _ = parameter_groups(gfn.net, 0.05)
    assert any(p is gfn.net.blocks[0].mixer.complex_weight for p in decay["params"])


def test_loss_takes_indices_and_soft_targets():
    model = Classifier(size="tiny", label_smoothing=0.1)
    logits, labels = torch.randn(4, 10), torch.tensor([1, 2, 3, 4])
    hard = model.loss(logits, labels)
    torch.testing.assert_close(model.loss(logits, F.one_hot(labels, 10).float()), hard)
    # by hand: smoothed target = 0.9 * one_hot + 0.1 / 10
    smooth = 0.9 * F.one_hot(labels, 10) + 0.01
    torch.testing.assert_close(hard, -(smooth * logits.log_softmax(-1)).sum(-1).mean())


def test_warmup_then_cosine_per_step(tmp_path):
    model = Classifier(size="tiny", lr=1e-3, min_lr=1e-5, warmup_epochs=1)
    trainer = tiny_trainer(tmp_path, max_epochs=4, limit_train_batches=4, limit_val_batches=0)
    lrs = []

    from lightning.pytorch.callbacks import Callback

    class LR(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer.callbacks.append(LR())
    trainer.fit(model, tiny_data(augment=PLAIN))
    assert len(lrs) == 16
    assert lrs[0] == pytest.approx(1e-6)  # start_factor 1e-3
    assert lrs[1:4] == sorted(lrs[1:4]) and lrs[4] == pytest.approx(1e-3)  # warm-up over the first epoch (4 steps)
    assert lrs[4:] == sorted(lrs[4:], reverse=True) and lrs[-1] > 1e-5
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-5)  # cosine ends at min_lr


def test_fast_dev_run(mixer, tmp_path):
    model = Classifier(size="tiny", mixer=mixer)
    trainer = tiny_trainer(tmp_path, fast_dev_run=True)
    data = tiny_data()
    trainer.fit(model, data)
    assert trainer.state.finished and trainer.global_step == 1
    assert all(isinstance(block.mixer, mixer) for block in model.net.blocks)
    assert torch.isfinite(trainer.callback_metrics[TRAIN_LOSS_STEP])
    # the logged accuracy is the share of the validation batch the trained model gets right
    images, labels = data.transform_batch(next(iter(data.val_dataloader())), train=False)
    with torch.no_grad():
        right = (model.eval()(images).argmax(-1) == labels).float().mean()
    assert float(trainer.callback_metrics[VAL_ACC]) == pytest.approx(float(right))


def test_bf16_mixed_trains_every_mixer(mixer, tmp_path):
    model = Classifier(size="tiny", mixer=mixer, lr=3e-3, warmup_epochs=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = tiny_trainer(tmp_path, precision="bf16-mixed", max_epochs=2, enable_checkpointing=False)
    trainer.fit(model, tiny_data(augment=PLAIN))
    assert torch.isfinite(trainer.callback_metrics[TRAIN_LOSS_EPOCH])
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) == len(before), "some parameters were not updated"
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    from lightning.pytorch.callbacks import Callback

    from mwa_lightning.training.callbacks import LastCheckpoint

    class Poison(Callback):  # corrupt the weights in the second epoch
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 1:
                with torch.no_grad():
                    pl_module.net.head.weight.fill_(float("nan"))

    ckpt = LastCheckpoint(dirpath=str(tmp_path / "ckpt"))
    model = Classifier(size="tiny")
    trainer = tiny_trainer(tmp_path, max_epochs=3, callbacks=[ckpt, Poison()])
    expected = r"training loss is non-finite \(here: nan\) at epoch 1.*Last good checkpoint: .*last.ckpt"
    with pytest.raises(NonFiniteLossError, match=expected):
        trainer.fit(model, tiny_data(augment=PLAIN))
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert state["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


def test_refuses_to_checkpoint_non_finite_weights():
    model = Classifier(size="tiny")
    with torch.no_grad():
        model.net.head.bias.fill_(float("inf"))
    with pytest.raises(NonFiniteLossError, match=r"net\.head\.bias"):
        model.on_save_checkpoint({})


def test_best_accuracy_survives_a_checkpoint():
    model = Classifier(size="tiny")
    model.val_acc_best(torch.tensor(0.7))
    restored = Classifier(size="tiny")
    restored.load_state_dict(model.state_dict())
    assert restored.val_acc_best.max_value == pytest.approx(0.7)


def test_load_from_checkpoint_rebuilds_the_mixer(tmp_path):
    model = Classifier(size="tiny", depth=3, mixer=MultiscaleWaveletAttention)
    trainer = tiny_trainer(tmp_path, max_steps=1, limit_val_batches=0)
    trainer.fit(model, tiny_data(augment=PLAIN))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = Classifier.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)  # plain data only
    assert isinstance(loaded.net.blocks[0].mixer, MultiscaleWaveletAttention) and len(loaded.net.blocks) == 3
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded.eval()(x), model.eval()(x))


@pytest.mark.parametrize("accumulate", [1, 3])
def test_linear_scaling_rule_uses_the_global_batch(tmp_path, accumulate):
    from lightning.pytorch.loggers import CSVLogger

    from mwa_lightning.training.metric_names import LR_PEAK

    model = Classifier(size="tiny", lr=5e-4, lr_base_batch=512, warmup_epochs=0)
    trainer = tiny_trainer(
        tmp_path,
        max_steps=1,
        accumulate_grad_batches=accumulate,
        logger=CSVLogger(tmp_path),
        enable_checkpointing=False,
    )
    trainer.fit(model, tiny_data(augment=PLAIN))  # batch 16 on one process
    expected = 5e-4 * 16 * accumulate / 512
    assert model.peak_lr() == pytest.approx(expected)
    assert trainer.optimizers[0].param_groups[0]["initial_lr"] == pytest.approx(expected)
    logged = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert LR_PEAK in logged.splitlines()[0]
    # off (None): the learning rate is taken as it is
    absolute = Classifier(size="tiny", lr=5e-4)
    tiny_trainer(tmp_path, max_steps=1, enable_checkpointing=False).fit(absolute, tiny_data(augment=PLAIN))
    assert absolute.peak_lr() == 5e-4
    with pytest.raises(ValueError, match="lr_base_batch=0 must be a positive batch size"):
        Classifier(size="tiny", lr_base_batch=0)


def test_warmup_starts_at_warmup_lr(tmp_path):
    from lightning.pytorch.callbacks import Callback

    lrs = []

    class LR(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    model = Classifier(size="tiny", lr=1e-3, warmup_lr=1e-6, warmup_epochs=1)
    trainer = tiny_trainer(tmp_path, max_epochs=2, callbacks=[LR()], enable_checkpointing=False)
    trainer.fit(model, tiny_data(augment=PLAIN))
    assert lrs[0] == pytest.approx(1e-6) and lrs[4] == pytest.approx(1e-3)


def test_the_first_names_of_the_classifier_and_its_datamodule_base_still_import():
    """Renamed since they also serve sequences: code, notebooks and scripts with the first names keep working."""
    from mwa_lightning.data import ClassificationDataModule, ImageDataModule, SequentialCIFAR10DataModule
    from mwa_lightning.training.classifier import Classifier, ImageClassifier

    assert ImageClassifier is Classifier and ImageDataModule is ClassificationDataModule
    assert issubclass(SequentialCIFAR10DataModule, ImageDataModule)
