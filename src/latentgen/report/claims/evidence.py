"""Per-sample evidence for a claim: accuracies of classifiers on the same test images, combined over seeds.

A claim compares points of the score table -- (probe, layer, epoch) of a setting, or of another rate or an edited
run of the same pair -- through a contrast Σ w_k · accuracy_k.  Every point of one seed was judged on the same
test images, so the contrast is computed per image, d_i = Σ w_k · correct_k,i, and its standard error is
sd(d)/sqrt(n) (``latentgen.common.stats``: paired, so two classifiers that agree on most images are compared far
more precisely than two independent accuracies).  Where a point has no per-image record (``correct`` is kept for
the test split of classifiers scored on every test image; kNN on a capped subset has none), the contrast falls
back to independent binomial errors, sqrt(Σ w² a(1 - a)/n), which overstates the noise of correlated classifiers.
Seeds are combined by ``stats.across_seeds`` (their spread, floored by the test-set noise); a run that stopped
before an epoch counts with its final checkpoint there, as the seed means carry it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentgen.common.stats import Estimate, across_seeds, normal_estimate
from latentgen.scoring.selection import SELECTED, unpack_correct

CHOSEN = "chosen"  # the layer name every ``selected`` row gets: one series, whatever each checkpoint chose
PERCENT = 100.0


@dataclass(frozen=True)
class Point:
    """One classifier at one epoch: ``corruption`` None is the claim's own rate, ``edit`` None standard training."""

    probe: str
    layer: str
    epoch: int
    weight: float = 1.0
    corruption: int | None = None
    edit: int | None = None


class Evidence:
    """The test rows of one pair (every rate, standard and edited runs), indexed for contrasts."""

    def __init__(self, tested: pd.DataFrame) -> None:
        rows = tested.assign(layer=tested["layer"].where(tested["probe"] != SELECTED, CHOSEN))
        edit = rows["edit_epoch"] if "edit_epoch" in rows else pd.Series(pd.NA, index=rows.index)
        rows = rows.assign(edit=edit.astype("Int64").fillna(-1).astype(int))
        self.rows = rows.set_index(["corruption", "edit", "seed", "probe", "layer", "epoch"]).sort_index()
        self.final_epochs = rows.groupby(["corruption", "edit", "seed"])["epoch"].max()

    def seeds(self, corruption: int, edit: int | None = None) -> list[int]:
        key = (corruption, -1 if edit is None else edit)
        return sorted(int(s) for c, e, s in self.final_epochs.index if (c, e) == key)

    def _row(self, point: Point, corruption: int, seed: int) -> tuple[tuple, pd.Series] | None:
        """The run's row at the point's epoch, or at its final epoch when it stopped before (carried), with its key."""
        edit = -1 if point.edit is None else point.edit
        rate = corruption if point.corruption is None else point.corruption
        final = self.final_epochs.get((rate, edit, seed))
        if final is None:
            return None
        try:
            series = self.rows.loc[(rate, edit, seed, point.probe, point.layer)]
        except KeyError:
            return None
        epochs = series.index[series.index <= min(point.epoch, final)]
        if not len(epochs):
            return None
        return (rate, edit, seed, point.probe, point.layer, epochs.max()), series.loc[epochs.max()]

    def seed_contrast(self, points: list[Point], corruption: int, seed: int) -> Estimate | None:
        """Σ w·accuracy of one seed's points, per image where every point has its record; None if one is missing."""
        resolved = [self._row(point, corruption, seed) for point in points]
        if any(row is None for row in resolved):
            return None
        rows, weights = _merged(resolved, [point.weight for point in points])
        if not rows:  # the points cancel (e.g. a peak that is the final epoch): exactly 0
            return normal_estimate(0.0, 0.0, int(resolved[0][1].get("n_samples", 0)))
        records = [_record(row) for row in rows]
        if all(record is not None for record in records) and len({len(r) for r in records}) == 1:
            per_image = weights @ np.vstack(records).astype(float)
            error = per_image.std(ddof=1) / math.sqrt(len(per_image)) if len(per_image) > 1 else 0.0
            return normal_estimate(float(per_image.mean()), float(error), len(per_image))
        accuracies = np.array([float(row["accuracy"]) for row in rows])
        sizes = np.array([float(row.get("n_samples", np.nan)) for row in rows])
        error = math.sqrt(float(np.sum(weights**2 * accuracies * (1 - accuracies) / sizes)))
        return normal_estimate(float(weights @ accuracies), error, int(np.nanmin(sizes)) if sizes.size else 0)

    def contrast(self, points: list[Point], corruption: int, edit: int | None = None) -> Estimate:
        """The contrast in percentage points over the seeds where every point exists (NaN when none does)."""
        per_seed = [self.seed_contrast(points, corruption, seed) for seed in self.seeds(corruption, edit)]
        per_seed = [estimate for estimate in per_seed if estimate is not None]
        if not per_seed:
            return normal_estimate(float("nan"), float("nan"), 0)
        combined = across_seeds(per_seed)
        return Estimate(
            value=PERCENT * combined.value,
            standard_error=PERCENT * combined.standard_error,
            low=PERCENT * combined.low,
            high=PERCENT * combined.high,
            n=combined.n,
        )


def _merged(resolved: list[tuple[tuple, pd.Series]], weights: list[float]) -> tuple[list[pd.Series], np.ndarray]:
    """One term per distinct row (two points may resolve to one checkpoint), zero weights dropped."""
    by_row: dict[tuple, list] = {}
    for (key, row), weight in zip(resolved, weights):
        by_row.setdefault(key, [row, 0.0])[1] += weight
    kept = [(row, weight) for row, weight in by_row.values() if weight != 0]
    return [row for row, _ in kept], np.array([weight for _, weight in kept])


def _record(row: pd.Series) -> np.ndarray | None:
    packed = row.get("correct")
    if packed is None or (isinstance(packed, float) and math.isnan(packed)):
        return None
    return unpack_correct(packed, int(row["n_samples"]))
