"""The Snakemake workflow end to end on a tiny real config, and what a change makes it rerun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from latentgen import stale
from latentgen.common import fingerprint
from latentgen.probes.names import PROBE_NAMES
from latentgen.scoring.checkpoint import SCORE_COLUMNS as SCORE_STAGE_COLUMNS
from latentgen.report.claims import read_claims
from workflow_helpers import (
    REAL_CHANGE,
    copy_workflow,
    dry_run,
    edited,
    inserted,
    plan_of,
    planned_jobs,
    snakemake,
    tiny_config,
    write_config,
)

pytestmark = pytest.mark.slow

# scores.parquet's columns: the score stage's, then which run of the setting (null: standard training)
SCORE_COLUMNS = [*SCORE_STAGE_COLUMNS, "edit_epoch"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, prepared_datasets):
    """A completed tiny workflow (both pairs, rates 0 and 80, epochs 0 and 2; MLP-MNIST at 80 % also retrained
    without the examples its label issues flag)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    config = tiny_config(
        prepared_datasets, figures={"numbers": [*range(1, 15), 16, 17]}, label_issues={"retrain": ["mlp-mnist"]}
    )
    config_path = write_config(workdir, config)
    snakemake(workdir, config_path, "--cores", "2")
    return workdir, config


def test_end_to_end_outputs(finished):
    workdir, config = finished
    scores = pd.read_parquet(workdir / "results" / "scores.parquet")
    assert list(scores.columns) == SCORE_COLUMNS
    assert set(scores.pair) == {"mlp-mnist", "cnn-fashion_mnist"}
    assert set(scores.corruption) == {0, 80} and set(scores.epoch) == {0, 2}
    # the default scoring.probes (all); transfer_bias for the MLP, whose head has a bias (the CNN's has none)
    assert set(scores.probe) == {"model", "transfer", "transfer_bias", "selected", *PROBE_NAMES}
    assert set(scores[scores.probe == "transfer_bias"].pair) == {"mlp-mnist"}
    assert set(scores.split) == {"train_corrupted", "train_true", "test", "holdout_corrupted", "holdout_true"}
    assert scores.accuracy.between(0, 1).all() and np.isfinite(scores.accuracy).all()
    masc = scores[scores.probe == "masc"]
    assert (masc.n_components >= 1).all()
    mlp_layers = set(scores[(scores.pair == "mlp-mnist") & (scores.probe == "velpic")].layer)
    assert mlp_layers == {"fc1", "fc2", "fc3", "fc4"}
    # 2 rates x 2 checkpoints x (model + 4 layers x (7 probes + transfer) + selected, + transfer_bias for the
    # MLP, whose head has a bias) x 5 splits
    per_checkpoint = 1 + 4 * (len(PROBE_NAMES) + 1) + 1
    assert len(scores) == 2 * 2 * ((per_checkpoint + 1) + per_checkpoint) * 5
    assert set(scores[scores.probe == "transfer"].layer) == {"fc1", "fc2", "fc3", "fc4", "flat"}
    selected = scores[scores.probe == "selected"]
    assert selected.layer.str.match(r"^(masc|velpic|logreg|ncm|knn|lda):(fc\d|flat)$").all()
    for number in (1, 2, 3, 4, 6, 8, 9, 11, 13, 16, 17):
        pdf = workdir / "results" / "figures" / f"fig{number}.pdf"
        assert pdf.read_bytes()[:4] == b"%PDF", pdf
    assert not (workdir / "results" / "figures" / "fig5.pdf").exists(), "appendix pairs are not configured"
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    columns = {f"{probe}_test_accuracy_percent" for probe in ("model", "velpic", "transfer", "selected")}
    assert columns <= set(summary.columns)
    assert summary.layer.str.contains(":").sum() == 4  # one selected line per run


