"""Claims-table rows of the label-issue stage: do the layers find the wrong training labels better than the network?

Per pair and corruption rate above 0 %, from the label-issue metrics (``{results}/label_issue_metrics.parquet``,
one row per run, checkpoint, layer and method), at the final checkpoint (after memorization):

- ``label_issues_beat_network``: the flags of latent generalization, on the probe and layer chosen *without* the
  truth mask (the held-out choice's layer, else the last flagged layer; the metrics' ``is_choice`` rows, whose
  ``choice`` says which rule decided), rank the wrong labels better than cleanlab on the network's own softmax:
  AUPRC difference > 0;
- ``label_issues_beat_best_baseline``: the same against the best baseline (network softmax, network
  disagreement, pixel logistic regression, deep k-NN), the best picked by its seed-mean AUPRC, that is *with* the
  truth: a choice that favours the baseline, so the claim is conservative.

Intervals: per seed a paired bootstrap over examples (``latentgen.label_issues.metrics.paired_auprc_difference``
on the run's shared resamples), combined over seeds with ``latentgen.common.stats.across_seeds``; the outcome is
``claim_outcome`` (holds when the whole 95 % interval is above 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentgen.common.stats import ClaimResult, Estimate, across_seeds, claim_outcome, not_applicable
from latentgen.label_issues.metrics import paired_auprc_difference
from latentgen.report.claims.rows import result_row

NETWORK_BASELINE = "network_softmax"
FINAL_CHECKPOINTS = ("final", "peak+final")
BASELINE_NAMES = {
    "network_softmax": "cleanlab on the network's own softmax (in sample)",
    "network_disagreement": "the network's prediction ≠ the given label",
    "pixel_logreg": "cleanlab on a K-fold pixel logistic regression",
    "deep_knn": "deep k-NN on the last probed layer",
}


def _final_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    return metrics[metrics["checkpoint"].isin(FINAL_CHECKPOINTS)]


def _seed_estimate(seed_rows: pd.DataFrame, baseline: str) -> Estimate | None:
    """The chosen flags' AUPRC minus ``baseline``'s in one run, or None when either is missing."""
    chosen = seed_rows[seed_rows["is_choice"]]
    other = seed_rows[seed_rows["method"] == baseline]
    if chosen.empty or other.empty:
        return None
    a, b = chosen.iloc[0], other.iloc[0]
    return paired_auprc_difference(a["auprc"], b["auprc"], list(a["auprc_bootstrap"]), list(b["auprc_bootstrap"]))


def _combined(estimates: list[Estimate]) -> Estimate:
    """One run's bootstrap estimate as it is (its percentile interval); several seeds by ``across_seeds``."""
    if len(estimates) == 1:
        return estimates[0]
    return across_seeds(estimates)


def _judge(final: pd.DataFrame, baseline: str) -> ClaimResult:
    estimates = [_seed_estimate(rows, baseline) for _, rows in final.groupby("seed")]
    usable = [e for e in estimates if e is not None and np.isfinite(e.value)]
    if not usable:
        return not_applicable(f"no AUPRC of the chosen flags and of {baseline} at the final checkpoint")
    return claim_outcome(_combined(usable), 0.0, "greater")


def _best_baseline(final: pd.DataFrame) -> str | None:
    baselines = final[(final["kind"] == "baseline") & final["auprc"].notna()]
    if baselines.empty:
        return None
    means = baselines.groupby("method")["auprc"].mean()
    # in BASELINE_NAMES' order, so a tie (the network's softmax and its disagreement rank alike) names the first
    return str(means.reindex([name for name in BASELINE_NAMES if name in means.index]).idxmax())


def _mean_auprc(final: pd.DataFrame, selector: pd.Series) -> float:
    values = final.loc[selector, "auprc"]
    return float(values.mean()) if values.notna().any() else float("nan")


def _row(setting: tuple[str, int], final: pd.DataFrame, claim: str, baseline: str | None, criterion: str) -> dict:
    pair, corruption = setting
    chosen = final[final["is_choice"]]
    subjects = sorted({f"{m}:{layer}" for m, layer in zip(chosen["method"], chosen["layer"])})
    result = _judge(final, baseline) if baseline else not_applicable("no baseline with an AUPRC")
    epochs = sorted(final["epoch"].unique())
    detail = (
        f"AUPRC at the final checkpoint, seed means: chosen flags {_mean_auprc(final, final['is_choice']):.4f} "
        f"({'; '.join(sorted(set(chosen['choice']))) or 'no choice'}), "
        f"{baseline} {_mean_auprc(final, final['method'] == baseline):.4f}, base rate "
        f"{final['base_rate'].mean():.4f}; paired bootstrap over examples per seed"
    )
    row = result_row(
        claim,
        ", ".join(subjects) or "none",
        ", ".join(sorted(set(chosen["layer"]))) or "none",
        int(epochs[0]) if len(epochs) == 1 else None,
        result,
        0.0,
        "AUPRC difference",
        criterion,
        detail,
    )
    setting_columns = {
        "pair": pair,
        "corruption": int(corruption),
        "wrong_label_fraction": float(final["base_rate"].mean()),
        "seed": None,
        "n_seeds": int(final["seed"].nunique()),
    }
    return {**setting_columns, **row}


def label_issue_claim_rows(metrics: pd.DataFrame) -> list[dict]:
    """The claims rows (module docstring) of every pair and rate > 0 in ``metrics``, in the claims table's columns
    (``latentgen.report.claims.CLAIM_COLUMNS``)."""
    rows = []
    corrupted = _final_rows(metrics[metrics["corruption"] > 0])
    for setting, final in corrupted.groupby(["pair", "corruption"], sort=True):
        rows.append(
            _row(
                setting,
                final,
                "label_issues_beat_network",
                NETWORK_BASELINE,
                "after memorization (final checkpoint), the flags of the probe and layer chosen without the truth "
                f"rank the wrong labels better than {BASELINE_NAMES[NETWORK_BASELINE]}: AUPRC difference > 0 "
                "(95 % interval above 0)",
            )
        )
        best = _best_baseline(final)
        rows.append(
            _row(
                setting,
                final,
                "label_issues_beat_best_baseline",
                best,
                f"the same against the best baseline by seed-mean AUPRC (here {BASELINE_NAMES.get(best, best)}; "
                "picked with the truth, so conservative): AUPRC difference > 0 (95 % interval above 0)",
            )
        )
    return rows
