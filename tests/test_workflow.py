"""The Snakemake workflow end to end on a tiny real config, and what a change makes it rerun."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from latentgen.probe_names import PROBE_NAMES
from workflow_helpers import copy_workflow, planned_jobs, snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow

SCORE_COLUMNS = ["model", "dataset", "pair", "corruption", "seed", "epoch", "layer", "probe", "split",
                 "accuracy", "n_components", "fit_seconds"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, prepared_datasets):
    """A completed tiny workflow (both pairs, rates 0 and 80, epochs 0 and 2)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    config = tiny_config(prepared_datasets)
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
    assert set(scores.probe) == {"model", "transfer", "transfer_bias", *PROBE_NAMES}
    assert set(scores[scores.probe == "transfer_bias"].pair) == {"mlp-mnist"}
    assert set(scores.split) == {"train_corrupted", "train_true", "test"}
    assert scores.accuracy.between(0, 1).all() and np.isfinite(scores.accuracy).all()
    masc = scores[scores.probe == "masc"]
    assert (masc.n_components >= 1).all()
    mlp_layers = set(scores[(scores.pair == "mlp-mnist") & (scores.probe == "velpic")].layer)
    assert mlp_layers == {"fc1", "fc2", "fc3", "fc4"}
    # 2 pairs x 2 rates x 2 checkpoints x (model + 4 layers x 7 probes + transfer) x 3 splits, and the
    # MLP's transfer_bias: 2 rates x 2 checkpoints x 3 splits
    assert len(scores) == 2 * 2 * 2 * (1 + 4 * len(PROBE_NAMES) + 1) * 3 + 2 * 2 * 3
    for number in (1, 2, 3, 4, 6, 8, 9, 11, 13):
        pdf = workdir / "results" / "figures" / f"fig{number}.pdf"
        assert pdf.read_bytes()[:4] == b"%PDF", pdf
    assert not (workdir / "results" / "figures" / "fig5.pdf").exists(), "appendix pairs are not configured"
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    assert {"model_test_accuracy", "velpic_test_accuracy", "transfer_test_accuracy"} <= set(summary.columns)


def test_claims_table_of_the_tiny_run(finished):
    """The claims rule reads the scores and every run's history: setting rows at 80 % only, one row per run."""
    workdir, _ = finished
    claims = pd.read_csv(workdir / "results" / "claims.csv")
    settings = claims[claims.claim != "run_learned"]
    assert set(settings.corruption) == {80} and set(settings.pair) == {"mlp-mnist", "cnn-fashion_mnist"}
    assert set(claims.holds) <= {"yes", "no"} and claims.criterion.notna().all()
    exact = settings[settings.claim == "transfer_equals_velpic"]
    assert len(exact) == 2 and set(exact.holds) == {"yes"} and set(exact.value) == {0.0}
    learned = claims[claims.claim == "run_learned"]
    assert sorted(zip(learned.pair, learned.corruption)) == [("cnn-fashion_mnist", 0), ("cnn-fashion_mnist", 80),
                                                            ("mlp-mnist", 0), ("mlp-mnist", 80)]
    assert set(learned.epoch) == {2}  # two epochs trained: the last one is checked


def test_transfer_accuracy_equals_velpic_on_the_last_layer(finished):
    workdir, _ = finished
    scores = pd.read_parquet(workdir / "results" / "scores.parquet")
    keys = ["pair", "corruption", "seed", "epoch", "layer", "split"]
    transfer = scores[scores.probe == "transfer"].set_index(keys).accuracy
    velpic = scores[scores.probe == "velpic"].set_index(keys).accuracy
    assert len(transfer) == 2 * 2 * 2 * 3
    # float32 activations: the modified model's forward pass and VeLPIC see the same numbers
    pd.testing.assert_series_equal(transfer, velpic.loc[transfer.index], check_names=False)


def test_a_finished_workflow_plans_nothing(finished):
    workdir, config = finished
    assert planned_jobs(workdir, write_config(workdir, config, "same.yaml")) == {}


def test_masc_variance_reruns_scoring_aggregation_and_figures_only(finished):
    workdir, config = finished
    changed = dict(config, scoring={"masc_variance": 0.9})
    plan = planned_jobs(workdir, write_config(workdir, changed, "variance.yaml"))
    assert plan["score"] == 8 and plan["collect_run"] == 4 and plan["aggregate"] == 1 and plan["figure"] == 9
    assert "train" not in plan and "extract" not in plan and "corrupt_labels" not in plan


