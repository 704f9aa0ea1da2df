"""Which GPU a job uses when one machine runs several GPU jobs at once.

Snakemake only counts GPUs: with ``snakemake -c 16 --resources gpu=4`` at most four jobs that declare
``gpu=1`` (train, velpic_edit, score) run at the same time, but Snakemake never tells a job *which* GPU is its
own, and ``cuda`` would put all four on GPU 0.  With ``device: auto`` a job therefore claims a GPU:

* no CUDA device visible: the CPU;
* exactly one visible (a single-GPU machine, or a SLURM job given ``--gpus=1``, where SLURM has set
  ``CUDA_VISIBLE_DEVICES`` to the allocated GPU): ``cuda:0``, no lock: the scheduler already decided;
* several visible: the job takes an exclusive ``fcntl.flock`` on one lock file per GPU, in
  ``.snakemake/gpu-locks/<host>/`` (relative to the working directory, i.e. Snakemake's; the folder is
  ``$LATENTGEN_GPU_LOCK_DIR/<host>`` when that variable is set; ``<host>-job<id>`` inside a SLURM job, whose
  GPU numbers are its own).  It uses the first GPU whose lock it gets, and waits if none is free.  The lock
  is held until the process exits; the kernel releases a flock when its holder dies, also on a crash or
  ``kill -9``, so a lost job never leaves a GPU blocked.

A GPU is named by its ``CUDA_VISIBLE_DEVICES`` entry (index or UUID) when that variable is set, else by its
index, so jobs that see the same GPUs under the same names share the locks.  An explicit device (``cpu``,
``cuda``, ``cuda:1``) is used as given, without any lock.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

LOCK_DIR_ENV = "LATENTGEN_GPU_LOCK_DIR"
DEFAULT_LOCK_ROOT = Path(".snakemake") / "gpu-locks"
POLL_SECONDS = 0.5


@dataclass
class Claim:
    """The device this process uses and, for a locked GPU, the open lock file that holds it."""

    device: Any  # torch.device
    slot: str | None = None
    lock_path: Path | None = None
    handle: IO[str] | None = None


_CLAIM: Claim | None = None  # this process's claim, kept (and its lock held) until the process exits


def visible_gpus(count: int, environ: Mapping[str, str] | None = None) -> list[str]:
    """Names of the ``count`` visible CUDA devices, in CUDA's order (see the module docstring)."""
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return [str(i) for i in range(count)]
    names = [name.strip() for name in listed.split(",") if name.strip()]
    # CUDA ignores everything from the first invalid entry on; torch's count says how many it took.
    return names[:count] if len(names) >= count else names + [str(i) for i in range(len(names), count)]


def lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of this machine's (or this SLURM job's) GPU lock files."""
    environ = os.environ if environ is None else environ
    root = Path(environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_ROOT)
    namespace = socket.gethostname() or "localhost"
    if environ.get("SLURM_JOB_ID"):
        namespace += f"-job{environ['SLURM_JOB_ID']}"
    return root / _file_name(namespace)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def lock_path(directory: Path | str, slot: str) -> Path:
    return Path(directory) / f"gpu-{_file_name(slot)}.lock"


def try_claim(slots: Sequence[str], directory: Path | str) -> tuple[int, IO[str]] | None:
    """Lock the first free slot: (its index, the open file holding the lock), or None if all are taken."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for index, slot in enumerate(slots):
        handle = open(lock_path(directory, slot), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                continue
            raise
        # Who holds it, for people looking at the folder (the lock itself is the flock, not this text).
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        return index, handle
    return None


def claim_slot(
    slots: Sequence[str], directory: Path | str, timeout: float | None = None, poll: float = POLL_SECONDS
) -> tuple[int, IO[str]] | None:
    """Like :func:`try_claim`, but wait for a slot to free up (at most ``timeout`` seconds, if given)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    announced = False
    while True:
        claimed = try_claim(slots, directory)
        if claimed is not None:
            return claimed
        if deadline is not None and time.monotonic() >= deadline:
            return None
        if not announced:
            log.info("all %d GPUs are taken (locks in %s); waiting for one", len(slots), directory)
            announced = True
        time.sleep(poll)


def assign_device(
    requested: str = "auto", *, cuda_count: int | None = None, environ: Mapping[str, str] | None = None
) -> Any:
    """The torch device for ``requested``; ``auto`` claims a free GPU when several are visible.

    The first ``auto`` claim of a process is kept for the process's lifetime (the job's), so calling this
    again returns the same device.  ``cuda_count`` overrides ``torch.cuda.device_count()`` (for tests).
    """
    global _CLAIM
    import torch

    if requested != "auto":
        return torch.device(requested)
    if _CLAIM is not None:
        return _CLAIM.device
    if cuda_count is None:
        cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if cuda_count == 0:
        claim = Claim(torch.device("cpu"))
    elif cuda_count == 1:
        claim = Claim(torch.device("cuda:0"))
    else:
        slots = visible_gpus(cuda_count, environ)
        directory = lock_dir(environ)
        index, handle = claim_slot(slots, directory)
        claim = Claim(torch.device(f"cuda:{index}"), slots[index], lock_path(directory, slots[index]), handle)
        log.info("claimed GPU %s (cuda:%d of %d visible; lock %s)", slots[index], index, cuda_count, claim.lock_path)
    _CLAIM = claim
    return claim.device


def release() -> None:
    """Give this process's GPU back before it exits (exiting does the same)."""
    global _CLAIM
    if _CLAIM is not None and _CLAIM.handle is not None:
        _CLAIM.handle.close()
    _CLAIM = None
