"""A claims-table row: what is claimed, the tested value with its 95 % interval, and the outcome.

Every row's ``value`` is the quantity its criterion tests (mostly a difference of test accuracies, in percentage
points), with ``ci_low``/``ci_high``/``standard_error`` from ``latentgen.report.claims.evidence`` and ``reference``
the threshold it is tested against.  ``outcome`` is ``holds`` (the whole interval on the claimed side), ``fails``
(the whole interval on the other side), ``inconclusive`` (the interval straddles the threshold: the test set and
seeds cannot tell) or ``n/a`` (the claim's premise is absent; ``detail`` says why).
"""

from __future__ import annotations

import math

from latentgen.common.stats import ClaimResult, Estimate, claim_outcome

CLAIM_COLUMNS = [
    "pair",
    "corruption",
    "wrong_label_fraction",
    "seed",
    "n_seeds",
    "claim",
    "subject",
    "layer",
    "epoch",
    "value",
    "ci_low",
    "ci_high",
    "standard_error",
    "reference",
    "unit",
    "criterion",
    "outcome",
    "detail",
]
NOT_APPLICABLE = "n/a"


def at_least_outcome(estimate: Estimate, threshold: float) -> ClaimResult:
    """ "value >= threshold": holds when the whole interval is at or above it (an exact tie holds)."""
    if math.isnan(estimate.value):
        return ClaimResult(NOT_APPLICABLE, reason="no value: a compared classifier has no score")
    if estimate.low >= threshold:
        outcome = "holds"
    elif estimate.high < threshold:
        outcome = "fails"
    else:
        outcome = "inconclusive"
    return ClaimResult(outcome, estimate.value, estimate.low, estimate.high, estimate.standard_error)


def outcome_of(estimate: Estimate, threshold: float, direction: str) -> ClaimResult:
    """The outcome of "value <direction> threshold" for ``direction`` greater, less or at_least."""
    if direction == "at_least":
        return at_least_outcome(estimate, threshold)
    if math.isnan(estimate.value):
        return ClaimResult(NOT_APPLICABLE, reason="no value: a compared classifier has no score")
    return claim_outcome(estimate, threshold, direction)


def claim_row(
    claim: str,
    subject: str,
    layer: str,
    epoch: int | None,
    estimate: Estimate,
    criterion: str,
    detail: str,
    unit: str = "pp",
    threshold: float = 0.0,
    direction: str = "greater",
) -> dict:
    """A row whose outcome is decided by its interval (``direction``: greater, less or at_least)."""
    result = outcome_of(estimate, threshold, direction)
    return result_row(claim, subject, layer, epoch, result, threshold, unit, criterion, detail)


def result_row(
    claim: str,
    subject: str,
    layer: str,
    epoch: int | None,
    result: ClaimResult,
    reference: float,
    unit: str,
    criterion: str,
    detail: str,
) -> dict:
    return {
        "claim": claim,
        "subject": subject,
        "layer": layer,
        "epoch": epoch,
        "value": result.value,
        "ci_low": result.low,
        "ci_high": result.high,
        "standard_error": result.standard_error,
        "reference": reference,
        "unit": unit,
        "criterion": criterion,
        "outcome": result.outcome,
        # an interval speaks for itself (its columns); the reason of an n/a is the only thing to add
        "detail": "; ".join(part for part in (detail, _reason(result)) if part),
    }


def _reason(result: ClaimResult) -> str:
    return result.reason if result.outcome == NOT_APPLICABLE else ""


def not_applicable_row(claim: str, subject: str, layer: str, epoch: int | None, criterion: str, reason: str) -> dict:
    """A claim whose premise is absent: no value, outcome n/a, the reason in ``detail``."""
    result = ClaimResult(NOT_APPLICABLE, reason=reason)
    return result_row(claim, subject, layer, epoch, result, float("nan"), "pp", criterion, "")
