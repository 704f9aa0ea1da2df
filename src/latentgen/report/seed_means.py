"""Seed means over runs that stop at different epochs.

Training stops when the accuracy on the corrupted labels reaches a threshold, so the runs (seeds) of one
setting (pair, corruption) end at different epochs. Averaging only the runs that have a checkpoint at an
epoch makes a mean curve jump wherever a run drops out. A finished run is a fixed model, so its accuracy after
its final epoch *is* its final accuracy: each run's final values are carried forward to every later epoch of its
setting, up to the latest final epoch among the setting's runs. The min-max range is over the same carried values.

Kept free of torch and of plotting: the figures, the summary and the claims table all use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

# One setting = one point of the grid; its runs differ only by seed.
SETTING_KEYS: tuple[str, ...] = ("pair", "corruption")
RUN_KEY = "seed"
# One run: its setting, what it trains and its seed (the columns every score row identifies a run by).
RUN_KEYS = ["pair", "model", "dataset", "corruption", "seed"]
SPREAD_COLUMNS = ["mean", "min", "max", "n_seeds", "n_carried"]


def run_final_epochs(rows: pd.DataFrame, setting_keys: Sequence[str] = SETTING_KEYS) -> pd.DataFrame:
    """The last epoch with a score of every run: columns ``setting_keys``, ``seed``, ``final_epoch``."""
    run_keys = [*setting_keys, RUN_KEY]
    return rows.groupby(run_keys, observed=True)["epoch"].max().rename("final_epoch").reset_index()


def carry_forward(rows: pd.DataFrame, setting_keys: Sequence[str] = SETTING_KEYS) -> pd.DataFrame:
    """``rows`` plus, for every run, its rows at its final epoch repeated at each later epoch of its setting.

    The later epochs are those at which any run of the setting has a score, so the carried values stop at the
    setting's latest final epoch. Added rows have ``carried`` True, the original rows False.
    """
    setting_keys = list(setting_keys)
    run_keys = [*setting_keys, RUN_KEY]
    with_final = rows.merge(run_final_epochs(rows, setting_keys), on=run_keys, validate="many_to_one")
    last_rows = with_final[with_final["epoch"] == with_final["final_epoch"]].drop(columns="epoch")
    setting_epochs = rows[[*setting_keys, "epoch"]].drop_duplicates()
    carried = last_rows.merge(setting_epochs, on=setting_keys)
    carried = carried[carried["epoch"] > carried["final_epoch"]]
    columns = [*rows.columns, "carried"]
    return pd.concat([with_final.assign(carried=False), carried.assign(carried=True)], ignore_index=True)[columns]


def seed_spread(
    rows: pd.DataFrame, value_column: str, series_keys: Sequence[str] = (), setting_keys: Sequence[str] = SETTING_KEYS
) -> pd.DataFrame:
    """Mean, min and max over seeds of ``value_column`` per setting, epoch and series, runs carried forward.

    ``rows`` holds one row per run, epoch and series (``series_keys``, e.g. the layer). Columns of the result:
    ``setting_keys``, ``epoch``, ``series_keys``, then mean, min, max, n_seeds (runs averaged: always all runs of
    the series) and n_carried (how many of them are carried-forward final values).

    An epoch at which a run still training has no score is left out (it happens at another run's final epoch
    when that is off the checkpoint schedule): a mean over the other runs there would jump, and the stopped run's
    value reappears, carried, at the next scheduled epoch.
    """
    setting_keys, series_keys = list(setting_keys), list(series_keys)
    keys = [*setting_keys, "epoch", *series_keys]
    if rows.empty:
        return pd.DataFrame(columns=keys + SPREAD_COLUMNS)
    values = carry_forward(rows, setting_keys)
    grouped = values.groupby(keys, sort=True, observed=True)
    spread = grouped[value_column].agg(["mean", "min", "max", "count"]).rename(columns={"count": "n_seeds"})
    spread["n_carried"] = grouped["carried"].sum().astype(int)
    runs_per_series = (
        rows.groupby([*setting_keys, *series_keys], observed=True)[RUN_KEY].nunique().rename("n_runs").reset_index()
    )
    spread = spread.reset_index().merge(runs_per_series, on=[*setting_keys, *series_keys])
    complete = spread[spread["n_seeds"] == spread["n_runs"]]
    return complete[keys + SPREAD_COLUMNS].reset_index(drop=True)
