"""Pre-registered predictions: what a study's contrasts should show, written before its first run, and whether each
held.

A study file may name, for some of its contrasts, the prediction made before any run (``predictions:``)::

    delta: 1.0
    contrasts:
      P1-mwa-vs-gfn: [mwa+local, gfn+local]
      P2-conv-vs-mwa: [conv+local, mwa+local]
      C1-paper: [mwa, gfn]
    predictions:
      P1-mwa-vs-gfn: equivalent        # within +-delta (or "equivalent 0.5": within +-0.5)
      P2-conv-vs-mwa: positive         # > 0 ("negative": < 0)
      C1-paper: at-least 1             # >= +1 point ("at-most -1": <= -1 point)

and the report gives each a verdict, "held", "did not hold" or "undecided", by these rules (those of the
pre-registered CIFAR-100 study, ``configs/studies/cifar100-confirmatory.yaml``):

- equivalent within +-m: held when the 90 % interval lies inside (-m, +m) (two one-sided tests at 5 %); did not
  hold when it lies wholly outside, above +m or below -m; otherwise undecided;
- positive (negative): held when p (Holm) < 0.05 with a positive (negative) mean; did not hold when p (Holm) < 0.05
  with the other sign; otherwise undecided;
- at least m (at most m): held when the 90 % interval lies above (below) m, the one-sided 5 % test; did not hold
  when it lies below (above) m; otherwise undecided.

A contrast of one seed (no interval) is undecided. ``python -m mwa_lightning.experiments.prereg CONTRASTS_CSV
NAME=PREDICTION ...`` gives the verdicts of predictions written elsewhere (a pre-registered file's header, which
does not change after its first run) from a study's committed ``contrasts.csv``.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mwa_lightning.experiments.stats import ALPHA, ContrastResult, interval
from mwa_lightning.tables import markdown_table

HELD, NOT_HELD, UNDECIDED = "held", "did not hold", "undecided"
EQUIVALENT, POSITIVE, NEGATIVE, AT_LEAST, AT_MOST = "equivalent", "positive", "negative", "at-least", "at-most"
_FORM = re.compile(r"^(equivalent|positive|negative|at-least|at-most)(?:\s+([+-]?\d+(?:\.\d+)?))?$")
FORMS = "'equivalent', 'equivalent <margin>', 'positive', 'negative', 'at-least <points>' or 'at-most <points>'"


class PredictionError(ValueError):
    """A prediction that cannot be read; the message names it."""


@dataclass(frozen=True)
class Prediction:
    """One contrast's pre-registered prediction: its kind and, for an equivalence or a bound, the points."""

    contrast: str
    kind: str
    points: float = math.nan  # equivalent: the margin m (> 0); at-least / at-most: the bound

    @classmethod
    def parse(cls, contrast: str, text: Any, delta: float | None) -> Prediction:
        """``equivalent`` (within the study's ``delta``), ``equivalent 0.5``, ``positive``, ``negative``,
        ``at-least 1``, ``at-most -1``."""
        match = _FORM.match(" ".join(str(text).split()))
        if not match:
            raise PredictionError(f"predictions.{contrast}: {text!r}; expected {FORMS}")
        kind, number = match.group(1), match.group(2)
        if kind in (POSITIVE, NEGATIVE):
            if number is not None:
                raise PredictionError(f"predictions.{contrast}: {text!r}; {kind!r} takes no number")
            return cls(contrast, kind)
        if kind == EQUIVALENT:
            margin = float(number) if number is not None else delta
            if margin is None or margin <= 0:
                raise PredictionError(
                    f"predictions.{contrast}: {text!r} needs a positive margin: 'equivalent <margin>', or the "
                    "study's delta"
                )
            return cls(contrast, kind, float(margin))
        if number is None:
            raise PredictionError(f"predictions.{contrast}: {text!r}; expected '{kind} <points>'")
        return cls(contrast, kind, float(number))

    @property
    def says(self) -> str:
        """The prediction in words: ``equivalent within +-1``, ``> 0``, ``>= +1``."""
        return {
            EQUIVALENT: f"equivalent within +-{self.points:g}",
            POSITIVE: "> 0",
            NEGATIVE: "< 0",
            AT_LEAST: f">= {self.points:+g}",
            AT_MOST: f"<= {self.points:+g}",
        }[self.kind]

    def verdict(self, r: ContrastResult) -> str:
        """held, did not hold or undecided, by the rules in the module docstring."""
        if math.isnan(r.p) or math.isnan(r.low90):
            return UNDECIDED
        if self.kind == EQUIVALENT:
            m = self.points
            if -m < r.low90 and r.high90 < m:
                return HELD
            return NOT_HELD if r.low90 > m or r.high90 < -m else UNDECIDED
        if self.kind in (POSITIVE, NEGATIVE):
            if not r.p_holm < ALPHA or r.mean == 0:
                return UNDECIDED
            return HELD if (r.mean > 0) == (self.kind == POSITIVE) else NOT_HELD
        above, below = r.low90 > self.points, r.high90 < self.points
        if self.kind == AT_LEAST:
            return HELD if above else NOT_HELD if below else UNDECIDED
        return HELD if below else NOT_HELD if above else UNDECIDED


