"""Edited runs in the workflow: <pair>/c<rate>/s<seed>/edit<E> is trained from the VeLPIC edit of its base run's
checkpoint at E (its final one when it stopped before E), extracted and scored like any run, drawn in figure 18, and
rerun only when that checkpoint or its settings change."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import torch

from latentgen.common.fileio import load_torch
from latentgen.training.schedule import edit_base_epoch
from latentgen.report.claims import read_claims
from workflow_helpers import copy_workflow, dry_run, plan_of, planned_jobs, snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow  # real snakemake runs

PAIR, EDIT, UNTIL = "mlp-mnist", 2, 4
TARGETS = ("results/scores.parquet", "results/claims.csv", "results/figures/fig18.pdf")


def edit_config(datasets_dir, **pair_changes):
    config = tiny_config(datasets_dir, corruption=[40], figures={"numbers": [18]})
    del config["pairs"]["cnn-fashion_mnist"]
    config["datasets"].pop("fashion_mnist")
    # the base schedule lacks epoch 2 on purpose (only 0 and the final 3): the config adds it for the edit
    config["pairs"][PAIR].update(
        {
            "max_epochs": 3,
            "stop_accuracy": 1.0,
            "checkpoints": {"early_every": 5, "early_until": 0, "late_every": 5, "extra_epochs": []},
            "edits": {"epochs": [EDIT], "until": UNTIL},
            **pair_changes,
        }
    )
    return config


@pytest.fixture(scope="module")
def finished(tmp_path_factory, prepared_datasets):
    workdir = copy_workflow(tmp_path_factory.mktemp("edit_workflow"))
    config_path = write_config(workdir, edit_config(prepared_datasets))
    snakemake(workdir, config_path, "-c", "2", *TARGETS)
    return workdir, config_path


def test_the_edited_run_is_its_own_run_from_the_edited_weights(finished):
    workdir, _ = finished
    base = workdir / f"results/runs/{PAIR}/c40/s0"
    run = base / f"edit{EDIT}"
    base_json = json.loads((base / "run.json").read_text())
    assert EDIT in base_json["checkpoint_epochs"], "the edit epoch was added to the base run's checkpoints"
    summary = json.loads((run / "run.json").read_text())
    assert summary["checkpoint_epochs"][0] == EDIT and summary["final_epoch"] == UNTIL
    assert summary["edit_epoch"] == EDIT
    edited = load_torch(workdir / f"results/edits/{PAIR}/c40/s0/epoch_{EDIT:04d}.pt")
    first = load_torch(run / f"checkpoints/epoch_{EDIT:04d}.pt")
    assert all(torch.equal(first[k], edited[k]) for k in edited), "the edited run starts from the edit exactly"
    base_weights = load_torch(base / f"checkpoints/epoch_{EDIT:04d}.pt")
    assert torch.count_nonzero(first["head.bias"]) == 0 and not torch.equal(
        first["head.weight"], base_weights["head.weight"]
    )


def test_scores_and_claims_carry_the_edited_run(finished):
    workdir, _ = finished
    scores = pd.read_parquet(workdir / "results/scores.parquet")
    edited = scores[scores["edit_epoch"].notna()]
    assert set(edited["edit_epoch"]) == {EDIT} and sorted(edited["epoch"].unique()) == [EDIT, UNTIL]
    assert scores["edit_epoch"].isna().any(), "the standard run is there too"
    # right after the edit, the edited model is its base checkpoint's transfer (same fit, same weights)
    at_edit = scores[(scores["epoch"] == EDIT) & (scores["split"] == "test")]
    model = at_edit[(at_edit["probe"] == "model") & at_edit["edit_epoch"].notna()]["accuracy"].iloc[0]
    transfer = at_edit[(at_edit["probe"] == "transfer") & (at_edit["layer"] == "fc4") & at_edit["edit_epoch"].isna()][
        "accuracy"
    ].iloc[0]
    assert model == transfer
    claims = read_claims(workdir / "results/claims.csv")
    assert {"edit_gains", "edit_keeps_gain"} <= set(claims["claim"])
    assert (claims.loc[claims["claim"] == "run_learned", "seed"].notna()).all()
    figure = workdir / "results/figures/fig18.pdf"  # the edited runs against standard training
    assert figure.read_bytes().startswith(b"%PDF") and figure.stat().st_size > 10_000


def test_nothing_reruns_and_a_new_base_checkpoint_reruns_only_the_edit(finished):
    workdir, config_path = finished
    assert planned_jobs(workdir, config_path, *TARGETS) == {}
    checkpoint = workdir / f"results/runs/{PAIR}/c40/s0/checkpoints/epoch_{EDIT:04d}.pt"
    original, times = checkpoint.read_bytes(), checkpoint.stat()
    try:
        state = load_torch(checkpoint)
        state["head.bias"] = state["head.bias"] + 1.0  # other bytes: the checkpoint was written again
        torch.save(state, checkpoint)
        plan = planned_jobs(workdir, config_path, *TARGETS)
        assert plan["velpic_edit"] == 1 and plan["train"] == 1, plan  # the edited run, never the base run
    finally:
        checkpoint.write_bytes(original)  # as it was, its time too: the later tests see a finished workflow
        os.utime(checkpoint, ns=(times.st_atime_ns, times.st_mtime_ns))


def test_a_changed_edit_setting_reruns_the_edited_run_only(finished, prepared_datasets):
    workdir, _ = finished
    changed = write_config(
        workdir, edit_config(prepared_datasets, edits={"epochs": [EDIT], "until": UNTIL + 1}), name="changed.yaml"
    )
    plan = planned_jobs(workdir, changed, *TARGETS)
    assert plan["train"] == 1 and "velpic_edit" not in plan, plan


def test_an_edit_after_its_base_run_stopped_is_made_on_the_final_checkpoint(finished):
    """A base run that stopped (its stop_accuracy) before the edit epoch is, from its stop on, its final model: the
    edit is made on that checkpoint, the plan says so, and planning does not fail."""
    assert edit_base_epoch([0, 2, 3], 2) == 2 and edit_base_epoch([0, 1], 2) == 1
    with pytest.raises(ValueError, match="without a checkpoint"):
        edit_base_epoch([0, 1, 3], 2)  # passed E without a checkpoint there: retrain it
    workdir, config_path = finished
    base = workdir / f"results/runs/{PAIR}/c40/s0"
    run_json, stopped = base / "run.json", base / "checkpoints/epoch_0001.pt"
    original, times = run_json.read_bytes(), run_json.stat()
    try:
        summary = json.loads(original)
        # as if the base run had reached its stop_accuracy at epoch 1, before the edit at 2
        stopped.write_bytes((base / f"checkpoints/epoch_{EDIT:04d}.pt").read_bytes())
        run_json.write_text(json.dumps({**summary, "checkpoint_epochs": [0, 1], "final_epoch": 1}))
        text = dry_run(workdir, config_path, *TARGETS)
        assert plan_of(text)["velpic_edit"] == 1
        assert "stopped at epoch 1 (its stop_accuracy), so the edit is made on its final checkpoint" in text
        edit_job = text[text.index("rule velpic_edit:") :].split("\n\n")[0]
        assert "checkpoints/epoch_0001.pt" in edit_job and f"epoch_{EDIT:04d}.pt" in edit_job
    finally:
        stopped.unlink(missing_ok=True)
        run_json.write_bytes(original)
        os.utime(run_json, ns=(times.st_atime_ns, times.st_mtime_ns))
