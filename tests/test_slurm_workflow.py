"""The real workflow through the SLURM profile (slurm/config.yaml).

* Dry runs (no daemons): `snakemake --profile slurm -n -j 50`, typed in a copy of the repo root, plans the
  paper grid; job sizes come from the config's `compute:` section alone; the profile's GPU-model block works.
* Against real SLURM daemons (tests/slurm/start.sh, fixture `slurm`): a tiny config runs through
  `snakemake --profile <repo>/slurm` with only the no-accounting overrides.  Every train, extract and score
  job goes through sbatch asking for a GPU.  The train job is cancelled with scancel mid-training: it is
  reported as failed, retried by the profile, and the retry resumes after the last finished epoch.  The
  retry is then requeued by SLURM (`scontrol requeue`, as on preemption): the same job runs again and
  resumes again.  The scores (and the interrupted run's weights and history) equal those of a local
  `snakemake -c 2` run of the same config.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from latentgen.probe_names import PROBE_NAMES
import torch

from slurm_cluster import read_sbatch_calls, sbatch_option, without_wrap
from workflow_helpers import REPO, SNAKEMAKE, copy_workflow, deep_update, job_stats, tiny_config, write_config

PROFILE = REPO / "slurm"
GPU_RULES = {"train", "extract", "score"}

# The run cancelled mid-training: enough epochs (about 1 s each here) that it is still training when
# scancel lands; checkpoints at epoch 0 and the final epoch (the fewest possible: the node is small).
CANCELLED_RUN = "mlp-mnist/c80/s0"
CANCEL_AFTER_EPOCH = 2
SLURM_CONFIG = {
    "corruption": [80],  # one run (the cnn pair is dropped below): this node runs one GPU job at a time
    "pairs": {
        "mlp-mnist": {
            "max_epochs": 10,
            "stop_accuracy": 1.0,
            "checkpoints": {"early_every": 1, "early_until": 0, "late_every": 100},
        },
    },
    # Job sizes for this 2-core, 24 GB node (the rules read them; nothing in the profile overrides them).
    "compute": {stage: {"threads": 1, "mem_mb": 1500, "runtime": 10} for stage in ("train", "extract", "score")},
}
MAX_EPOCHS = SLURM_CONFIG["pairs"]["mlp-mnist"]["max_epochs"]
CHECKPOINTS = ["0000", f"{MAX_EPOCHS:04d}"]
TARGETS = ("results/scores.parquet",)


# ------------------------------------------------------------------------------------------- dry runs
def _repo_root_copy(directory: Path) -> Path:
    """The files `snakemake --profile slurm` reads in the repo root, without anyone's results."""
    copy_workflow(directory)
    shutil.copy(REPO / "config.yaml", directory / "config.yaml")
    shutil.copytree(PROFILE, directory / "slurm")
    return directory


def _dry_run(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-6000:]
    return text


def _planned_jobs(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """(kind, rule, resources) of each job a dry run lists; kind is rule or checkpoint."""
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n)", text):
        head = re.search(r"^(rule|localrule|checkpoint|localcheckpoint) (\w+):", block, re.M)
        if not head:
            continue
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        values = dict(kv.split("=", 1) for kv in resources.group(1).split(", ")) if resources else {}
        jobs.append((head.group(1), head.group(2), values))
    return jobs


@pytest.mark.slow
def test_profile_plans_the_paper_grid_from_the_repo_root(tmp_path):
    root = _repo_root_copy(tmp_path / "repo")
    text = _dry_run(root, "--profile", "slurm", "-n", "-j", "50")  # exactly as typed
    stats = job_stats(text)
    # ((6 pairs + ResNet-18 + the dropout variant) + 6 pairs x 3 edit epochs) x 6 rates x 3 seeds
    assert stats["train"] == 468, stats
    assert (
        stats["prepare_dataset"] == 4
        and stats["corrupt_labels"] == 4
        and stats["collect_run"] == 468
        and stats["velpic_edit"] == 324
    )
    assert stats["aggregate"] == 1 and stats["summary"] == 1 and stats["figure"] == 17, stats  # 1-14, 16, 17, 18

    jobs = _planned_jobs(text)
    # Sizes come from config.yaml's `compute:` (train: 16000 MB, 720 min), one GPU, the site's
    # partition; nothing in the profile overrides them.
    train = [resources for _, rule, resources in jobs if rule == "train"]
    assert len(train) == 468
    assert all(
        r["mem_mb"] == "16000" and r["runtime"] == "720" and r["gpu"] == "1" and r["slurm_partition"] == "gpu"
        for r in train
    ), train[0]
    assert "gpu_model" not in train[0]