def parse_predictions(spec: Any, contrasts: Any, delta: float | None, where: str) -> dict[str, Prediction]:
    """A study file's ``predictions:`` (``{contrast: prediction}``), each naming one of its ``contrasts``."""
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise PredictionError(f"{where}: predictions must map contrast names to a prediction ({FORMS})")
    unknown = [str(name) for name in spec if name not in contrasts]
    if unknown:
        raise PredictionError(
            f"{where}: predictions name unknown contrast(s) {', '.join(map(repr, unknown))}; "
            f"the contrasts: {', '.join(contrasts) or 'none'}"
        )
    try:
        return {str(name): Prediction.parse(str(name), text, delta) for name, text in spec.items()}
    except PredictionError as e:
        raise PredictionError(f"{where}: {e}") from None


def verdict_rows(predictions: dict[str, Prediction], results: list[ContrastResult]) -> list[dict[str, str]]:
    """One row a prediction, in the study file's order: the contrast, what was predicted, the estimate, its
    intervals, p (Holm) and the verdict (a contrast not yet computed: "not yet computed")."""
    by_name = {r.name: r for r in results}
    rows = []
    for name, prediction in predictions.items():
        r = by_name.get(name)
        rows.append(
            {
                "prediction": name,
                "predicted": prediction.says,
                "mean (points)": "-" if r is None else f"{r.mean:+.2f}",
                "90 % interval": "-" if r is None else interval(r.low90, r.high90),
                "95 % interval": "-" if r is None else interval(r.low, r.high),
                "p (Holm)": "-" if r is None else f"{r.p_holm:.3f}",
                "verdict": "not yet computed" if r is None else prediction.verdict(r),
            }
        )
    return rows


def verdicts_markdown(predictions: dict[str, Prediction], results: list[ContrastResult]) -> str:
    """The predictions' table and the rules it applies, for ``contrasts.md``."""
    if not predictions:
        return ""
    rows = verdict_rows(predictions, results)
    return (
        "\n## Pre-registered predictions\n\n"
        + markdown_table(rows, list(rows[0]))
        + "\nVerdicts (mwa_lightning.experiments.prereg): an equivalence holds when the 90 % interval lies inside "
        "(-m, +m) and fails when it lies wholly outside; a sign (> 0, < 0) holds when p (Holm) < 0.05 with that sign "
        "and fails with the other; a bound (>= b, <= b) holds when the 90 % interval lies beyond b and fails when it "
        "lies wholly on the other side; anything else is undecided.\n"
    )


def read_contrasts(path: Path) -> list[ContrastResult]:
    """A committed ``contrasts.csv`` back as results (what :func:`~mwa_lightning.experiments.paired.write_contrasts`
    wrote)."""
    fields = set(ContrastResult.__dataclass_fields__)
    numbers = {"seeds", "images"}
    results = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            values: dict[str, Any] = {}
            for key, value in row.items():
                if key not in fields:
                    continue
                if key in ("name", "formula", "method"):
                    values[key] = value
                elif key in numbers:
                    values[key] = int(value)
                else:
                    values[key] = float(value) if value not in ("", "nan") else math.nan
            results.append(ContrastResult(**values))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mwa_lightning.experiments.prereg",
        description="The verdicts of pre-registered predictions on a study's committed contrasts.csv.",
    )
    parser.add_argument("contrasts", type=Path, help="the study's contrasts.csv")
    parser.add_argument("predictions", nargs="+", help=f"NAME=PREDICTION, the prediction one of {FORMS}")
    parser.add_argument("--delta", type=float, help="the study's equivalence margin (for a bare 'equivalent')")
    args = parser.parse_args(argv)

    def fail(message: str) -> None:  # one line, without argparse's usage
        parser.exit(2, f"error: {message}\n")

    if not args.contrasts.is_file():
        fail(f"no file {args.contrasts}")
    results = read_contrasts(args.contrasts)
    spec = {}
    for item in args.predictions:
        name, sep, text = item.partition("=")
        if not sep:
            fail(f"{item!r}; expected NAME=PREDICTION")
        spec[name] = text
    try:
        predictions = parse_predictions(spec, [r.name for r in results], args.delta, str(args.contrasts))
    except PredictionError as e:
        fail(str(e))
    print(verdicts_markdown(predictions, results).strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
