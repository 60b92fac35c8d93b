"""LastCheckpoint: one last.ckpt, rewritten every epoch, found by where it goes and by what was written."""

import torch

from mwa_lightning.training.callbacks import (
    LastCheckpoint,
    last_checkpoint_target,
    last_checkpoint_written,
    samples_in_batch,
)
from mwa_lightning.training.classifier import Classifier
from tests.helpers import PLAIN, tiny_data, tiny_trainer


def test_last_ckpt_is_rewritten_every_epoch_with_that_epochs_weights(tmp_path):
    last = LastCheckpoint(dirpath=str(tmp_path / "ckpt"))
    trainer = tiny_trainer(tmp_path, max_epochs=3, limit_val_batches=0, callbacks=[last], enable_checkpointing=True)
    assert last_checkpoint_target(trainer) == str(tmp_path / "ckpt" / "last.ckpt")
    assert last_checkpoint_written(trainer) == ""  # nothing written before training
    model = Classifier(size="tiny")
    trainer.fit(model, tiny_data(augment=PLAIN))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["last.ckpt"]  # one file, no versions
    assert last_checkpoint_written(trainer) == str(tmp_path / "ckpt" / "last.ckpt")
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert saved["epoch"] == 2  # the final epoch's
    for name, value in model.state_dict().items():
        torch.testing.assert_close(saved["state_dict"][name], value, rtol=0, atol=0)


def test_no_last_checkpoint_callback_no_target(tmp_path):
    trainer = tiny_trainer(tmp_path, max_epochs=1, enable_checkpointing=False)
    assert last_checkpoint_target(trainer) is None and last_checkpoint_written(trainer) == ""


def test_samples_in_batch_counts_images_not_labels():
    images, soft_labels = torch.zeros(7, 3, 8, 8), torch.zeros(7, 10)
    assert samples_in_batch((images, soft_labels)) == 7
