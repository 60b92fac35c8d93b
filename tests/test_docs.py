"""Every command in the README, docs/ and results/README.md runs on a user's machine.

Each shell command of a fenced ``bash`` block is run here: those that need no data as they are (``--print_config``
for a ``fit``, the configs ``--check``), the others in their ``--dry-run`` or ``--help`` form; ``make`` targets
are dry-run (``make -n``); config files a command names must exist. A command of a shape this test does not
know fails, so that a new kind of command is never left unchecked.
"""

import contextlib
import csv
import functools
import io
import re
import shlex
import subprocess
import sys

import pytest

from mwa_lightning import SUBCOMMANDS
from mwa_lightning.cli import main
from mwa_lightning.tools import TOOLS, run_tool
from tests.helpers import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "results" / "README.md"]
LIGHTNING = SUBCOMMANDS
PLACEHOLDER = re.compile(r"[<>$]|^logs/|^my_images/")  # written by an earlier command, or the user's own


def shell_commands(path):
    """(line number, words) of every command in the file's ```bash blocks (continuations joined, comments cut)."""
    commands, block, start = [], None, 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            block = [] if block is None and stripped == "```bash" else None
            continue
        if block is None:
            continue
        text = re.sub(r"(^|\s)#.*$", "", line).rstrip() if not stripped.startswith("python -c") else line.rstrip()
        if not text.strip():
            continue
        if not block or not block[-1].endswith("\\"):
            start = number
            block.append(text.strip())
        else:
            block[-1] = block[-1][:-1] + " " + text.strip()
        if not block[-1].endswith("\\"):
            commands.append((start, shlex.split(block[-1])))
    return commands


COMMANDS = [(path, line, words) for path in DOCS for line, words in shell_commands(path)]


def test_the_docs_hold_commands_of_every_kind():
    kinds = {words[0] for _, _, words in COMMANDS}
    assert {"make", "mwa-lightning"} <= kinds and len(COMMANDS) >= 15


def _mwa_part(words):
    """The ``mwa-lightning ...`` arguments of a command, also when torchrun or srun starts it."""
    if words[0] == "mwa-lightning":
        return words[1:]
    if "mwa-lightning" in words:
        return words[words.index("mwa-lightning") + 1 :]
    if "-m" in words and words[words.index("-m") + 1] == "mwa_lightning":
        return words[words.index("-m") + 2 :]
    return None


def _has_placeholder(args):
    return any(PLACEHOLDER.search(a) for a in args)


def _configs_exist(args):
    missing = [a for a in args if a.endswith(".yaml") and not PLACEHOLDER.search(a) and not (ROOT / a).is_file()]
    assert not missing, f"config files that do not exist: {missing}"