def test_changing_the_probe_list_reruns_scoring_and_downstream_only(finished):
    """scoring.probes is a params value of the score rule: removing (or adding) a probe replans the score
    jobs and what reads them, never training or extraction (the tiny config keeps its activations)."""
    workdir, config = finished
    fewer = [name for name in PROBE_NAMES if name != "knn"]
    changed = dict(config, scoring={**config["scoring"], "probes": fewer})
    plan = planned_jobs(workdir, write_config(workdir, changed, "probes.yaml"))
    assert plan["score"] == 8 and plan["collect_run"] == 4 and plan["aggregate"] == 1, plan
    assert not {"train", "extract", "corrupt_labels", "prepare_dataset"} & set(plan), plan


def test_figure_option_reruns_only_figures(finished):
    workdir, config = finished
    changed = dict(config, figures={"numbers": list(range(1, 15)), "style": {"palette": "deep"}})
    plan = planned_jobs(workdir, write_config(workdir, changed, "style.yaml"))
    assert set(plan) == {"figure", "all"} and plan["figure"] == 9


def test_learning_rate_reruns_only_that_models_runs(finished):
    workdir, config = finished
    changed = tiny_config(config["datasets_dir"], pairs={"cnn-fashion_mnist": {"lr": 0.002}})
    plan = planned_jobs(workdir, write_config(workdir, changed, "lr.yaml"))
    assert plan["train"] == 2, plan  # the cnn runs at 0 % and 80 %; the mlp runs stay
    assert "corrupt_labels" not in plan and "prepare_dataset" not in plan
    mlp_plan = planned_jobs(workdir, write_config(workdir, changed, "lr.yaml"),
                            "results/scores/mlp-mnist/c80/s0.parquet")
    assert mlp_plan == {}


def test_adding_a_seed_or_rate_adds_only_the_new_runs(finished):
    workdir, config = finished
    more_seeds = dict(config, seeds=[0, 1])
    plan = planned_jobs(workdir, write_config(workdir, more_seeds, "seeds.yaml"))
    assert plan["train"] == 4 and plan["corrupt_labels"] == 2
    more_rates = dict(config, corruption=[0, 40, 80])
    plan = planned_jobs(workdir, write_config(workdir, more_rates, "rates.yaml"))
    assert plan["train"] == 2 and "corrupt_labels" not in plan, plan
    for run in ("mlp-mnist/c80/s0", "cnn-fashion_mnist/c0/s0"):
        assert planned_jobs(workdir, write_config(workdir, more_rates, "rates.yaml"),
                            f"results/scores/{run}.parquet") == {}


def test_editing_scripts_never_retrains(finished):
    workdir, config = finished
    config_path = write_config(workdir, config, "same.yaml")
    for script in ("figure.py", "score.py"):
        path = workdir / "workflow" / "scripts" / script
        original = path.read_text()
        try:
            path.write_text(original + "\n# an edit\n")
            plan = planned_jobs(workdir, config_path)
            assert "train" not in plan and "extract" not in plan, (script, plan)
        finally:
            path.write_text(original)


def test_one_figure_builds_only_what_it_needs(tmp_path, prepared_datasets):
    """fig3 shows the main pairs at 20-80 %: the 0 % runs are not trained for it."""
    workdir = copy_workflow(tmp_path)
    config_path = write_config(workdir, tiny_config(prepared_datasets))
    plan = planned_jobs(workdir, config_path, "results/figures/fig3.pdf")
    assert plan["train"] == 2 and plan["figure"] == 1 and "aggregate" not in plan, plan


def test_scored_activations_are_deleted_unless_kept(tmp_path, prepared_datasets):
    workdir = copy_workflow(tmp_path)
    config = tiny_config(prepared_datasets, activations={"keep": False, "dtype": "float16"},
                         pairs={"mlp-mnist": {"max_epochs": 1}})
    config_path = write_config(workdir, config)
    snakemake(workdir, config_path, "--cores", "2", "results/scores/mlp-mnist/c80/s0/epoch_0000.parquet")
    assert (workdir / "results/scores/mlp-mnist/c80/s0/epoch_0000.parquet").exists()
    assert not (workdir / "results/activations/mlp-mnist/c80/s0/epoch_0000").exists()
