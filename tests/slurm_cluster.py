"""A real single-node SLURM for tests: start it once per pytest session, always stop it.

Usage in a test module (``tests/conftest.py`` imports the ``slurm`` fixture, so every test module has it)::

    import pytest

    @pytest.mark.slurm
    def test_profile(slurm, tmp_path):
        subprocess.run([... "snakemake", "--profile", "slurm", *slurm.no_accounting_args],
                       env=slurm.env, cwd=..., check=True)

or, to manage the lifetime yourself::

    with slurm_cluster(tmp_path_factory) as cluster:
        ...

What ``slurm`` / ``slurm_cluster`` yield is a :class:`SlurmCluster`: ``env`` (``os.environ`` plus
``SLURM_CONF`` and the current Python environment's ``bin`` first on ``PATH``, so that jobs find the same
snakemake and its plugins), ``scratch``, ``conf`` and ``no_accounting_args`` (the executor settings a cluster
without accounting storage needs; not in the profile, since real clusters have ``sacct``).

The cluster is started by ``tests/slurm/start.sh`` and stopped by ``tests/slurm/stop.sh`` whatever the
outcome. One test cluster runs on a machine at a time (``/etc/slurm/slurm.conf`` is a symlink to it, see
start.sh): a machine-wide lock serializes concurrent pytest sessions. Without root, or without SLURM and
without apt-get to install it, tests using it are skipped; with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
START = HERE / "slurm" / "start.sh"
STOP = HERE / "slurm" / "stop.sh"
CLUSTER_LOCK = Path("/tmp/latentgen-slurm-cluster.lock")
LOCK_WAIT_S = 900

# Executor settings for a cluster without slurmdbd: job status from squeue (sacct fails there, and the
# plugin then waits forever), and a short first status check. start.sh sets MinJobAge=300 >= 3 x 1 s and
# above the plugin's longest gap between status checks (180 s), so squeue still lists finished jobs.
NO_ACCOUNTING_ARGS = (
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "1",
)

SLURM_BINARIES = ("slurmctld", "slurmd", "sbatch", "munged")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable_reason() -> str | None:
    """Why a test cluster cannot be started here, or None if it can."""
    if os.geteuid() != 0:
        return "a test SLURM needs root (daemons run as root, munged as munge)"
    if all(shutil.which(b) for b in SLURM_BINARIES):
        return None
    if shutil.which("apt-get") is None:
        return "SLURM is not installed and apt-get is not available to install it"
    return None


@dataclass(frozen=True)
class SlurmCluster:
    scratch: Path
    conf: Path
    env: dict[str, str]
    no_accounting_args: tuple[str, ...] = NO_ACCOUNTING_ARGS
    start_seconds: float = 0.0

    def run(self, *cmd: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """Run a command (e.g. squeue, scancel) against this cluster; text output captured."""
        kwargs.setdefault("capture_output", True)
        return subprocess.run(cmd, env=self.env, text=True, check=check, **kwargs)

    def jobs(self) -> list[dict[str, str]]:
        """All jobs squeue knows (finished ones too, for MinJobAge): id, state, name, comment."""
        out = self.run("squeue", "--states=all", "--noheader", "--format=%i|%T|%j|%k").stdout
        keys = ("id", "state", "name", "comment")
        return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.strip()]

    def recording_sbatch(self, directory: Path) -> tuple[dict[str, str], Path]:
        """An env whose `sbatch` logs each call, then runs the real sbatch.

        Returns (env, log): each line of log is JSON {"argv", "returncode", "stdout"} (stdout holds the job
        id with --parsable). Use it to check what a workflow really submitted.
        """
        real = shutil.which("sbatch", path=self.env["PATH"])
        assert real, "sbatch not on PATH"
        bindir = Path(directory) / "sbatch-recorder"
        bindir.mkdir(parents=True, exist_ok=True)
        log = bindir / "calls.jsonl"
        wrapper = bindir / "sbatch"
        wrapper.write_text(
            f"#!{sys.executable}\n"
            "import json, subprocess, sys\n"
            f"p = subprocess.run([{real!r}, *sys.argv[1:]], stdout=subprocess.PIPE, text=True)\n"
            f"with open({str(log)!r}, 'a') as f:\n"
            "    f.write(json.dumps({'argv': sys.argv[1:], 'returncode': p.returncode,"
            " 'stdout': p.stdout}) + '\\n')\n"
            "sys.stdout.write(p.stdout)\n"
            "sys.exit(p.returncode)\n"
        )
        wrapper.chmod(0o755)
        env = dict(self.env, PATH=f"{bindir}{os.pathsep}{self.env['PATH']}")
        return env, log


def read_sbatch_calls(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def without_wrap(argv: list[str]) -> list[str]:
    """sbatch argv without the (long) --wrap payload."""
    return [a for a in argv if not a.startswith("--wrap")]


def sbatch_option(argv: list[str], name: str) -> str | None:
    """Value of `name VALUE` or `name=VALUE` in an sbatch argv."""
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _cluster_env(conf: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env["SLURM_CONF"] = str(conf)
    # The jobs run on this machine with this environment (sbatch --export=ALL): put this Python
    # environment's bin first, so `python -m snakemake` and the jobstep plugin are the same ones.
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, *[p for p in env.get("PATH", "").split(os.pathsep) if p != bindir]])
    return env


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    CLUSTER_LOCK.touch(exist_ok=True)
    with open(CLUSTER_LOCK, "r+") as fh:
        deadline = time.monotonic() + LOCK_WAIT_S
        announced = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another pytest session held {CLUSTER_LOCK} for {LOCK_WAIT_S} s")
                if not announced:
                    print(
                        f"[slurm] waiting for {CLUSTER_LOCK} (another session's test cluster)",
                        file=sys.stderr,
                    )
                    announced = True
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """Start a test SLURM in a fresh scratch dir, yield it, always stop it."""
    reason = unavailable_reason()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI=true but no test SLURM possible: {reason}")
        pytest.skip(reason)

    scratch = tmp_path_factory.mktemp("slurm")
    with _machine_lock():
        try:
            t0 = time.monotonic()
            # Holding the machine lock, any other cluster still registered in /etc/slurm/slurm.conf is a
            # leftover of a killed session: start.sh may stop it.
            env = dict(os.environ, LATENTGEN_SLURM_TAKEOVER="1")
            proc = subprocess.run(
                ["bash", str(START), str(scratch)], env=env, capture_output=True, text=True, timeout=900
            )
            if proc.returncode != 0:
                pytest.fail(
                    f"tests/slurm/start.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                    pytrace=False,
                )
            conf = scratch / "etc" / "slurm.conf"
            yield SlurmCluster(
                scratch=scratch,
                conf=conf,
                env=_cluster_env(conf),
                start_seconds=time.monotonic() - t0,
            )
        finally:
            subprocess.run(["bash", str(STOP), str(scratch)], capture_output=True, text=True, timeout=120)


# The cluster of this pytest session.  Each module that imports `slurm` registers its own copy of the fixture
# (tests/conftest.py does, for all test modules), and pytest would set up one per copy: the second would wait
# for the machine lock the first holds until LOCK_WAIT_S runs out.  So the first copy starts the cluster (and
# stops it at the end of the session), any other shares it.
_SESSION_CLUSTER: SlurmCluster | None = None


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """Session fixture: a running test SLURM (see module docstring), one per session."""
    global _SESSION_CLUSTER
    if _SESSION_CLUSTER is not None:
        yield _SESSION_CLUSTER
        return
    with slurm_cluster(tmp_path_factory) as cluster:
        _SESSION_CLUSTER = cluster
        try:
            yield cluster
        finally:
            _SESSION_CLUSTER = None
