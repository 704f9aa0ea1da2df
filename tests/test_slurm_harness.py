"""The SLURM profile (slurm/config.yaml) against real SLURM daemons (tests/slurm/start.sh).

A standalone Snakefile shaped like the pipeline (a local rule, a GPU rule, one GPU score job that goes over
every checkpoint and asks for a runtime per checkpoint, a local aggregate) runs through
`snakemake --profile <repo>/slurm` with only the no-accounting overrides. A wrapper around sbatch records every
submission: each cluster job is its own submission (the profile groups nothing). In parallel, a second
workflow's sleeping job is cancelled with scancel at every attempt the profile's retries make; snakemake must
report the failure, and a rerun must complete.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import read_sbatch_calls, sbatch_option, without_wrap, slurm_cluster  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "slurm"
START = REPO / "tests" / "slurm" / "start.sh"

SNAKEFILE = r"""
EPOCHS = [0, 2]
MINUTES_PER_CHECKPOINT = 25

localrules: all, prepare_dataset, aggregate


rule all:
    input: "results/summary.txt"


rule prepare_dataset:
    output: "data/numbers.txt"
    shell: "seq 1 10 > {output}; echo job=${{SLURM_JOB_ID:-none}} >> {output}"


rule fit:
    input: "data/numbers.txt"
    output: "model/weights.txt"
    resources: gpu=1
    shell:
        "grep -v job= {input} | paste -sd+ | bc > {output}; "
        "echo job=$SLURM_JOB_ID gpus=${{CUDA_VISIBLE_DEVICES:-none}} >> {output}"


# As the workflow's score rule: one job goes over every checkpoint, its runtime a per-checkpoint size times the
# checkpoints (times the attempt).
rule score:
    input: "model/weights.txt"
    output: "scores/run.txt"
    params: epochs=" ".join(map(str, EPOCHS))
    resources:
        gpu=1,  # as the workflow's GPU rules declare it
        runtime=lambda wildcards, attempt: MINUTES_PER_CHECKPOINT * len(EPOCHS) * attempt,
    shell:
        "for e in {params.epochs}; do echo $(( $(head -1 {input}) * e + 1 )); done > {output}; "
        "echo job=$SLURM_JOB_ID gpus=${{CUDA_VISIBLE_DEVICES:-none}} >> {output}"


rule aggregate:
    input: "scores/run.txt"
    output: "results/summary.txt"
    shell: "grep -v job= {input} > {output}; echo job=${{SLURM_JOB_ID:-none}} >> {output}"


rule sleepy:
    output: "sleepy/done.txt"
    shell:
        "touch started_$SLURM_JOB_ID; "
        "if [ -e block ]; then sleep 300; fi; "
        "echo job=$SLURM_JOB_ID > {output}"
"""


def _snakemake(cluster, env, workdir: Path, *targets: str, log: Path) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "snakemake",
        "--profile", str(PROFILE),
        "-j", "5",
        *cluster.no_accounting_args,
        *targets,
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait(proc: subprocess.Popen, log: Path, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        pytest.fail(f"snakemake ran over {timeout} s; log tail:\n{log.read_text()[-4000:]}")


def _target_rules(argv: list[str]) -> list[str]:
    """The rule of each job an sbatch call runs, from its job script's --target-jobs (rule:wildcards ...)."""
    words = shlex.split(next(a for a in argv if a.startswith("--wrap="))[len("--wrap=") :])
    targets = words[words.index("--target-jobs") + 1 :]
    return [word.partition(":")[0] for word in itertools.takewhile(lambda w: not w.startswith("--"), targets)]


def _job_of(path: Path) -> str:
    m = re.search(r"job=(\S+)", path.read_text())
    assert m, f"{path} has no job= line: {path.read_text()!r}"
    return m.group(1)


