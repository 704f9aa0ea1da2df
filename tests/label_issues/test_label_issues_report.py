"""The label-issue stage's choices (checkpoints, the truth-free probe and layer), its claims rows and its figure, on
metrics tables whose every number is known."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pandas as pd
import pytest
from label_issues_synthetic import score_table

from latentgen.common.stats import Outcome
from latentgen.label_issues.choices import PEAK_ON_HOLDOUT, PEAK_ON_TEST, checkpoints_to_flag, truth_free_choice
from latentgen.label_issues.metrics import bootstrap_auprc, bootstrap_counts, label_issue_metrics
from latentgen.label_issues.tables import BASELINES
from latentgen.report.claims import CLAIM_COLUMNS
from latentgen.report.claims_label_issues import label_issue_claim_rows
from latentgen.report.label_issue_figure import label_issue_plot_data, plot_label_issue_figure

# ----------------------------------------------------------------------------------------------------------------
# Choices
# ----------------------------------------------------------------------------------------------------------------


def test_the_peak_is_read_from_the_held_out_slice_and_never_from_the_test_set():
    scores = score_table({0: 0.3, 5: 0.8, 10: 0.8, 15: 0.4}, {0: 0.1, 5: 0.2, 10: 0.3, 15: 0.9}, "velpic:fc1")
    plan = checkpoints_to_flag(scores, [0, 5, 10, 15], "peak_and_final")
    assert plan.roles == {5: "peak", 15: "final"} and plan.peak_chosen_on == PEAK_ON_HOLDOUT  # a tie: the earliest
    every = checkpoints_to_flag(scores, [0, 5, 10, 15], "all")
    assert every.roles == {0: "checkpoint", 5: "peak", 10: "checkpoint", 15: "final"}


def test_without_held_out_rows_the_test_peak_is_an_oracle_said_so():
    plan = checkpoints_to_flag(score_table(None, {0: 0.1, 5: 0.7, 10: 0.3}, None), [0, 5, 10], "peak_and_final")
    assert plan.roles == {5: "peak", 10: "final"} and plan.peak_chosen_on == PEAK_ON_TEST
    with pytest.raises(ValueError, match="no rows of the model"):
        checkpoints_to_flag(score_table(None, {0: 0.1}, None), [5], "peak_and_final")


@pytest.mark.parametrize(
    ("selected", "probes", "expected"),
    [
        ("ncm:fc2", ["velpic", "ncm"], ("ncm", "fc2", "the held-out choice ncm:fc2")),
        ("masc:fc2", ["velpic", "ncm"], ("velpic", "fc2", "the layer of the held-out choice masc:fc2, with velpic")),
        ("velpic:fc1", ["velpic"], ("velpic", "fc4", "the last flagged layer fc4, with velpic (the held-out")),
        (None, ["ncm"], ("ncm", "fc4", "the last flagged layer fc4, with ncm (no held-out choice)")),
    ],
)
def test_the_truth_free_choice_follows_the_held_out_choice(selected, probes, expected):
    scores = score_table({3: 0.5}, {3: 0.5}, selected)
    probe, layer, rule = truth_free_choice(scores, 3, ["fc2", "fc4"], probes)
    assert (probe, layer) == expected[:2] and rule.startswith(expected[2])


# ----------------------------------------------------------------------------------------------------------------
# Metrics tables with known rankings
# ----------------------------------------------------------------------------------------------------------------


def _metrics_rows(seed: int, strength: dict[str, float], corruption: int = 40, n: int = 1500) -> pd.DataFrame:
    """One run's final-checkpoint metrics: each method ranks wrong labels with signal ``strength[method]``."""
    rng = np.random.default_rng(seed)
    is_wrong = rng.random(n) < (corruption / 100 * 0.9)
    counts = bootstrap_counts(n, 100, seed)
    rows = []
    for (method, layer), signal in strength.items():
        label_score = 1.0 - (rng.normal(size=n) + signal * is_wrong)
        metrics = label_issue_metrics(is_wrong, np.zeros(n, bool), label_score)
        rows.append(
            {
                "pair": "mlp-mnist", "corruption": corruption, "seed": seed, "epoch": 25, "checkpoint": "final",
                "layer": layer, "method": method, "kind": "baseline" if method in BASELINES else "probe",
                **metrics, "is_choice": (method, layer) == ("velpic", "fc2"), "choice": "held-out choice velpic:fc2",
                "auprc_bootstrap": list(bootstrap_auprc(is_wrong, label_score, counts)) if is_wrong.any() else [],
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


STRENGTHS = {
    ("velpic", "fc1"): 2.0,
    ("velpic", "fc2"): 2.5,
    ("network_softmax", "output"): 0.3,
    ("network_disagreement", "output"): 0.4,
    ("pixel_logreg", "input"): 1.0,
    ("deep_knn", "fc4"): 2.5,
}


def test_claims_hold_against_the_network_and_are_undecided_against_an_equal_baseline():
    metrics = pd.concat([_metrics_rows(seed, STRENGTHS) for seed in (0, 1)], ignore_index=True)
    rows = {row["claim"]: row for row in label_issue_claim_rows(metrics)}
    assert set(rows) == {"label_issues_beat_network", "label_issues_beat_best_baseline"}
    for row in rows.values():
        assert list(row) == CLAIM_COLUMNS
        assert row["wrong_label_fraction"] == pytest.approx(metrics["base_rate"].mean())
        assert row["n_seeds"] == 2 and row["subject"] == "velpic:fc2" and row["epoch"] == 25
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    network = rows["label_issues_beat_network"]
    assert network["outcome"] == Outcome.HOLDS and network["ci_low"] > 0
    best = rows["label_issues_beat_best_baseline"]
    assert "deep k-NN" in best["criterion"]  # as strong as the chosen flags: the best baseline
    assert best["outcome"] in (Outcome.INCONCLUSIVE, Outcome.FAILS)


def test_a_single_seed_uses_its_bootstrap_interval():
    rows = label_issue_claim_rows(_metrics_rows(3, STRENGTHS))
    network = next(row for row in rows if row["claim"] == "label_issues_beat_network")
    assert network["n_seeds"] == 1 and network["outcome"] == Outcome.HOLDS
    assert network["standard_error"] > 0


def test_claims_without_a_bootstrap_are_na_and_zero_corruption_gives_no_rows():
    metrics = _metrics_rows(0, STRENGTHS)
    metrics["auprc_bootstrap"] = [[] for _ in range(len(metrics))]
    rows = label_issue_claim_rows(metrics)
    assert {row["outcome"] for row in rows} == {Outcome.NOT_APPLICABLE} and all(math.isnan(r["value"]) for r in rows)
    assert label_issue_claim_rows(_metrics_rows(0, STRENGTHS, corruption=0)) == []


# ----------------------------------------------------------------------------------------------------------------
# The figure
# ----------------------------------------------------------------------------------------------------------------


def _two_checkpoints(seed: int, corruption: int) -> pd.DataFrame:
    peak = _metrics_rows(seed, STRENGTHS, corruption).assign(epoch=10, checkpoint="peak")
    return pd.concat([peak, _metrics_rows(seed, STRENGTHS, corruption)], ignore_index=True)


def test_plot_data_are_seed_means_with_baselines_and_base_rate_in_every_probe_panel():
    metrics = pd.concat([_two_checkpoints(s, c) for s in (0, 1) for c in (0, 40, 80)], ignore_index=True)
    data = label_issue_plot_data(metrics)
    assert set(data["corruption"]) == {40, 80}  # 0 %: no AUPRC
    assert set(data["probe"]) == {"velpic"} and set(data.loc[data["kind"] == "probe", "series"]) == {"fc1", "fc2"}
    assert set(data.loc[data["kind"] == "baseline", "series"]) == set(BASELINES)
    line = data[(data["series"] == "fc2") & (data["corruption"] == 40) & (data["epoch"] == 25)].iloc[0]
    runs = metrics[(metrics["layer"] == "fc2") & (metrics["corruption"] == 40) & (metrics["epoch"] == 25)]
    assert line["mean"] == pytest.approx(runs["auprc"].mean()) and line["n_seeds"] == 2
    assert line["low"] == pytest.approx(runs["auprc"].min())
    base = data[(data["kind"] == "base_rate") & (data["corruption"] == 80)]
    assert set(base["epoch"]) == {10, 25} and base["mean"].between(0.6, 0.8).all()


def test_the_figure_is_a_pdf(tmp_path):
    metrics = pd.concat([_two_checkpoints(s, c) for s in (0, 1) for c in (40, 80)], ignore_index=True)
    out = tmp_path / "label_issues.pdf"
    plot_label_issue_figure(metrics, out, {"mlp": ["fc1", "fc2", "fc3", "fc4"]}, {"palette": "colorblind"})
    assert out.read_bytes()[:4] == b"%PDF"
    pdftoppm = subprocess.run(["pdftoppm", "-v"], capture_output=True)
    if pdftoppm.returncode == 0:
        subprocess.run(["pdftoppm", "-png", "-r", "30", str(out), str(tmp_path / "page")], check=True)
        assert list(tmp_path.glob("page*.png"))
    with pytest.raises(ValueError, match="no run with corrupted labels"):
        plot_label_issue_figure(_two_checkpoints(0, 0), tmp_path / "empty.pdf")
