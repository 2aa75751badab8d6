"""A real single-node Slurm cluster for the tests, started in a folder and stopped by PID.

Debian's slurm-wlm, slurmdbd, munge and mariadb-server provide the daemons; nothing of
the machine's own configuration is used or changed: every daemon reads its files from
the folder, listens on free ports of 127.0.0.1 (the database on a socket of the
folder) and writes its state, logs and PID there. Clients (sbatch, squeue, sacct, which
the Snakemake Slurm executor calls) find the cluster through ``SLURM_CONF``, which
:meth:`SlurmCluster.environment` sets.

Facts the set-up relies on (Debian bookworm, Slurm 22.05, munge 0.5.15):

- ``proctrack/linuxproc`` with ``task/affinity`` needs neither cgroups nor systemd;
- ``DefMemPerCPU`` keeps a job without ``--mem`` from taking the node's whole memory;
- the executor polls ``sacct``: without accounting every poll fails and Snakemake waits
  without a word, so slurmdbd runs on a MariaDB of its own;
- a ``gres/gpu`` is declared without a GPU by pointing ``gres.conf``'s ``File=`` at
  character devices made with ``mknod`` (the NVIDIA major number, 195), so that the
  rules' GPU requests are scheduled as on a cluster; jobs then see
  ``CUDA_VISIBLE_DEVICES`` but no CUDA, and run on the CPU.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "sacct", "scancel", "sinfo", "mariadb-install-db", "mariadb")
PACKAGES = "slurm-wlm slurmdbd munge mariadb-server"


def _which(name: str) -> str | None:
    # Daemons live in /usr/sbin, which a user's PATH may lack.
    return shutil.which(
        name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    )


def missing_programs() -> list[str]:
    """The daemons and clients this module needs that are not on this machine."""
    return [name for name in DAEMONS + CLIENTS if _which(name) is None]


def _program(name: str) -> str:
    found = _which(name)
    if found is None:
        raise FileNotFoundError(f"{name}: not installed (Debian packages: {PACKAGES})")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("/proc/meminfo has no MemTotal")


class SlurmCluster:
    """One node (this machine) running slurmctld, slurmd and slurmdbd, all as this user.

    Parameters
    ----------
    folder
        Where the configuration, state, logs, sockets and PID files go.
    gpus
        Generic GPU resources the node declares (character devices, no hardware).
    """

    def __init__(self, folder: Path, gpus: int = 2) -> None:
        self.folder = Path(folder).resolve()
        self.gpus = gpus
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.user = getpass.getuser()
        self.ports = {name: _free_port() for name in ("slurmctld", "slurmd", "slurmdbd", "db")}
        self.processes: dict[str, int] = {}

    # -- files ---------------------------------------------------------------------------

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    def environment(self) -> dict[str, str]:
        """This process's environment with the clients pointed at the cluster.

        The executor's job step drops every ``SLURM_*`` variable before it calls
        ``srun`` (on a cluster srun finds /etc/slurm/slurm.conf), so ``srun`` is reached
        through a one-line shim in front of PATH that sets ``SLURM_CONF`` again.
        """
        path = f"{self.folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def _write_configuration(self) -> None:
        f = self.folder
        for sub in ("state", "spool", "log", "run", "munge", "db", "dev", "bin"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        shim = f / "bin/srun"
        shim.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {_program("srun")} "$@"\n')
        shim.chmod(0o755)
        os.chmod(f / "munge", 0o755)  # clients reach the socket; only the key is private
        (f / "munge/munge.key").write_bytes(os.urandom(1024))
        os.chmod(f / "munge/munge.key", 0o400)
        auth = f"AuthInfo=socket={f}/munge/munge.socket"
        gres = ""
        if self.gpus:
            for index in range(self.gpus):
                device = f / f"dev/nvidia{index}"
                if not device.exists():
                    os.mknod(device, 0o666 | 0o020000, os.makedev(195, index))
            (f / "gres.conf").write_text(
                f"NodeName={self.node} Name=gpu File={f}/dev/nvidia[0-{self.gpus - 1}]\n"
            )
            gres = f"Gres=gpu:{self.gpus}"
        # The node declares the memory of a cluster node (at least 64 GB) so that the
        # profile's requests fit; nothing enforces memory without cgroups, and the test
        # config's jobs use little of it. Slurmd takes the declaration as it stands.
        memory = max(_memory_mb(), 64000)
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=cgpipe",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    f"SlurmctldPort={self.ports['slurmctld']}",
                    f"SlurmdPort={self.ports['slurmd']}",
                    f"SlurmUser={self.user}",
                    f"SlurmdUser={self.user}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    auth,
                    f"StateSaveLocation={f}/state",
                    f"SlurmdSpoolDir={f}/spool",
                    f"SlurmctldPidFile={f}/run/slurmctld.pid",
                    f"SlurmdPidFile={f}/run/slurmd.pid",
                    f"SlurmctldLogFile={f}/log/slurmctld.log",
                    f"SlurmdLogFile={f}/log/slurmd.log",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/affinity",
                    "JobAcctGatherType=jobacct_gather/linux",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    f"DefMemPerCPU={max(memory // (2 * self.cpus), 100)}",
                    "SchedulerType=sched/backfill",
                    "SchedulerParameters=sched_interval=2",
                    "AccountingStorageType=accounting_storage/slurmdbd",
                    "AccountingStorageHost=127.0.0.1",
                    f"AccountingStoragePort={self.ports['slurmdbd']}",
                    # the munge socket of the connection to slurmdbd (AuthInfo's is not used)
                    f"AccountingStoragePass={f}/munge/munge.socket",
                    "JobCompType=jobcomp/none",
                    "AccountingStoreFlags=job_comment",  # the executor's comment names the rule
                    # sacct's AllocTRES lists the GPUs a job was given
                    *(["AccountingStorageTRES=gres/gpu"] if self.gpus else []),
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "SlurmdParameters=config_overrides",
                    "SlurmdTimeout=300",
                    "InactiveLimit=0",
                    "MinJobAge=300",
                    "KillWait=5",
                    "Waittime=0",
                    *(["GresTypes=gpu"] if self.gpus else []),
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus}"
                    f" RealMemory={memory} {gres} State=UNKNOWN",
                    f"PartitionName=main Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        dbd = f / "slurmdbd.conf"
        dbd.write_text(
            "\n".join(
                [
                    "AuthType=auth/munge",
                    auth,
                    f"DbdHost={self.node}",
                    "DbdAddr=127.0.0.1",
                    f"DbdPort={self.ports['slurmdbd']}",
                    f"SlurmUser={self.user}",
                    f"PidFile={f}/run/slurmdbd.pid",
                    f"LogFile={f}/log/slurmdbd.log",
                    "StorageType=accounting_storage/mysql",
                    "StorageHost=127.0.0.1",
                    f"StoragePort={self.ports['db']}",
                    "StorageUser=slurm",
                    "StoragePass=slurm",
                    "StorageLoc=slurm_acct_db",
                    "",
                ]
            )
        )
        os.chmod(dbd, 0o600)

    # -- daemons -------------------------------------------------------------------------

    def _run(self, *command: str, **options) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=120, **options
        )

    def _start_database(self) -> None:
        f = self.folder
        self._run(
            _program("mariadb-install-db"),
            f"--datadir={f}/db",
            f"--user={self.user}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        )
        process = subprocess.Popen(
            [
                _program("mariadbd"),
                "--no-defaults",
                f"--datadir={f}/db",
                f"--socket={f}/run/mysqld.sock",
                f"--pid-file={f}/run/mariadbd.pid",
                "--bind-address=127.0.0.1",
                f"--port={self.ports['db']}",
                f"--user={self.user}",
                "--innodb-buffer-pool-size=64M",
                f"--log-error={f}/log/mariadb.log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes["mariadbd"] = process.pid
        sql = (
            "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        )
        self._wait(
            "mariadbd",
            lambda: (
                subprocess.run(
                    [_program("mariadb"), f"--socket={f}/run/mysqld.sock", "-e", "SELECT 1"],
                    capture_output=True,
                ).returncode
                == 0
            ),
        )
        self._run(_program("mariadb"), f"--socket={f}/run/mysqld.sock", "-e", sql)

    def _daemon(self, name: str, *arguments: str, pid_file: Path) -> None:
        """Start a daemon that forks into the background and writes its PID file."""
        self._run(_program(name), *arguments, env=self.environment())
        self._wait(name, lambda: pid_file.exists() and pid_file.read_text().strip() != "")
        self.processes[name] = int(pid_file.read_text().split()[0])

    def _wait(self, what: str, ready, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{what} did not start in {timeout:.0f} s; logs in {self.folder}"
                )
            time.sleep(0.2)

    def start(self) -> SlurmCluster:
        f = self.folder
        self._write_configuration()
        self._daemon(
            "munged",
            f"--socket={f}/munge/munge.socket",
            f"--key-file={f}/munge/munge.key",
            f"--pid-file={f}/run/munged.pid",
            f"--log-file={f}/log/munged.log",
            f"--seed-file={f}/munge/munged.seed",
            "--force",
            pid_file=f / "run/munged.pid",
        )
        self._start_database()
        self._daemon("slurmdbd", pid_file=f / "run/slurmdbd.pid")
        self._wait("slurmdbd", lambda: self._listening(self.ports["slurmdbd"]))
        self._daemon("slurmctld", "-f", str(self.conf), pid_file=f / "run/slurmctld.pid")
        # slurmctld writes its PID before it listens: on a loaded 2-core machine 50 s
        # before, and a slurmd started meanwhile retried its registration past 60 s.
        self._wait("slurmctld", lambda: self._listening(self.ports["slurmctld"]))
        self._daemon("slurmd", "-f", str(self.conf), pid_file=f / "run/slurmd.pid")
        self._wait("the node", self._node_idle)
        return self

    @staticmethod
    def _listening(port: int) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    def _node_idle(self) -> bool:
        result = subprocess.run(
            [_program("sinfo"), "-h", "-N", "-o", "%t"],
            capture_output=True,
            text=True,
            env=self.environment(),
        )
        return result.returncode == 0 and result.stdout.strip() in ("idle", "mix", "alloc")

    def accounting(self) -> pd.DataFrame:
        """Every job sacct knows: JobID, State, AllocTRES, Comment, and the rule it ran
        (from the Snakemake executor's ``rule_<name>[_wildcards_...]`` comment)."""
        fields = ("JobID", "State", "AllocTRES", "Comment")
        result = self._run(
            _program("sacct"),
            "-X",
            "-n",
            "-P",
            "-a",
            "-S",
            "2000-01-01",
            "-o",
            ",".join(fields),
            env=self.environment(),
        )
        rows = [line.split("|") for line in result.stdout.splitlines() if line.strip()]
        table = pd.DataFrame(rows, columns=list(fields))
        table["rule"] = table["Comment"].str.extract(r"^rule_(.+?)(?:_wildcards_.*)?$")[0]
        return table

    def stop(self) -> None:
        """Stop every daemon this cluster started (in reverse order), by PID."""
        for name in reversed(list(self.processes)):
            pid = self.processes.pop(name)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child still answers signal 0: look at its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
