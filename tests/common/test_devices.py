"""GPU assignment for concurrent jobs on one machine (latentgen.common.devices), simulated on the CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from latentgen.common import devices

SRC = Path(__file__).resolve().parents[2] / "src"

# A job: claim one of N simulated GPUs (no torch import: fast), report it, hold it until told to go.
HOLDER = r"""
import sys, time
from pathlib import Path
from latentgen.common.devices import claim_slot
slots, directory, out, release = sys.argv[1].split(","), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
wait = float(sys.argv[5])
claimed = claim_slot(slots, directory, timeout=wait, poll=0.05)
out.write_text("none" if claimed is None else slots[claimed[0]])
while not release.exists():
    time.sleep(0.05)
"""


@pytest.fixture(autouse=True)
def no_claim_left(monkeypatch):
    """Each test starts without a claim of this process, and gives back what it claimed."""
    monkeypatch.setattr(devices, "_CLAIM", None)
    yield
    devices.release()


def _start(slots: list[str], directory: Path, out: Path, release: Path, wait: float = 0.0) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, ",".join(slots), str(directory), str(out), str(release), str(wait)], env=env
    )


def _wait_for(paths: list[Path], timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while not all(p.exists() and p.read_text() for p in paths):
        assert time.monotonic() < deadline, [p.exists() for p in paths]
        time.sleep(0.05)
    return [p.read_text() for p in paths]


def test_concurrent_jobs_get_distinct_gpus_and_a_killed_jobs_gpu_frees_up(tmp_path):
    slots = ["0", "1", "2", "3"]
    locks, release = tmp_path / "locks", tmp_path / "release"
    outs = [tmp_path / f"job{i}.txt" for i in range(6)]
    # Six jobs at once for four GPUs, none waiting: four get distinct GPUs, two get none.
    jobs = [_start(slots, locks, out, release) for out in outs]
    try:
        got = _wait_for(outs)
        taken = [g for g in got if g != "none"]
        assert sorted(taken) == slots, got
        assert got.count("none") == 2

        # kill -9 a holder: the kernel drops its flock, and the next job gets exactly that GPU.
        victim = got.index("2")
        jobs[victim].send_signal(signal.SIGKILL)
        jobs[victim].wait(timeout=30)
        late = tmp_path / "late.txt"
        jobs.append(_start(slots, locks, late, release, wait=30))
        assert _wait_for([late]) == ["2"]

        # A waiting job gets the GPU a finished job gives back.
        waiter = tmp_path / "waiter.txt"
        jobs.append(_start(slots, locks, waiter, release, wait=30))
        time.sleep(0.5)
        assert not waiter.exists() or waiter.read_text() == "", "all four GPUs are held"
        first = got.index("0")
        jobs[first].send_signal(signal.SIGTERM)
        jobs[first].wait(timeout=30)
        assert _wait_for([waiter]) == ["0"]
    finally:
        release.touch()
        for job in jobs:
            try:
                job.wait(timeout=30)
            except subprocess.TimeoutExpired:
                job.kill()


def test_claims_in_one_process_are_exclusive_and_released(tmp_path):
    first = devices.try_claim(["a", "b"], tmp_path)
    second = devices.try_claim(["a", "b"], tmp_path)
    assert first[0] == 0 and second[0] == 1
    assert devices.try_claim(["a", "b"], tmp_path) is None
    assert devices.claim_slot(["a", "b"], tmp_path, timeout=0.2, poll=0.05) is None
    first[1].close()
    again = devices.try_claim(["a", "b"], tmp_path)
    assert again[0] == 0
    again[1].close()
    second[1].close()


def test_visible_gpu_names_follow_cuda_visible_devices():
    assert devices.visible_gpus(3, {}) == ["0", "1", "2"]
    assert devices.visible_gpus(2, {"CUDA_VISIBLE_DEVICES": "3, 5"}) == ["3", "5"]
    assert devices.visible_gpus(1, {"CUDA_VISIBLE_DEVICES": "GPU-8d1e,GPU-aa"}) == ["GPU-8d1e"]
    assert devices.visible_gpus(0, {"CUDA_VISIBLE_DEVICES": ""}) == []


def test_lock_dir_is_per_host_and_per_slurm_job(tmp_path):
    host = devices.lock_dir({}).name
    assert devices.lock_dir({}).parent == devices.DEFAULT_LOCK_ROOT
    inside = devices.lock_dir({"LATENTGEN_GPU_LOCK_DIR": str(tmp_path), "SLURM_JOB_ID": "42"})
    assert inside == tmp_path / f"{host}-job42"


def test_auto_on_several_gpus_claims_a_free_one(tmp_path):
    env = {"LATENTGEN_GPU_LOCK_DIR": str(tmp_path), "CUDA_VISIBLE_DEVICES": "4,6,7"}
    directory = devices.lock_dir(env)
    # Another job holds the first visible GPU (physical 4).
    held = devices.try_claim(["4"], directory)
    try:
        device = devices.assign_device("auto", cuda_count=3, environ=env)
        assert device == torch.device("cuda:1")  # physical 6, the second visible one
        assert devices.assign_device("auto", cuda_count=3, environ=env) == device  # kept for the process
        assert devices.try_claim(["6"], directory) is None
        devices.release()
        freed = devices.try_claim(["6"], directory)
        assert freed is not None
        freed[1].close()
    finally:
        held[1].close()


def test_no_lock_for_one_gpu_none_or_an_explicit_device(tmp_path):
    env = {"LATENTGEN_GPU_LOCK_DIR": str(tmp_path), "SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "3"}
    # A SLURM job given --gpus=1 sees one GPU: cuda:0, whatever SLURM's number for it.
    assert devices.assign_device("auto", cuda_count=1, environ=env) == torch.device("cuda:0")
    devices.release()
    assert devices.assign_device("auto", cuda_count=0, environ=env) == torch.device("cpu")
    devices.release()
    assert devices.assign_device("cuda:1", cuda_count=4, environ=env) == torch.device("cuda:1")
    assert devices.assign_device("cpu", cuda_count=4, environ=env) == torch.device("cpu")
    assert not any(tmp_path.iterdir())


def test_training_resolves_devices_through_the_assignment(monkeypatch, tmp_path):
    """`train` asks `assign_device` for its device (so concurrent jobs get different GPUs) and records it."""
    import json

    from latentgen.training import trainer as training
    from test_training import settings, synthetic_data

    requested = []
    monkeypatch.setattr(training, "assign_device", lambda device: requested.append(device) or torch.device("cpu"))
    training.train(synthetic_data(n_train=64, n_test=16), settings(max_epochs=1), tmp_path, device="auto")
    assert requested == ["auto"]
    assert json.loads((tmp_path / "run.json").read_text())["device"] == "cpu"
