"""Uncertainty of accuracies, of their differences and of the claims built on them.

Pure functions on per-sample correctness (a boolean per test or held-out sample); numpy, pandas and scipy only, no
other latentgen module, so that every layer of the package may use them.  Levels are two-sided (0.95 = 95 %), and
z = Φ⁻¹((1 + level)/2) is the normal quantile.

Single accuracy (``accuracy_interval``).  p = k/n with k correct of n.  Standard error sqrt(p(1-p)/n).  Interval:
Wilson score,

    centre = (p + z²/(2n)) / (1 + z²/n),   half-width = z / (1 + z²/n) · sqrt(p(1-p)/n + z²/(4n²)),

rather than the normal p ± z·SE, because the normal interval collapses to [1, 1] (or [0, 0]) at accuracies of
exactly 1 or 0, spills outside [0, 1] near them, and undercovers at small n (a few hundred held-out samples of
one class); Wilson's stays inside [0, 1] and is close to nominal coverage there.

Paired difference (``paired_difference``).  Two classifiers judged on the same n samples: d_i = a_i - b_i in
{-1, 0, 1}, difference d̄ = acc_a - acc_b, SE = sd(d)/sqrt(n) with the sample sd (n - 1).  With n10 samples that
only a gets right and n01 that only b gets right (the discordant pairs; concordant pairs give d_i = 0),

    SE² = [(n10 + n01) - (n10 - n01)²/n] / (n (n - 1)),

so only the discordant pairs carry noise: two probes that agree on most samples are compared far more precisely
than two independent accuracies (whose SEs would add).  Under "no difference" the middle term vanishes and
d̄/SE ≈ (n10 - n01)/sqrt(n10 + n01), the square root of McNemar's statistic.  Interval d̄ ± z·SE clipped to
[-1, 1]; identical predictions give SE 0 and the interval [d̄, d̄].

Several seeds (``across_seeds``).  S per-seed estimates (v_i, SE_i): mean v̄ and

    SE = max( sd(v)/sqrt(S),  sqrt(mean(SE_i²)/S) )     (S ≥ 2),     SE = SE_1     (S = 1).

The sample variance of the per-seed values already contains each seed's test-set sampling noise as well as the
seed-to-seed spread, so it alone is the right estimate; but with 2-5 seeds it is itself very noisy and can come
out below the test-set noise that each seed certainly has, hence the floor.  Interval v̄ ± q·SE with q the t
quantile on S - 1 degrees of freedom where the spread decides (the variance is estimated from S values), the
normal one where the floor does (a binomial error known from the test-set size, not estimated from the seeds) and
for S = 1.
Not clipped: the estimates may be accuracies or differences.

Claims (``claim_outcome``).  "value > threshold" holds when the whole interval is above the threshold, fails
when the whole interval is at or below it, and is inconclusive otherwise; "less" mirrors it.  "equal" is an
exactness claim about these very samples (e.g. two predictors agree on every test image), so it is decided
without an interval: it holds when the value equals the threshold exactly (``exact_agreement_outcome``: zero
disagreements).  ``not_applicable`` gives "n/a" with its reason.

Held-out choice (``one_standard_error_choice``).  Candidates scored on the same held-out samples.  The best mean
accuracy is found; a candidate is tied with it when its paired difference to the best is at most one paired
standard error of that difference; the simplest tied candidate is chosen (lowest simplicity rank: an earlier
layer, a simpler probe).  The paired SE, rather than the best's own SE of the classic one-SE rule, is the noise of
the comparison actually made between two correlated classifiers.

Bias of the noisy-label ranking (``expected_noisy_accuracy_bias``).  A classifier with true accuracy a, independent
of the held-out labels corrupted at rate c among K classes, agrees with them with probability (1 - c)·a + c/K
(``expected_noisy_accuracy`` of the held-out selection module).  With p the held-out noisy accuracy on n_h
samples and a measured on n_t test samples,

    bias = p - ((1 - c)·a + c/K),    SE² = p(1 - p)/n_h + (1 - c)² · a(1 - a)/n_t

(independent samples, so the variances add).  A positive bias means the candidate fits the held-out labels
better than its test accuracy allows: memorization of the slice.  Averaged over candidates
(``mean_expected_noisy_accuracy_bias``): the mean of the biases with SE the mean of their SEs.  The candidates
share the held-out and test samples, so their biases are correlated with unknown correlation; sd(Σ X_i) ≤ Σ sd(X_i)
(Minkowski), with equality at correlation 1, so the mean of the SEs is a conservative SE of the mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats


class Outcome:
    """The outcome of a claim: plain strings, so that tables and parquet files store them as they are."""

    HOLDS = "holds"
    FAILS = "fails"
    INCONCLUSIVE = "inconclusive"
    NOT_APPLICABLE = "n/a"
    ALL = (HOLDS, FAILS, INCONCLUSIVE, NOT_APPLICABLE)


DIRECTIONS = ("greater", "less", "equal")


@dataclass(frozen=True)
class Estimate:
    """A value with its standard error and interval; ``n`` is the number of samples (of seeds for ``across_seeds``)."""

    value: float
    standard_error: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class ClaimResult:
    """A claim's outcome (one of ``Outcome.ALL``) with the estimate that decided it; NaN where there is none."""

    outcome: str
    value: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    standard_error: float = float("nan")
    reason: str = ""


