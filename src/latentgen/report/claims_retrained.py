"""Claims-table rows of the payoff of finding the wrong labels: does retraining on the examples not flagged beat
the memorized model, and its repair?

Per pair and corruption rate with a clean variant (``label_issues.retrain``), from the retrain-comparison tables
(``{results}/retrained/{run}.parquet``, ``latentgen.label_issues.retraining``): the test accuracy of the network
retrained without the flagged examples at its final epoch, against

- ``retrained_beats_memorized``: the run's network at its final epoch (after memorization);
- ``retrained_beats_repaired``: that network's ``latentgen repair`` (the transfer of the layer the held-out slice
  chooses), the no-retraining fix the paper proposes.

The three models were judged on the same test images, so each contrast is paired per image
(``latentgen.report.claims.evidence``), combined over seeds; the outcome is decided by the 95 % interval
(``latentgen.report.claims.rows.claim_row``).
"""

from __future__ import annotations

import pandas as pd

from latentgen.report.claims.evidence import Evidence, Point
from latentgen.report.claims.rows import claim_row

MEMORIZED, REPAIRED, RETRAINED = "memorized", "repaired", "retrained_clean"  # latentgen.label_issues.retraining
OUTPUT, ANY_EPOCH = "output", 0  # each model is one point per seed: its own final epoch, shown in the detail
CLAIMS = {
    "retrained_beats_memorized": (MEMORIZED, "the memorized network at its final epoch"),
    "retrained_beats_repaired": (REPAIRED, "its `latentgen repair` (the held-out slice's layer transferred)"),
}


def _evidence_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison rows as Evidence reads score rows: one classifier (``probe``) per model, one epoch."""
    return table.assign(probe=table["network"], layer=OUTPUT, epoch=ANY_EPOCH, edit_epoch=pd.NA)


def _detail(setting: pd.DataFrame) -> str:
    means = setting.groupby("network")["accuracy"].mean().mul(100)
    epochs = setting.groupby("network")["epoch"].agg(lambda e: "/".join(str(v) for v in sorted(set(e))))
    layers = ", ".join(sorted(set(setting.loc[setting["network"] == REPAIRED, "layer"])))
    retrained = setting[setting["network"] == RETRAINED]
    return (
        f"test accuracy, seed means: memorized {means.get(MEMORIZED, float('nan')):.1f} % (epoch "
        f"{epochs.get(MEMORIZED, '?')}), repaired {means.get(REPAIRED, float('nan')):.1f} % ({layers}), retrained on "
        f"the unflagged examples {means.get(RETRAINED, float('nan')):.1f} % (epoch {epochs.get(RETRAINED, '?')}); "
        f"flags of {'; '.join(sorted(set(retrained['flags_from'])))}: {retrained['n_excluded'].mean():.0f} examples "
        f"removed ({retrained['excluded_wrong'].mean():.0f} wrong), {retrained['n_trained'].mean():.0f} trained on, "
        f"{retrained['trained_wrong'].mean():.0f} of them wrong"
    )


def retrained_claim_rows(table: pd.DataFrame) -> list[dict]:
    """The claims rows (module docstring) of every pair and rate in ``table`` (the concatenated comparison
    tables), in the claims table's columns (``latentgen.report.claims.CLAIM_COLUMNS``)."""
    rows = []
    for (pair, corruption), setting in table.groupby(["pair", "corruption"], sort=True):
        evidence = Evidence(_evidence_rows(setting))
        for claim, (other, name) in CLAIMS.items():
            points = [Point(RETRAINED, OUTPUT, ANY_EPOCH), Point(other, OUTPUT, ANY_EPOCH, -1.0)]
            criterion = (
                f"the network retrained, with the same settings, without the examples flagged (truth-free choice, "
                f"final checkpoint) \u2212 {name} > 0 pp on the test set"
            )
            row = claim_row(claim, RETRAINED, OUTPUT, None, evidence.contrast(points, int(corruption)), criterion,
                            _detail(setting))  # fmt: skip
            rows.append(
                {
                    "pair": pair,
                    "corruption": int(corruption),
                    "wrong_label_fraction": float(setting["wrong_label_fraction"].mean()),
                    "seed": None,
                    "n_seeds": int(setting["seed"].nunique()),
                    **row,
                }
            )
    return rows