def test_claims_table_of_the_tiny_run(finished):
    """The claims rule reads the scores and every run's history: setting rows at 80 % only, one row per run."""
    workdir, _ = finished
    claims = read_claims(workdir / "results" / "claims.csv")
    settings = claims[claims.claim != "run_learned"]
    assert set(settings.corruption) == {80} and set(settings.pair) == {"mlp-mnist", "cnn-fashion_mnist"}
    assert set(claims.outcome) <= {"holds", "fails", "inconclusive", "n/a"} and claims.criterion.notna().all()
    exact = settings[settings.claim == "transfer_equals_velpic"]
    # image by image, on the float32 forward pass: no test image where the transfer and VeLPIC differ
    assert len(exact) == 2 and set(exact.outcome) == {"holds"} and set(exact.value) == {0.0}
    assert set(exact.layer) == {"all"}  # every layer's transfer equals its VeLPIC
    for claim in (
        "probe_falls_less_heldout_layer",
        "selected_beats_model",
        "selected_near_test_best",
        "transfer_other_layer_beats_last",
        "transfer_heldout_layer_vs_last",
        "best_probe_family",
    ):
        assert (settings.claim == claim).sum() >= 2, claim
    learned = claims[claims.claim == "run_learned"]
    assert sorted(zip(learned.pair, learned.corruption)) == [
        ("cnn-fashion_mnist", 0),
        ("cnn-fashion_mnist", 80),
        ("mlp-mnist", 0),
        ("mlp-mnist", 80),
    ]
    assert set(learned.epoch) == {2}  # two epochs trained: the last one is checked


def test_the_clean_variant_trains_without_the_flagged_examples(finished):
    """MLP-MNIST at 80 % retrained (run .../clean) on its fitted examples minus those the truth-free choice flags at
    the final checkpoint; its test accuracy beside the memorized model's and the repair's; two claims rows."""
    workdir, _ = finished
    results = workdir / "results"
    base = json.loads((results / "runs/mlp-mnist/c80/s0/run.json").read_text())
    clean = json.loads((results / "runs/mlp-mnist/c80/s0/clean/run.json").read_text())
    excluded = clean["excluded"]
    metrics = pd.read_parquet(results / "label_issues/mlp-mnist/c80/s0_metrics.parquet")
    chosen = metrics[metrics.is_choice & metrics.checkpoint.isin(["final", "peak+final"])].iloc[0]
    flags = pd.read_parquet(results / "label_issues/mlp-mnist/c80/s0.parquet")
    flagged = flags[(flags.epoch == chosen.epoch) & (flags.layer == chosen.layer) & (flags.probe == chosen.method)]
    flagged_index = set(flagged.loc[flagged.is_label_issue, "index"])
    assert (excluded["method"], excluded["layer"], excluded["n"]) == (chosen.method, chosen.layer, len(flagged_index))
    assert 0 < excluded["n"] < len(flagged)
    n_fit = len(flagged) - base["held_out"]["n"]
    assert excluded["n_trained"] == n_fit - excluded["n_removed_from_fit"] and excluded["n_removed_from_fit"] > 0
    assert clean["held_out"] == base["held_out"]  # the same slice withheld: scoring and repair rank on it
    assert clean["settings"]["excluded"] == excluded["indices_sha256"] and base["settings"]["excluded"] is None
    assert clean["final_epoch"] == base["final_epoch"]
    table = pd.read_parquet(results / "retrained/mlp-mnist/c80/s0.parquet")
    assert list(table.network) == ["memorized", "repaired", "retrained_clean"]
    assert set(table.model) == {"mlp"}  # the run's identity columns
    scores = pd.read_parquet(results / "scores.parquet")
    model = scores[(scores.pair == "mlp-mnist") & (scores.corruption == 80) & (scores.probe == "model")]
    final_test = model[(model.split == "test") & (model.epoch == base["final_epoch"])]
    assert table.accuracy.iloc[0] == pytest.approx(final_test.accuracy.iloc[0])
    assert table.n_samples.nunique() == 1 and table.n_excluded.iloc[0] == excluded["n"]
    claims = read_claims(results / "claims.csv")
    rows = claims[claims.claim.str.startswith("retrained_beats_")]
    assert sorted(rows.claim) == ["retrained_beats_memorized", "retrained_beats_repaired"]
    assert set(rows.pair) == {"mlp-mnist"} and set(rows.corruption) == {80}
    assert set(rows.outcome) <= {"holds", "fails", "inconclusive"} and rows.ci_low.le(rows.ci_high).all()
    assert not (results / "runs/cnn-fashion_mnist/c80/s0/clean").exists()  # retrain names mlp-mnist only