@dataclass(frozen=True)
class Candidate:
    """A held-out candidate: per-sample correctness on the shared held-out samples, and a simplicity rank."""

    name: str
    correct: np.ndarray
    simplicity: float


@dataclass(frozen=True)
class OneStandardErrorChoice:
    """The one-SE choice: ``chosen`` with its accuracy and SE, the ``best`` candidate, the chosen one's paired SE
    to the best (0 when it is the best) and every candidate ``tied`` with the best."""

    chosen: str
    best: str
    accuracy: float
    standard_error: float
    paired_standard_error: float
    tied: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------------------


def normal_quantile(level: float) -> float:
    """z of a two-sided interval at ``level`` (1.96 at 0.95)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    return float(scipy_stats.norm.ppf(0.5 + level / 2.0))


def normal_estimate(value: float, standard_error: float, n: int, level: float = 0.95) -> Estimate:
    """value ± z·SE, for estimates that are sums of many independent terms."""
    half_width = normal_quantile(level) * standard_error
    return Estimate(float(value), float(standard_error), float(value - half_width), float(value + half_width), n)


def _as_correct(correct) -> np.ndarray:
    """A 1-D boolean vector; rejects anything but 0/1 so that scores or labels passed by mistake fail loudly."""
    values = np.asarray(correct)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"expected a non-empty 1-D correctness vector, got shape {values.shape}")
    if values.dtype != bool and not np.isin(values, (0, 1)).all():
        raise ValueError("correctness must be boolean (or 0/1)")
    return values.astype(bool)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion successes/n (formula in the module docstring)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    z2 = normal_quantile(level) ** 2
    p = successes / n
    shrink = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / shrink
    half_width = np.sqrt(z2) / shrink * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # max/min absorb rounding at p = 0 or 1, where the exact bound is 0 or 1
    return max(0.0, float(centre - half_width)), min(1.0, float(centre + half_width))


# --------------------------------------------------------------------------------------------------------------
# Accuracies and their differences
# --------------------------------------------------------------------------------------------------------------


def accuracy_interval(correct, level: float = 0.95) -> Estimate:
    """Accuracy of one classifier with SE sqrt(p(1-p)/n) and its Wilson interval."""
    values = _as_correct(correct)
    n = values.size
    successes = int(values.sum())
    p = successes / n
    low, high = wilson_interval(successes, n, level)
    return Estimate(p, float(np.sqrt(p * (1 - p) / n)), low, high, n)


def paired_difference(correct_a, correct_b, level: float = 0.95) -> Estimate:
    """acc_a - acc_b on the same samples, with the paired SE sd(a_i - b_i)/sqrt(n) and a normal interval."""
    a, b = _as_correct(correct_a), _as_correct(correct_b)
    if a.shape != b.shape:
        raise ValueError(f"paired vectors must cover the same samples: {a.shape} vs {b.shape}")
    if a.size < 2:
        raise ValueError("a paired standard error needs at least 2 samples")
    differences = a.astype(float) - b.astype(float)
    standard_error = float(differences.std(ddof=1) / np.sqrt(a.size))
    estimate = normal_estimate(differences.mean(), standard_error, a.size, level)
    # a difference of accuracies lies in [-1, 1] whatever the normal approximation says
    return Estimate(estimate.value, standard_error, max(-1.0, estimate.low), min(1.0, estimate.high), a.size)


def _value_and_error(estimate) -> tuple[float, float]:
    """(value, SE) from an ``Estimate`` or a plain pair."""
    if isinstance(estimate, Estimate):
        return estimate.value, estimate.standard_error
    value, standard_error = estimate
    return float(value), float(standard_error)


def across_seeds(per_seed_estimates: Sequence, level: float = 0.95) -> Estimate:
    """Mean over seeds of ``Estimate``s or (value, SE) pairs, with the SE that counts both test-set sampling and
    seed-to-seed spread (formula and reasons in the module docstring); ``n`` is the number of seeds."""
    pairs = np.array([_value_and_error(estimate) for estimate in per_seed_estimates], dtype=float).reshape(-1, 2)
    values, errors = pairs[:, 0], pairs[:, 1]
    seeds = len(values)
    if seeds == 0:
        raise ValueError("across_seeds needs at least one estimate")
    sampling_only = float(np.sqrt(np.mean(errors**2) / seeds))
    if seeds == 1:
        return normal_estimate(values[0], sampling_only, 1, level)
    spread = float(values.std(ddof=1) / np.sqrt(seeds))
    if spread >= sampling_only:  # estimated from the S values themselves: Student's t on S - 1 degrees of freedom
        quantile = float(scipy_stats.t.ppf(0.5 + level / 2.0, seeds - 1))
    else:  # the floor: a test-set binomial error, known rather than estimated from the seeds
        quantile = normal_quantile(level)
    standard_error = max(spread, sampling_only)
    half_width = quantile * standard_error
    mean = float(values.mean())
    return Estimate(mean, standard_error, mean - half_width, mean + half_width, seeds)


# --------------------------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------------------------


def not_applicable(reason: str) -> ClaimResult:
    """A claim that cannot be judged here (no partly corrupted run, a probe not computed...), with the reason."""
    return ClaimResult(Outcome.NOT_APPLICABLE, reason=reason)


def _interval_outcome(low: float, high: float, threshold: float, direction: str) -> str:
    """Holds when the whole interval is on the claimed side, fails when it is all on the other side (or at it)."""
    if direction == "less":  # mirror: "value < t" is "-value > -t"
        low, high, threshold = -high, -low, -threshold
    if low > threshold:
        return Outcome.HOLDS
    if high <= threshold:
        return Outcome.FAILS
    return Outcome.INCONCLUSIVE


def claim_outcome(estimate: Estimate, threshold: float = 0.0, direction: str = "greater") -> ClaimResult:
    """Judge "value > threshold" ("greater"), "value < threshold" ("less") or "value == threshold" ("equal", exact,
    no interval) from ``estimate``; a NaN estimate is "n/a"."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    if not np.isfinite(estimate.value):
        return not_applicable("no estimate (NaN)")
    if direction == "equal":
        outcome = Outcome.HOLDS if estimate.value == threshold else Outcome.FAILS
    else:
        outcome = _interval_outcome(estimate.low, estimate.high, threshold, direction)
    symbol = {"greater": ">", "less": "<", "equal": "=="}[direction]
    reason = (
        f"value {estimate.value:.4g} in [{estimate.low:.4g}, {estimate.high:.4g}]; claim: value {symbol} {threshold:g}"
    )
    return ClaimResult(outcome, estimate.value, estimate.low, estimate.high, estimate.standard_error, reason)


