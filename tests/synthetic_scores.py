"""Synthetic score tables for the figure and summary tests: every accuracy a known function of its keys."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

LAYER_ORDER = {"mlp": ["fc1", "fc2", "fc3", "fc4"], "cnn": ["flat", "fc1", "fc2", "fc3"]}
PAIRS = ["mlp-mnist", "cnn-fashion_mnist"]  # both main-text pairs: the appendix figures have nothing to show
RATES = [0, 40, 80]
SEEDS = [0, 1]
EPOCHS = [0, 2, 4, 6]
PROBE_SPLITS = ["train_corrupted", "train_true", "test"]


def synthetic_value(pair: str, rate: int, seed: int, epoch: int, layer: str, probe: str, split: str) -> float:
    """A deterministic accuracy in [0, 1] that differs across every key, so mix-ups change the numbers."""
    base = {"model": 0.50, "masc": 0.40, "velpic": 0.45, "transfer": 0.48}[probe]
    layer_shift = 0.02 * (sum(map(ord, layer)) % 7)
    value = base + layer_shift + 0.03 * epoch / 6 - 0.002 * rate + 0.01 * seed + (0.05 if split != "test" else 0.0)
    return float(np.clip(value + (0.01 if pair.startswith("cnn") else 0.0), 0.0, 1.0))


def score_row(
    pair: str,
    rate: int,
    seed: int,
    epoch: int,
    layer: str,
    probe: str,
    split: str,
    accuracy: float,
    n_samples: int = 10_000,
) -> dict:
    """A score-table row's keys and accuracy, the model and dataset those of the pair's name ("mlp-mnist"), judged on
    ``n_samples`` images (the paper's test-set size)."""
    model, _, dataset = pair.partition("-")
    return {
        "model": model,
        "dataset": dataset,
        "pair": pair,
        "corruption": rate,
        "seed": seed,
        "epoch": epoch,
        "layer": layer,
        "probe": probe,
        "split": split,
        "accuracy": accuracy,
        "n_samples": n_samples,
        "correct": None,  # no per-sample record: claims fall back to binomial errors of n_samples
        "edit_epoch": pd.NA,
    }


def make_scores(epochs_by_seed: dict[int, list[int]] | None = None) -> pd.DataFrame:
    rows = []
    for pair, rate, seed in itertools.product(PAIRS, RATES, SEEDS):
        layers = LAYER_ORDER[pair.partition("-")[0]]
        probe_layers = [("model", "output")] + [(p, layer) for p in ("masc", "velpic") for layer in layers]
        probe_layers.append(("transfer", layers[-1]))
        for epoch in (epochs_by_seed or {}).get(seed, EPOCHS):
            for (probe, layer), split in itertools.product(probe_layers, PROBE_SPLITS):
                accuracy = synthetic_value(pair, rate, seed, epoch, layer, probe, split)
                rows.append(
                    {
                        **score_row(pair, rate, seed, epoch, layer, probe, split, accuracy),
                        "n_components": 3.0 if probe == "masc" else np.nan,
                        "fit_seconds": 0.01,
                    }
                )
    return pd.DataFrame(rows)


def with_new_probes(scores: pd.DataFrame) -> pd.DataFrame:
    """Transfer on every layer (= VeLPIC), a further probe family, an oracle, and a selected choice per run."""
    velpic = scores[scores["probe"] == "velpic"]
    transfer = velpic.assign(probe="transfer")
    knn = velpic.assign(probe="knn", accuracy=velpic["accuracy"] - 0.01)
    oracle = velpic.assign(probe="masc_true", accuracy=velpic["accuracy"] + 0.1)
    chosen = velpic[velpic["layer"] == "fc2"].assign(probe="selected", layer="velpic:fc2")
    others = scores[scores["probe"] != "transfer"]
    return pd.concat([others, transfer, knn, oracle, chosen], ignore_index=True)
