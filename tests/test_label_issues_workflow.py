"""The label-issue stage in the workflow: what real Snakemake dry runs plan (one job per standard run, none for an
edited run, the figure only where labels are corrupted) and the layers it refuses.  The stage itself runs in
tests/label_issues/test_label_issues_job.py; a finished quick-start's numbers are in docs/performance.md."""

from __future__ import annotations

import pytest
from workflow_helpers import copy_workflow, plan_of, snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("label_issue_workflow"))


def _plan(workdir, config, name):
    result = snakemake(workdir, write_config(workdir, config, name), "-n")
    return plan_of(result.stdout + result.stderr)


def test_one_job_per_standard_run_and_none_for_edited_runs(workdir, tmp_path):
    config = tiny_config(tmp_path / "datasets", pairs={"mlp-mnist": {"edits": {"epochs": [1], "until": 2}}})
    plan = _plan(workdir, config, "edits.yaml")
    standard_runs = 2 * 2  # two pairs x rates 0 and 80, one seed
    assert plan["label_issues"] == standard_runs, plan
    assert plan["train"] > standard_runs and plan["velpic_edit"] == 2, plan  # the edited runs are planned, not flagged
    assert plan["label_issue_metrics"] == 1 and plan["label_issue_figure"] == 1, plan


def test_the_figure_needs_a_corrupted_rate(workdir, tmp_path):
    plan = _plan(workdir, tiny_config(tmp_path / "datasets", corruption=[0]), "clean.yaml")
    assert plan["label_issues"] == 2 and plan["label_issue_metrics"] == 1, plan
    assert "label_issue_figure" not in plan, plan


def test_a_layer_list_no_pair_has_is_refused(workdir, tmp_path):
    config = tiny_config(tmp_path / "datasets", label_issues={"layers": ["fc9"]})
    result = snakemake(workdir, write_config(workdir, config, "layers.yaml"), "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "label_issues.layers" in output and "fc9" in output, output[-2000:]


def test_the_section_is_validated_before_any_job(workdir, tmp_path):
    config = tiny_config(tmp_path / "datasets", label_issues={"probes": ["masc_true"], "folds": 1})
    result = snakemake(workdir, write_config(workdir, config, "oracle.yaml"), "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "label_issues.probes" in output and "label_issues.folds" in output, output[-2000:]
