"""The claims table on a hand-built scores table and histories, every number worked out by hand below."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from latentgen.report.claims import CLAIM_COLUMNS, claims_table
from latentgen.report.results_doc import claims_markdown
from latentgen.scoring.selection import pack_correct
from synthetic_scores import score_row

EPOCHS = [0, 2, 4, 6]

# Test accuracies at 80 % corruption, by (probe, layer, seed), at EPOCHS in order, on 10,000 test images. Seed 0
# stopped at epoch 4, so its epoch-4 values count at epoch 6 (carried forward); seed 1 holds the same values, its
# epoch 6 equal to its epoch 4, so both seeds give every contrast the same value and the intervals are the test
# set's alone (about +-1 pp). Seed means in %, epochs 0/2/4/6:
#   model       10, 55, 25, 25   peak at 2, drop 30
#   masc fc3    10, 55, 47.5, 47.5   best MASC layer: drop 7.5
#   masc fc4    10, 45, 45, 45
#   velpic fc3  10, 60, 52.5, 52.5   best VeLPIC layer: drop 7.5, final 52.5
#   velpic fc4  10, 52.5, 42.5, 42.5
# VeLPIC - MASC at epoch 6: fc3 +5, fc4 -2.5 (mean +1.25 against 0 at 40 %). The transfer (fc4) predicts as VeLPIC
# but for 3 test images at one checkpoint (velpic_disagreements). transfer_bias = model + 5 pp.
CURVES_80 = {
    ("model", "output"): [0.10, 0.55, 0.25],
    ("masc", "fc3"): [0.10, 0.55, 0.475],
    ("masc", "fc4"): [0.10, 0.45, 0.45],
    ("velpic", "fc3"): [0.10, 0.60, 0.525],
    ("velpic", "fc4"): [0.10, 0.525, 0.425],
    ("transfer", "fc4"): [0.10, 0.525, 0.425],
    ("transfer_bias", "fc4"): [0.15, 0.60, 0.30],
}
AT_80 = {
    **{(probe, layer, 0): values for (probe, layer), values in CURVES_80.items()},
    **{(probe, layer, 1): [*values, values[-1]] for (probe, layer), values in CURVES_80.items()},
}


def at_40() -> dict:
    """One seed; VeLPIC equal to MASC (margin 0) and the transfer exactly VeLPIC on fc4."""
    values = {key[:2] + (0,): accuracies for key, accuracies in AT_80.items() if key[2] == 1}
    values[("velpic", "fc3", 0)] = values[("masc", "fc3", 0)]
    values[("velpic", "fc4", 0)] = values[("transfer", "fc4", 0)] = values[("masc", "fc4", 0)]
    del values[("transfer_bias", "fc4", 0)]
    return values


def score_rows(rate: int, values: dict, disagreeing: tuple[int, int] | None = None) -> list[dict]:
    """Rows of ``values``; transfer rows count their disagreements with VeLPIC: 3 at (seed, epoch) ``disagreeing``."""
    rows = [
        score_row("mlp-mnist", rate, seed, epoch, layer, probe, split, accuracy)
        for (probe, layer, seed), accuracies in values.items()
        for epoch, accuracy in zip(EPOCHS, accuracies)
        for split in ("test", "train_corrupted")
    ]  # the train split must not enter the claims
    for row in rows:
        if row["probe"] == "transfer":
            row["velpic_disagreements"] = 3 if (row["seed"], row["epoch"]) == disagreeing else 0
    return rows


def make_scores() -> pd.DataFrame:
    # 0 % and 100 % are scored but not claimed about.
    return pd.DataFrame(
        score_rows(80, AT_80, disagreeing=(1, 2))
        + score_rows(40, at_40())
        + score_rows(0, at_40())
        + score_rows(100, at_40())
    )


def history(corruption: int, seed: int, losses: list[float], true_accuracy: float = 0.1) -> list[dict]:
    return [
        {
            "pair": "mlp-mnist",
            "corruption": corruption,
            "seed": seed,
            "epoch": epoch,
            "train_loss": loss,
            "train_accuracy_true": true_accuracy,
            "num_classes": 10,
            "test_accuracy": 0.5,
        }
        for epoch, loss in enumerate(losses)
    ]


def make_histories() -> pd.DataFrame:
    return pd.DataFrame(
        history(0, 0, [2.30, 1.5, 1.0, 0.8, 0.6])
        + history(40, 0, [2.30, 1.8, 1.2])  # stopped at epoch 2: its last epoch is checked
        + history(80, 0, [2.31, 2.30, 2.295, 2.29, 2.29])  # within 1 % of ln 10 = 2.3026 at epoch 3: dead
        + history(80, 1, [2.31, 2.0, 1.7, 1.5, 1.4])
        # near ln K too, but 36 % right on the clean labels: learning at high noise, not dead
        + history(80, 2, [2.31, 2.30, 2.295, 2.29, 2.29], true_accuracy=0.36)
        + history(100, 0, [2.31, 2.30, 2.30, 2.30])  # all labels random: no check
    )


@pytest.fixture(scope="module")
def claims() -> pd.DataFrame:
    return claims_table(make_scores(), make_histories())


def claim(claims: pd.DataFrame, name: str, corruption: int = 80, **where) -> pd.Series:
    rows = claims[(claims["claim"] == name) & (claims["corruption"] == corruption)]
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, (name, corruption, where, rows)
    return rows.iloc[0]


def test_columns_and_settings(claims: pd.DataFrame) -> None:
    assert list(claims.columns) == CLAIM_COLUMNS
    setting_rows = claims[claims["claim"] != "run_learned"]
    assert set(setting_rows["corruption"]) == {40, 80}  # strictly between 0 % and 100 %
    assert setting_rows["seed"].isna().all()
    assert set(claims["outcome"]) <= {"holds", "fails", "inconclusive", "n/a"}
    assert set(setting_rows.loc[setting_rows["corruption"] == 80, "n_seeds"]) == {2}
    assert claims["criterion"].str.len().min() > 20  # every row says what it tests
    # 80 % of labels re-drawn uniformly over 10 classes: 72 % wrong
    np.testing.assert_allclose(claims.loc[claims["corruption"] == 80, "wrong_label_fraction"], 0.72)


def test_every_decided_row_carries_its_interval(claims: pd.DataFrame) -> None:
    decided = claims[claims["outcome"] != "n/a"]
    assert (decided["ci_low"] <= decided["value"]).all() and (decided["value"] <= decided["ci_high"]).all()
    holds = decided[(decided["outcome"] == "holds") & (decided["unit"] == "pp")]
    assert (holds["ci_low"] > holds["reference"]).all() | (holds["ci_high"] < holds["reference"]).all()


def test_dynamics_use_the_carried_seed_means(claims: pd.DataFrame) -> None:
    model = claim(claims, "model_falls_from_peak")
    assert (model["epoch"], model["value"], model["outcome"]) == (2, pytest.approx(30.0), "holds")
    assert "25.0 % at final epoch 6" in model["detail"]  # seed 0's epoch 4 value carried to epoch 6
    # two seeds giving the same contrast: only the test set's noise, a normal interval of 10,000 images
    assert 0.3 < model["standard_error"] < 1.0 and model["ci_low"] > 25
    for probe in ("masc", "velpic"):
        falls = claim(claims, "probe_falls_less", subject=probe)
        assert (falls["layer"], falls["epoch"]) == ("fc3", 2)
        assert falls["value"] == pytest.approx(30.0 - 7.5) and falls["outcome"] == "holds"  # model drop - its drop
    plateau = claim(claims, "probe_plateaus_higher", subject="velpic")
    assert (plateau["value"], plateau["outcome"]) == (pytest.approx(52.5 - 25.0), "holds")


def test_velpic_against_masc_per_layer_and_across_rates(claims: pd.DataFrame) -> None:
    fc3, fc4 = (claim(claims, "velpic_beats_masc", layer=layer) for layer in ("fc3", "fc4"))
    assert (fc3["value"], fc3["outcome"]) == (pytest.approx(5.0), "holds")
    assert (fc4["value"], fc4["outcome"]) == (pytest.approx(-2.5), "fails")
    most = claim(claims, "velpic_wins_most_layers")
    assert (most["value"], most["ci_low"], most["ci_high"], most["outcome"]) == (1.0, 1.0, 1.0, "fails")
    grows = claim(claims, "velpic_margin_grows")
    # only seed 0 ran at 40 %: one seed's +1.25 pp on binomial errors of 8 accuracies cannot be told from 0
    assert (grows["value"], grows["outcome"]) == (pytest.approx(1.25), "inconclusive")
    assert "40 %" in grows["criterion"]
    assert not ((claims["claim"] == "velpic_margin_grows") & (claims["corruption"] == 40)).any()  # lowest rate


def test_transfer_claims_and_the_image_by_image_exactness_check(claims: pd.DataFrame) -> None:
    transfer = claim(claims, "transfer_beats_model")
    assert (transfer["layer"], transfer["value"], transfer["outcome"]) == ("fc4", pytest.approx(17.5), "holds")
    exact_80 = claim(claims, "transfer_equals_velpic")
    assert (exact_80["value"], exact_80["unit"], exact_80["outcome"]) == (3.0, "images", "fails")
    exact_40 = claim(claims, "transfer_equals_velpic", corruption=40)
    assert (exact_40["value"], exact_40["outcome"]) == (0.0, "holds")
    with_bias = claim(claims, "transfer_bias_beats_model")
    assert (with_bias["value"], with_bias["outcome"]) == (pytest.approx(5.0), "holds")
    assert not ((claims["claim"] == "transfer_bias_beats_model") & (claims["corruption"] == 40)).any()


def test_a_run_that_did_not_learn_is_flagged(claims: pd.DataFrame) -> None:
    learned = claims[claims["claim"] == "run_learned"].set_index(["corruption", "seed"])
    assert list(learned.index) == [(0, 0), (40, 0), (80, 0), (80, 1), (80, 2)]  # no check at 100 %
    assert learned["outcome"].to_dict() == {
        (0, 0): "holds",
        (40, 0): "holds",
        (80, 0): "fails",
        (80, 1): "holds",
        (80, 2): "holds",
    }
    dead = learned.loc[(80, 0)]
    assert (dead["epoch"], dead["value"], dead["reference"]) == (3, 2.29, pytest.approx(math.log(10)))
    assert (dead["ci_low"], dead["ci_high"]) == (2.29, 2.29)  # a property of the run itself: no sampling
    assert learned.loc[(40, 0), "epoch"] == 2  # fewer than 3 epochs: its last


def test_claims_render_as_a_compact_view_a_glossary_and_every_row(claims: pd.DataFrame) -> None:
    text = claims_markdown(claims)
    lines = text.splitlines()
    detailed = text[text.index("### Every row") :].splitlines()
    table = [line for line in detailed if line.startswith("|")]
    assert len(table) == 2 + len(claims)
    cells = {len(re.findall(r"(?<!\\)\|", line)) for line in table}  # unescaped pipes only
    assert cells == {12}  # 11 columns
    assert any("transfer_equals_velpic" in line and line.endswith("| fails |") for line in table)
    compact = [line for line in lines[: lines.index("### Claim ids")] if line.startswith("| mlp-mnist")]
    assert any("model_falls_from_peak" in line and "**holds**" in line and "[" in line for line in compact)
    assert "- `transfer_equals_velpic`:" in text  # the glossary
    assert "did not learn" in text
    assert f"{(claims['outcome'] == 'holds').sum()} holds" in text


def test_two_classifiers_half_a_point_apart_are_inconclusive_ten_points_apart_hold():
    """Known truth on 1,000 test images of one seed: VeLPIC and MASC right on different images (as different
    probes are), 0.5 or 10 points apart. The paired interval cannot resolve 0.5 points; it resolves 10."""
    rng = np.random.default_rng(0)

    def correct(n_right: int) -> np.ndarray:
        return rng.permutation(np.arange(1000) < n_right)

    outcomes = {}
    for gap in (5, 100):
        rows = []
        for probe, n_right in (("velpic", 600), ("masc", 600 - gap), ("model", 500)):
            for epoch in (0, 2):
                right = correct(n_right)
                row = score_row("mlp-mnist", 80, 0, epoch, "fc1" if probe != "model" else "output", probe, "test", 0.0)
                rows.append({**row, "accuracy": right.mean(), "n_samples": 1000, "correct": pack_correct(right)})
        table = claims_table(pd.DataFrame(rows), make_histories())
        outcomes[gap] = claim(table, "velpic_beats_masc")["outcome"]
    assert outcomes == {5: "inconclusive", 100: "holds"}


def test_without_a_memorizing_phase_its_claims_are_not_applicable():
    """A model whose test accuracy peaks at the final epoch never memorized: the claims about what happens after
    memorization are n/a, with the reason, not "no"."""
    rising = {key[:2] + (0,): [0.1, 0.2, 0.3, 0.4] for key in AT_80}
    table = claims_table(pd.DataFrame(score_rows(80, rising)), make_histories())
    assert claim(table, "model_falls_from_peak")["outcome"] == "fails"
    for name in ("probe_falls_less", "probe_plateaus_higher"):
        row = claim(table, name, subject="velpic")
        assert row["outcome"] == "n/a" and "no memorizing phase" in row["detail"]
    assert claim(table, "transfer_beats_model")["outcome"] == "n/a"
    assert claim(table, "velpic_beats_masc", layer="fc3")["outcome"] != "n/a"  # not about memorization


# ---------------------------------------------------------------------------------------------------------------
# Choices without the test set, transfer from other layers, probe families
# ---------------------------------------------------------------------------------------------------------------


def with_holdout(scores: pd.DataFrame) -> pd.DataFrame:
    """Held-out rows that rank fc4 above fc3 (the opposite of the test set), a selected choice, transfer on fc3,
    and a further probe family that beats the paper's on fc3."""
    test = scores[scores["split"] == "test"]
    heldout = test[test["probe"].isin(["masc", "velpic", "model"])].assign(split="holdout_corrupted")
    heldout.loc[heldout["layer"] == "fc4", "accuracy"] += 0.2  # the slice prefers fc4
    transfer_fc3 = test[(test["probe"] == "velpic") & (test["layer"] == "fc3")].assign(probe="transfer")
    heldout_transfer = pd.concat([transfer_fc3, test[test["probe"] == "transfer"]]).assign(split="holdout_corrupted")
    heldout_transfer.loc[heldout_transfer["layer"] == "fc4", "accuracy"] += 0.2
    chosen = test[(test["probe"] == "velpic") & (test["layer"] == "fc4")].assign(probe="selected", layer="velpic:fc4")
    knn = test[test["probe"] == "velpic"].assign(probe="knn", accuracy=lambda rows: rows["accuracy"] + 0.01)
    oracle = test[test["probe"] == "masc"].assign(probe="masc_true", accuracy=0.99)
    return pd.concat([scores, heldout, transfer_fc3, heldout_transfer, chosen, knn, oracle], ignore_index=True)


