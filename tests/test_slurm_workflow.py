"""The real workflow through the SLURM profile (slurm/config.yaml).

* Dry runs (no daemons): `snakemake --profile slurm -n -j 50`, typed in a copy of the repo root, plans the
  paper grid: one train and one score job per run (standard and edited), one velpic_edit per edited run,
  no per-checkpoint jobs; job sizes come from the config's `compute:` section alone; the profile's GPU-model
  block works.
* Against real SLURM daemons (tests/slurm/start.sh, fixture `slurm`): a tiny config (one run, three
  checkpoints) runs through `snakemake --profile <repo>/slurm` with only the no-accounting overrides.  Every
  train and score job is its own sbatch submission asking for a GPU (the light stages run on the submit host);
  the score job asks for compute.score.runtime per checkpoint times the run's checkpoints.  The train job is
  cancelled with scancel mid-training: it is reported as failed, retried by the profile, and the retry resumes
  after the last finished epoch.  The retry is then requeued by SLURM (`scontrol requeue`, as on preemption):
  the same job runs again and resumes again.  The run's score job is cancelled once it has scored its first
  checkpoint: its retry keeps the scores written (their fragments) and scores the rest.  The scores (and the
  interrupted run's weights and history) equal those of a local `snakemake -c 2` run of the same config.
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
import yaml

from latentgen.probes.names import PROBE_NAMES
import torch

from slurm_cluster import read_sbatch_calls, sbatch_option, without_wrap
from workflow_helpers import REPO, SNAKEMAKE, copy_workflow, deep_update, job_stats, tiny_config, write_config

PROFILE = REPO / "slurm"
GPU_RULES = {"train", "score", "label_issues"}  # and velpic_edit, where a config has edits (the paper grid's dry run)
LIGHT_RULES = {  # localrules
    "prepare_dataset",
    "corrupt_labels",
    "aggregate",
    "summary",
    "claims",
    "figure",
    "label_issue_metrics",
    "label_issue_figure",
}

# The run cancelled mid-training: enough epochs (about 1 s each here) that it is still training when
# scancel lands; checkpoints at epochs 0, 5 and the final epoch (few: the node is small, but its score job
# is still scoring when the first checkpoint's scores are written and the job is cancelled).
CANCELLED_RUN = "mlp-mnist/c80/s0"
CANCEL_AFTER_EPOCH = 2
SLURM_CONFIG = {
    "corruption": [80],  # one run (the cnn pair is dropped below): this node runs one GPU job at a time
    "pairs": {
        "mlp-mnist": {
            "max_epochs": 10,
            "stop_accuracy": 1.0,
            "checkpoints": {"early_every": 1, "early_until": 0, "late_every": 5},
        },
    },
    # Job sizes for this 2-core, 24 GB node (the rules read them; nothing in the profile overrides them);
    # score's runtime is per checkpoint.
    "compute": {stage: {"threads": 1, "mem_mb": 1500, "runtime": 10} for stage in ("train", "score")},
}
MAX_EPOCHS = SLURM_CONFIG["pairs"]["mlp-mnist"]["max_epochs"]
CHECKPOINTS = ["0000", "0005", f"{MAX_EPOCHS:04d}"]
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
    # The runs of config.yaml: (6 pairs + ResNet-18 + the dropout variant) x 6 rates x 3 seeds standard runs,
    # and 6 pairs x 3 edit epochs x 6 rates x 3 seeds edited runs.
    paper = yaml.safe_load((root / "config.yaml").read_text())
    per_setting = len(paper["corruption"]) * len(paper["seeds"])
    standard = len(paper["pairs"]) * per_setting
    edited = sum(len(pair.get("edits", {}).get("epochs", [])) for pair in paper["pairs"].values()) * per_setting
    assert (standard, edited) == ((6 + 1 + 1) * 6 * 3, 6 * 3 * 6 * 3)  # = (144, 324)
    runs = standard + edited  # 468
    # One train and one score job per run (the score job extracts and scores every checkpoint of its run),
    # one velpic_edit per edited run; no per-checkpoint jobs.
    assert stats["train"] == runs and stats["score"] == runs and stats["velpic_edit"] == edited, stats
    assert stats["prepare_dataset"] == 4 and stats["corrupt_labels"] == 4, stats
    assert not {"extract", "collect_run"} & set(stats), stats
    assert stats["aggregate"] == 1 and stats["summary"] == 1 and stats["figure"] == 17, stats  # 1-14, 16, 17, 18

    jobs = _planned_jobs(text)
    # Sizes come from config.yaml's `compute:` (train: 16000 MB, 720 min), one GPU, the site's
    # partition; nothing in the profile overrides them.
    train = [resources for _, rule, resources in jobs if rule == "train"]
    assert len(train) == runs
    assert all(
        r["mem_mb"] == "16000" and r["runtime"] == "720" and r["gpu"] == "1" and r["slurm_partition"] == "gpu"
        for r in train
    ), train[0]
    assert "gpu_model" not in train[0]
    # Before its run has trained a score job is a placeholder (its checkpoints are unknown): one checkpoint's
    # runtime stands in until the train checkpoint has run (the real request: test_real_workflow_on_slurm...).
    score = [resources for _, rule, resources in jobs if rule == "score"]
    assert len(score) == runs
    per_checkpoint = str(paper["compute"]["score"]["runtime"])
    assert all(
        r["mem_mb"] == str(paper["compute"]["score"]["mem_mb"])
        and r["runtime"] == per_checkpoint
        and r["gpu"] == "1"
        and r["slurm_partition"] == "gpu"
        for r in score
    ), score[0]
    # The GPU stages ask for a GPU, every job of theirs; the others are the light stages (the Snakefile's
    # localrules, which never reach sbatch: test_real_workflow_on_slurm...).
    gpu_rules = {rule for _, rule, r in jobs if r.get("gpu") == "1"}
    assert gpu_rules == GPU_RULES | {"velpic_edit"}, gpu_rules
    assert all(r.get("gpu") == "1" for _, rule, r in jobs if rule in gpu_rules)
    assert set(stats) - gpu_rules == {*LIGHT_RULES, "all"}, stats


@pytest.mark.slow
def test_job_sizes_have_one_source_the_config(tmp_path, prepared_datasets):
    """Changing `compute:` changes what the cluster jobs ask for; the profile's site block adds a GPU model."""
    workdir = copy_workflow(tmp_path / "work")
    config = tiny_config(
        prepared_datasets, compute={"train": {"mem_mb": 1234, "runtime": 7}, "score": {"mem_mb": 2345, "runtime": 3}}
    )
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
        # one score job per run, sized per checkpoint (one stands in before the run has trained)
        score = [r for _, rule, r in jobs if rule == "score"]
        assert len(score) == 4
        assert all(r["mem_mb"] == "2345" and r["runtime"] == "3" and r["gpu"] == "1" for r in score), score[0]
    assert all("gpu_model" not in r for _, rule, r in plain if rule in GPU_RULES)
    assert all(r["gpu_model"] == "a100" for _, rule, r in model if rule in GPU_RULES)


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
    """(rule, run[/epoch]) of each job an sbatch call runs, from the job script's --target-jobs."""
    wrap = next(a for a in argv if a.startswith("--wrap="))[len("--wrap=") :]
    words = shlex.split(wrap)
    start = words.index("--target-jobs") + 1
    jobs = []
    for word in words[start:]:
        if word.startswith("--"):
            break
        rule, _, wildcards = word.partition(":")
        values = dict(kv.split("=", 1) for kv in wildcards.split(",") if kv)
        run = f"{values['pair']}/c{values['corruption']}/s{values['seed']}{values.get('edit', '')}"
        jobs.append((rule, run + (f"/{values['epoch']}" if "epoch" in values else "")))
    return jobs


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _calls_of(calls_log: Path, rule: str) -> list[dict]:
    """The sbatch calls of the interrupted run's `rule` job, in order (an attempt each)."""
    return [c for c in read_sbatch_calls(calls_log) if (rule, CANCELLED_RUN) in _target_jobs(c["argv"])]


