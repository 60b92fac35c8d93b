"""The first thing to run on a machine with a GPU: ``mwa-lightning gpu-check`` (``make gpu-check``).

On one CUDA GPU, in a few minutes, it writes one Markdown table (``<out>/gpu_check.md``, also printed):

1. Training through the real command line (``mwa-lightning fit``'s ``main``, in this process):
   every registered mixer in ViT-S/4 with the paper's recipe (bf16-mixed, the augmentation batched on the GPU,
   the shared trainer settings), ``--steps`` optimizer steps at ``--batch`` images per step on the synthetic
   task (no dataset needed): images/s over the steps after the first ``--warmup`` ones, and peak GPU memory;
   then the same compiled (``model.compile: true``), and MWA with db2 (the ptwt path).
2. ``mwa-lightning bench --device cuda``'s mixers, whole models (ViT-S/4 at ``--batch``) and scaling
   sections.

The target it checks: ViT-S/4 with MWA trains at >= 25,000 images/s at batch 256 in bf16 on an H100-class GPU
(the paper's 300-epoch CIFAR-10 recipe in about 10 minutes) and at >= GFNet's images/s.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from mwa_lightning import COMMAND, packaged
from mwa_lightning.models.mixers import mixer_class, mixer_names
from mwa_lightning.tables import markdown_table

# torch, Lightning and the bench sections are imported by the functions that run something: ``gpu-check --help``
# and a machine without CUDA get their answer without them

TARGET_IMAGES_PER_S = 25_000
CONFIGS = packaged.configs_dir()  # the package's configs/, in a clone or an installed wheel


def train_run(
    mixer: str, size: str, batch: int, steps: int, warmup: int, compile: bool, device: str, extra: Sequence[str] = ()
) -> dict:
    """One short training run through the command line's ``main``; images/s and peak memory."""
    import torch

    from mwa_lightning.bench.timing import StepTimer
    from mwa_lightning.cli import main

    per_epoch = 50
    data = {
        "class_path": "mwa_lightning.data.SyntheticDataModule",
        "init_args": {
            "num_train": per_epoch * batch,
            "num_test": batch,
            "batch_size": batch,
            "augment": str(CONFIGS / "shared" / "augment" / "paper.yaml"),
        },
    }
    args = [
        "fit",
        "--config",
        str(CONFIGS / "baselines" / "cifar10" / f"{mixer}.yaml"),
        "--data",
        json.dumps(data),
        "--model.size",
        size,
        "--model.compile",
        str(compile).lower(),
        "--trainer.max_steps",
        str(steps),
        "--trainer.max_epochs",
        str(-(-steps // per_epoch)),
        "--trainer.limit_val_batches",
        "0",
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--last_checkpoint.every_n_epochs",
        "0",
        "--trainer.callbacks+=mwa_lightning.bench.timing.StepTimer",
        f"--trainer.callbacks.warmup={warmup}",
        *extra,
    ]
    if device == "cpu":
        args += ["--trainer.accelerator", "cpu", "--trainer.precision", "32-true"]
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp), contextlib.redirect_stdout(io.StringIO()):
        cli = main(args)
    timer = next(cb for cb in cli.trainer.callbacks if isinstance(cb, StepTimer))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    return {"images_per_s": timer.images_per_s, "peak_GiB": peak, "steps_timed": timer.steps}


def run(args: argparse.Namespace) -> str:
    import torch

    from mwa_lightning.bench.sections import bench_mixers, bench_models, bench_scaling

    device = args.device
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    started = time.perf_counter()
    training = []
    variants = [(m, False, ()) for m in args.mixers]
    if args.compile:
        variants += [(m, True, ()) for m in args.mixers]
    if "mwa" in args.mixers:
        variants.append(("mwa", False, ("--model.mixer.init_args.wavelet", "db2")))
    for mixer, compiled, extra in variants:
        label = mixer + (" (compiled)" if compiled else "") + (" db2" if extra else "")
        result = train_run(mixer, args.size, args.batch, args.steps, args.warmup, compiled, device, extra)
        training.append({"run": label, **result})
        print(f"{label}: {result['images_per_s']:,.0f} images/s, peak {result['peak_GiB']:.2f} GiB", flush=True)
    by = {r["run"]: r["images_per_s"] for r in training}
    for r in training:
        r["vs_gfn"] = r["images_per_s"] / by["gfn"] if "gfn" in by else float("nan")
    mixers = {m: mixer_class(m) for m in args.mixers}
    bench_rows = bench_mixers(mixers, repeats=args.repeats, device=device)
    model_rows = bench_models(mixers, [args.size], args.batch, args.repeats, device, memory=True)
    imagenet_rows = bench_models(
        mixers, [args.imagenet_size], args.imagenet_batch, args.repeats, device, image_size=224, patch_size=16
    )
    for row in imagenet_rows:  # 300 epochs of ImageNet-1K (1,281,167 images) on one GPU at this rate
        row["gpu_hours_300_epochs"] = 300 * 1_281_167 / row["train_images_per_s"] / 3600
    scaling_rows = bench_scaling(mixers, tokens=args.tokens, repeats=args.repeats, device=device, memory=True)
    mwa = by.get("mwa", float("nan"))
    verdict = (
        f"MWA {mwa:,.0f} images/s: {'meets' if mwa >= TARGET_IMAGES_PER_S else 'misses'} the target of "
        f"{TARGET_IMAGES_PER_S:,}; {'at or above' if mwa >= by.get('gfn', float('inf')) else 'below'} GFNet's "
        f"{by.get('gfn', float('nan')):,.0f}."
    )
    text = (
        f"# GPU check: {name}, torch {torch.__version__}, {time.perf_counter() - started:.0f} s\n\n"
        f"Training through the command line: ViT-{args.size}/4, batch {args.batch}, bf16-mixed, the paper's "
        f"augmentation on the GPU, {args.steps} steps (images/s over the steps after the first {args.warmup}).\n\n"
        + markdown_table(training, ["run", "images_per_s", "vs_gfn", "peak_GiB", "steps_timed"])
        + f"\n{verdict}\n\n## Mixers alone (bench, forward+backward ms)\n\n"
        + markdown_table(bench_rows, ["mixer", "shape", "fwd_bwd_ms", "vs_afno", "vs_gfn"])
        + f"\n## Whole models (bench, ViT-{args.size}/4, batch {args.batch}, bf16 autocast)\n\n"
        + markdown_table(
            model_rows, ["backbone", "mixer", "forward_ms", "train_step_ms", "train_images_per_s", "peak_MiB"]
        )
        + f"\n## ImageNet backbone (bench, ViT-{args.imagenet_size}/16 at 224 px, batch {args.imagenet_batch}, bf16 "
        "autocast): GPU-hours per 300 epochs of ImageNet-1K at this rate\n\n"
        + markdown_table(
            imagenet_rows,
            ["backbone", "mixer", "train_step_ms", "train_images_per_s", "peak_MiB", "gpu_hours_300_epochs"],
        )
        + "\n## Scaling with the token grid (bench)\n\n"
        + markdown_table(scaling_rows, ["grid", "mixer", "us_per_token", "time_vs_gfn", "KiB_per_token"])
    )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"{COMMAND} gpu-check", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check"), help="folder of gpu_check.md")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per training run")
    parser.add_argument("--warmup", type=int, default=50, help="steps left out of the timing")
    parser.add_argument("--batch", type=int, default=256, help="images per step")
    parser.add_argument("--size", default="S", help="backbone")
    parser.add_argument("--mixers", nargs="+", choices=mixer_names(), default=mixer_names())
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True, help="also compiled")
    parser.add_argument("--repeats", type=int, default=5, help="bench rounds")
    parser.add_argument("--imagenet-size", default="S", help="backbone of the ImageNet row (224 px, patch 16)")
    parser.add_argument("--imagenet-batch", type=int, default=128, help="batch of the ImageNet row")
    parser.add_argument("--tokens", type=int, default=65536, help="tokens per batch of the scaling sweep")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # cpu: a smoke test of this script
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: the GPU check needs a CUDA GPU and finds none (torch.cuda.is_available() is False)")
        return 2
    warnings.filterwarnings("ignore")  # the runs' warnings (e.g. no validation) are expected here
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    text = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.md").write_text(text)
    print(text)
    print(f"wrote {args.out / 'gpu_check.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
