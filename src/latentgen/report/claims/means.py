"""Seed-mean curves of one setting: what the claims *choose* from (peaks, best layers, the held-out choice).

Choices are made on seed means, as the figures draw them; the evidence for the claim about the chosen points is
then computed per image and per seed (``latentgen.report.claims.evidence``).
"""

from __future__ import annotations

import pandas as pd

from latentgen.report.claims.evidence import CHOSEN
from latentgen.report.seed_means import seed_spread
from latentgen.scoring.selection import SELECTED
from latentgen.training.model_names import PROBE_LAYERS


def is_partly_corrupted(corruption: pd.Series) -> pd.Series:
    return (corruption > 0) & (corruption < 100)


def seed_mean_accuracy(scores: pd.DataFrame, split: str) -> pd.DataFrame:
    """Seed-mean accuracy (%) on ``split`` per pair, corruption, epoch, probe and layer, runs carried forward.

    The ``selected`` rows count as one series (layer ``"chosen"``) whatever each seed and checkpoint chose.
    """
    rows = scores[(scores["split"] == split) & is_partly_corrupted(scores["corruption"])]
    rows = rows.assign(percent=100.0 * rows["accuracy"], layer=rows["layer"].where(rows["probe"] != SELECTED, CHOSEN))
    columns = ["pair", "corruption", "seed", "epoch", "probe", "layer", "percent"]
    return seed_spread(rows[columns], "percent", ["probe", "layer"])


def seed_mean_test_accuracy(scores: pd.DataFrame) -> pd.DataFrame:
    """Seed-mean test accuracy (%) per pair, corruption, epoch, probe and layer, runs carried forward."""
    return seed_mean_accuracy(scores, "test")


def curve(means: pd.DataFrame, probe: str, layer: str | None = None) -> pd.Series:
    """Mean accuracy by epoch of one probe (and layer) of one setting."""
    rows = means[(means["probe"] == probe) & ((means["layer"] == layer) if layer is not None else True)]
    return rows.set_index("epoch")["mean"].sort_index()


def layers_of(means: pd.DataFrame, probe: str, pair: str) -> list[str]:
    """The probe's layers in the model's order, input side first (unknown layers after, sorted)."""
    present = set(means.loc[means["probe"] == probe, "layer"])
    order = list(PROBE_LAYERS.get(pair.partition("-")[0], ()))
    return [layer for layer in order if layer in present] + sorted(present - set(order))


def peak(values: pd.Series) -> tuple[int, float]:
    """(epoch of the peak, peak); the earliest epoch wins a tie."""
    return int(values.idxmax()), float(values.max())


def final_means(means: pd.DataFrame) -> pd.Series:
    """Seed means at the setting's final epoch, indexed by (probe, layer)."""
    return means[means["epoch"] == means["epoch"].max()].set_index(["probe", "layer"])["mean"]


def best_layer(curves: dict[str, pd.Series], ranking: pd.DataFrame | None, probe: str) -> str | None:
    """The layer with the highest peak: of its test curve (``ranking`` None, an oracle), else of its held-out curve.
    The first layer (input side) wins a tie."""
    if ranking is None:
        return max(curves, key=lambda layer: curves[layer].max())
    peaks = {layer: curve(ranking, probe, layer).max() for layer in curves}
    peaks = {layer: value for layer, value in peaks.items() if pd.notna(value)}
    return max(peaks, key=peaks.get) if peaks else None
