"""A single-node SLURM cluster on this machine, for tests: munged, slurmctld and slurmd started by hand.

Debian's ``slurm-wlm`` and ``munge`` (``.ci/run`` installs them where they are absent). Everything the cluster
writes (config, state, spool, logs, the munge socket) lives in one temporary folder; only the processes started
here are stopped. ``SLURM_CONF`` in :attr:`SlurmCluster.env` points the client commands (sbatch, squeue,
scontrol, srun) at it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "srun", "scancel")
MUNGE_KEY = Path("/etc/munge/munge.key")


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None and not Path(f"/usr/sbin/{b}").exists()]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


# cred_expire: also how long SLURM holds a requeued job before it may start again (120 s by default); 30 s keeps
# the requeue test a minute shorter and is still far longer than a job step takes to launch here.
CONFIG = """\
ClusterName=mwatest
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket,cred_expire=30
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobRequeue=1
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
KillWait=5
MinJobAge=600
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen] = field(default_factory=list)
    munged_pid: int | None = None

    def run(self, *command: str, timeout: int = 60, **kwargs) -> subprocess.CompletedProcess:
        """A client command (sbatch, squeue, ...) against this cluster."""
        env = {**os.environ, **self.env, **kwargs.pop("env", {})}
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, **kwargs)

    def logs(self, lines: int = 40) -> str:
        """The tails of the daemons' logs, for a failing test's message."""
        out = []
        for name in ("slurmctld.log", "slurmd.log", "munge/munged.log"):
            path = self.root / name
            if path.is_file():
                out.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def node_state(self) -> str:
        result = self.run("sinfo", "-h", "-o", "%t")
        return result.stdout.strip() if result.returncode == 0 else f"sinfo failed: {result.stderr.strip()}"

    def wait_for(self, condition, timeout: float, what: str, every: float = 1.0):
        """Poll ``condition()`` until it returns something true; raise naming ``what`` (with the logs) otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(every)
        raise TimeoutError(f"{what} not within {timeout:.0f} s\n{self.logs()}")

    def job_states(self, job: str) -> dict[str, str]:
        """``{job id: state}`` of a job's array tasks from squeue (empty when none is left in the queue)."""
        result = self.run("squeue", "-h", "-j", job, "-o", "%i %T")
        return dict(line.split() for line in result.stdout.splitlines() if line.strip())

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.munged_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.munged_pid, signal.SIGTERM)


def start_cluster(root: Path) -> SlurmCluster:
    """Write the config, start munged, slurmctld and slurmd, and wait until the node is idle."""
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ctld_port, d_port = _free_ports(2)
    host = socket.gethostname()
    conf = root / "slurm.conf"
    conf.write_text(CONFIG.format(host=host, root=root, ctld_port=ctld_port, d_port=d_port, cpus=os.cpu_count()))
    cluster = SlurmCluster(root, env={"SLURM_CONF": str(conf)})
    munge = root / "munge"
    subprocess.run(
        [
            _binary("munged"),
            f"--socket={munge}/munge.socket",
            f"--pid-file={munge}/munged.pid",
            f"--log-file={munge}/munged.log",
            f"--seed-file={munge}/munge.seed",
            f"--key-file={MUNGE_KEY}",
            "--force",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    cluster.munged_pid = int((munge / "munged.pid").read_text())
    env = {**os.environ, **cluster.env}
    for daemon in ("slurmctld", "slurmd"):
        log = (root / f"{daemon}.out").open("w")
        cluster.processes.append(
            subprocess.Popen([_binary(daemon), "-D", "-f", str(conf)], stdout=log, stderr=log, env=env)
        )
        time.sleep(0.5)
    try:
        cluster.wait_for(lambda: cluster.node_state() == "idle", 60, "the node becoming idle")
    except Exception:
        cluster.stop()
        raise
    return cluster