def _job_id(call: dict) -> str:
    return call["stdout"].strip().split(";")[0]


def _time_limit(cluster, job: str) -> str:
    """The job's TimeLimit as SLURM holds it (HH:MM:SS)."""
    match = re.search(r"\bTimeLimit=(\S+)", cluster.run("scontrol", "show", "job", job).stdout)
    assert match, job
    return match.group(1)


def _epochs_since_last_resume(log: Path) -> tuple[int | None, list[int]]:
    """(the epoch the last "resuming" line names, or None; the epochs logged after it)."""
    text = log.read_text() if log.exists() else ""
    resumed = re.findall(r"resuming \S+ after epoch (\d+)", text)
    tail = text.rsplit("resuming", 1)[1] if resumed else text
    return (int(resumed[-1]) if resumed else None), [int(e) for e in re.findall(r"epoch\s+(\d+)\s+loss", tail)]


def _checkpoints_scored(log: Path) -> dict[str, str]:
    """checkpoint -> "scored" or "kept", from a score job's log (its lines "checkpoint i of n, epoch_XXXX.pt: ...")."""
    line = r"checkpoint \d+ of \d+, epoch_(\d{4})\.pt: (scored|scores kept from an earlier job) in"
    found = re.findall(line, log.read_text())
    return {epoch: "scored" if how == "scored" else "kept" for epoch, how in found}


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
def test_real_workflow_on_slurm_equals_a_local_run_and_interrupted_jobs_resume(slurm, tmp_path, prepared_datasets):
    t0 = time.monotonic()
    config = deep_update(tiny_config(prepared_datasets), SLURM_CONFIG)
    del config["pairs"]["cnn-fashion_mnist"]
    cluster_dir, local_dir = copy_workflow(tmp_path / "slurm"), copy_workflow(tmp_path / "local")
    cluster_config, local_config = write_config(cluster_dir, config), write_config(local_dir, config)
    env, calls_log = slurm.recording_sbatch(tmp_path)
    env = {**env, "OMP_NUM_THREADS": "1"}
    train_log = cluster_dir / "results" / "logs" / "train" / f"{CANCELLED_RUN}.log"
    run_json = cluster_dir / "results" / "runs" / CANCELLED_RUN / "run.json"
    score_log = cluster_dir / "results" / "logs" / "score" / f"{CANCELLED_RUN}.log"
    fragments = cluster_dir / "results" / "scores" / CANCELLED_RUN  # epoch_XXXX.parquet, one per checkpoint scored
    run_table = cluster_dir / "results" / "scores" / f"{CANCELLED_RUN}.parquet"

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
        #    3. scancel the run's score job once it has written the scores of its first checkpoint (and before
        #    it has written the run's table): the retry (attempt 2) keeps them and scores the rest.
        cancelled_job = requeued_job = cancelled_score = None
        deadline = t0 + 480
        while cancelled_score is None and cluster.poll() is None and time.monotonic() < deadline:
            resumed, epochs = _epochs_since_last_resume(train_log)
            calls = _calls_of(calls_log, "train")
            if cancelled_job is None and epochs and max(epochs) >= CANCEL_AFTER_EPOCH:
                cancelled_job, cancel_seen = _job_id(calls[0]), max(epochs)
                slurm.run("scancel", cancelled_job)
                assert not run_json.exists()
            elif (
                requeued_job is None
                and cancelled_job
                and len(calls) == 2
                and resumed is not None
                and epochs
                and max(epochs) >= resumed + 2
            ):
                requeued_job, requeue_seen, first_resume = _job_id(calls[1]), max(epochs), resumed
                slurm.run("scontrol", "requeue", requeued_job)
                assert not run_json.exists()
                _start_now(slurm, requeued_job)
            elif requeued_job and (fragments / f"epoch_{CHECKPOINTS[0]}.parquet").exists():
                score_calls = _calls_of(calls_log, "score")
                assert len(score_calls) == 1, score_calls
                written = {p: p.stat().st_mtime_ns for p in fragments.glob("epoch_*.parquet")}
                assert not run_table.exists() and len(written) < len(CHECKPOINTS), written
                cancelled_score = _job_id(score_calls[0])
                slurm.run("scancel", cancelled_score)
            time.sleep(0.1)
        assert cancelled_score, (
            f"cancelled {cancelled_job}, requeued {requeued_job}, cancelled no score job:\n"
            f"{cluster_log.read_text()[-4000:]}"
        )
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

    # --- every train and score job went through sbatch, each its own submission asking for one GPU;
    #     nothing else did.
    calls = read_sbatch_calls(calls_log)
    assert calls and all(c["returncode"] == 0 for c in calls), calls
    submitted = Counter(job for c in calls for job in _target_jobs(c["argv"]))
    # the cancelled attempts and their retries (the requeued train job ran again, it was not resubmitted)
    assert submitted == Counter({("train", CANCELLED_RUN): 2, ("score", CANCELLED_RUN): 2}), submitted
    for c in calls:
        (rule, _), *others = _target_jobs(c["argv"])
        assert rule in GPU_RULES and not others, without_wrap(c["argv"])  # one job per submission, no groups
        assert re.fullmatch(f"rule_{rule}(_wildcards_.*)?", sbatch_option(c["argv"], "--comment")), c["argv"][:10]
        assert "--gpus=1" in c["argv"], without_wrap(c["argv"])
        assert sbatch_option(c["argv"], "-p") == "gpu" and sbatch_option(c["argv"], "--cpus-per-task") == "1"
        assert "--requeue" in c["argv"], without_wrap(c["argv"])
    for light in ("corrupt_labels", "aggregate"):
        assert f"localrule {light}:" in cluster_text, light
    states = {j["id"]: j["state"] for j in slurm.jobs()}
    assert cluster_text.count("SLURM status is: 'CANCELLED'") == 2, cluster_text[-6000:]  # train, then score

    # --- the cancelled train job: reported as failed, retried with twice the memory and time.
    assert f"SLURM-job '{cancelled_job}' failed" in cluster_text
    train_calls = _calls_of(calls_log, "train")
    assert [(sbatch_option(c["argv"], "--mem"), sbatch_option(c["argv"], "-t")) for c in train_calls] == [
        ("1500", "10"),
        ("3000", "20"),
    ]
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

    # --- the score job: asked for compute.score.runtime per checkpoint x the run's checkpoints (x attempt), and
    #     SLURM holds that limit; cancelled, it was retried, and the retry kept the scores written before.
    score_calls = _calls_of(calls_log, "score")
    per_checkpoint = SLURM_CONFIG["compute"]["score"]["runtime"]
    limits = [per_checkpoint * len(CHECKPOINTS) * attempt for attempt in (1, 2)]  # 30, 60 minutes
    assert [(sbatch_option(c["argv"], "--mem"), sbatch_option(c["argv"], "-t")) for c in score_calls] == [
        ("1500", str(limits[0])),
        ("3000", str(limits[1])),
    ], [without_wrap(c["argv"]) for c in score_calls]
    score_jobs = [_job_id(c) for c in score_calls]
    assert score_jobs[0] == cancelled_score
    assert [_time_limit(slurm, job) for job in score_jobs] == [f"{m // 60:02d}:{m % 60:02d}:00" for m in limits]
    assert states[cancelled_score] == "CANCELLED" and states[score_jobs[1]] == "COMPLETED", states
    assert f"SLURM-job '{cancelled_score}' failed" in cluster_text
    retry = _checkpoints_scored(score_log)  # the log of the retry (Snakemake starts it afresh)
    assert sorted(retry) == CHECKPOINTS, score_log.read_text()
    kept = {epoch for epoch, how in retry.items() if how == "kept"}
    assert {p.stem.removeprefix("epoch_") for p in written} <= kept, (written, score_log.read_text())
    assert len(kept) < len(CHECKPOINTS), score_log.read_text()  # the cancel interrupted the job: it scored the rest
    assert score_log.read_text().count("scores kept from an earlier job") == len(kept)
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in written.items())  # kept, not written again
    assert sorted(p.stem.removeprefix("epoch_") for p in fragments.glob("epoch_*.parquet")) == CHECKPOINTS

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
    for table in (Path("results/scores.parquet"), Path("results/scores") / f"{CANCELLED_RUN}.parquet"):
        scores = [
            pd.read_parquet(d / table).drop(columns="fit_seconds").sort_values(key).reset_index(drop=True)
            for d in (cluster_dir, local_dir)
        ]
        assert sorted(set(scores[0].epoch)) == [int(e) for e in CHECKPOINTS], table
        assert set(scores[0].probe) == {"model", "transfer", "transfer_bias", "selected", *PROBE_NAMES}, table
        pd.testing.assert_frame_equal(*scores)

    print(
        f"\n[slurm workflow] cluster start {slurm.start_seconds:.1f} s; train scancel + requeue, score scancel done"
        f" at {t_interrupts:.1f} s; local run done at {t_local:.1f} s; SLURM run done at {t_cluster:.1f} s;"
        f" {len(calls)} sbatch calls; score retry kept {sorted(kept)}; test total {time.monotonic() - t0:.1f} s"
    )
    print(f"[slurm workflow] train job (attempt 1) sbatch options: {' '.join(_site_options(train_calls[0]['argv']))}")
    print(f"[slurm workflow] train job (attempt 2) sbatch options: {' '.join(_site_options(train_calls[1]['argv']))}")
    print(f"[slurm workflow] score job (attempt 1) sbatch options: {' '.join(_site_options(score_calls[0]['argv']))}")
    print(f"[slurm workflow] score job (attempt 2) sbatch options: {' '.join(_site_options(score_calls[1]['argv']))}")