@pytest.mark.slow
def test_job_sizes_have_one_source_the_config(tmp_path, prepared_datasets):
    """Changing `compute:` changes what the cluster jobs ask for; the profile's site block adds a GPU model."""
    workdir = copy_workflow(tmp_path / "work")
    config = tiny_config(prepared_datasets, compute={"train": {"mem_mb": 1234, "runtime": 7}})
    config_path = write_config(workdir, config)
    profile = shutil.copytree(PROFILE, tmp_path / "profile")
    # The GPU-model lines of the site block, uncommented as the comment says.
    text = (profile / "config.yaml").read_text()
    block = re.search(r"^# set-resources:\n(?:#   .*\n)+", text, re.M)
    assert block, "the profile's commented GPU-model block moved"
    (profile / "config.yaml").write_text(text.replace(block.group(0), re.sub(r"^# ", "", block.group(0), flags=re.M)))

    plain = _planned_jobs(_dry_run(workdir, "--profile", str(PROFILE), "--configfile", str(config_path), "-n"))
    model = _planned_jobs(_dry_run(workdir, "--profile", str(profile), "--configfile", str(config_path), "-n"))
    for jobs in (plain, model):
        train = [r for _, rule, r in jobs if rule == "train"]
        assert len(train) == 4
        assert all(r["mem_mb"] == "1234" and r["runtime"] == "7" and r["gpu"] == "1" for r in train), train[0]
    assert all("gpu_model" not in r for _, rule, r in plain if rule == "train")
    assert all(r["gpu_model"] == "a100" for _, rule, r in model if rule == "train")


# --------------------------------------------------------------------------------------- real SLURM
def _start(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _finish(proc: subprocess.Popen, log: Path, deadline: float) -> str:
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        pytest.fail(f"snakemake ran out of time; log tail:\n{log.read_text()[-6000:]}")
    text = log.read_text()
    assert proc.returncode == 0, text[-6000:]
    return text


def _site_options(argv: list[str]) -> list[str]:
    """sbatch options without the payload, job name, log path and working directory (for the record)."""
    out, skip = [], False
    for a in without_wrap(argv):
        if skip:
            skip = False
        elif a in ("--job-name", "--output", "-D"):
            skip = True
        else:
            out.append(a)
    return out


def _target_jobs(argv: list[str]) -> list[tuple[str, str]]:
    """(rule, run/epoch) of each job an sbatch call runs, from the job script's --target-jobs."""
    wrap = next(a for a in argv if a.startswith("--wrap="))[len("--wrap=") :]
    words = shlex.split(wrap)
    start = words.index("--target-jobs") + 1
    jobs = []
    for word in words[start:]:
        if word.startswith("--"):
            break
        rule, _, wildcards = word.partition(":")
        values = dict(kv.split("=", 1) for kv in wildcards.split(",") if kv)
        run = f"{values['pair']}/c{values['corruption']}/s{values['seed']}"
        jobs.append((rule, run + (f"/{values['epoch']}" if "epoch" in values else "")))
    return jobs


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _train_calls(calls_log: Path) -> list[dict]:
    return [c for c in read_sbatch_calls(calls_log) if ("train", CANCELLED_RUN) in _target_jobs(c["argv"])]


def _job_id(call: dict) -> str:
    return call["stdout"].strip().split(";")[0]


def _epochs_since_last_resume(log: Path) -> tuple[int | None, list[int]]:
    """(the epoch the last "resuming" line names, or None; the epochs logged after it)."""
    text = log.read_text() if log.exists() else ""
    resumed = re.findall(r"resuming \S+ after epoch (\d+)", text)
    tail = text.rsplit("resuming", 1)[1] if resumed else text
    return (int(resumed[-1]) if resumed else None), [int(e) for e in re.findall(r"epoch\s+(\d+)\s+loss", tail)]


def _start_now(cluster, job: str, timeout: float = 60) -> None:
    """Wait until a requeued job runs again.  SLURM holds a requeued job back (BeginTime, about 2 min
    later); let it start at once, as a preempted job would on an idle cluster."""
    deadline, left_running = time.monotonic() + timeout, False
    while time.monotonic() < deadline:
        state, reason = (
            cluster.run("squeue", "--states=all", "--noheader", "--format=%T|%r", "--jobs", job)
            .stdout.strip()
            .split("|")
        )
        if state == "PENDING" and reason == "BeginTime":
            cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)
        left_running = left_running or state != "RUNNING"
        if left_running and state == "RUNNING":
            return
        time.sleep(0.3)
    pytest.fail(f"requeued job {job} did not start again within {timeout} s")