def _run_quiet(fn, *args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            code = fn(*args)
        except SystemExit as e:
            code = e.code
    return code or 0, out.getvalue()


@pytest.mark.parametrize(("path", "line", "words"), COMMANDS, ids=lambda v: v.name if hasattr(v, "name") else None)
def test_command_runs(path, line, words, monkeypatch, tmp_path):
    where = f"{path.relative_to(ROOT)}:{line}: {shlex.join(words)}"
    monkeypatch.chdir(ROOT)
    if words[0] == "make":
        result = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{where}\n{result.stderr}"
        return
    if words[:2] == ["python", "-c"]:
        result = subprocess.run([sys.executable, "-c", words[2]], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{where}\n{result.stderr[-2000:]}"
        return
    args = _mwa_part(words)
    assert args, f"{where}: a command this test does not know how to check"
    _configs_exist(args)
    name, rest = args[0], args[1:]
    if name in LIGHTNING:
        if _has_placeholder(rest):
            argv = [name, "--help"]
        else:
            argv = [name, *[a for a in rest if a != "--print_config"], "--print_config"]
            argv = [a.replace("$RANK", "0") for a in argv]
        code, out = _run_quiet(main, argv)
        assert code == 0 and out, where
        return
    assert name in TOOLS, f"{where}: {name!r} is neither a LightningCLI subcommand nor a tool"
    if name in ("study", "slurm") and not _has_placeholder(rest):
        argv = rest if {"--dry-run", "--print-commands"} & set(rest) else [*rest, "--dry-run"]
        if name == "slurm":
            argv = [*argv, "--out", str(tmp_path)]
    elif name == "configs":
        argv = ["--check"]
    else:
        argv = ["--help"]
    code, out = _run_quiet(run_tool, name, argv)
    assert code == 0 and out, where


# A figure quoted as "mean ± std" or "mean [low, high]" in the README or a results README must be a row of a committed
# results CSV: a report's <metric>_mean/_std (accuracies as fractions there, points here) or a contrast's
# mean/low/high, at the printed precision. A doc under results/<study>/ draws only on the CSVs under that folder.
RESULTS = ROOT / "results"
QUOTING_DOCS = [ROOT / "README.md", *sorted(RESULTS.rglob("README.md"))]
NUMBER = r"([+-]?\d+(?:\.\d+)?)"
MEAN_STD = re.compile(rf"(?<![\w.]){NUMBER} ± {NUMBER}")
INTERVAL = re.compile(rf"(?<![\w.]){NUMBER}\**,? \[{NUMBER}, {NUMBER}\]")


@functools.cache
def _committed_figures(folder):
    """(mean, std) pairs of the reports and (mean, low, high) triples of the contrasts under folder."""
    pairs, triples = [], []
    for path in sorted(p for p in folder.rglob("*.csv") if p.name in ("report.csv", *CONTRAST_FILES)):
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            for column, value in row.items():
                std = row.get(column.removesuffix("_mean") + "_std")
                if column.endswith("_mean") and value and std is not None:
                    pairs.append((float(value), float(std or 0)))
            if {"mean", "low", "high"} <= row.keys():
                triples.append((float(row["mean"]), float(row["low"]), float(row["high"])))
    return pairs, triples


CONTRAST_FILES = ("contrasts.csv", "contrasts-bootstrap.csv")  # the current contrasts; the old intervals, a record


def _printed(value, text):
    """Does value, rounded as text is printed, give text?"""
    decimals = len(text.partition(".")[2])
    return abs(value - float(text)) <= 0.5 * 10**-decimals + 1e-9


def test_the_figures_the_docs_quote_are_the_committed_results():
    quoted, unmatched = 0, []
    for doc in QUOTING_DOCS:
        pairs, triples = _committed_figures(RESULTS if doc.parent in (ROOT, RESULTS) else doc.parent)
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for m in MEAN_STD.finditer(line):
                mean, std = m.groups()
                quoted += 1
                if not any(_printed(a * k, mean) and _printed(b * k, std) for a, b in pairs for k in (1, 100)):
                    unmatched.append(f"{doc.relative_to(ROOT)}:{number}: {m.group(0)}")
            for m in INTERVAL.finditer(line):
                quoted += 1
                if not any(all(map(_printed, t, m.groups())) for t in triples):
                    unmatched.append(f"{doc.relative_to(ROOT)}:{number}: {m.group(0)}")
    assert quoted >= 50, f"only {quoted} quoted figures found: has the docs' format changed?"
    assert not unmatched, "figures quoted in the docs that no committed results CSV holds:\n" + "\n".join(unmatched)


# A claim about a contrast must follow from its row of contrasts.csv (the calibrated intervals):
# - a figure "mean [low, high]" is bold (**mean** [low, high]) exactly when p (Holm) < 0.05;
# - "level with" or "equivalent" on a line: the line quotes a contrast, and each contrast quoted there is
#   equivalent within the study's margin (its 90 % interval inside +-delta), which needs a margin;
# - "survives Holm" or "significant" (not negated) on a line: each contrast quoted there has p (Holm) < 0.05;
# - an old bootstrap interval (contrasts-bootstrap.csv, kept as a record) is never bold, and its line says "old".
# A line of a fenced code block is a command, not a claim (``prereg ... P1=equivalent`` names a prediction): only
# the figures are checked there.
NEGATED = re.compile(
    r"\b(?:not|no longer|neither|nor)\b[^.;]*\bsignificant|\binsignificant|significant under the old", re.I
)


@functools.cache
def _contrast_rows(folder):
    """(rows of the current contrasts.csv files, (mean, low, high) of the old bootstrap ones) under folder."""
    current, old = [], []
    for path in sorted(folder.rglob("contrasts*.csv")):
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        if path.name == "contrasts.csv":
            current += rows
        elif path.name == "contrasts-bootstrap.csv":
            old += [(float(r["mean"]), float(r["low"]), float(r["high"])) for r in rows]
    return current, old


def test_the_docs_claim_only_what_the_contrasts_show():
    checked, wrong = 0, []
    for doc in QUOTING_DOCS:
        current, old = _contrast_rows(RESULTS if doc.parent in (ROOT, RESULTS) else doc.parent)
        fenced = False
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            where = f"{doc.relative_to(ROOT)}:{number}"
            fenced ^= line.lstrip().startswith("```")
            plain = line.lower().replace('"', "").replace("'", "")
            claims_equal = (
                not fenced and re.search(r"level with|equivalent", plain) and not re.search(r"\bno equivalen", plain)
            )
            quoted = 0
            claims_significant = (
                not fenced and re.search(r"survives? Holm|significant", line, re.I) and not NEGATED.search(line)
            )
            for m in INTERVAL.finditer(line):
                bold = "**" in m.group(0)
                match = [
                    r for r in current if all(map(_printed, (float(r[k]) for k in ("mean", "low", "high")), m.groups()))
                ]
                if not match:
                    if any(all(map(_printed, t, m.groups())) for t in old):
                        checked += 1
                        if bold or "old" not in line.lower():
                            wrong.append(f"{where}: {m.group(0)} is an old bootstrap interval: not bold, and say 'old'")
                    continue
                checked += 1
                quoted += 1
                row = match[0]
                significant = float(row["p_holm"]) < 0.05
                if bold != significant:
                    wrong.append(
                        f"{where}: {m.group(0)} is {'' if bold else 'not '}bold but p (Holm) = {row['p_holm']}"
                    )
                if claims_equal and "equivalent" not in row["verdict"] and "within" not in row["verdict"]:
                    wrong.append(f"{where}: 'level with'/'equivalent' but {row['name']} is {row['verdict']!r}")
                if claims_significant and not significant:
                    wrong.append(f"{where}: 'significant' but {row['name']} has p (Holm) = {row['p_holm']}")
            if claims_equal and not quoted:
                wrong.append(f"{where}: 'level with'/'equivalent' with no contrast quoted to show it")
    assert checked >= 30, f"only {checked} contrasts quoted: has the docs' format changed?"
    assert not wrong, "claims the committed contrasts do not show:\n" + "\n".join(wrong)
