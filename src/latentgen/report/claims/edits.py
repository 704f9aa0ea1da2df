"""Does a VeLPIC edit midway through training keep its gain?  Per pair, rate and edit epoch E, the runs edited at E
against standard training, right after the edit and at the edited runs' end."""

from __future__ import annotations

import pandas as pd

from latentgen.report.claims.evidence import Evidence, Point
from latentgen.report.claims.means import curve, seed_mean_test_accuracy
from latentgen.report.claims.rows import claim_row
from latentgen.report.seed_means import run_final_epochs


def _stopped_before(final_epochs: pd.DataFrame, pair: str, rate: int, edit: int) -> str:
    """A note for the rows of edit E when standard runs of the setting stopped before E (their edits were made on
    their final checkpoints, latentgen.training.schedule.edit_base_epoch); empty otherwise."""
    runs = final_epochs[(final_epochs["pair"] == pair) & (final_epochs["corruption"] == rate)]
    early = runs[runs["final_epoch"] < edit]
    if early.empty:
        return ""
    stops = ", ".join(str(int(epoch)) for epoch in sorted(early["final_epoch"]))
    return (
        f"; {len(early)} of {len(runs)} standard runs stopped before epoch {edit} (at {stops}): their edits "
        "were made on their final checkpoints"
    )


def edit_rows(standard: pd.DataFrame, edited: pd.DataFrame) -> list[dict]:
    """``standard``, ``edited``: the test rows of standard training and of the edited runs (``edit_epoch`` set)."""
    rows: list[dict] = []
    if edited.empty:
        return rows
    final_epochs = run_final_epochs(standard, ["pair", "corruption"])
    for (pair, rate, edit), runs in edited.groupby(["pair", "corruption", "edit_epoch"], sort=True):
        edit_curve = curve(seed_mean_test_accuracy(runs), "model")
        if edit_curve.empty:
            continue
        evidence = Evidence(pd.concat([standard[standard["pair"] == pair], runs]))
        edit, end = int(edit), int(edit_curve.index.max())
        stopped = _stopped_before(final_epochs, pair, rate, edit)
        common = {"pair": pair, "corruption": int(rate), "seed": None, "n_seeds": int(runs["seed"].nunique())}
        for claim, epoch, statement, note in (
            ("edit_gains", edit, "the VeLPIC edit raises test accuracy over standard training at epoch E", ""),
            (
                "edit_keeps_gain",
                end,
                "after training on, the edited model still beats standard training",
                f"at the edited runs' last epoch {end} (standard training: its value there, carried forward)",
            ),
        ):
            points = [Point("model", "output", epoch, 1.0, edit=edit), Point("model", "output", epoch, -1.0)]
            estimate = evidence.contrast(points, int(rate), edit)
            label = f"model edited at epoch {edit}"
            criterion = f"{statement}: edited \u2212 standard > 0 pp"
            rows.append({**common, **claim_row(claim, label, "output", epoch, estimate, criterion, note + stopped)})
    return rows
