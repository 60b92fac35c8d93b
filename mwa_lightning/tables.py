"""Tables, written once: printed (the benchmark), as Markdown (the GPU check, the report, the contrasts) and as CSV.

A leaf (the standard library only), so that bench/ and experiments/ both use it and neither imports the other."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def format_value(value: Any) -> str:
    """A cell: floats to three significant digits (thousands grouped from 1,000 on), NaN as "-"."""
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of ``columns`` (a row's missing key is an empty cell)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def print_table(title: str, rows: list[dict], columns: Sequence[str] | None = None) -> None:
    """A titled plain-text table on stdout, columns padded to their widest cell."""
    columns = columns or list(rows[0])
    widths = {c: max(len(c), *(len(format_value(r[c])) for r in rows)) for c in columns}
    print(f"\n## {title}")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(format_value(r[c]).ljust(widths[c]) for c in columns))


def write_csv(path: Path, rows: list[dict], quiet: bool = False) -> None:
    """The rows as CSV, one column per key of the first row (keys starting with "_" are private: left out)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = [k for k in rows[0] if not k.startswith("_")]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    if not quiet:
        print(f"wrote {path}")