def exact_agreement_outcome(disagreements: int, n: int | None = None) -> ClaimResult:
    """An exactness claim on a count (e.g. two predictors disagreeing on no test image): holds only at zero."""
    count = int(disagreements)
    if count < 0:
        raise ValueError(f"a count of disagreements cannot be negative: {count}")
    of_samples = f" of {n} samples" if n is not None else ""
    outcome = Outcome.HOLDS if count == 0 else Outcome.FAILS
    return ClaimResult(outcome, float(count), float(count), float(count), 0.0, f"{count} disagreements{of_samples}")


# --------------------------------------------------------------------------------------------------------------
# The held-out choice
# --------------------------------------------------------------------------------------------------------------


def one_standard_error_choice(candidates: Sequence[Candidate]) -> OneStandardErrorChoice:
    """The simplest candidate whose paired difference to the best is within one paired SE of it."""
    if not candidates:
        raise ValueError("one_standard_error_choice needs at least one candidate")
    accuracies = [accuracy_interval(candidate.correct) for candidate in candidates]
    # the best by accuracy; among equal accuracies the simpler (then the earlier listed) one
    best_index = min(range(len(candidates)), key=lambda i: (-accuracies[i].value, candidates[i].simplicity, i))
    best = candidates[best_index]
    differences = [paired_difference(best.correct, candidate.correct) for candidate in candidates]
    tied = [i for i, difference in enumerate(differences) if difference.value <= difference.standard_error]
    chosen_index = min(tied, key=lambda i: (candidates[i].simplicity, -accuracies[i].value, i))
    return OneStandardErrorChoice(
        chosen=candidates[chosen_index].name,
        best=best.name,
        accuracy=accuracies[chosen_index].value,
        standard_error=accuracies[chosen_index].standard_error,
        paired_standard_error=differences[chosen_index].standard_error,
        tied=tuple(candidates[i].name for i in tied),
    )