def test_transfer_accuracy_equals_velpic_on_the_last_layer(finished):
    workdir, _ = finished
    scores = pd.read_parquet(workdir / "results" / "scores.parquet")
    keys = ["pair", "corruption", "seed", "epoch", "layer", "split"]
    transfer = scores[scores.probe == "transfer"].set_index(keys).accuracy
    velpic = scores[scores.probe == "velpic"].set_index(keys).accuracy
    assert len(transfer) == 2 * 2 * 2 * 4 * 5  # every layer, every split
    # float32 activations: the modified model's forward pass and VeLPIC see the same numbers
    pd.testing.assert_series_equal(transfer, velpic.loc[transfer.index], check_names=False)


def test_a_finished_workflow_plans_nothing(finished):
    workdir, config = finished
    assert planned_jobs(workdir, write_config(workdir, config, "same.yaml")) == {}


def test_masc_variance_reruns_scoring_aggregation_and_figures_only(finished):
    workdir, config = finished
    changed = dict(config, scoring={"masc_variance": 0.9})
    plan = planned_jobs(workdir, write_config(workdir, changed, "variance.yaml"))
    assert plan["score"] == 4 and plan["aggregate"] == 1 and plan["figure"] == 11
    # no standard run retrains: only the clean variant's job, which reads the rewritten flags (and restores the
    # run when they are the same)
    assert plan["train"] == 1 and "corrupt_labels" not in plan


def test_changing_the_probe_list_reruns_scoring_and_downstream_only(finished):
    """scoring.probes is a params value of the score rule: removing (or adding) a probe replans the score
    jobs and what reads them, never training (and the jobs read the tiny config's kept activations: see
    test_a_changed_probe_list_rescores_kept_activations_without_extracting)."""
    workdir, config = finished
    fewer = [name for name in PROBE_NAMES if name != "knn"]
    changed = dict(config, scoring={**config["scoring"], "probes": fewer})
    plan = planned_jobs(workdir, write_config(workdir, changed, "probes.yaml"))
    assert plan["score"] == 4 and plan["aggregate"] == 1, plan
    assert not {"corrupt_labels", "prepare_dataset"} & set(plan) and plan["train"] == 1, plan  # the clean variant


def test_figure_option_reruns_only_figures(finished):
    workdir, config = finished
    changed = dict(config, figures={"numbers": list(range(1, 15)), "style": {"palette": "deep"}})
    plan = planned_jobs(workdir, write_config(workdir, changed, "style.yaml"))
    assert set(plan) == {"figure", "label_issue_figure", "all"} and plan["figure"] == 9


def test_learning_rate_reruns_only_that_models_runs(finished):
    workdir, config = finished
    changed = tiny_config(config["datasets_dir"], pairs={"cnn-fashion_mnist": {"lr": 0.002}})
    plan = planned_jobs(workdir, write_config(workdir, changed, "lr.yaml"))
    assert plan["train"] == 2, plan  # the cnn runs at 0 % and 80 %; the mlp runs stay
    assert "corrupt_labels" not in plan and "prepare_dataset" not in plan
    mlp_plan = planned_jobs(
        workdir, write_config(workdir, changed, "lr.yaml"), "results/scores/mlp-mnist/c80/s0.parquet"
    )
    assert mlp_plan == {}


