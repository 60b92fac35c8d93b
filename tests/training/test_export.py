"""``mwa-lightning export``: the exported model takes uint8 images and gives the checkpoint's probabilities, with
the normalisation inside, in both formats; bad input is one line."""

import importlib.util
import shutil

import pytest
import torch

from mwa_lightning.data import SyntheticDataModule
from mwa_lightning.training import export
from mwa_lightning.training.classifier import NORMALIZATION, Classifier
from tests.helpers import run_cli, tiny_config

GFN = "mwa_lightning.models.GlobalFilter"  # an FFT mixer: what the legacy ONNX exporter could not take


@pytest.fixture(scope="module", params=["mwa", "gfn"])
def run(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"export-{request.param}")
    mixer = [] if request.param == "mwa" else ["--model.mixer", GFN]
    result = run_cli("fit", "--config", str(tiny_config(folder)), "--run", "r", *mixer, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "logs" / "tiny" / "r"


def _reference(run, images: torch.Tensor) -> torch.Tensor:
    """The checkpoint's probabilities, preprocessed by the DataModule's own transform (not the export's code)."""
    model = Classifier.load_from_checkpoint(run / "checkpoints" / "last.ckpt", weights_only=True).eval()
    with torch.no_grad():
        return model(SyntheticDataModule().normalize(images)).softmax(-1)


def test_a_run_records_its_normalisation_in_the_checkpoint(run):
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    dm = SyntheticDataModule()
    assert ckpt[NORMALIZATION] == {"mean": list(dm.mean), "std": list(dm.std)}


def test_torch_export_takes_uint8_images_and_gives_the_checkpoints_probabilities(run, tmp_path, capsys):
    out = tmp_path / "m.pt2"
    assert export.main([str(run), "--out", str(out)]) == 0
    assert f"wrote {out} (torch-export" in capsys.readouterr().out
    program = torch.export.load(out).module()
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    probabilities = program(images)  # batch 3: the batch dimension is dynamic (exported at 2)
    assert probabilities.shape == (3, 10)
    torch.testing.assert_close(probabilities, _reference(run, images), atol=1e-5, rtol=0)
    assert (tmp_path / "m.pt2.classes.txt").read_text().splitlines() == SyntheticDataModule().classes


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs the export extra (onnxruntime)")
def test_onnx_takes_uint8_images_and_gives_the_checkpoints_probabilities(run, tmp_path):
    import onnxruntime

    out = tmp_path / "m.onnx"
    assert export.main([str(run / "checkpoints" / "last.ckpt"), "--format", "onnx", "--out", str(out)]) == 0
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    (probabilities,) = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    torch.testing.assert_close(torch.from_numpy(probabilities), _reference(run, images), atol=1e-5, rtol=0)


def test_a_checkpoint_from_before_the_record_takes_its_runs_datamodule(run, tmp_path):
    old = tmp_path / "r"
    shutil.copytree(run, old)
    ckpt = torch.load(old / "checkpoints" / "last.ckpt", weights_only=True)
    del ckpt[NORMALIZATION]
    torch.save(ckpt, old / "checkpoints" / "last.ckpt")
    assert export.main([str(old)]) == 0  # the normalisation of the DataModule its config.yaml names
    (tmp_path / "lone").mkdir()
    shutil.copy(old / "checkpoints" / "last.ckpt", tmp_path / "lone" / "x.ckpt")
    with pytest.raises(export.ExportError, match=r"records no normalisation .* export the run folder"):
        export.export(tmp_path / "lone" / "x.ckpt", "torch-export")


def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch):
    assert export.main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere does not exist; expected a run folder" in err[0]
    assert export.main([str(tmp_path)]) == 2
    assert "holds no checkpoints/last.ckpt" in capsys.readouterr().err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnxscript" else real(name))
    assert export.main([str(tmp_path), "--format", "onnx"]) == 2
    assert "--format onnx needs onnxscript: pip install 'mwa-lightning[export]'" in capsys.readouterr().err
