"""The held-out choice (probe ``selected``) against the model and the test-set oracle, and whether the slice it
ranks on is unbiased: held-out noisy accuracy against (1 - c)·a + c/K, which holds for a slice the network never
saw (``latentgen.scoring.selection``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentgen.common.stats import (
    Estimate,
    across_seeds,
    expected_noisy_accuracy_bias,
    mean_expected_noisy_accuracy_bias,
)
from latentgen.report.claims.evidence import CHOSEN, PERCENT, Point
from latentgen.report.claims.means import final_means, layers_of
from latentgen.report.claims.rows import claim_row, not_applicable_row
from latentgen.report.claims.setting import Setting
from latentgen.scoring.selection import RANKING_SPLIT, SELECTED, is_candidate, unpack_correct

# The held-out choice may lose a little against the oracle: within this many pp it counts as finding the best.
SELECTION_TOLERANCE_PP = 1.0


def selection_rows(setting: Setting) -> list[dict]:
    """The held-out choice against the model, and against the best candidate on the test set (an oracle)."""
    final = final_means(setting.means)
    if (SELECTED, CHOSEN) not in final.index:
        return []
    epoch = setting.final_epoch
    candidates = final[[is_candidate(probe) for probe, _ in final.index]]
    oracle_probe, oracle_layer = candidates.idxmax()
    chosen = Point(SELECTED, CHOSEN, epoch)
    beats = setting.contrast(chosen, Point("model", "output", epoch, -1.0))
    gap = setting.contrast(Point(oracle_probe, oracle_layer, epoch), Point(SELECTED, CHOSEN, epoch, -1.0))
    chosen_value, model_value = float(final[(SELECTED, CHOSEN)]), float(final[("model", "output")])
    return [
        claim_row(
            "selected_beats_model",
            SELECTED,
            CHOSEN,
            epoch,
            beats,
            "the probe and layer chosen on the held-out slice (no test data) \u2212 model > 0 pp at the final epoch",
            f"{chosen_value:.1f} % against the model's {model_value:.1f} %",
        ),
        claim_row(
            "selected_near_test_best",
            SELECTED,
            f"{oracle_probe}:{oracle_layer}",
            epoch,
            gap,
            "the best (probe, layer) on the test set (an oracle) \u2212 the held-out choice < "
            f"{SELECTION_TOLERANCE_PP:g} pp at the final epoch",
            f"oracle {oracle_probe} on {oracle_layer}: {float(candidates.max()):.1f} %; "
            f"held-out choice {chosen_value:.1f} %",
            threshold=SELECTION_TOLERANCE_PP,
            direction="less",
        ),
    ]


def _seed_biases(runs: pd.DataFrame, corruption: float, num_classes: int) -> dict[str, list[Estimate]]:
    """Per layer, the bias of every candidate of one run at one epoch (held-out and test rows of ``runs``)."""
    biases: dict[str, list[Estimate]] = {}
    held = runs[(runs["split"] == RANKING_SPLIT) & runs["probe"].map(is_candidate) & runs["correct"].notna()]
    tests = runs[runs["split"] == "test"].set_index(["probe", "layer"])
    for row in held.itertuples():
        if (row.probe, row.layer) not in tests.index:
            continue
        test = tests.loc[(row.probe, row.layer)]
        held_correct = unpack_correct(row.correct, row.n_samples)
        bias = expected_noisy_accuracy_bias(
            held_correct, float(test["accuracy"]), int(test["n_samples"]), corruption, num_classes
        )
        biases.setdefault(row.layer, []).append(bias)
    return biases


def _percent(estimate: Estimate) -> Estimate:
    scaled = (PERCENT * v for v in (estimate.value, estimate.standard_error, estimate.low, estimate.high))
    return Estimate(*scaled, estimate.n)


def bias_rows(setting: Setting, scores: pd.DataFrame, num_classes: int) -> list[dict]:
    """Held-out noisy accuracy minus its expectation from test accuracy, over every candidate at the final epoch:
    overall and per layer (a layer that memorized the slice would stand out, most near the output)."""
    criterion = (
        "held-out noisy accuracy \u2212 ((1 \u2212 c)\u00b7test accuracy + c/K), mean over candidates: consistent "
        "with 0 pp (interval contains 0) for a slice the network never saw"
    )
    if "correct" not in scores or not (scores["split"] == RANKING_SPLIT).any():
        return [not_applicable_row("heldout_slice_unbiased", "candidates", "all", None, criterion, "nothing withheld")]
    per_seed: dict[str, list[Estimate]] = {}
    for _, runs in scores.groupby("seed"):
        at_final = runs[runs["epoch"] == runs["epoch"].max()]
        by_layer = _seed_biases(at_final, setting.corruption / 100.0, num_classes)
        for layer, biases in by_layer.items():
            per_seed.setdefault(layer, []).append(mean_expected_noisy_accuracy_bias(biases))
        everything = [bias for biases in by_layer.values() for bias in biases]
        if everything:
            per_seed.setdefault("all", []).append(mean_expected_noisy_accuracy_bias(everything))
    layers = [layer for layer in layers_of(setting.means, "velpic", setting.pair) if layer in per_seed]
    layers += sorted(set(per_seed) - set(layers) - {"all"})
    rows = []
    for layer in ["all", *layers]:
        estimate = _percent(across_seeds(per_seed[layer])) if layer in per_seed else None
        if estimate is None or np.isnan(estimate.value):
            continue
        inside = estimate.low <= 0.0 <= estimate.high
        row = claim_row(
            "heldout_slice_unbiased",
            "candidates",
            layer,
            setting.final_epoch,
            estimate,
            criterion,
            "a layer's bias would grow toward the output if the network had memorized the slice",
        )
        rows.append({**row, "outcome": "holds" if inside else "fails"})
    return rows
