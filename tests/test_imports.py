"""Every module of the package imports on its own: no import cycle, no import-order dependence.

One interpreter imports the third-party libraries once (torch, Lightning, ...: the slow part), then forks a child
per module; each child has none of the package loaded and imports just that module.
"""

import pkgutil
import subprocess
import sys

import mwa_lightning
from tests.helpers import ROOT

OPTIONAL = {"mwa_lightning.data.streaming": "litdata"}  # modules that need an optional extra

FORK_EACH = r"""
import os, sys, traceback
import lightning, matplotlib, numpy, ptwt, pywt, tensorboard, torch, torchmetrics, torchvision, yaml, jsonargparse
assert not [m for m in sys.modules if m.split(".")[0] == "mwa_lightning"]
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            __import__(name)
            code = 0
        except BaseException:
            os.write(write, traceback.format_exc()[-1500:].encode())
            code = 1
        os._exit(code)
    os.close(write)
    error = os.read(read, 4096).decode()
    os.close(read)
    _, status = os.waitpid(pid, 0)
    print(f"{name}\t{os.waitstatus_to_exitcode(status)}\t{error!r}")
"""


def package_modules() -> list[str]:
    names = ["mwa_lightning"]
    for info in pkgutil.walk_packages(mwa_lightning.__path__, "mwa_lightning."):
        names.append(info.name)
    return sorted(names)


def test_the_listing_sees_every_subpackage():
    names = package_modules()
    for part in (
        "cli",
        "models.vit",
        "data.loader",
        "lightning_compat",
        "experiments.study",
        "bench.gpucheck",
    ):
        assert f"mwa_lightning.{part}" in names


def test_every_module_imports_alone():
    names = package_modules()
    result = subprocess.run(
        [sys.executable, "-c", FORK_EACH, *names], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("\t", 2) for line in result.stdout.splitlines() if "\t" in line]
    assert [r[0] for r in rows] == names  # every module was tried
    failed = [f"{n}: {e}" for n, code, e in rows if code != "0" and OPTIONAL.get(n, "-") not in e]
    assert not failed, "\n".join(failed)


def imported_modules(path) -> set[str]:
    """Every module a source file imports (at any depth of the file: top, function or TYPE_CHECKING block)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_experiments_do_not_import_the_benchmark():
    """The arrows between rooms: what collects many fits (experiments/) does not lean on measurement (bench/);
    the tables both write live in a leaf, mwa_lightning.tables."""
    wrong = {
        str(path.relative_to(ROOT)): sorted(n for n in imported_modules(path) if n.startswith("mwa_lightning.bench"))
        for path in (ROOT / "mwa_lightning" / "experiments").glob("*.py")
    }
    assert not {k: v for k, v in wrong.items() if v}
    assert imported_modules(ROOT / "mwa_lightning" / "tables.py") <= {
        "__future__",
        "csv",
        "math",
        "collections.abc",
        "pathlib",
        "typing",
    }


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its file (at the top, inside functions, under
    TYPE_CHECKING) or names by string for importlib (the tools' dispatch): every arrow, hidden or not."""
    import ast

    root = ROOT / "mwa_lightning"
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
                targets = [node.value]  # a module named by string (importlib, the tools' table)
            for target in targets:
                module = resolve(target) if target.startswith("mwa_lightning") else None
                # a package imports its own children on first use (PEP 562): not an arrow back
                if module and module != name and not module.startswith(f"{name}."):
                    edges.add(module)
        graph[name] = edges
    return graph


def test_the_package_has_no_import_circle_not_even_a_hidden_one():
    """No module reaches itself through the imports of its file, counted everywhere: inside functions, under
    TYPE_CHECKING and through a module named by string (the house issue found study <-> paired and cli -> study ->
    cli behind exactly those)."""
    graph = _import_graph()
    # a package's parents are imported before it: the arrow to the package root (COMMAND) is every module's
    graph = {m: {e for e in edges if not m.startswith(f"{e}.")} for m, edges in graph.items()}
    circles, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for nxt in sorted(graph.get(module, ())):
            if state.get(nxt) == "open":
                circles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == [], "\n".join(circles)


def test_the_arrows_run_down_data_does_not_import_training():
    """data/ (what the DataModules read) sits below training/ (what runs inside one fit): what both need -- the
    compat layer, the run's seed -- lives in mwa_lightning.lightning_compat, below both."""
    graph = _import_graph()
    up = sorted(
        f"{module} -> {target}"
        for module, edges in graph.items()
        if module.startswith("mwa_lightning.data")
        for target in edges
        if target.startswith("mwa_lightning.training")
    )
    assert up == [], up
