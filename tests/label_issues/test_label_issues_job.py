"""The label-issue stage (latentgen.pipeline.label_issues) on a tiny pipeline run: the MLP trained by the train
stage on 400 synthetic images with 40 % (and 0 %) corrupted labels, and a score table whose peak is known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from label_issues_synthetic import TINY_EPOCHS, score_table, tiny_prepared_mnist, tiny_run

from latentgen import pipeline
from latentgen.common.fileio import parquet_metadata, write_parquet
from latentgen.label_issues import label_issue_metrics
from latentgen.label_issues.choices import PEAK_ON_HOLDOUT, PEAK_ON_TEST
from latentgen.label_issues.tables import BASELINES, ISSUE_TABLE_COLUMNS, METRICS_COLUMNS
from latentgen.pipeline import LabelIssueJob, LabelIssueSettings

LAYERS, PROBES, RESAMPLES = ["fc2", "fc4"], ["velpic", "ncm"], 20
# The held-out curve peaks at epoch 1, the test curve at the final epoch: the peak must come from the held-out one.
HOLDOUT_CURVE = {0: 0.2, 1: 0.7, 2: 0.6, 3: 0.5}
TEST_CURVE = {0: 0.1, 1: 0.5, 2: 0.6, 3: 0.9}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("label_issue_job")
    prepared = tiny_prepared_mnist(root / "datasets")
    return root, {rate: tiny_run(root, prepared, rate) for rate in (0, 40)}


def _flag(root, run, scores: pd.DataFrame, name: str):
    scores_path = root / "results" / "scores" / f"{name}.parquet"
    write_parquet(scores, scores_path)
    out, metrics_out = root / "out" / f"{name}.parquet", root / "out" / f"{name}_metrics.parquet"
    job = LabelIssueJob(
        run.prepared_dir,
        run.labels,
        run.run_json,
        run.checkpoints,
        scores_path,
        out,
        metrics_out,
        "mlp-mnist",
        run.corruption,
        0,
    )
    settings = LabelIssueSettings(LAYERS, PROBES, 5, "peak_and_final", RESAMPLES, 0.99, 128, "cpu")
    pipeline.label_issues(job, settings)
    return pd.read_parquet(out), pd.read_parquet(metrics_out), out


@pytest.fixture(scope="module")
def flagged(tiny):
    root, runs = tiny
    return _flag(root, runs[40], score_table(HOLDOUT_CURVE, TEST_CURVE, "ncm:fc2"), "c40")


def test_the_peak_and_final_checkpoints_are_flagged_with_every_method(flagged, tiny):
    issues, metrics, _ = flagged
    assert list(issues.columns) == ISSUE_TABLE_COLUMNS
    assert sorted(issues["epoch"].unique()) == [1, TINY_EPOCHS[-1]]  # the held-out peak, not the test one (3 = final)
    methods = {*PROBES, *BASELINES}
    assert set(issues["probe"]) == methods
    n = 400
    assert len(issues) == 2 * (len(LAYERS) * len(PROBES) + len(BASELINES)) * n
    assert set(issues.loc[issues["probe"].isin(PROBES), "layer"]) == set(LAYERS)
    assert set(issues.loc[issues["probe"] == "deep_knn", "layer"]) == {"fc4"}  # the last probed layer
    labels = pd.read_parquet(tiny[1][40].labels)
    train = labels[labels["split"] == "train"]
    for _, rows in issues.groupby(["epoch", "layer", "probe"]):
        assert np.array_equal(rows["index"], train["index"])  # the label table's index, in its order
        assert np.array_equal(rows["given_label"], train["c40"])
        assert np.array_equal(rows["is_wrong"], train["c40"] != train["true"])


def test_metrics_are_those_of_the_flags_against_the_corruption_mask(flagged):
    issues, metrics, out = flagged
    assert list(metrics.columns[-len(METRICS_COLUMNS) :]) == METRICS_COLUMNS
    assert len(metrics) == issues.groupby(["epoch", "layer", "probe"]).ngroups
    assert dict(zip(metrics["epoch"], metrics["checkpoint"])) == {1: "peak", 3: "final"}
    assert set(metrics["peak_chosen_on"]) == {PEAK_ON_HOLDOUT}
    for row in metrics.itertuples():
        rows = issues[(issues["epoch"] == row.epoch) & (issues["layer"] == row.layer) & (issues["probe"] == row.method)]
        expected = label_issue_metrics(rows["is_wrong"], rows["is_label_issue"], rows["label_score"])
        assert row.auprc == pytest.approx(expected["auprc"]) and row.f1 == pytest.approx(expected["f1"])
        assert row.kind == ("baseline" if row.method in BASELINES else "probe")
        assert len(row.auprc_bootstrap) == RESAMPLES
    base_rate = issues.loc[issues["probe"] == "velpic", "is_wrong"].mean()
    assert np.allclose(metrics["base_rate"], base_rate) and 0.25 < base_rate < 0.45  # 40 % re-drawn, 1/10 unchanged
    chosen = metrics[metrics["is_choice"]]
    assert sorted(chosen["epoch"]) == [1, 3] and set(zip(chosen["method"], chosen["layer"])) == {("ncm", "fc2")}
    assert parquet_metadata(out)["peak_epoch"] == 1


def test_the_probes_find_the_wrong_labels_of_a_learned_run(flagged):
    """The network learned the classes (synthetic class patterns): its layers rank wrong labels far above the
    base rate at its peak."""
    _, metrics, _ = flagged
    peak = metrics[(metrics["checkpoint"] == "peak") & (metrics["kind"] == "probe")]
    assert (peak["auprc"] > 2 * peak["base_rate"]).all(), peak[["layer", "method", "auprc", "base_rate"]]


def test_without_a_held_out_slice_the_peak_is_the_test_peak_and_said_so(tiny):
    root, runs = tiny
    _, metrics, out = _flag(root, runs[40], score_table(None, TEST_CURVE, None), "c40_no_holdout")
    assert set(metrics["epoch"]) == {3} and set(metrics["checkpoint"]) == {"peak+final"}
    assert set(metrics["peak_chosen_on"]) == {PEAK_ON_TEST} and "ORACLE" in PEAK_ON_TEST
    chosen = metrics[metrics["is_choice"]]
    assert list(zip(chosen["method"], chosen["layer"])) == [("velpic", "fc4")]  # the last flagged layer
    assert "no held-out choice" in chosen["choice"].iloc[0]
    assert parquet_metadata(out)["peak_chosen_on"] == PEAK_ON_TEST


def test_a_run_without_wrong_labels_keeps_its_rows_with_na_metrics(tiny):
    root, runs = tiny
    _, metrics, _ = _flag(root, runs[0], score_table(HOLDOUT_CURVE, TEST_CURVE, "velpic:fc4"), "c0")
    assert len(metrics) == 2 * (len(LAYERS) * len(PROBES) + len(BASELINES))
    assert (metrics["base_rate"] == 0).all() and (metrics["n"] == 400).all()
    for name in ("precision", "recall", "f1", "auprc", "auroc"):
        assert metrics[name].isna().all(), name
    assert all(len(replicates) == 0 for replicates in metrics["auprc_bootstrap"])
    assert math.isfinite(metrics["n_flagged"].sum())