def test_adding_a_seed_or_rate_adds_only_the_new_runs(finished):
    workdir, config = finished
    more_seeds = dict(config, seeds=[0, 1])
    plan = planned_jobs(workdir, write_config(workdir, more_seeds, "seeds.yaml"))
    assert plan["train"] == 5 and plan["corrupt_labels"] == 2  # 4 runs, and MLP-MNIST 80 %'s clean variant
    more_rates = dict(config, corruption=[0, 40, 80])
    plan = planned_jobs(workdir, write_config(workdir, more_rates, "rates.yaml"))
    assert plan["train"] == 3 and "corrupt_labels" not in plan, plan  # 2 runs at 40 %, and MLP-MNIST's clean one
    for run in ("mlp-mnist/c80/s0", "cnn-fashion_mnist/c0/s0"):
        assert (
            planned_jobs(workdir, write_config(workdir, more_rates, "rates.yaml"), f"results/scores/{run}.parquet")
            == {}
        )


# What a code change reruns: the finished copy's own scripts and package are edited (and restored).
SCORING_AND_AFTER = {
    "score": 4,
    "label_issues": 4,  # they read the score tables (the peak, the held-out choice)
    # the clean variant reads the flags: its job reruns, and restores the run when the flags are the same
    # (tests/training/test_training.py, test_a_finished_run_is_restored_...)
    "train": 1,
    "retrain_comparison": 1,
    "label_issue_metrics": 1,
    "label_issue_figure": 1,
    "aggregate": 1,
    "claims": 1,
    "summary": 1,
    "figure": 11,
    "all": 1,
}
PROBE_CHANGE = ("src/latentgen/probes/paper.py", "VeLPIC", REAL_CHANGE)


def test_a_touch_a_comment_or_a_docstring_reruns_nothing(finished):
    workdir, config = finished
    script = workdir / "workflow" / "scripts" / "score.py"
    with (
        edited(script, "params, wildcards =", "# a comment\nparams, wildcards ="),
        inserted(workdir / "src/latentgen/probes/paper.py", "VeLPIC", "# a comment"),
        inserted(workdir / "src/latentgen/report/figures.py", "rate_label", '"""A docstring."""'),
    ):
        for path in (workdir / "workflow" / "scripts").iterdir():
            path.touch()
        assert planned_jobs(workdir, write_config(workdir, config, "same.yaml")) == {}


def test_a_probe_change_rescores_every_run_and_never_retrains_a_standard_run_or_reextracts(finished):
    workdir, config = finished
    with inserted(workdir / PROBE_CHANGE[0], *PROBE_CHANGE[1:]):
        text = dry_run(workdir, write_config(workdir, config, "same.yaml"))
    assert plan_of(text) == SCORING_AND_AFTER  # score: all 4 runs
    assert "Params have changed since last execution" in text and "{'stage': 'score'" in text
    summary = stale.report(stale.planned_jobs(text))
    assert "score: 4 jobs (code changed in latentgen.probes.paper)" in summary, summary
    assert "aggregate: 1 job (follows score)" in summary, summary


def test_figure_code_reruns_figures_only(finished):
    workdir, config = finished
    with inserted(workdir / "src/latentgen/report/figures.py", "rate_label", REAL_CHANGE):
        plan = planned_jobs(workdir, write_config(workdir, config, "same.yaml"))
    assert plan == {"figure": 11, "all": 1}


def test_extraction_code_reruns_scoring(finished):
    """The score job extracts: a change to the extraction's code reruns it, and its kept activations no
    longer match (test_kept_activations_of_other_extraction_code_are_extracted_again)."""
    workdir, config = finished
    with inserted(workdir / "src/latentgen/scoring/activations.py", "_extract_split", REAL_CHANGE):
        plan = planned_jobs(workdir, write_config(workdir, config, "same.yaml"))
    assert plan == SCORING_AND_AFTER


