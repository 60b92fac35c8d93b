"""What the command line does with what a user types and with what it prints, before any training: errors in one
line (the nearest valid option for a typo, no usage dump), a mixer's registered name taken for its class path, and
Lightning's messages that say nothing about the run left out. :mod:`mwa_lightning.cli` uses them.
"""

from __future__ import annotations

import difflib
import logging
import re
import sys
import warnings
from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from mwa_lightning import COMMAND
from mwa_lightning.lightning_compat import debug_mode_active, option_names

# jsonargparse's messages for an unknown option (the option), and for an option the configured mixer lacks (the
# option, the mixer's class path)
UNKNOWN_OPTION = r"(?:unrecognized arguments: |does not accept option[s]? )'?-*([\w.]+)"
FOREIGN_MIXER_OPTION = r'Parser key "model\.mixer".*Option \'(\w+)\' is not accepted.*class_path=\'([\w.]+)\''


class OneLineErrors(LightningArgumentParser):
    """The command line's parser, whose errors are one line: the message, the nearest valid option for a mistyped
    one, and where the options are listed, without the usage dump (jsonargparse prints about 110 lines of usage
    before the message). Errors that jsonargparse raises instead of exiting (while it tries alternatives) pass
    through as they are."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or debug_mode_active():
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        text = " ".join(message.split())
        hint = ""
        foreign = re.search(FOREIGN_MIXER_OPTION, text)
        if foreign:  # an option of another mixer, e.g. an MWA ablation stacked on the GFNet baseline
            option, class_path = foreign.groups()
            text = f"model.mixer: {class_path.rpartition('.')[2]} has no option {option!r}"
            hint = (
                "; the ablations in configs/ablations/ are options of MWA: stack them on "
                "configs/baselines/<dataset>/mwa.yaml"
            )
        options = option_names(parser)
        for typo in [] if foreign else re.findall(UNKNOWN_OPTION, text):
            near = difflib.get_close_matches(typo, options, n=1, cutoff=0.75)
            if near:
                hint = f"; did you mean --{near[0]}?"
                break
        words = parser.prog.replace(" [options]", "").split()  # "<program> fit"; the program is the command's name
        prog = " ".join([COMMAND, *words[1:]])
        sys.stderr.write(f"error: {text}{hint} ({prog} --help lists the options)\n")
        self.exit(2)


MIXER_OPTION = "--model.mixer"


def registered_mixer_names(args: list[str]) -> list[str]:
    """``args`` with a registered mixer name given to ``--model.mixer`` (``gfn``, as ``bench --mixers`` and
    docs/model.md name them) replaced by its class path (:data:`~mwa_lightning.models.mixers.registry.MIXERS`),
    which jsonargparse needs; anything else is left to jsonargparse."""
    from mwa_lightning.models.mixers.registry import MIXERS

    out = list(args)
    for i, arg in enumerate(out):
        if arg == MIXER_OPTION and i + 1 < len(out):
            at, value = i + 1, out[i + 1]
        elif arg.startswith(f"{MIXER_OPTION}="):
            at, value = i, arg.partition("=")[2]
        else:
            continue
        if value in MIXERS:
            out[at] = MIXERS[value] if at == i + 1 else f"{MIXER_OPTION}={MIXERS[value]}"
        elif value.isidentifier():  # a bare word: not a class path, a file or a mapping
            near = difflib.get_close_matches(value, MIXERS, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise UsageError(f"{MIXER_OPTION} {value!r} is no registered mixer ({', '.join(MIXERS)}){hint}")
    return out


class UsageError(ValueError):
    """A mistake in the command line found before parsing; its message is the one line a user sees."""


class _NoAdvertisement(logging.Filter):
    """Drop Lightning's tip to install its cloud logger, printed at every trainer's start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def quiet_lightning() -> None:
    """Leave out of every run's output what says nothing about the run: Lightning's cloud-logger tip, and the
    deprecation warning torch raises inside Lightning's own code (``isinstance(treespec, LeafSpec)``), which a
    user cannot act on. Idempotent."""
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoAdvertisement) for f in rank_zero.filters):
        rank_zero.addFilter(_NoAdvertisement())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
