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
        "training.lightning_compat",
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
