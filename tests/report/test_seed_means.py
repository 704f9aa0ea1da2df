"""Seed means with runs carried forward: a run that stopped is a fixed model, its final values count on."""

from __future__ import annotations

import pandas as pd

from latentgen.report.seed_means import carry_forward, run_final_epochs, seed_spread

# Three runs of one setting that stop at different epochs; seed 1 stops at 7, off the every-2-epochs schedule.
EPOCHS_BY_SEED = {0: [0, 2, 4], 1: [0, 2, 4, 6, 7], 2: [0, 2, 4, 6, 8, 10]}


def value(seed: int, epoch: int) -> float:
    return 10.0 * seed + epoch  # distinct per run and epoch, exact in floating point


def three_runs() -> pd.DataFrame:
    rows = [
        {
            "pair": "mlp-mnist",
            "corruption": 80,
            "seed": seed,
            "epoch": epoch,
            "layer": "fc1",
            "percent": value(seed, epoch),
        }
        for seed, epochs in EPOCHS_BY_SEED.items()
        for epoch in epochs
    ]
    # Another setting whose single run stops at epoch 2: nothing of the 80 % setting may reach it.
    rows += [
        {"pair": "mlp-mnist", "corruption": 40, "seed": 0, "epoch": epoch, "layer": "fc1", "percent": 50.0 + epoch}
        for epoch in (0, 2)
    ]
    return pd.DataFrame(rows)


def test_each_run_ends_at_its_own_final_epoch() -> None:
    finals = run_final_epochs(three_runs()).set_index(["corruption", "seed"])["final_epoch"]
    assert finals.to_dict() == {(40, 0): 2, (80, 0): 4, (80, 1): 7, (80, 2): 10}


def test_final_values_are_carried_to_the_settings_latest_final_epoch() -> None:
    carried = carry_forward(three_runs())
    seed0 = carried[(carried["corruption"] == 80) & (carried["seed"] == 0)].set_index("epoch")
    assert seed0["percent"].to_dict() == {0: 0.0, 2: 2.0, 4: 4.0, 6: 4.0, 7: 4.0, 8: 4.0, 10: 4.0}
    assert seed0["carried"].to_dict() == {0: False, 2: False, 4: False, 6: True, 7: True, 8: True, 10: True}
    assert carried.loc[carried["corruption"] == 40, "epoch"].max() == 2


def test_mean_min_max_use_the_carried_values_exactly() -> None:
    spread = seed_spread(three_runs(), "percent", ["layer"])
    at_80 = spread[spread["corruption"] == 80].set_index("epoch")
    # Epoch 7 is seed 1's final epoch, where seed 2 (still training) has no checkpoint: left out.
    assert list(at_80.index) == [0, 2, 4, 6, 8, 10]
    assert at_80.loc[4, ["mean", "min", "max"]].tolist() == [14.0, 4.0, 24.0]
    assert at_80.loc[6, ["mean", "min", "max"]].tolist() == [(4.0 + 16.0 + 26.0) / 3, 4.0, 26.0]
    assert at_80.loc[8, ["mean", "min", "max"]].tolist() == [(4.0 + 17.0 + 28.0) / 3, 4.0, 28.0]
    assert at_80.loc[10, ["mean", "min", "max"]].tolist() == [(4.0 + 17.0 + 30.0) / 3, 4.0, 30.0]
    assert at_80["n_seeds"].tolist() == [3] * 6
    assert at_80["n_carried"].tolist() == [0, 0, 0, 1, 2, 2]
    at_40 = spread[spread["corruption"] == 40]
    assert at_40["epoch"].tolist() == [0, 2] and at_40["mean"].tolist() == [50.0, 52.0]


def test_no_rows_give_an_empty_spread() -> None:
    assert seed_spread(three_runs().iloc[:0], "percent", ["layer"]).empty
