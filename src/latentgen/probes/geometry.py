"""The geometric probes beyond MASC and VeLPIC, fitted class by class (``ClassGeometryProbe``).

* ``NCM`` (``ncm``): nearest class mean on the unit sphere: rows scaled to unit length, the class mean
  of those unit rows, the class whose mean is nearest in Euclidean distance (scikit-learn's
  ``NearestCentroid`` on ``normalize``-d rows).  Only directions count, hence "by cosine": for unit x,
  ‖x − μ_c‖² = 1 − 2⟨x, μ_c⟩ + ‖μ_c‖².
* ``LDA`` (``lda``): linear discriminant analysis with a fixed shrinkage α (default 0.1), closed form:
  Σ = (1 − α)·S_w + α·(tr S_w / d)·I from the pooled within-class covariance S_w, coef_c = Σ⁻¹μ_c,
  intercept_c = −½μ_cᵀΣ⁻¹μ_c + log prior_c (``LinearDiscriminantAnalysis(solver="lsqr",
  shrinkage=α)``).  A fixed α rather than Ledoit-Wolf: the same estimator at every checkpoint and rate.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from latentgen.probes import cpu_blas
from latentgen.probes.base import DEVICE_CONSTRAINT, ClassGeometryProbe, LinearScores, unit_rows_
from latentgen.probes.cpu_threads import large_products, single_threaded_on_cpu

__all__ = ["LDA", "NCM"]


def _column_sums(rows: torch.Tensor) -> torch.Tensor:
    """Column sums of float32 ``rows`` as float64: summed in float32 (torch's cascade summation is
    accurate enough) and then widened, since a float64 sum costs most of an NCM fit (docs/performance.md,
    "Measured choices in the code")."""
    return rows.sum(dim=0).double()


# --------------------------------------------------------------------------------------------------
# Nearest class mean
# --------------------------------------------------------------------------------------------------


class NCM(ClassGeometryProbe):
    """Nearest class mean of unit-normalized rows (cosine geometry); see the module docstring.

    Parameters
    ----------
    device : str, torch.device or None
        Where to compute; None uses the device of a tensor input, else the CPU.

    Attributes
    ----------
    classes_ : (K,) the labels, sorted.
    means_ : (K, d) float64, the mean of each class's unit rows (all-zero rows count as zero vectors).
    n_features_in_ : int.

    ``predict_scores`` returns −‖x/‖x‖ − μ_c‖² (x = 0 stays 0).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> NCM().fit(X, [0, 0, 1, 1]).predict([[0.8, 0.2], [0.2, 0.8]]).tolist()
    [0, 1]
    """

    _parameter_constraints = {"device": DEVICE_CONSTRAINT}

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.device = device

    def _fit_class(self, class_data: torch.Tensor) -> np.ndarray:
        unit = unit_rows_(class_data)  # the gather buffer, scaled in place (it is refilled per class)
        return (_column_sums(unit) / unit.shape[0]).cpu().numpy()

    def _store(self, per_class: list[np.ndarray]) -> None:
        self.means_ = np.stack(per_class)

    def _scoring_weights(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        means = torch.from_numpy(self.means_).to(device)
        return (2 * means).float(), -means.square().sum(dim=1).float()

    def _score_rows(self, rows: torch.Tensor, weights) -> torch.Tensor:
        unit = unit_rows_(rows)
        doubled_means, minus_norms = weights
        with large_products(2.0 * rows.numel() * doubled_means.shape[0]):
            affine = torch.nn.functional.linear(unit, doubled_means, minus_norms)  # 2⟨x, μ⟩ − ‖μ‖²
        return affine - unit.square().sum(dim=1, keepdim=True)


# --------------------------------------------------------------------------------------------------
# LDA
# --------------------------------------------------------------------------------------------------


class LDA(LinearScores, ClassGeometryProbe):
    """Linear discriminant analysis with fixed shrinkage, closed form; see the module docstring.

    Parameters
    ----------
    shrinkage : float in [0, 1]
        α of Σ = (1 − α)·S_w + α·(tr S_w / d)·I (scikit-learn's ``shrunk_covariance``).  0 needs a
        non-singular S_w; otherwise the least-squares solution is used, as scikit-learn's lstsq does.
    device : str, torch.device or None
        Where to compute; None uses the device of a tensor input, else the CPU.

    Attributes
    ----------
    classes_ : (K,) labels; means_ : (K, d) class means; priors_ : (K,) class frequencies;
    coef_ : (K, d) Σ⁻¹μ_c; intercept_ : (K,) −½μ_cᵀΣ⁻¹μ_c + log prior_c; n_features_in_ : int.

    Each class's scatter (X_c − μ_c)ᵀ(X_c − μ_c) is a float32 product of the *centred* rows (centring
    first avoids the cancellation of a float32 uncentred Gram; on the CPU one triangle, BLAS ``ssyrk``,
    ``latentgen.probes.cpu_blas``), summed and solved in float64.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> LDA().fit(X, [0, 0, 1, 1]).predict([[0.8, 0.2], [0.2, 0.8]]).tolist()
    [0, 1]
    """

    concurrent_classes = False  # the scatters are summed in class order (see ``fit``)
    _parameter_constraints = {"shrinkage": [Interval(Real, 0, 1, closed="both")], "device": DEVICE_CONSTRAINT}

    def __init__(self, shrinkage: float = 0.1, device: str | torch.device | None = None) -> None:
        self.shrinkage = shrinkage
        self.device = device

    def fit(self, X, y):
        """Fit class means and the shrunk pooled covariance on ``X`` (n, d) and labels ``y``; returns self."""
        # The class scatters are summed as they come rather than kept (d = 16,384 for ResNet-18's widest
        # layers: 2.1 GB of float64 per class), in class order (``concurrent_classes`` is False), so
        # that the float64 sum, and with it every coefficient, is the same at every fit.
        self._pooled_scatter = None
        try:
            return super().fit(X, y)
        finally:
            del self._pooled_scatter

    def _fit_class(self, class_data: torch.Tensor) -> tuple[int, torch.Tensor]:
        n = class_data.shape[0]
        mean = _column_sums(class_data) / n
        centred = class_data.sub_(mean.float())  # the gather buffer, centred in place
        scatter = cpu_blas.gram_upper(centred).double()  # made symmetric once, after the sum (``_store``)
        if self._pooled_scatter is None:
            self._pooled_scatter = scatter
        else:
            self._pooled_scatter += scatter
        return n, mean

    def _store(self, per_class: list[tuple[int, torch.Tensor]]) -> None:
        counts = np.array([count for count, _ in per_class], dtype=np.float64)
        means = torch.stack([mean for _, mean in per_class])  # (K, d) float64
        covariance = cpu_blas.symmetric(self._pooled_scatter).div_(counts.sum())  # pooled S_w (biased), in place
        alpha = float(self.shrinkage)
        mean_variance = float(covariance.diagonal().sum()) / covariance.shape[0]
        shrunk = covariance.mul_(1 - alpha)
        shrunk.diagonal().add_(alpha * mean_variance)
        coef = _solve_symmetric(shrunk, means.T).T  # (K, d)
        self.means_ = means.cpu().numpy()
        self.priors_ = counts / counts.sum()
        self.coef_ = coef.cpu().numpy()
        self.intercept_ = -0.5 * np.sum(self.means_ * self.coef_, axis=1) + np.log(self.priors_)


def _solve_symmetric(matrix: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """matrix⁻¹ right for a symmetric positive semi-definite float64 matrix: Cholesky, else least squares."""
    with single_threaded_on_cpu(matrix.device):
        factor, info = torch.linalg.cholesky_ex(matrix)
        if int(info) == 0:
            return torch.cholesky_solve(right, factor)
        # Singular (shrinkage 0 with fewer samples than features, or constant features): the minimum
        # norm least-squares solution, which scikit-learn's lsqr solver (scipy lstsq) returns as well.
        return torch.linalg.lstsq(matrix.cpu(), right.cpu(), driver="gelsd").solution.to(matrix.device)
