"""Claims rows of the retrained-on-clean comparison: paired per-image contrasts, checked against hand computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from latentgen.report.claims import CLAIM_COLUMNS
from latentgen.report.claims_retrained import retrained_claim_rows
from latentgen.scoring.selection import pack_correct

N = 400


def _row(model: str, correct: np.ndarray, seed: int = 0, epoch: int = 25) -> dict:
    return {
        "pair": "mlp-mnist",
        "corruption": 80,
        "seed": seed,
        "network": model,
        "epoch": epoch,
        "layer": "fc1" if model == "repaired" else "output",
        "split": "test",
        "accuracy": float(correct.mean()),
        "n_samples": len(correct),
        "correct": pack_correct(correct),
        "n_trained": 1200,
        "n_excluded": 1300,
        "excluded_wrong": 1100,
        "trained_wrong": 250,
        "flags_from": "velpic:fc1 at epoch 25 (rule)",
        "wrong_label_fraction": 0.72,
    }


def _table(memorized: np.ndarray, repaired: np.ndarray, retrained: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame([_row("memorized", memorized), _row("repaired", repaired), _row("retrained_clean", retrained)])


def test_the_contrasts_are_paired_per_image_and_decide_the_outcome():
    rng = np.random.default_rng(0)
    memorized = rng.random(N) < 0.3
    retrained = memorized | (rng.random(N) < 0.5)  # right wherever the memorized model is, and on many more
    repaired = retrained.copy()
    repaired[:3] = ~repaired[:3]  # three images apart: the test set cannot tell them apart
    rows = {row["claim"]: row for row in retrained_claim_rows(_table(memorized, repaired, retrained))}
    assert set(rows) == {"retrained_beats_memorized", "retrained_beats_repaired"}
    assert all(list(row) == CLAIM_COLUMNS for row in rows.values())
    beats = rows["retrained_beats_memorized"]
    differences = retrained.astype(float) - memorized
    assert beats["value"] == pytest.approx(100 * differences.mean())
    assert beats["standard_error"] == pytest.approx(100 * differences.std(ddof=1) / math.sqrt(N))
    assert beats["outcome"] == "holds" and beats["ci_low"] > 0
    assert rows["retrained_beats_repaired"]["outcome"] == "inconclusive"
    assert f"memorized {100 * memorized.mean():.1f} %" in beats["detail"]
    assert "1300 examples removed (1100 wrong)" in beats["detail"]
    assert beats["wrong_label_fraction"] == pytest.approx(0.72) and beats["n_seeds"] == 1


def test_a_worse_retrained_model_fails():
    memorized = np.ones(N, dtype=bool)
    retrained = np.arange(N) % 2 == 0
    rows = {row["claim"]: row for row in retrained_claim_rows(_table(memorized, memorized, retrained))}
    assert rows["retrained_beats_memorized"]["outcome"] == "fails"
    assert rows["retrained_beats_memorized"]["value"] == pytest.approx(-50.0)