@pytest.mark.slurm
@pytest.mark.slow
def test_profile_on_real_slurm(slurm, tmp_path):
    t0 = time.monotonic()

    # start.sh is idempotent: a second call on a running cluster keeps its daemons.
    pid_file = slurm.scratch / "run" / "slurmctld.pid"
    pid_before = pid_file.read_text().strip()
    again = subprocess.run(["bash", str(START), str(slurm.scratch)], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert pid_file.read_text().strip() == pid_before
    assert "export SLURM_CONF=" in again.stdout

    main_dir, cancel_dir = tmp_path / "main", tmp_path / "cancel"
    for d in (main_dir, cancel_dir):
        d.mkdir()
        (d / "Snakefile").write_text(SNAKEFILE)
    main_env, main_calls = slurm.recording_sbatch(main_dir)
    cancel_env, cancel_calls = slurm.recording_sbatch(cancel_dir)

    # 1. The pipeline-shaped workflow and 2. the cancelled one, side by side (2 CPUs, 1 fake GPU).
    main_log, cancel_log = main_dir / "snakemake.log", cancel_dir / "snakemake.log"
    main = _snakemake(slurm, main_env, main_dir, log=main_log)
    (cancel_dir / "block").touch()
    cancel = _snakemake(slurm, cancel_env, cancel_dir, "sleepy/done.txt", log=cancel_log)

    cancelled: list[str] = []
    t_main = None
    deadline = time.monotonic() + 240  # a safety net: ~110 s here
    while cancel.poll() is None and time.monotonic() < deadline:
        if t_main is None and main.poll() is not None:
            t_main = time.monotonic() - t0
        # Cancel each attempt once its shell command is running (it touched started_<jobid>).
        for marker in sorted(cancel_dir.glob("started_*")):
            jobid = marker.name.removeprefix("started_")
            if jobid not in cancelled:
                slurm.run("scancel", jobid)
                cancelled.append(jobid)
        time.sleep(0.2)
    cancel_rc = _wait(cancel, cancel_log, timeout=max(1.0, deadline - time.monotonic()))
    t_cancel = time.monotonic() - t0

    main_rc = _wait(main, main_log, timeout=max(1.0, t0 + 240 - time.monotonic()))
    t_main = t_main or time.monotonic() - t0
    main_text = main_log.read_text()
    assert main_rc == 0, main_text[-4000:]

    # Outputs are right.
    assert (main_dir / "model/weights.txt").read_text().splitlines()[0] == "55"
    assert (main_dir / "scores/run.txt").read_text().splitlines()[:2] == ["1", "111"]
    assert (main_dir / "results/summary.txt").read_text().splitlines()[:2] == ["1", "111"]

    # The profile batches nothing: no groups (nor the group-wide resource limits they needed).
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert not {"groups", "group-components", "resources", "set-resource-scopes"} & set(profile), sorted(profile)

    # Every non-local job went through sbatch, each as its own submission; local ones did not.
    calls = read_sbatch_calls(main_calls)
    assert all(c["returncode"] == 0 for c in calls), calls
    by_comment = {sbatch_option(c["argv"], "--comment"): c for c in calls}
    assert sorted(sbatch_option(c["argv"], "--comment") for c in calls) == ["rule_fit", "rule_score"], [
        without_wrap(c["argv"]) for c in calls
    ]
    for c in calls:  # one job each, run inside its submission's allocation, under srun
        assert _target_rules(c["argv"]) == [sbatch_option(c["argv"], "--comment").removeprefix("rule_")], c["argv"]
        assert "--executor slurm-jobstep" in " ".join(c["argv"])
    submitted = {c["stdout"].strip().split(";")[0] for c in calls}
    fit_job, score_job = _job_of(main_dir / "model/weights.txt"), _job_of(main_dir / "scores/run.txt")
    assert fit_job == by_comment["rule_fit"]["stdout"].strip()
    assert score_job == by_comment["rule_score"]["stdout"].strip()
    assert {fit_job, score_job} == submitted and fit_job != score_job
    assert _job_of(main_dir / "data/numbers.txt") == "none"  # localrule: ran by snakemake itself
    assert _job_of(main_dir / "results/summary.txt") == "none"

    # The GPU jobs' options: the profile's defaults plus --gpus=1; the SLURM job saw one (fake) GPU.
    fit_argv = by_comment["rule_fit"]["argv"]
    assert "--gpus=1" in fit_argv, without_wrap(fit_argv)
    assert sbatch_option(fit_argv, "-p") == "gpu"
    assert sbatch_option(fit_argv, "--mem") == "4000" and sbatch_option(fit_argv, "-t") == "60"
    assert "gpus=0" in (main_dir / "model/weights.txt").read_text()  # CUDA_VISIBLE_DEVICES from the GRES
    # The score job: one GPU, the default memory, and its own runtime (per checkpoint x checkpoints), which
    # SLURM holds as the job's limit.
    score_argv = by_comment["rule_score"]["argv"]
    assert "--gpus=1" in score_argv and sbatch_option(score_argv, "-p") == "gpu", without_wrap(score_argv)
    assert sbatch_option(score_argv, "--mem") == "4000" and sbatch_option(score_argv, "-t") == "50"
    assert "gpus=0" in (main_dir / "scores/run.txt").read_text()
    assert "TimeLimit=00:50:00" in slurm.run("scontrol", "show", "job", score_job).stdout

    # The cancelled job: snakemake retried it (profile: retries 2, resources scaled by attempt) and
    # then failed, reporting SLURM's CANCELLED state.
    cancel_text = cancel_log.read_text()
    assert cancel_rc != 0, cancel_text[-4000:]
    attempts = read_sbatch_calls(cancel_calls)
    assert [sbatch_option(c["argv"], "--comment") for c in attempts] == ["rule_sleepy"] * 3, attempts
    assert [sbatch_option(c["argv"], "--mem") for c in attempts] == ["4000", "8000", "12000"]
    assert [sbatch_option(c["argv"], "-t") for c in attempts] == ["60", "120", "180"]
    assert all("--gpus" not in " ".join(c["argv"]) for c in attempts)
    assert len(cancelled) == 3, (cancelled, cancel_text[-4000:])
    assert cancel_text.count("SLURM status is: 'CANCELLED'") == 3, cancel_text[-4000:]
    assert "Error in rule sleepy" in cancel_text
    assert not (cancel_dir / "sleepy/done.txt").exists()
    states = {j["id"]: j["state"] for j in slurm.jobs()}
    assert all(states.get(j) == "CANCELLED" for j in cancelled), states

    # A rerun (nothing blocks the job any more) completes.
    (cancel_dir / "block").unlink()
    t1 = time.monotonic()
    rerun = _snakemake(slurm, cancel_env, cancel_dir, "sleepy/done.txt", log=cancel_dir / "rerun.log")
    rerun_rc = _wait(rerun, cancel_dir / "rerun.log", timeout=90)
    t_rerun = time.monotonic() - t1
    assert rerun_rc == 0, (cancel_dir / "rerun.log").read_text()[-4000:]
    last = read_sbatch_calls(cancel_calls)[-1]
    assert _job_of(cancel_dir / "sleepy/done.txt") == last["stdout"].strip()
    assert sbatch_option(last["argv"], "--mem") == "4000"  # a new run starts again at attempt 1

    total = time.monotonic() - t0
    print(
        f"\n[slurm harness] cluster start {slurm.start_seconds:.1f} s; pipeline-shaped workflow {t_main:.1f} s;"
        f" 3 cancelled attempts until snakemake exits {t_cancel:.1f} s (in parallel); rerun {t_rerun:.1f} s;"
        f" test total {total:.1f} s"
    )
    print(f"[slurm harness] GPU job sbatch options: {' '.join(without_wrap(fit_argv))}")
    print(f"[slurm harness] score job sbatch options: {' '.join(without_wrap(score_argv))}")
    print(f"[slurm harness] CPU job (attempt 1) options: {' '.join(without_wrap(attempts[0]['argv']))}")


def test_fixture_skips_without_root_but_fails_in_ci(monkeypatch, tmp_path_factory):
    """No root: skip locally, fail loudly under CI=true (never a silent skip in CI)."""
    import slurm_cluster as sc

    monkeypatch.setattr(sc.os, "geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="root"):
        with slurm_cluster(tmp_path_factory):
            pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        with slurm_cluster(tmp_path_factory):
            pass
