"""Turn an image-folder dataset into LitData chunks: ``mwa-lightning prepare DATA_DIR OUT_DIR``.

Reads ``DATA_DIR/train/<class>/*`` and ``DATA_DIR/val/<class>/*`` (ImageNet's layout, see
:mod:`mwa_lightning.data.folder`) and writes ``OUT_DIR/train/`` and ``OUT_DIR/val/`` (LitData chunks, with a
progress bar per split), ``OUT_DIR/classes.json`` (the class names in label order) and ``OUT_DIR/skipped.txt``.

Every image is opened and decoded once on the way: one that is corrupt or unreadable is skipped, counted,
listed in ``skipped.txt`` and reported at the end (training on the chunks then never meets it). With
``--max-side N`` an image whose longer side exceeds N is downscaled and re-encoded as a JPEG (quality
``--quality``), which makes the chunks smaller and decoding faster (FFCV's ImageNet files use 512 / 90); by
default the original bytes are stored as they are.

Then train with ``--data.init_args.source litdata --data.init_args.litdata_dir OUT_DIR``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from PIL import Image

from mwa_lightning import COMMAND


def encode(item: tuple[str, int], max_side: int | None, quality: int) -> dict | None:
    """The sample LitData stores for one file, or None for a file that does not decode."""
    path, label = item
    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decode every pixel: a truncated file fails here, not during training
            if max_side is not None and max(im.size) > max_side:
                im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                buffer = io.BytesIO()
                im.convert("RGB").save(buffer, format="JPEG", quality=quality)
                data = buffer.getvalue()
    except Exception:
        return None
    return {"image": data, "label": label, "name": path}


def _store(item: tuple[str, int], max_side: int | None, quality: int, skipped_dir: str):
    sample = encode(item, max_side, quality)
    if sample is None:  # counted: one line per skipped file, in a file per worker process
        with open(Path(skipped_dir) / f"skipped.{os.getpid()}.part", "a") as f:
            f.write(f"{item[0]}\n")
        return
    yield sample  # LitData stores what the function yields


def prepare(data_dir: Path, out_dir: Path, max_side: int | None, quality: int, workers: int) -> dict[str, int]:
    import litdata

    from mwa_lightning.data.folder import CLASSES_FILE, ImageFolderDataModule  # torch: not for --help

    dm = ImageFolderDataModule(data_dir=data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CLASSES_FILE).write_text(json.dumps(dm.classes))
    counts, skipped = {}, []
    for split, listing in (("train", dm.listing("train")), ("val", dm.listing("test"))):
        items = [(str(p), label) for p, label in listing]
        parts = out_dir / f".skipped-{split}"
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir()
        litdata.optimize(
            fn=partial(_store, max_side=max_side, quality=quality, skipped_dir=str(parts)),
            inputs=items,
            output_dir=str(out_dir / split),
            chunk_bytes="64MB",
            num_workers=workers,
            mode="overwrite",
        )
        bad = sorted(line for part in parts.glob("*.part") for line in part.read_text().splitlines())
        shutil.rmtree(parts)
        skipped += bad
        counts[split] = len(items) - len(bad)
        print(f"{split}: {counts[split]} of {len(items)} images stored, {len(bad)} skipped")
    (out_dir / "skipped.txt").write_text("".join(f"{p}\n" for p in skipped))
    counts["skipped"] = len(skipped)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"{COMMAND} prepare", description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", type=Path, help="the folder holding train/ and val/")
    parser.add_argument("out_dir", type=Path, help="where the chunks go")
    parser.add_argument("--max-side", type=int, default=None, help="downscale images whose longer side exceeds this")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of re-encoded images")
    parser.add_argument("--workers", type=int, default=4, help="processes")
    args = parser.parse_args(argv)
    from mwa_lightning.data.errors import DataError  # the data package imports torch: not for --help

    try:
        counts = prepare(args.data_dir, args.out_dir, args.max_side, args.quality, args.workers)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.out_dir}: {counts['train']} train, {counts['val']} val images; {counts['skipped']} corrupt or "
        f"unreadable files skipped (listed in {args.out_dir / 'skipped.txt'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
