"""Per run, that it learned: its training loss a few epochs in is no longer the loss of a uniform guess, ln K.

A property of that run's own training (the loss over every training sample it fitted), not an estimate from a
sample of test images: its interval is the value itself."""

from __future__ import annotations

import math

import pandas as pd

from latentgen.common.stats import ClaimResult
from latentgen.report.claims.rows import result_row
from latentgen.training.learning import (
    LEARNED_ACCURACY_OVER_CHANCE,
    LEARNING_CHECK_EPOCH,
    LEARNING_TOLERANCE,
    has_learned,
)

HISTORY_COLUMNS = ["pair", "corruption", "seed", "epoch", "train_loss", "train_accuracy_true", "num_classes"]


def learning_rows(histories: pd.DataFrame) -> list[dict]:
    """One row per run below 100 % corruption (at 100 % a loss near ln K for the first epochs is expected)."""
    rows = []
    runs = histories[histories["corruption"] < 100]
    for (pair, corruption, seed), history in runs.groupby(["pair", "corruption", "seed"], sort=True):
        epoch = min(LEARNING_CHECK_EPOCH, int(history["epoch"].max()))
        at_epoch = history.loc[history["epoch"] == epoch].iloc[0]
        loss, classes = float(at_epoch["train_loss"]), int(history["num_classes"].iloc[0])
        learned = has_learned(loss, classes, float(at_epoch["train_accuracy_true"]))
        result = ClaimResult("holds" if learned else "fails", loss, loss, loss, 0.0)
        criterion = (
            f"training loss at epoch {epoch} more than {100 * LEARNING_TOLERANCE:.0f} % below ln K (the loss of a "
            f"uniform guess), or accuracy on the clean training labels above {LEARNED_ACCURACY_OVER_CHANCE:g}/K"
        )
        detail = "" if learned else "did not learn: its figures show an untrained network"
        row = result_row("run_learned", "model", "output", epoch, result, math.log(classes), "nats", criterion, detail)
        rows.append({"pair": pair, "corruption": int(corruption), "seed": int(seed), "n_seeds": 1, **row})
    return rows
