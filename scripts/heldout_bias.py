"""The held-out slice's bias per pair, rate and layer, from a results folder's scores.parquet.

    python scripts/heldout_bias.py results/quickstart

bias = held-out noisy accuracy − ((1 − c)·test accuracy + c/K), averaged over the candidate probes of each layer at
each run's final epoch, with a standard error from the two accuracies' binomial errors (independent samples; the
mean over candidates takes the mean of their SEs, a conservative bound).  Works on score tables of every version
(it reads accuracies only; the claims table's `heldout_slice_unbiased` rows use the per-sample records instead).
Zero within its standard error when the network never saw the slice; positive when it memorized it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from latentgen.scoring.selection import RANKING_SPLIT, is_candidate

NUM_CLASSES = 10  # the quick-start's datasets


def candidate_biases(scores: pd.DataFrame, n_test: int, n_held_out: dict) -> pd.DataFrame:
    final = scores[scores["epoch"] == scores.groupby(["pair", "corruption", "seed"])["epoch"].transform("max")]
    final = final[final["probe"].map(is_candidate) & final["split"].isin([RANKING_SPLIT, "test"])]
    wide = final.pivot_table(index=["pair", "corruption", "seed", "layer", "probe"], columns="split", values="accuracy")
    wide = wide.dropna().reset_index()
    c = wide["corruption"] / 100.0
    expected = (1 - c) * wide["test"] + c / NUM_CLASSES
    held = wide[RANKING_SPLIT]
    n_h = wide.apply(lambda row: n_held_out[(row["pair"], row["corruption"])], axis=1)
    wide["bias"] = held - expected
    wide["se"] = np.sqrt(held * (1 - held) / n_h + (1 - c) ** 2 * wide["test"] * (1 - wide["test"]) / n_test)
    return wide


def main(argv: list[str]) -> int:
    results = Path(argv[1])
    scores = pd.read_parquet(results / "scores.parquet")
    scores = scores[(scores["corruption"] > 0) & (scores["corruption"] < 100)]
    if "edit_epoch" in scores:
        scores = scores[scores["edit_epoch"].isna()]
    n_test = int(scores["n_samples"].max()) if "n_samples" in scores else 1000
    # the slice's size: 10 % of 3,000 in the quick-start, unless the table says
    n_held_out = {
        key: int(rows["n_samples"].max()) if "n_samples" in rows else 300
        for key, rows in scores[scores["split"] == RANKING_SPLIT].groupby(["pair", "corruption"])
    }
    biases = candidate_biases(scores, n_test, n_held_out)
    table = biases.groupby(["pair", "corruption", "layer"], sort=False).agg(bias=("bias", "mean"), se=("se", "mean"))
    overall = biases.groupby(["pair", "corruption"]).agg(bias=("bias", "mean"), se=("se", "mean"))
    pd.set_option("display.width", 120)
    print((100 * overall).round(1).rename(columns={"bias": "bias_pp", "se": "se_pp"}).to_string())
    print()
    print((100 * table).round(1).rename(columns={"bias": "bias_pp", "se": "se_pp"}).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