def test_training_code_reruns_nothing_until_its_version_is_raised(finished):
    """Retraining costs GPU-days: a change to the training code (its loop, the CNN) retrains nothing by itself
    (test_fingerprint.py fails until it is recorded); raising training_code_version retrains every run."""
    workdir, config = finished
    config_path = write_config(workdir, config, "same.yaml")
    with inserted(workdir / "src/latentgen/training/trainer.py", "train", REAL_CHANGE):
        assert planned_jobs(workdir, config_path) == {}
    with inserted(workdir / "src/latentgen/training/models.py", "CNN", REAL_CHANGE):
        plan = planned_jobs(workdir, config_path)
    assert plan == SCORING_AND_AFTER  # extraction and scoring run the model's code too
    version = fingerprint.read_record(workdir / "workflow")["training_code_version"]
    with edited(
        workdir / "workflow" / fingerprint.RECORD_NAME,
        f'"training_code_version": {version}',
        f'"training_code_version": {version + 1}',
    ):
        text = dry_run(workdir, config_path)
    plan = plan_of(text)
    # score is planned once the runs are retrained (train is a checkpoint)
    assert plan["train"] == 5 and plan["corrupt_labels"] == 2, plan  # with MLP-MNIST 80 %'s clean variant
    assert f"training code version {version} -> {version + 1}" in stale.report(stale.planned_jobs(text))


def test_after_the_rerun_of_a_code_change_nothing_is_planned(finished, tmp_path):
    """One run's scores keep the rerun short; a copy keeps `finished` as it is for the other tests."""
    workdir, config = finished
    rerun = tmp_path / "rerun"
    shutil.copytree(workdir, rerun, symlinks=True)
    config_path = write_config(rerun, config, "same.yaml")
    target = "results/scores/mlp-mnist/c80/s0.parquet"
    with inserted(rerun / PROBE_CHANGE[0], *PROBE_CHANGE[1:]):
        assert planned_jobs(rerun, config_path, target) == {"score": 1}
        snakemake(rerun, config_path, "--cores", "2", target)
        assert planned_jobs(rerun, config_path, target) == {}
    log = (rerun / "results/logs/score/mlp-mnist/c80/s0.log").read_text()
    assert log.count("scored in") == 2 and "extracted" not in log, log  # the code changed, not the activations


def test_a_changed_probe_list_rescores_kept_activations_without_extracting(finished, tmp_path):
    """Adding or removing a probe reruns scoring only: the score job reads the kept activations (never
    extracts them again) and rescores every checkpoint; a rerun with unchanged settings keeps every score."""
    workdir, config = finished
    rerun = tmp_path / "rerun"
    shutil.copytree(workdir, rerun, symlinks=True)
    activations = rerun / "results/activations/mlp-mnist/c0/s0"
    before = {path: path.stat().st_mtime_ns for path in activations.rglob("*.npy")}
    assert len(before) > 0
    fewer = dict(config, scoring={**config["scoring"], "probes": [name for name in PROBE_NAMES if name != "knn"]})
    target = "results/scores/mlp-mnist/c0/s0.parquet"
    snakemake(rerun, write_config(rerun, fewer, "fewer.yaml"), "--cores", "1", target)
    log = (rerun / "results/logs/score/mlp-mnist/c0/s0.log").read_text()
    assert log.count("scored in") == 2 and "extracted" not in log, log
    assert {path: path.stat().st_mtime_ns for path in activations.rglob("*.npy")} == before
    table = pd.read_parquet(rerun / target)
    assert "knn" not in set(table.probe) and {"masc", "velpic", "transfer"} <= set(table.probe)
    # activations.keep is a param too: switching it off reruns the job, which keeps every checkpoint's scores
    # (they do not depend on it) and deletes the activations
    dropped = dict(fewer, activations={**config["activations"], "keep": False})
    snakemake(rerun, write_config(rerun, dropped, "dropped.yaml"), "--cores", "1", target)
    log = (rerun / "results/logs/score/mlp-mnist/c0/s0.log").read_text()
    assert log.count("scores kept from an earlier job") == 2, log
    assert not activations.exists()
    pd.testing.assert_frame_equal(pd.read_parquet(rerun / target), table)


