"""From a probe's class scores to probabilities: a softmax with one temperature and per-class biases.

Why calibrate at all.  cleanlab reads ``pred_probs`` as probabilities: its per-class thresholds are means
of p(class | x) and its label-quality score is p(given label | x) compared *across* examples of different
classes.  Probe scores are not probabilities and have no common scale: VeLPIC's are projections ⟨v_c, x⟩
whose size follows the layer's activation norms (tens on one layer, thousandths on another); MASC's are
cosines in [0, 1]; NCM's are minus squared distances on the unit sphere, in [-4, 0]; LDA's and logistic
regression's are affine scores.  A plain softmax of them would be near-uniform on one layer and one-hot
on the next, so the flags would follow the layer's scale rather than its content.

The calibration.  p(c | x) = softmax_c(β·s_c(x) + b_c), with β > 0 (one inverse temperature: the ranking
of the classes within a row is the probe's) and b the per-class log-prior shifts (the given labels' class
frequencies, which a noisy labelling changes).  β and b minimise the mean negative log-likelihood of the
*out-of-fold* scores against the *given* (noisy) labels.  Noisy labels are the right target: confident
learning wants p(given label | x), the probability a model trained on the noisy labels assigns, not the
clean posterior.  No test data and no true label is ever read.  The K + 1 parameters are fitted on the
same out-of-fold scores they calibrate; with thousands of examples that in-sample fit is negligible
next to the probes' own cross-fitting.

β is searched on scores divided by their overall standard deviation (so the optimiser starts at unit
spread, whatever the probe) and bounded to [1e-3, 1e3] times that: on separable scores the likelihood keeps
improving as β grows, and the bound keeps the probabilities finite (rows always sum to 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

# Bounds on log β in standardized units: a factor 1000 either way from "unit spread" (see module docstring).
_LOG_BETA_BOUND = float(np.log(1e3))


@dataclass(frozen=True)
class SoftmaxCalibration:
    """p(c | x) = softmax_c(inverse_temperature · scores + bias), fitted by ``fit_softmax_calibration``."""

    inverse_temperature: float
    bias: np.ndarray

    @property
    def temperature(self) -> float:
        return 1.0 / self.inverse_temperature

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """(n, K) probabilities: finite, non-negative, rows summing to 1."""
        return softmax_rows(self.inverse_temperature * _finite_scores(scores) + self.bias)


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of finite (n, K) logits, computed through log-sum-exp (no overflow)."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64), axis=1))


def _finite_scores(scores) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (n, K) with K >= 2 classes, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    return scores


def _score_spread(scores: np.ndarray) -> float:
    """The overall standard deviation of the scores, or 1 when they are constant."""
    spread = float(np.std(scores))
    return spread if spread > 0 else 1.0


def _nll_and_gradient(params: np.ndarray, scaled: np.ndarray, labels: np.ndarray, fit_bias: bool):
    """Mean negative log-likelihood of softmax(exp(params[0]) · scaled + bias) and its gradient."""
    beta = np.exp(params[0])
    bias = params[1:] if fit_bias else 0.0
    log_probs = log_softmax(beta * scaled + bias, axis=1)
    rows = np.arange(len(labels))
    nll = -log_probs[rows, labels].mean()
    residual = np.exp(log_probs)
    residual[rows, labels] -= 1.0  # d nll / d logits, times n
    gradient_log_beta = beta * np.sum(residual * scaled) / len(labels)
    if not fit_bias:
        return nll, np.array([gradient_log_beta])
    return nll, np.concatenate([[gradient_log_beta], residual.mean(axis=0)])


def fit_softmax_calibration(scores, given_labels, fit_bias: bool = True) -> SoftmaxCalibration:
    """β (and per-class biases) minimising the NLL of out-of-fold ``scores`` (n, K) against the given labels
    (integer codes 0 .. K - 1); see the module docstring."""
    scores = _finite_scores(scores)
    labels = np.asarray(given_labels, dtype=np.int64)
    if labels.shape != (scores.shape[0],) or labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(f"given labels must be {scores.shape[0]} codes in 0 .. {scores.shape[1] - 1}")
    spread = _score_spread(scores)
    scaled = scores / spread
    n_bias = scores.shape[1] if fit_bias else 0
    bounds = [(-_LOG_BETA_BOUND, _LOG_BETA_BOUND)] + [(None, None)] * n_bias
    result = minimize(
        _nll_and_gradient,
        x0=np.zeros(1 + n_bias),
        args=(scaled, labels, fit_bias),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
    )
    bias = result.x[1:] - result.x[1:].mean() if fit_bias else np.zeros(scores.shape[1])  # softmax ignores a shift
    return SoftmaxCalibration(inverse_temperature=float(np.exp(result.x[0]) / spread), bias=bias)


def calibrated_probabilities(scores, given_labels, fit_bias: bool = True) -> tuple[np.ndarray, SoftmaxCalibration]:
    """The out-of-fold ``scores`` as probabilities, with the calibration fitted on them."""
    calibration = fit_softmax_calibration(scores, given_labels, fit_bias=fit_bias)
    return calibration.probabilities(scores), calibration
