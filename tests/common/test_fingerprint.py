"""Code fingerprints per stage (latentgen.common.fingerprint): what each stage's code is, and the training record.

What a changed fingerprint makes Snakemake rerun is tested by real dry runs in test_workflow.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from latentgen.common import fingerprint
from workflow_helpers import REAL_CHANGE, REPO, copy_workflow, edited, inserted

STAGES = ["score", "aggregate", "summary", "figure", *fingerprint.TRAINING_STAGES]
RECORD_COMMAND = "python -m latentgen.common.fingerprint --record"


def stage_sources(workdir: Path, stage: str) -> dict[str, str]:
    return fingerprint.source_fingerprints(workdir / "workflow", [stage], workdir / "src" / "latentgen")


def all_stage_sources(workdir: Path) -> dict[str, dict[str, str]]:
    return {stage: stage_sources(workdir, stage) for stage in STAGES}


@pytest.fixture
def copy(tmp_path) -> Path:
    return copy_workflow(tmp_path)


def test_training_code_is_as_recorded():
    """Retraining the grid costs GPU-days: a change to the training code is a deliberate decision."""
    changed = fingerprint.training_code_drift(REPO / "workflow")
    assert not changed, (
        f"The training code changed in {', '.join(changed)} (the code of the stages "
        f"{', '.join(fingerprint.TRAINING_STAGES)}), but workflow/{fingerprint.RECORD_NAME} records the old one. "
        f"Finished runs are not retrained for it. If trained models stay the same (a refactoring, a new option "
        f"off by default), record it with `{RECORD_COMMAND}`. If they would differ, run "
        f"`{RECORD_COMMAND} --bump`: it raises training_code_version, and every run is retrained. "
        "docs/architecture.md, 'Rerun triggers', has the rule."
    )


def test_each_stage_reaches_exactly_the_modules_it_runs():
    modules = {stage: set(stage_sources(REPO, stage)) for stage in STAGES}
    assert "latentgen.probes.paper" in modules["score"] and "latentgen.scoring.transfer" in modules["score"]
    for stage in ("train", "figure", "aggregate"):
        assert "latentgen.probes.paper" not in modules[stage], stage
    # plotting only where a figure is drawn: the summary table has a module of its own
    assert {stage for stage in STAGES if "latentgen.report.figures" in modules[stage]} == {"figure"}
    assert "latentgen.report.summary" in modules["summary"] and "latentgen.data.labels" in modules["corrupt_labels"]
    assert (
        "latentgen.scoring.activations" in modules["score"] and "latentgen.scoring.activations" not in modules["train"]
    )
    assert "scripts/score.py" in modules["score"] and "scripts/train.py" not in modules["score"]


def test_comments_docstrings_formatting_and_times_change_no_fingerprint(copy):
    before = all_stage_sources(copy)
    probes, script = copy / "src/latentgen/probes/paper.py", copy / "workflow/scripts/score.py"
    spectrum = copy / "src/latentgen/probes/spectrum.py"
    with (
        edited(spectrum, "DENSE_LIMIT = 1024", "DENSE_LIMIT = (\n    1024  # a comment\n)"),
        inserted(probes, "VeLPIC", '"""A second docstring."""'),
        edited(script, "params, wildcards = snakemake.params", "# a comment\nparams,  wildcards  =  snakemake.params"),
    ):
        script.touch()
        assert all_stage_sources(copy) == before


def test_a_real_change_changes_exactly_the_stages_that_run_it(copy):
    before = all_stage_sources(copy)
    with inserted(copy / "src/latentgen/probes/paper.py", "VeLPIC", REAL_CHANGE):
        after = all_stage_sources(copy)
    assert [stage for stage in STAGES if after[stage] != before[stage]] == ["score"]
    assert {name for name in after["score"] if after["score"][name] != before["score"][name]} == {
        "latentgen.probes.paper"
    }


def test_the_extraction_code_digest_follows_the_extraction_and_not_the_probes(copy):
    """Kept activations are keyed by the extraction's code: a probe change re-scores them, an extraction or
    model change extracts them again."""
    package = copy / "src/latentgen"

    def extraction():
        return fingerprint.definition_code("latentgen.scoring.job", "_extract_checkpoint", package)

    before = extraction()
    with inserted(package / "probes/paper.py", "VeLPIC", REAL_CHANGE):
        assert extraction() == before
    for module, name in (("scoring/activations.py", "_extract_split"), ("training/models.py", "ResNet18")):
        with inserted(package / module, name, REAL_CHANGE):
            assert extraction() != before, module
    assert extraction() == before


def test_a_model_change_is_caught_by_the_training_record_and_retrains_nothing_by_itself(copy):
    """A changed CNN changes what training produces: the record test above fails until it is recorded."""
    train_code = fingerprint.stage_code("train", copy / "workflow", copy / "src/latentgen")
    with inserted(copy / "src/latentgen/training/models.py", "CNN", REAL_CHANGE):
        assert fingerprint.training_code_drift(copy / "workflow", copy / "src/latentgen") == [
            "latentgen.training.models"
        ]
        assert fingerprint.stage_code("train", copy / "workflow", copy / "src/latentgen") == train_code
        fingerprint.record_training_code(copy / "workflow", package_dir=copy / "src/latentgen")
        assert fingerprint.training_code_drift(copy / "workflow", copy / "src/latentgen") == []
        assert fingerprint.stage_code("train", copy / "workflow", copy / "src/latentgen") == train_code
        fingerprint.record_training_code(copy / "workflow", bump=True, package_dir=copy / "src/latentgen")
        bumped = fingerprint.stage_code("train", copy / "workflow", copy / "src/latentgen")
    assert bumped["training_code_version"] == train_code["training_code_version"] + 1
