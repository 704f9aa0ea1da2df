"""Which of the paper's claims a results set reproduces: one row per claim and setting, the tested value with its
95 % interval, and an outcome (holds / fails / inconclusive / n/a).

Computed from the tidy scores (split ``test``) and the runs' training histories, per pair and corruption rate
strictly between 0 % and 100 % (the paper's claims are about memorizing partly corrupted labels).  Choices (a peak
epoch, a best layer) are made on seed means, as the figures draw them, and said on every row (on the test set as
the paper does, an oracle; or on the held-out slice, which the network never saw); the evidence for the claim about
the chosen points is paired per test image and combined over seeds (``evidence``).  The families:

- ``dynamics``: the model falls from its peak; each paper probe's best layer falls less and ends higher (n/a
  where the model never fell: no memorizing phase);
- ``selection``: the held-out choice against the model and the oracle; the slice's bias (none for a slice the
  network never saw);
- ``families``: the best probe family, a probe beyond MASC and VeLPIC, VeLPIC against MASC;
- ``transfer``: the transfer against the model, from other layers, and its exactness image by image;
- ``edits``: VeLPIC edits midway through training;
- ``learning``: per run, that it learned.

Free of torch and of plotting, so the workflow's light job runs it without either.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from latentgen.report.claims.dynamics import dynamics_rows, memorized, model_falls_row
from latentgen.report.claims.edits import edit_rows
from latentgen.report.claims.evidence import Evidence
from latentgen.report.claims.families import family_rows, velpic_rows
from latentgen.report.claims.learning import HISTORY_COLUMNS, learning_rows
from latentgen.report.claims.means import is_partly_corrupted, seed_mean_accuracy, seed_mean_test_accuracy
from latentgen.report.claims.rows import CLAIM_COLUMNS
from latentgen.report.claims.selection import bias_rows, selection_rows
from latentgen.report.claims.setting import Setting
from latentgen.report.claims.transfer import transfer_rows
from latentgen.scoring.selection import RANKING_SPLIT

__all__ = [
    "CLAIM_COLUMNS",
    "HISTORY_COLUMNS",
    "append_rows",
    "claims_table",
    "read_claims",
    "split_edited_runs",
    "with_the_settings_wrong_fraction",
]


def read_claims(path) -> pd.DataFrame:
    """claims.csv read back: the outcome "n/a" stays a string (pandas would read it as a missing value)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def split_edited_runs(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(standard training, edited runs): ``edit_epoch`` is null for standard training."""
    edited = scores["edit_epoch"].notna()
    return scores[~edited], scores[edited]


def _setting_rows(setting: Setting, previous: Setting | None, scores: pd.DataFrame, classes: int) -> list[dict]:
    """Every claim of one setting; ``scores``: its standard runs' rows (every split)."""
    tested = scores[scores["split"] == "test"]
    absent = memorized({**model_falls_row(setting), "final_epoch": setting.final_epoch})
    rows = (
        dynamics_rows(setting)
        + velpic_rows(setting, previous)
        + transfer_rows(setting, tested, absent)
        + selection_rows(setting)
        + bias_rows(setting, scores, classes)
        + family_rows(setting)
    )
    n_seeds = int(setting.means["n_seeds"].max())
    wrong = setting.corruption / 100.0 * (1.0 - 1.0 / classes)
    identity = {"pair": setting.pair, "corruption": setting.corruption, "wrong_label_fraction": wrong}
    return [{**identity, **row, "seed": pd.NA, "n_seeds": n_seeds} for row in rows]


def _pair_settings(pair: str, scores: pd.DataFrame, means: pd.DataFrame, heldout: pd.DataFrame) -> Iterable[Setting]:
    evidence = Evidence(scores[(scores["pair"] == pair) & (scores["split"] == "test")])
    pair_means = means[means["pair"] == pair]
    for rate in sorted(int(rate) for rate in pair_means["corruption"].unique()):
        yield Setting(
            pair,
            rate,
            pair_means[pair_means["corruption"] == rate],
            heldout[(heldout["pair"] == pair) & (heldout["corruption"] == rate)],
            evidence,
        )


def claims_table(scores: pd.DataFrame, histories: pd.DataFrame) -> pd.DataFrame:
    """The claims of every pair and rate strictly between 0 % and 100 %, then one learning row per run.

    ``histories``: one row per run and epoch (``HISTORY_COLUMNS``; ``num_classes`` is K).  Edited runs (``edit_epoch``
    set) count in their own rows only (``edit_rows``).
    """
    standard, edited = split_edited_runs(scores)
    means = seed_mean_test_accuracy(standard)
    heldout = seed_mean_accuracy(standard, RANKING_SPLIT)
    classes = histories.groupby("pair")["num_classes"].first().to_dict()
    partly = standard[is_partly_corrupted(standard["corruption"])]
    rows: list[dict] = []
    for pair in sorted(means["pair"].unique()):
        previous = None
        for setting in _pair_settings(pair, partly, means, heldout):
            run_rows = partly[(partly["pair"] == pair) & (partly["corruption"] == setting.corruption)]
            rows += _setting_rows(setting, previous, run_rows, int(classes[pair]))
            previous = setting
    tested = scores[scores["split"] == "test"]
    standard_tested, edited_tested = split_edited_runs(tested)
    rows += [{**row, "wrong_label_fraction": _wrong(row, classes)} for row in edit_rows(standard_tested, edited_tested)]
    rows += [{**row, "wrong_label_fraction": _wrong(row, classes)} for row in learning_rows(histories[HISTORY_COLUMNS])]
    table = pd.DataFrame(rows, columns=CLAIM_COLUMNS)
    table["seed"] = table["seed"].astype("Int64")
    table["epoch"] = table["epoch"].astype("Int64")
    return table


def _wrong(row: dict, classes: dict[str, int]) -> float:
    """The fraction of training labels that are wrong at the row's rate: c (1 - 1/K), a re-drawn label may stay."""
    return row["corruption"] / 100.0 * (1.0 - 1.0 / classes[row["pair"]])


def append_rows(claims: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """The claims table with rows made outside it (label issues, retraining), in its columns."""
    extra = with_the_settings_wrong_fraction(pd.DataFrame(rows, columns=CLAIM_COLUMNS), claims)
    return pd.concat([claims, extra]).reset_index(drop=True)


def with_the_settings_wrong_fraction(rows: pd.DataFrame, claims: pd.DataFrame) -> pd.DataFrame:
    """One wrong-label fraction per setting in the whole table: the scores' claims' c (1 - 1/K). The label-issue
    and retraining rows carry the base rate measured on the examples they flag, which their metrics table shows
    beside every AUPRC; a setting read as "36 % wrong" on one line and "37 % wrong" on the next confuses."""
    expected = claims.groupby(["pair", "corruption"])["wrong_label_fraction"].first()
    keys = pd.MultiIndex.from_frame(rows[["pair", "corruption"]])
    fraction = expected.reindex(keys).to_numpy()
    measured = rows["wrong_label_fraction"].to_numpy()
    return rows.assign(wrong_label_fraction=np.where(np.isnan(fraction), measured, fraction))