@pytest.mark.slurm
@pytest.mark.slow
def test_real_workflow_on_slurm_equals_a_local_run_and_interrupted_training_resumes(slurm, tmp_path, prepared_datasets):
    t0 = time.monotonic()
    config = deep_update(tiny_config(prepared_datasets), SLURM_CONFIG)
    del config["pairs"]["cnn-fashion_mnist"]
    cluster_dir, local_dir = copy_workflow(tmp_path / "slurm"), copy_workflow(tmp_path / "local")
    cluster_config, local_config = write_config(cluster_dir, config), write_config(local_dir, config)
    env, calls_log = slurm.recording_sbatch(tmp_path)
    env = {**env, "OMP_NUM_THREADS": "1"}
    train_log = cluster_dir / "results" / "logs" / "train" / f"{CANCELLED_RUN}.log"
    run_json = cluster_dir / "results" / "runs" / CANCELLED_RUN / "run.json"

    cluster_log, local_log = tmp_path / "slurm.log", tmp_path / "local.log"
    procs: list[subprocess.Popen] = []
    try:
        cluster = _start(
            [
                *SNAKEMAKE,
                *TARGETS,
                "--profile",
                str(PROFILE),
                *slurm.no_accounting_args,
                "--configfile",
                str(cluster_config),
            ],
            cluster_dir,
            env,
            cluster_log,
        )
        procs.append(cluster)
        # The same config, locally, side by side (its jobs use the CPU the SLURM jobs leave).
        local = _start(
            [*SNAKEMAKE, *TARGETS, "-c", "2", "--configfile", str(local_config)],
            local_dir,
            {**slurm.env, "OMP_NUM_THREADS": "1"},
            local_log,
        )
        procs.append(local)

        # 1. scancel the train job once it has logged epoch CANCEL_AFTER_EPOCH: Snakemake reports it failed
        #    and the profile's retry submits attempt 2.  2. Once attempt 2 has resumed and trained two more
        #    epochs, SLURM requeues it (as on preemption or node failure): the same job runs again.
        cancelled_job = requeued_job = None
        deadline = t0 + 330
        while requeued_job is None and cluster.poll() is None and time.monotonic() < deadline:
            resumed, epochs = _epochs_since_last_resume(train_log)
            calls = _train_calls(calls_log)
            if cancelled_job is None and epochs and max(epochs) >= CANCEL_AFTER_EPOCH:
                cancelled_job, cancel_seen = _job_id(calls[0]), max(epochs)
                slurm.run("scancel", cancelled_job)
                assert not run_json.exists()
            elif cancelled_job and len(calls) == 2 and resumed is not None and epochs and max(epochs) >= resumed + 2:
                requeued_job, requeue_seen, first_resume = _job_id(calls[1]), max(epochs), resumed
                slurm.run("scontrol", "requeue", requeued_job)
                assert not run_json.exists()
                _start_now(slurm, requeued_job)
            time.sleep(0.1)
        assert requeued_job, f"cancelled {cancelled_job}, requeued nothing:\n{cluster_log.read_text()[-4000:]}"
        t_interrupts = time.monotonic() - t0

        _finish(local, local_log, deadline)
        t_local = time.monotonic() - t0
        cluster_text = _finish(cluster, cluster_log, deadline)
        t_cluster = time.monotonic() - t0
    finally:
        for proc in procs:  # on a failure: stop snakemake (it scancels its jobs), never leave it running
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    # --- every train, extract and score job went through sbatch, asking for one GPU; nothing else did.
    calls = read_sbatch_calls(calls_log)
    assert calls and all(c["returncode"] == 0 for c in calls), calls
    submitted = Counter(job for c in calls for job in _target_jobs(c["argv"]))
    expected = Counter({("train", CANCELLED_RUN): 2})  # the cancelled attempt and its retry (requeued, not resubmitted)
    for epoch in CHECKPOINTS:
        expected[("extract", f"{CANCELLED_RUN}/{epoch}")] = expected[("score", f"{CANCELLED_RUN}/{epoch}")] = 1
    assert submitted == expected, submitted
    for c in calls:
        assert {rule for rule, _ in _target_jobs(c["argv"])} <= GPU_RULES
        assert "--gpus=1" in c["argv"], without_wrap(c["argv"])
        assert sbatch_option(c["argv"], "-p") == "gpu" and sbatch_option(c["argv"], "--cpus-per-task") == "1"
        assert "--requeue" in c["argv"], without_wrap(c["argv"])
    # Each checkpoint's extract and score went in one submission, sized as one job (memory) on one GPU, for the
    # sum of the two runtimes; the light stages ran on the submit host.
    groups = [c for c in calls if sbatch_option(c["argv"], "--comment") == "rule_checkpoint_jobs_extract_score"]
    assert len(groups) == len(CHECKPOINTS), [without_wrap(c["argv"]) for c in groups]
    for group in groups:
        assert len(_target_jobs(group["argv"])) == 2, without_wrap(group["argv"])
        assert sbatch_option(group["argv"], "--mem") == "1500" and sbatch_option(group["argv"], "-t") == "20", group
    for light in ("corrupt_labels", "collect_run", "aggregate"):
        assert f"localrule {light}:" in cluster_text, light

    # --- the cancelled job: reported as failed, retried with twice the memory and time.
    assert cluster_text.count("SLURM status is: 'CANCELLED'") == 1, cluster_text[-6000:]
    assert f"SLURM-job '{cancelled_job}' failed" in cluster_text
    assert [(sbatch_option(c["argv"], "--mem"), sbatch_option(c["argv"], "-t")) for c in _train_calls(calls_log)] == [
        ("1500", "10"),
        ("3000", "20"),
    ]
    states = {j["id"]: j["state"] for j in slurm.jobs()}
    assert states[cancelled_job] == "CANCELLED" and states[requeued_job] == "COMPLETED", states
    assert "Restarts=1 " in slurm.run("scontrol", "show", "job", requeued_job).stdout  # SLURM reran it
    # The retry resumed after the last epoch the cancelled job had saved (state is saved right after an
    # epoch's log line, so scancel may have caught that one); the requeued run resumed again, later, and
    # trained only the remaining epochs.  (Snakemake starts a job's log afresh each time it runs.)
    assert cancel_seen - 1 <= first_resume < requeue_seen
    resumed, epochs = _epochs_since_last_resume(train_log)
    assert first_resume < requeue_seen - 1 <= resumed < MAX_EPOCHS, train_log.read_text()
    assert epochs == list(range(resumed + 1, MAX_EPOCHS + 1)), train_log.read_text()
    assert f"at epoch {MAX_EPOCHS} (reached_max_epochs)" in train_log.read_text().splitlines()[-1]

    # --- results equal the local run's: the interrupted run's weights and history, and every score.
    run_dir = Path("results/runs") / CANCELLED_RUN
    for epoch in CHECKPOINTS:
        ours, theirs = [_weights(d / run_dir / "checkpoints" / f"epoch_{epoch}.pt") for d in (cluster_dir, local_dir)]
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), epoch
    history = [
        pd.read_parquet(d / run_dir / "history.parquet").drop(columns="seconds") for d in (cluster_dir, local_dir)
    ]
    assert list(history[0].epoch) == list(range(MAX_EPOCHS + 1))
    pd.testing.assert_frame_equal(*history)
    key = ["pair", "corruption", "seed", "epoch", "layer", "probe", "split"]
    scores = [
        pd.read_parquet(d / "results/scores.parquet")
        .drop(columns="fit_seconds")
        .sort_values(key)
        .reset_index(drop=True)
        for d in (cluster_dir, local_dir)
    ]
    assert sorted(set(scores[0].epoch)) == [int(e) for e in CHECKPOINTS]
    assert set(scores[0].probe) == {"model", "transfer", "transfer_bias", "selected", *PROBE_NAMES}
    pd.testing.assert_frame_equal(*scores)

    print(
        f"\n[slurm workflow] cluster start {slurm.start_seconds:.1f} s; scancel + requeue done at"
        f" {t_interrupts:.1f} s; local run done at {t_local:.1f} s; SLURM run done at {t_cluster:.1f} s;"
        f" {len(calls)} sbatch calls; test total {time.monotonic() - t0:.1f} s"
    )
    print(f"[slurm workflow] train job (attempt 1) sbatch options: {' '.join(_site_options(calls[0]['argv']))}")
    print(f"[slurm workflow] train job (attempt 2) sbatch options: {' '.join(_site_options(calls[1]['argv']))}")
    print(f"[slurm workflow] group job sbatch options: {' '.join(_site_options(group['argv']))}")