@pytest.fixture(scope="module")
def claims_with_holdout() -> pd.DataFrame:
    return claims_table(with_holdout(make_scores()), make_histories())


def test_best_layer_is_chosen_on_the_test_set_and_on_the_held_out_slice_and_says_which(claims_with_holdout):
    oracle = claim(claims_with_holdout, "probe_falls_less", subject="velpic")
    honest = claim(claims_with_holdout, "probe_falls_less_heldout_layer", subject="velpic")
    assert oracle["layer"] == "fc3" and "test set" in oracle["criterion"]
    assert honest["layer"] == "fc4" and "held-out slice" in honest["criterion"]
    # fc4's VeLPIC test curve 10, 52.5, 42.5, 42.5: drop 10 pp against the model's 30
    assert honest["value"] == pytest.approx(30.0 - 10.0) and honest["outcome"] == "holds"


def test_without_a_slice_only_the_test_choice_is_reported(claims):
    assert not claims["claim"].str.endswith("_heldout_layer").any()
    assert not claims["claim"].isin(["selected_beats_model", "best_probe_family"]).any()


def test_the_held_out_choice_against_the_model_and_the_oracle(claims_with_holdout):
    beats = claim(claims_with_holdout, "selected_beats_model")
    assert beats["value"] == pytest.approx(42.5 - 25.0) and beats["outcome"] == "holds"
    near = claim(claims_with_holdout, "selected_near_test_best")
    # best candidate on the test set at epoch 6: knn on fc3, 52.5 + 1 = 53.5 %, against the choice's 42.5 %
    assert near["layer"] == "knn:fc3" and near["value"] == pytest.approx(11.0) and near["outcome"] == "fails"


