"""The ``mwa-lightning`` dispatch (mwa_lightning.tools): every tool's ``--help`` answers without torch or Lightning,
a mistyped command is one line with the nearest name, and the dispatch is the only place that names the tools."""

import ast
import json
import os
import subprocess
import sys

import pytest

from mwa_lightning import SUBCOMMANDS
from mwa_lightning.tools import TOOLS, unknown_command
from tests.helpers import ROOT, run_cli

# what a tool's --help must not import: the slow part of a start (about 7 s of this machine's 7.3 s before)
HEAVY = ("torch", "lightning", "torchvision", "torchmetrics", "ptwt")

HELP_IN_A_FRESH_PROCESS = r"""
import contextlib, io, json, os, sys
from mwa_lightning.tools import entry_point
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    entry_point(sys.argv[1:])
heavy = os.environ["HEAVY"].split(",")
print(json.dumps({"heavy": sorted(m for m in sys.modules if m.split(".")[0] in heavy), "out": out.getvalue()}))
"""


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in TOOLS]], ids=lambda a: " ".join(a))
def test_help_answers_without_torch_or_lightning(argv):
    env = {**os.environ, "HEAVY": ",".join(HEAVY)}
    command = [sys.executable, "-c", HELP_IN_A_FRESH_PROCESS, *argv]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["heavy"] == [], f"{' '.join(argv)} imported {answer['heavy'][:5]}"
    name = " ".join(["mwa-lightning", *argv[:-1]]) if len(argv) > 1 else "mwa-lightning study"
    assert name in answer["out"], answer["out"][-500:]


def test_the_top_level_help_lists_every_command():
    result = run_cli("--help", cwd=ROOT, timeout=60)
    assert result.returncode == 0
    for name in (*SUBCOMMANDS, *TOOLS):
        assert f"mwa-lightning {name}" in result.stdout, name


def test_a_mistyped_command_is_one_line_with_the_nearest_name():
    result = run_cli("studdy", "configs/studies/mixer-x-local.yaml", cwd=ROOT, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'studdy'" in lines[0] and "did you mean 'study'?" in lines[0] and "gpu-check" in lines[0]
    assert "did you mean" not in unknown_command("zzzzzz")


def test_the_dispatch_is_a_leaf_and_the_only_place_that_names_the_tools():
    """mwa_lightning.tools imports no module of the package at import time (the package root's COMMAND aside) and
    imports each tool by name when asked; no other module names a tool's module, by string or by import in
    mwa_lightning.cli, so no circle runs through the dispatch (a tool may import mwa_lightning.cli back)."""
    tree = ast.parse((ROOT / "mwa_lightning" / "tools.py").read_text())
    package_imports = [
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mwa_lightning")
    ]
    assert package_imports == ["mwa_lightning"], package_imports
    tool_modules = {module for module, _ in TOOLS.values()}
    named = []
    for path in (ROOT / "mwa_lightning").rglob("*.py"):
        if path.name == "tools.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in tool_modules:
                named.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and path.name == "cli.py" and node.module in tool_modules:
                named.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert named == [], named
