"""latentgen.stale: a dry run's jobs and reasons read back as which stage reruns and which code changed.

Real dry runs (Snakemake's own output) are read in test_workflow.py; these check the reading on hand-written
text in the same format."""

import pytest

from latentgen import stale
from latentgen.common import fingerprint
from latentgen.stale import job_stats, params_change, planned_jobs, report, split_forwarded

OLD = {"stage": "score", "latentgen.probes.paper": "aaa", "latentgen.scoring.checkpoint": "bbb"}
NEW = {"stage": "score", "latentgen.probes.paper": "ccc", "latentgen.scoring.checkpoint": "bbb"}
DRY_RUN = f"""Building DAG of jobs...
rule train:
    input: labels/s0.parquet
    output: runs/mlp-mnist/c40/s0/run.json
    reason: Params have changed since last execution: code before: {{'stage': 'train', 'training_code_version': 2}} now: {{'stage': 'train', 'training_code_version': 3}}
    jobid: 3

localrule score:
    output: scores/mlp-mnist/c40/s0.parquet
    reason: Params have changed since last execution: code before: {OLD} now: {NEW}; Input files updated by another job: runs/mlp-mnist/c40/s0/run.json
    jobid: 4

rule all:
    input: scores/mlp-mnist/c40/s0.parquet
    jobid: 0
"""


def test_planned_jobs_reads_rules_outputs_and_reasons_and_skips_all():
    jobs = planned_jobs(DRY_RUN)
    assert [job.rule for job in jobs] == ["train", "score"]
    assert jobs[1].output == ["scores/mlp-mnist/c40/s0.parquet"]
    assert len(jobs[1].reasons) == 2


def test_params_change_names_the_changed_files_and_the_version():
    assert params_change(planned_jobs(DRY_RUN)[1].reasons[0]) == ["code changed in latentgen.probes.paper"]
    assert params_change(planned_jobs(DRY_RUN)[0].reasons[0]) == ["training code version 2 -> 3"]
    assert params_change(f"Params have changed since last execution: code before: {OLD}, 5 now: {NEW}, 6") == [
        "code changed in latentgen.probes.paper",
        "config values changed",
    ]


def test_params_change_reads_what_fingerprint_writes():
    """The reason quotes stage_code's repr: a real code param parses back to the files that differ."""
    code = fingerprint.stage_code("aggregate", "workflow")
    changed = {**code, "latentgen.common.fileio": "0" * fingerprint.DIGITS}
    assert params_change(f"Params have changed since last execution: code before: {code} now: {changed}") == [
        "code changed in latentgen.common.fileio"
    ]


def test_report_groups_by_stage_and_says_who_an_upstream_job_is():
    text = report(planned_jobs(DRY_RUN))
    lines = text.splitlines()
    assert lines[0] == "train: 1 job (training code version 2 -> 3)"
    assert lines[2] == "score: 1 job (code changed in latentgen.probes.paper; follows train)"
    assert "checkpoints are known only then" in lines[-1]
    assert report([]) == "Nothing is stale: snakemake would run no job."


def test_job_stats_reads_the_table_without_its_total():
    text = """Building DAG of jobs...
Job stats:
job          count
---------  -------
score            4
aggregate        1
total            5

Reasons:
    (check individual jobs above for details)
"""
    assert job_stats(text) == {"score": 4, "aggregate": 1}
    assert (
        job_stats("Building DAG of jobs...\nNothing to be done (all requested files are present and up to date).") == {}
    )


def test_help_is_its_own_and_runs_no_dry_run(monkeypatch, capsys):
    """`python -m latentgen.stale --help` once went to `snakemake -n --help` and answered "Nothing is stale"."""
    monkeypatch.setattr(stale.subprocess, "run", lambda *args, **kwargs: pytest.fail("a dry run was started"))
    with pytest.raises(SystemExit) as caught:
        stale.main(["--help"])
    out = capsys.readouterr().out
    assert caught.value.code == 0 and "usage: python -m latentgen.stale" in out and "Nothing is stale" not in out


def test_what_follows_dashes_is_snakemakes_as_given():
    assert split_forwarded(["--configfile", "c.yaml", "--", "-h", "fig3.pdf"]) == (
        ["--configfile", "c.yaml"],
        ["--", "-h", "fig3.pdf"],
    )
    assert split_forwarded(["-c", "2"]) == (["-c", "2"], [])


def test_a_failed_dry_run_passes_on_snakemakes_status_and_words(monkeypatch, capsys):
    failed = stale.subprocess.CompletedProcess([], 1, stdout="", stderr="MissingInputException: no rule for x\n")
    monkeypatch.setattr(stale.subprocess, "run", lambda *args, **kwargs: failed)
    assert stale.main(["--configfile", "nowhere.yaml"]) == 1
    assert "MissingInputException" in capsys.readouterr().err


def test_every_rule_that_runs_a_script_reruns_when_its_code_changes():
    """Each script rule declares ``code=stage_code("<its name>")``: without it a change to what the script runs
    (the claims' decision rules, say) would leave its old output standing, and `latentgen stale` would say so."""
    import re
    from pathlib import Path

    missing = []
    for path in sorted(Path("workflow/rules").glob("*.smk")):
        for rule in re.split(r"\n(?=(?:rule|checkpoint) )", path.read_text())[1:]:
            name = re.match(r"(?:rule|checkpoint) (\w+):", rule).group(1)
            if "script:" in rule and f'code=stage_code("{name}")' not in rule:
                missing.append(f"{path.name}: {name}")
    assert missing == []
