"""Prediction on a folder of new images, class names from the checkpoint, checkpoints that load safely."""

import csv
import functools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from mwa_lightning.data import SyntheticDataModule
from mwa_lightning.models import MultiscaleWaveletAttention
from mwa_lightning.training.classifier import Classifier
from tests.helpers import run_cli, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    result = run_cli("fit", "--config", str(tiny_config(folder)), "--run", "r", cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, folder / "logs" / "tiny" / "r"


def test_checkpoints_load_with_weights_only_and_keep_the_class_names(trained):
    _, run = trained
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["class_names"] == SyntheticDataModule().classes
    model = Classifier.load_from_checkpoint(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert model.hparams.class_names[0] == "x-wave+v-stripes"


def test_a_model_built_in_python_saves_a_checkpoint_that_loads_with_weights_only(tmp_path):
    from lightning import Trainer

    model = Classifier(size="tiny", mixer=functools.partial(MultiscaleWaveletAttention, levels=2))
    trainer = Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, SyntheticDataModule(num_train=32, num_test=16, batch_size=16))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    assert torch.load(tmp_path / "m.ckpt", weights_only=True)["hyper_parameters"]["mixer"] == {
        "class_path": "mwa_lightning.models.mixers.mwa.MultiscaleWaveletAttention",
        "init_args": {"levels": 2},
    }
    loaded = Classifier.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    assert loaded.net.blocks[0].mixer.transform.levels == 2
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_predict_on_a_folder_of_images_of_any_size_writes_top5_names(trained):
    folder, run = trained
    images = folder / "new_images"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (45, 70, 3), dtype=np.uint8)).save(images / "wide.png")
    Image.fromarray(rng.integers(0, 256, (300, 120), dtype=np.uint8)).save(images / "tall_grey.JPG")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(images / "small.jpeg")
    (images / "notes.txt").write_text("not an image")
    out = folder / "predictions.csv"
    before = sorted(run.rglob("*"))
    result = run_cli(
        "predict",
        "--config",
        str(run / "config.yaml"),
        "--ckpt_path",
        str(run / "checkpoints" / "last.ckpt"),
        "--data.init_args.predict_folder",
        str(images),
        "--prediction_writer.output_file",
        str(out),
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dirpath has changed" not in result.stderr  # Lightning's notice about a checkpoint folder predict never uses
    rows = list(csv.DictReader(out.open()))
    assert [r["file"].rsplit("/", 1)[-1] for r in rows] == ["small.jpeg", "tall_grey.JPG", "wide.png"]
    names = set(SyntheticDataModule().classes)
    for row in rows:
        probs = [float(row[f"prob_{i}"]) for i in range(1, 6)]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-5
        assert {row[f"class_{i}"] for i in range(1, 6)} <= names and len({row[f"class_{i}"] for i in range(1, 6)}) == 5
    # the probabilities are the model's on the fitted image, normalised like a test image
    model = Classifier.load_from_checkpoint(run / "checkpoints" / "last.ckpt", weights_only=True).eval()
    dm = SyntheticDataModule()
    from mwa_lightning.data.images import fit_square, read_rgb

    image = fit_square(read_rgb(images / "wide.png"), 32)[None]
    with torch.no_grad():
        probs = model(dm.normalize(image)).softmax(-1)[0]
    top = probs.topk(5)
    row = rows[2]
    assert [row[f"class_{i}"] for i in range(1, 6)] == [dm.classes[i] for i in top.indices.tolist()]
    assert float(row["prob_1"]) == pytest.approx(float(top.values[0]), abs=1e-5)
    assert sorted(run.rglob("*")) == before  # prediction wrote nothing into the run folder


def test_predict_folder_errors_name_the_folder(trained, tmp_path):
    folder, run = trained
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["predict", "--config", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints" / "last.ckpt")]
    for target, message in ((tmp_path / "nope", "is not a folder"), (empty, "holds no image files")):
        result = run_cli(*base, "--data.init_args.predict_folder", str(target), cwd=folder)
        assert result.returncode == 2 and f"predict_folder {target} {message}" in result.stderr
        assert "Traceback" not in result.stderr


def test_the_hparams_tab_gets_each_runs_settings_and_top1(trained):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    _, run = trained
    plugins, scalars = set(), {}
    for events in sorted(run.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                plugins.add(value.metadata.plugin_data.plugin_name)
                if value.tag.startswith("hparams/"):
                    scalars[value.tag] = value.tensor.float_val[0] if value.tensor.float_val else value.simple_value
    assert "hparams" in plugins
    finished = json.loads((run / "finished.json").read_text())["metrics"]
    assert scalars["hparams/top1_best"] == pytest.approx(finished["val/acc_best"])
    assert scalars["hparams/top1_last"] == pytest.approx(finished["val/acc"])
