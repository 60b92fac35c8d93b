"""The ``mwa-lightning`` command's dispatch, the one place that names its tools: the first word picks either one
of LightningCLI's subcommands (:data:`SUBCOMMANDS`, run by :mod:`mwa_lightning.cli`) or a tool (:data:`TOOLS`,
each a module with ``main(argv) -> int``, also ``python -m <its module>``).

Standard library only: a tool's module is imported when it is asked for, so that ``mwa-lightning --help``, a
mistyped command and every tool's ``--help`` answer without importing torch or Lightning (the tools import them
when they need them), and no module of the package imports this one back.
"""

from __future__ import annotations

import difflib
import importlib
import sys

from mwa_lightning import COMMAND, SUBCOMMANDS

# the tools beside LightningCLI's subcommands: name -> (module with main(argv) -> int, what it does)
TOOLS: dict[str, tuple[str, str]] = {
    "study": ("mwa_lightning.experiments.study", "run a study file's grid of seeded runs, then its report"),
    "report": ("mwa_lightning.experiments.report", "tabulate the runs under a folder"),
    "slurm": ("mwa_lightning.experiments.slurm", "submit a study or an experiment as a SLURM array job"),
    "configs": ("mwa_lightning.experiments.baselines", "regenerate configs/baselines/ from configs/shared/"),
    "bench": ("mwa_lightning.bench.__main__", "side-by-side benchmarks of mixers, models and data paths"),
    "gpu-check": ("mwa_lightning.bench.gpucheck", "the first check on a CUDA GPU: training speed and memory"),
    "prepare": ("mwa_lightning.data.prepare", "turn an image-folder dataset into LitData chunks"),
    "minirocket": ("mwa_lightning.experiments.minirocket", "the time-series reference, with a fit run's arguments"),
    "export": ("mwa_lightning.training.export", "export a run's model (torch.export or ONNX), preprocessing inside"),
}


def run_tool(name: str, argv: list[str]) -> int:
    """Run the tool ``name`` (a key of :data:`TOOLS`) with ``argv``; its exit status."""
    module = importlib.import_module(TOOLS[name][0])
    return module.main(argv) or 0


def tools_help() -> str:
    """What ``mwa-lightning --help`` prints: the subcommands and the tools, one line each."""
    width = max(map(len, [*TOOLS, *SUBCOMMANDS]))
    training = [f"  {COMMAND} {name:<{width}}  LightningCLI's {name}" for name in SUBCOMMANDS]
    tools = [f"  {COMMAND} {name:<{width}}  {what}" for name, (_, what) in TOOLS.items()]
    return (
        f"usage: {COMMAND} COMMAND [options]; {COMMAND} COMMAND --help lists a command's options\n"
        "training (a LightningCLI: --config FILE, --model..., --data..., --trainer...):\n"
        + "\n".join(training)
        + "\ntools:\n"
        + "\n".join(tools)
        + "\n"
    )


def unknown_command(word: str) -> str:
    """The one-line error for a first word that is neither a subcommand nor a tool, with the nearest name."""
    names = [*SUBCOMMANDS, *TOOLS]
    near = difflib.get_close_matches(word, names, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return f"error: {word!r} is not a command of {COMMAND}; {hint}expected one of: {', '.join(names)}"


def entry_point(argv: list[str] | None = None) -> None:
    """The ``mwa-lightning`` console script, also ``python -m mwa_lightning``."""
    given = argv
    argv = sys.argv[1:] if argv is None else argv
    first = argv[0] if argv else None
    if first in TOOLS:
        raise SystemExit(run_tool(first, argv[1:]))
    if first in (None, "-h", "--help"):
        print(tools_help(), end="")
        raise SystemExit(0 if first else 2)
    if first not in SUBCOMMANDS and not first.startswith("-"):
        print(unknown_command(first), file=sys.stderr)
        raise SystemExit(2)
    from mwa_lightning.cli import main  # torch and Lightning: only for training

    main(given)  # None: LightningCLI reads sys.argv itself