def test_repair_a_pipeline_checkpoint_from_the_command_line(finished, tmp_path):
    """`latentgen repair` on a checkpoint the pipeline wrote: the slice the run's training withheld (the one its
    scoring ranks on), so its candidates' held-out accuracies are the scores' VeLPIC rows, and the repaired
    model's test accuracy is the scored transfer's."""
    workdir, config = finished
    checkpoint = workdir / "results/runs/mlp-mnist/c80/s0/checkpoints/epoch_0002.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "latentgen.repair",
        str(checkpoint),
        "--out",
        str(tmp_path / "repaired"),
        "--datasets-dir",
        config["datasets_dir"],
        "--device",
        "cpu",
        "--batch-size",
        str(config["activations"]["batch_size"]),
    ]  # the extraction's batches: equal bits
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "repaired" / "report.json").read_text())
    scores = pd.read_parquet(workdir / "results/scores/mlp-mnist/c80/s0.parquet")
    at = scores[(scores.epoch == 2)]
    velpic = at[at.probe == "velpic"].pivot(index="layer", columns="split", values="accuracy")
    for candidate in report["candidates"]:
        assert candidate["holdout_noisy_accuracy"] == velpic.loc[candidate["layer"], "holdout_corrupted"]
        assert candidate["test_accuracy"] == velpic.loc[candidate["layer"], "test"]
    transfer = at[(at.probe == "transfer") & (at.layer == report["layer"]) & (at.split == "test")].accuracy.item()
    assert report["repaired_model"]["test_accuracy"] == transfer
    assert report["source"]["kind"] == "pipeline" and report["chosen_on_held_out_data"]
    assert (tmp_path / "repaired" / "model.pt").exists() and "chose velpic on" in result.stdout
    failed = subprocess.run(
        [*command[:3], str(workdir / "results/runs/mlp-mnist/c80/s0/checkpoints/none.pt"), *command[4:]],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert failed.returncode == 2 and "none.pt does not exist" in failed.stderr


def test_one_figure_builds_only_what_it_needs(tmp_path, prepared_datasets):
    """fig3 shows the main pairs at 20-80 %: the 0 % runs are not trained for it."""
    workdir = copy_workflow(tmp_path)
    config_path = write_config(workdir, tiny_config(prepared_datasets))
    plan = planned_jobs(workdir, config_path, "results/figures/fig3.pdf")
    assert plan["train"] == 2 and plan["figure"] == 1 and "aggregate" not in plan, plan


def test_scored_activations_are_deleted_unless_kept(finished, tmp_path):
    """With activations.keep off, the score job extracts each checkpoint (float16 here: new activations, so no
    kept ones match), scores it and deletes its activations; the fragments stay for a rerun to keep."""
    workdir, config = finished
    rerun = tmp_path / "rerun"
    shutil.copytree(workdir, rerun, symlinks=True)
    temporary = dict(config, activations={**config["activations"], "keep": False, "dtype": "float16"})
    target = "results/scores/mlp-mnist/c80/s0.parquet"
    snakemake(rerun, write_config(rerun, temporary, "temporary.yaml"), "--cores", "1", target)
    log = (rerun / "results/logs/score/mlp-mnist/c80/s0.log").read_text()
    assert log.count("extracted float16 activations") == 2 and log.count("scored in") == 2, log
    assert (rerun / target).exists()
    assert (rerun / "results/scores/mlp-mnist/c80/s0/epoch_0000.parquet").exists()  # what a rerun keeps
    assert not (rerun / "results/activations/mlp-mnist/c80/s0").exists()
