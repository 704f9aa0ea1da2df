"""The claims table on a hand-built scores table and histories, every number worked out by hand below."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from latentgen.claims import CLAIM_COLUMNS, claims_table
from latentgen.results_doc import claims_markdown

EPOCHS = [0, 2, 4, 6]

# Test accuracies at 80 % corruption, by (probe, layer, seed), at EPOCHS in order. Seed 0 stopped at epoch 4, so
# its epoch-4 values count at epoch 6 too (carried forward). Seed means in %, epochs 0/2/4/6:
#   model       10, 55, 35, 25   peak at 2, drop 30, final 25 (without the carry: 20)
#   masc fc3    10, 55, 50, 47.5 best MASC layer: drop 7.5
#   masc fc4    10, 45, 45, 45
#   velpic fc3  10, 60, 55, 52.5 best VeLPIC layer: drop 7.5, final 52.5
#   velpic fc4  10, 52.5, 47.5, 42.5
# VeLPIC - MASC at epoch 6: fc3 +5, fc4 -2.5 (1 of 2 layers, mean +1.25 against 0 at 40 %).
# The transfer equals VeLPIC on fc4 except seed 1 at epoch 2 (0.56 against 0.55): off by 1 pp.
# transfer_bias = model + 5 pp.
AT_80 = {
    ("model", "output", 0): [0.10, 0.50, 0.30],
    ("model", "output", 1): [0.10, 0.60, 0.40, 0.20],
    ("masc", "fc3", 0): [0.10, 0.50, 0.45],
    ("masc", "fc3", 1): [0.10, 0.60, 0.55, 0.50],
    ("masc", "fc4", 0): [0.10, 0.40, 0.40],
    ("masc", "fc4", 1): [0.10, 0.50, 0.50, 0.50],
    ("velpic", "fc3", 0): [0.10, 0.55, 0.50],
    ("velpic", "fc3", 1): [0.10, 0.65, 0.60, 0.55],
    ("velpic", "fc4", 0): [0.10, 0.50, 0.45],
    ("velpic", "fc4", 1): [0.10, 0.55, 0.50, 0.40],
    ("transfer", "fc4", 0): [0.10, 0.50, 0.45],
    ("transfer", "fc4", 1): [0.10, 0.56, 0.50, 0.40],
    ("transfer_bias", "fc4", 0): [0.15, 0.55, 0.35],
    ("transfer_bias", "fc4", 1): [0.15, 0.65, 0.45, 0.25],
}


def at_40() -> dict:
    """One seed; VeLPIC equal to MASC (margin 0) and the transfer exactly VeLPIC on fc4."""
    values = {key[:2] + (0,): accuracies for key, accuracies in AT_80.items() if key[2] == 1}
    values[("velpic", "fc3", 0)] = values[("masc", "fc3", 0)]
    values[("velpic", "fc4", 0)] = values[("transfer", "fc4", 0)] = values[("masc", "fc4", 0)]
    del values[("transfer_bias", "fc4", 0)]
    return values


def score_rows(rate: int, values: dict) -> list[dict]:
    return [{"model": "mlp", "dataset": "mnist", "pair": "mlp-mnist", "corruption": rate, "seed": seed,
             "epoch": epoch, "layer": layer, "probe": probe, "split": split, "accuracy": accuracy}
            for (probe, layer, seed), accuracies in values.items() for epoch, accuracy in zip(EPOCHS, accuracies)
            for split in ("test", "train_corrupted")]  # the train split must not enter the claims


def make_scores() -> pd.DataFrame:
    # 0 % and 100 % are scored but not claimed about.
    return pd.DataFrame(score_rows(80, AT_80) + score_rows(40, at_40()) + score_rows(0, at_40())
                        + score_rows(100, at_40()))


def history(corruption: int, seed: int, losses: list[float]) -> list[dict]:
    return [{"pair": "mlp-mnist", "corruption": corruption, "seed": seed, "epoch": epoch, "train_loss": loss,
             "num_classes": 10, "test_accuracy": 0.5} for epoch, loss in enumerate(losses)]


def make_histories() -> pd.DataFrame:
    return pd.DataFrame(
        history(0, 0, [2.30, 1.5, 1.0, 0.8, 0.6])
        + history(40, 0, [2.30, 1.8, 1.2])  # stopped at epoch 2: its last epoch is checked
        + history(80, 0, [2.31, 2.30, 2.295, 2.29, 2.29])  # within 1 % of ln 10 = 2.3026 at epoch 3: dead
        + history(80, 1, [2.31, 2.0, 1.7, 1.5, 1.4])
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
    assert setting_rows["seed"].isna().all() and set(setting_rows["holds"]) == {"yes", "no"}
    assert set(setting_rows.loc[setting_rows["corruption"] == 80, "n_seeds"]) == {2}
    assert claims["criterion"].str.len().min() > 20  # every row says what it tests


def test_dynamics_use_the_carried_seed_means(claims: pd.DataFrame) -> None:
    model = claim(claims, "model_falls_from_peak")
    assert (model["epoch"], model["value"], model["holds"]) == (2, pytest.approx(30.0), "yes")
    assert "25.0 % at final epoch 6" in model["detail"]  # seed 0's epoch 4 value carried to epoch 6
    for probe in ("masc", "velpic"):
        falls = claim(claims, "probe_falls_less", subject=probe)
        assert (falls["layer"], falls["epoch"]) == ("fc3", 2)
        assert (falls["value"], falls["reference"]) == (pytest.approx(7.5), pytest.approx(30.0))
        assert falls["holds"] == "yes"
    plateau = claim(claims, "probe_plateaus_higher", subject="velpic")
    assert (plateau["value"], plateau["reference"], plateau["holds"]) == (pytest.approx(52.5), pytest.approx(25.0),
                                                                          "yes")


def test_velpic_against_masc_per_layer_and_across_rates(claims: pd.DataFrame) -> None:
    fc3, fc4 = (claim(claims, "velpic_beats_masc", layer=layer) for layer in ("fc3", "fc4"))
    assert (fc3["value"], fc3["holds"]) == (pytest.approx(5.0), "yes")
    assert (fc4["value"], fc4["holds"]) == (pytest.approx(-2.5), "no")
    most = claim(claims, "velpic_wins_most_layers")
    assert (most["value"], most["reference"], most["holds"]) == (1.0, 1.0, "no")  # 1 of 2 is not most
    grows = claim(claims, "velpic_margin_grows")
    assert (grows["value"], grows["reference"], grows["holds"]) == (pytest.approx(1.25), 0.0, "yes")
    assert "40 %" in grows["criterion"]
    assert not ((claims["claim"] == "velpic_margin_grows") & (claims["corruption"] == 40)).any()  # lowest rate


def test_transfer_claims_and_the_exactness_check(claims: pd.DataFrame) -> None:
    transfer = claim(claims, "transfer_beats_model")
    assert (transfer["layer"], transfer["value"], transfer["holds"]) == ("fc4", pytest.approx(17.5), "yes")
    exact_80 = claim(claims, "transfer_equals_velpic")
    assert (exact_80["value"], exact_80["holds"]) == (pytest.approx(1.0), "no")  # one checkpoint off by 1 pp
    exact_40 = claim(claims, "transfer_equals_velpic", corruption=40)
    assert (exact_40["value"], exact_40["holds"]) == (0.0, "yes")
    with_bias = claim(claims, "transfer_bias_beats_model")
    assert (with_bias["value"], with_bias["holds"]) == (pytest.approx(5.0), "yes")
    assert not ((claims["claim"] == "transfer_bias_beats_model") & (claims["corruption"] == 40)).any()


def test_a_run_that_did_not_learn_is_flagged(claims: pd.DataFrame) -> None:
    learned = claims[claims["claim"] == "run_learned"].set_index(["corruption", "seed"])
    assert list(learned.index) == [(0, 0), (40, 0), (80, 0), (80, 1)]  # no check at 100 %
    assert learned["holds"].to_dict() == {(0, 0): "yes", (40, 0): "yes", (80, 0): "no", (80, 1): "yes"}
    dead = learned.loc[(80, 0)]
    assert (dead["epoch"], dead["value"], dead["reference"]) == (3, 2.29, pytest.approx(math.log(10)))
    assert learned.loc[(40, 0), "epoch"] == 2  # fewer than 3 epochs: its last


def test_claims_render_as_a_markdown_table(claims: pd.DataFrame) -> None:
    text = claims_markdown(claims)
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + len(claims)
    cells = {len(re.findall(r"(?<!\\)\|", line)) for line in table}  # unescaped pipes only
    assert cells == {13}  # 12 columns: the |...| of the exactness criterion is escaped
    assert any("transfer_equals_velpic" in line and line.endswith("| no |") for line in table)
    assert "did not learn" in text
    assert f"{(claims['holds'] == 'yes').sum()} of {len(claims)}" in text