def test_transfer_from_another_layer_against_the_last(claims_with_holdout):
    other = claim(claims_with_holdout, "transfer_other_layer_beats_last")
    assert (other["layer"], other["value"], other["outcome"]) == ("fc3", pytest.approx(52.5 - 42.5), "holds")
    chosen = claim(claims_with_holdout, "transfer_heldout_layer_vs_last")
    # the slice chose the last layer itself: the very same model, exactly 0, which is >= 0
    assert (chosen["layer"], chosen["value"], chosen["ci_high"], chosen["outcome"]) == ("fc4", 0.0, 0.0, "holds")
    assert claim(claims_with_holdout, "transfer_beats_model")["layer"] == "fc4"  # still the last layer


def test_probe_families_over_whatever_probes_are_scored(claims_with_holdout):
    family = claim(claims_with_holdout, "best_probe_family")
    assert family["subject"] == "knn" and "masc_true" in family["detail"]  # the oracle is reported, never best
    # the slice prefers MASC (fc4 +20 pp there; knn has no held-out rows), whose best test layer fc3 (47.5 %) is
    # 6 pp below knn's 53.5 %: more than the 1 pp tolerance
    assert family["value"] == pytest.approx(6.0) and family["outcome"] == "fails"
    other = claim(claims_with_holdout, "other_probe_beats_paper_probes")
    # +1 pp on binomial errors of 10,000 images (no per-image records here): just resolved
    assert (other["subject"], other["value"], other["outcome"]) == ("knn", pytest.approx(1.0), "holds")


