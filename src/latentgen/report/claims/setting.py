"""One setting (pair, corruption rate) as the claim families read it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from latentgen.report.claims.evidence import Evidence, Point
from latentgen.report.claims.means import curve, peak
from latentgen.common.stats import Estimate


@dataclass
class Setting:
    """``means``: seed-mean test accuracies (%); ``heldout``: seed-mean held-out noisy accuracies (empty when
    nothing was withheld); ``evidence``: the pair's per-image test records, for intervals."""

    pair: str
    corruption: int
    means: pd.DataFrame
    heldout: pd.DataFrame
    evidence: Evidence

    @property
    def final_epoch(self) -> int:
        return int(self.means["epoch"].max())

    def model_peak(self) -> tuple[int, float]:
        return peak(curve(self.means, "model"))

    def contrast(self, *points: Point, edit: int | None = None) -> Estimate:
        return self.evidence.contrast(list(points), self.corruption, edit)