def expected_noisy_accuracy_bias(
    heldout_noisy_correct,
    test_accuracy: float,
    n_test: int,
    corruption: float,
    num_classes: int,
    level: float = 0.95,
) -> Estimate:
    """Held-out noisy accuracy minus the (1 - c)·a + c/K expected from the test accuracy a; ``corruption`` is a
    fraction c in [0, 1].  SE combines the held-out and the test sampling (module docstring)."""
    if not 0.0 <= corruption <= 1.0:
        raise ValueError(f"corruption is a fraction in [0, 1], not {corruption} (a percentage?)")
    if not 0.0 <= test_accuracy <= 1.0 or n_test <= 0:
        raise ValueError(f"need a test accuracy in [0, 1] on n_test > 0 samples, got {test_accuracy} on {n_test}")
    heldout = accuracy_interval(heldout_noisy_correct)
    expected = (1.0 - corruption) * test_accuracy + corruption / num_classes
    heldout_variance = heldout.standard_error**2
    test_variance = (1.0 - corruption) ** 2 * test_accuracy * (1.0 - test_accuracy) / n_test
    return normal_estimate(heldout.value - expected, np.sqrt(heldout_variance + test_variance), heldout.n, level)


def mean_expected_noisy_accuracy_bias(biases: Sequence[Estimate], level: float = 0.95) -> Estimate:
    """Mean bias over candidates, SE the mean of their SEs (conservative for correlated biases, module docstring);
    ``n`` is the number of candidates."""
    if not biases:
        raise ValueError("mean_expected_noisy_accuracy_bias needs at least one bias")
    value = float(np.mean([bias.value for bias in biases]))
    standard_error = float(np.mean([bias.standard_error for bias in biases]))
    return normal_estimate(value, standard_error, len(biases), level)