def edited_rows(edit: int, epochs: list[int], accuracies: list[float]) -> list[dict]:
    """Runs of both seeds at 80 % edited at ``edit``: the model's test accuracy at ``epochs``."""
    return [
        {
            "model": "mlp",
            "dataset": "mnist",
            "pair": "mlp-mnist",
            "corruption": 80,
            "seed": seed,
            "epoch": epoch,
            "layer": "output",
            "probe": "model",
            "split": "test",
            "accuracy": accuracy,
            "n_samples": 10_000,
            "correct": None,
            "edit_epoch": edit,
        }
        for seed in (0, 1)
        for epoch, accuracy in zip(epochs, accuracies)
    ]


def test_does_the_edited_model_keep_its_gain():
    """Standard training at 80 % (seed means 10, 55, 25, 25 at epochs 0-6; seed 0 stopped at 4) against its edits
    at 2 (70, 60, 50 at 2, 4, 6) and at 6 (20, 30 at 6, 8: after seed 0 had stopped)."""
    standard = make_scores().assign(edit_epoch=pd.NA)
    scores = pd.concat(
        [standard, pd.DataFrame(edited_rows(2, [2, 4, 6], [0.7, 0.6, 0.5]) + edited_rows(6, [6, 8], [0.2, 0.3]))],
        ignore_index=True,
    )
    scores["edit_epoch"] = scores["edit_epoch"].astype("Int64")
    table = claims_table(scores, make_histories())
    gains = table[table["claim"] == "edit_gains"].set_index("subject")
    keeps = table[table["claim"] == "edit_keeps_gain"].set_index("subject")
    assert list(gains.index) == ["model edited at epoch 2", "model edited at epoch 6"]
    at_2, late = gains.loc["model edited at epoch 2"], keeps.loc["model edited at epoch 2"]
    assert (at_2["epoch"], at_2["value"], at_2["outcome"]) == (2, pytest.approx(70.0 - 55.0), "holds")
    assert (late["epoch"], late["value"], late["outcome"]) == (6, pytest.approx(50.0 - 25.0), "holds")
    assert "stopped" not in at_2["detail"]
    at_6, end = gains.loc["model edited at epoch 6"], keeps.loc["model edited at epoch 6"]
    assert (at_6["value"], at_6["outcome"]) == (pytest.approx(20.0 - 25.0), "fails")
    assert (end["epoch"], end["value"], end["outcome"]) == (8, pytest.approx(30.0 - 25.0), "holds")  # carried
    assert "1 of 2 standard runs stopped before epoch 6 (at 4)" in at_6["detail"]
    assert (
        table.loc[table["claim"] == "model_falls_from_peak", "value"].tolist()
        == claims_table(standard, make_histories())
        .loc[lambda t: t["claim"] == "model_falls_from_peak", "value"]
        .tolist()
    )


def test_label_issue_rows_read_the_same_wrong_fraction_as_their_setting() -> None:
    """claims.csv gives one wrong-label fraction per setting, c (1 - 1/K), even on rows that measured a base rate."""
    from latentgen.report.claims import with_the_settings_wrong_fraction

    table = pd.DataFrame({"pair": ["mlp-mnist"], "corruption": [40], "wrong_label_fraction": [0.36]})
    measured = pd.DataFrame(
        {"pair": ["mlp-mnist", "mlp-mnist"], "corruption": [40, 80], "wrong_label_fraction": [0.366, 0.729]}
    )
    fixed = with_the_settings_wrong_fraction(measured, table)
    assert fixed["wrong_label_fraction"].tolist() == [0.36, 0.729]  # a setting the table lacks keeps its own
