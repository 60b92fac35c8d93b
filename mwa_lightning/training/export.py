"""Export a trained image model, its preprocessing inside: ``mwa-lightning export RUN --format torch-export|onnx``.

``RUN`` is a run folder (its ``checkpoints/last.ckpt`` is exported) or a checkpoint file. The exported graph takes
what a user has -- images as uint8 ``(B, C, H, W)`` tensors at the model's input size, values 0-255 -- and returns
the class probabilities ``(B, num_classes)``: the scaling to [0, 1], the DataModule's per-channel normalisation and
the softmax are in the graph, so that nothing of the training code is needed to use it. The batch dimension is
dynamic. The class names are printed and written beside the file (``<file>.classes.txt``).

- ``--format torch-export`` writes ``model.pt2`` (:func:`torch.export.export`, loaded with
  :func:`torch.export.load`): any PyTorch 2 runtime, no mwa-lightning import;
- ``--format onnx`` writes ``model.onnx`` (``torch.onnx.export(..., dynamo=True)``; the legacy exporter fails on
  GFNet's and AFNO's ``fft_rfft2``); needs the ``export`` extra (onnx, onnxscript, and onnxruntime for the check).

After writing, the file is loaded back (torch.export, or onnxruntime for ONNX) and its probabilities compared with
the checkpoint's on random images of two batch sizes; the largest difference is printed, and a difference above
``--tolerance`` is an error. TorchScript (``torch.jit.script``, ``LightningModule.to_torchscript``) is not
supported: the mixers' ``tuple[int, int]`` annotations and the wavelet transforms are outside what TorchScript
compiles; ``torch.export`` is its successor.

The normalisation comes from the checkpoint (recorded when a run starts training) or, for a run trained before
that, from the DataModule its ``config.yaml`` names.
"""

from __future__ import annotations

import argparse
import importlib.util
import pkgutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from mwa_lightning import COMMAND
from mwa_lightning.training.runs import CHECKPOINTS, CONFIG_FILE, LAST_CKPT

if TYPE_CHECKING:
    from torch import Tensor, nn

FORMATS = {"torch-export": ".pt2", "onnx": ".onnx"}
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")  # the export extra (pyproject.toml)


class ExportError(ValueError):
    """The run cannot be exported as asked; the message names what is wrong."""


def checkpoint_of(run: Path) -> tuple[Path, Path | None]:
    """(the checkpoint, the run folder holding its ``config.yaml`` or None) of a run folder or checkpoint file."""
    if run.is_dir():
        ckpt = run / CHECKPOINTS / LAST_CKPT
        if not ckpt.is_file():
            raise ExportError(f"{run} holds no {CHECKPOINTS}/{LAST_CKPT}; expected a run folder or a .ckpt file")
        return ckpt, run
    if run.is_file():
        folder = run.parent.parent if run.parent.name == CHECKPOINTS else None
        return run, folder if folder is not None and (folder / CONFIG_FILE).is_file() else None
    raise ExportError(f"{run} does not exist; expected a run folder (logs/<experiment>/<run>) or a .ckpt file")


def normalization(recorded: dict | None, run_dir: Path | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the inputs the model was trained on: the checkpoint's, else the run's DataModule's."""
    if recorded:
        return tuple(recorded["mean"]), tuple(recorded["std"])
    if run_dir is None:
        raise ExportError(
            "the checkpoint records no normalisation (trained before it did) and has no run folder beside it "
            f"(<run>/{CHECKPOINTS}/); export the run folder, whose {CONFIG_FILE} names the DataModule"
        )
    data = (yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {}).get("data") or {}
    cls = pkgutil.resolve_name(data["class_path"])
    init = data.get("init_args") or {}
    mean, std = init.get("mean") or cls.MEAN, init.get("std") or cls.STD
    return tuple(mean), tuple(std)


def exportable(model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    """The model with its preprocessing and softmax: uint8 images ``(B, C, H, W)`` -> probabilities."""
    import torch
    from torch import nn

    class Exported(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

        def forward(self, images: Tensor) -> Tensor:
            x = (images.to(torch.float32) / 255.0 - self.mean) / self.std
            return self.net(x).softmax(-1)

    return Exported().eval()


def export(run: Path, fmt: str, out: Path | None = None, tolerance: float = 1e-4) -> tuple[Path, float]:
    """Write the exported model; returns its path and the largest difference from the checkpoint's probabilities."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None] if fmt == "onnx" else []
    if missing:
        raise ExportError(f"--format onnx needs {', '.join(missing)}: pip install 'mwa-lightning[export]'")
    ckpt, run_dir = checkpoint_of(run)
    import torch

    from mwa_lightning.training.classifier import Classifier

    model = Classifier.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
    hparams = dict(model.hparams)
    if hparams.get("seq_len") is not None:
        raise ExportError(f"{ckpt} is a sequence model; export takes image models")
    mean, std = normalization(model.normalization, run_dir)
    wrapped = exportable(model.net, mean, std)
    size, chans = int(hparams.get("image_size") or 32), int(hparams.get("in_chans", 3))
    example = torch.randint(0, 256, (2, chans, size, size), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=4096)
    out = out or (run_dir or ckpt.parent) / f"model{FORMATS[fmt]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if fmt == "torch-export":
            program = torch.export.export(wrapped, (example,), dynamic_shapes=({0: batch},))
            with warnings.catch_warnings():  # its archive writer's notice about device placement; all is on the CPU
                warnings.filterwarnings("ignore", message="No complete tensor found in the group")
                torch.export.save(program, out)
        else:  # one file (external_data=False): these models are far below ONNX's 2 GB limit
            torch.onnx.export(
                wrapped, (example,), out, dynamo=True, dynamic_shapes=({0: batch},), external_data=False, verbose=False
            )
    names = hparams.get("class_names")
    if names:
        out.with_name(out.name + ".classes.txt").write_text("\n".join(names) + "\n")
    worst = parity(out, fmt, wrapped, chans, size)
    if not worst <= tolerance:
        raise ExportError(f"{out} differs from the checkpoint by {worst:.3g} (> --tolerance {tolerance:g})")
    return out, worst


def parity(path: Path, fmt: str, reference: nn.Module, chans: int, size: int) -> float:
    """The largest absolute difference in probability between the exported file, loaded back, and ``reference``
    on random uint8 images in batches of 1 and 5 (the batch dimension is dynamic)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    if fmt == "torch-export":
        run = torch.export.load(path).module()
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        run = lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])  # noqa: E731
    for n in (1, 5):
        images = torch.randint(0, 256, (n, chans, size, size), dtype=torch.uint8, generator=generator)
        with torch.no_grad():
            worst = max(worst, float((run(images) - reference(images)).abs().max()))
    return worst


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"{COMMAND} export", description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a run folder (logs/<experiment>/<run>) or a .ckpt file")
    parser.add_argument("--format", choices=list(FORMATS), default="torch-export", help="torch-export (.pt2) or onnx")
    parser.add_argument("--out", type=Path, default=None, help="the file to write (default: <run>/model.pt2|.onnx)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted probability difference")
    args = parser.parse_args(argv)
    try:
        out, worst = export(args.run, args.format, args.out, args.tolerance)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {out} ({args.format}: uint8 images (B, C, H, W) in, class probabilities out, normalisation inside); "
        f"largest difference from the checkpoint on random images: {worst:.2g}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
