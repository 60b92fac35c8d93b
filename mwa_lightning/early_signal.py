"""Keep the scheduler's warning signal if it arrives while the process is still starting.

SLURM's warning (``#SBATCH --signal=USR1@N``) is timed coarsely: it has reached a job within 6 seconds of its
start, while Python was still importing torch and Lightning. With no handler yet, SIGUSR1's default action kills
the process (exit 138) and the job neither checkpoints nor requeues. Inside a SLURM job this module's
:func:`catch`, called by the package's ``__init__`` before any heavy import, records the signal instead;
:class:`~mwa_lightning.training.requeue.RequeueOnSignal` takes the record over when training starts and acts on
it at the first step boundary. Standard library only, so that it runs within milliseconds of the start.
"""

from __future__ import annotations

import os
import signal
import threading

WARNING_SIGNAL = "SIGUSR1"  # what the launcher asks SLURM for (``--signal=USR1@N``) and RequeueOnSignal catches

_received: set[int] = set()


def _record(signum: int, frame) -> None:
    _received.add(signum)


def catch(signal_name: str = WARNING_SIGNAL) -> bool:
    """Record ``signal_name`` instead of dying of it, inside a SLURM job; whether a handler was installed."""
    if "SLURM_JOB_ID" not in os.environ or threading.current_thread() is not threading.main_thread():
        return False
    signum = getattr(signal, signal_name)
    if signal.getsignal(signum) is not signal.SIG_DFL:  # someone already handles it: leave theirs
        return False
    signal.signal(signum, _record)
    return True


def take(signal_name: str = WARNING_SIGNAL) -> bool:
    """Whether ``signal_name`` was recorded since the start (or the last take), and forget it: acted on once."""
    signum = getattr(signal, signal_name)
    if signum not in _received:
        return False
    _received.discard(signum)
    return True
