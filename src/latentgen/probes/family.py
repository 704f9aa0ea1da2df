"""The probe family beyond MASC and VeLPIC, as scikit-learn classifiers computing in torch.

Every probe here shares MASC's and VeLPIC's machinery in ``latentgen.probes.paper``: input validation (numpy,
memory-mapped float16 or tensors on any device), the CPU thread policy, float32 rows gathered into
reused buffers, chunked scoring, ties to the first of ``classes_``.  Fitted attributes are numpy arrays.

* ``LogisticRegressionProbe`` (``logreg``): one linear layer with bias trained on cross-entropy.  By
  default (``solver="lbfgs"``) full-batch L-BFGS on scikit-learn's objective (mean cross-entropy plus
  ‖W‖²/(2·C·n), C = 1, from zero weights) in diagonally preconditioned coordinates (the same objective
  and minimum, better conditioned), 30 iterations: on the full-MNIST MLP's 2048-unit layer that is a
  lower loss than scikit-learn's own ``LogisticRegression()`` reaches in its 100 (unpreconditioned)
  iterations, at a third of their cost.  ``solver="adam"`` is the seed repository's baseline recipe
  (BASELINES/CNN_code/logistic_regression_probe.py): Adam lr 1e-3, 20 epochs, batch 128, shuffled
  every epoch (seeded), no weight decay, not run to convergence.  docs/performance.md has both costs.
* ``NCM`` (``ncm``): nearest class mean on the unit sphere: rows scaled to unit length, the class mean
  of those unit rows, the class whose mean is nearest in Euclidean distance (scikit-learn's
  ``NearestCentroid`` on ``normalize``-d rows).  Only directions count, hence "by cosine": for unit x,
  ‖x − μ_c‖² = 1 − 2⟨x, μ_c⟩ + ‖μ_c‖².
* ``KNN`` (``knn``): k = 5 nearest neighbours by cosine similarity, majority vote, exact (blocked
  products with every training row).  On the training samples themselves (``predict_training``)
  each sample is left out of its own neighbourhood, as ``KNeighborsClassifier.kneighbors()`` without
  X does: otherwise a sample would be one of its own five voters, for its own (corrupted) label.
* ``LDA`` (``lda``): linear discriminant analysis with a fixed shrinkage α (default 0.1), closed form:
  Σ = (1 − α)·S_w + α·(tr S_w / d)·I from the pooled within-class covariance S_w, coef_c = Σ⁻¹μ_c,
  intercept_c = −½μ_cᵀΣ⁻¹μ_c + log prior_c (``LinearDiscriminantAnalysis(solver="lsqr",
  shrinkage=α)``).  A fixed α rather than Ledoit-Wolf: the same estimator at every checkpoint and rate.
* ``masc_true``: ``MASC`` fitted on the *true* training labels.  An ORACLE upper bound, not a probe of
  the noisy-label problem: no user of a model trained on noisy labels has those labels.

``PROBES`` maps each scores.parquet name (``latentgen.probes.names``) to how scoring builds and fits it.
Agreement with the scikit-learn references and the cost at full scale: docs/performance.md.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from latentgen.probes import cpu_blas
from latentgen.probes.names import PROBE_NAMES
from latentgen.probes.cpu_threads import cpu_thread_policy, large_products, single_threaded_on_cpu
from sklearn.utils._param_validation import Interval, StrOptions

from latentgen.probes.base import (
    DEVICE_CONSTRAINT,
    SCORE_CHUNK_ROWS,
    ClassGeometryProbe,
    Float32Rows,
    TorchProbe,
    as_source_tensor,
    compute_device,
)
from latentgen.probes.paper import MASC, VeLPIC


def _unit_rows_(rows: torch.Tensor) -> torch.Tensor:
    """``rows`` scaled in place to unit Euclidean length; all-zero rows stay zero (as sklearn's normalize)."""
    norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
    return rows.div_(torch.where(norms > 0, norms, torch.ones_like(norms)))


def _column_sums(rows: torch.Tensor) -> torch.Tensor:
    """Column sums of float32 ``rows`` as float64: summed in float32 (torch's cascade summation is
    accurate enough) and then widened, since a float64 sum costs most of an NCM fit (docs/performance.md,
    "Measured choices in the code")."""
    return rows.sum(dim=0).double()


class _LinearScores:
    """Scoring of probes whose scores are an affine map x ↦ W x + b (``coef_`` (K, d), ``intercept_`` (K,))."""

    def _scoring_weights(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        weight = torch.from_numpy(np.ascontiguousarray(self.coef_, dtype=np.float32)).to(device)
        return weight, torch.from_numpy(np.asarray(self.intercept_, dtype=np.float32)).to(device)

    def _score_rows(self, rows: torch.Tensor, weights) -> torch.Tensor:
        weight, bias = weights
        with large_products(2.0 * rows.numel() * weight.shape[0]):
            return torch.nn.functional.linear(rows, weight, bias)


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
        unit = _unit_rows_(class_data)  # the gather buffer, scaled in place (it is refilled per class)
        return (_column_sums(unit) / unit.shape[0]).cpu().numpy()

    def _store(self, per_class: list[np.ndarray]) -> None:
        self.means_ = np.stack(per_class)

    def _scoring_weights(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        means = torch.from_numpy(self.means_).to(device)
        return (2 * means).float(), -means.square().sum(dim=1).float()

    def _score_rows(self, rows: torch.Tensor, weights) -> torch.Tensor:
        unit = _unit_rows_(rows)
        doubled_means, minus_norms = weights
        with large_products(2.0 * rows.numel() * doubled_means.shape[0]):
            affine = torch.nn.functional.linear(unit, doubled_means, minus_norms)  # 2⟨x, μ⟩ − ‖μ‖²
        return affine - unit.square().sum(dim=1, keepdim=True)


# --------------------------------------------------------------------------------------------------
# LDA
# --------------------------------------------------------------------------------------------------


class LDA(_LinearScores, ClassGeometryProbe):
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


# --------------------------------------------------------------------------------------------------
# Logistic regression
# --------------------------------------------------------------------------------------------------


class LogisticRegressionProbe(_LinearScores, TorchProbe):
    """Multinomial logistic regression on cross-entropy: L-BFGS on scikit-learn's objective, or the seed
    repository's minibatch Adam recipe.

    Parameters
    ----------
    solver : {"lbfgs", "adam"}, default "lbfgs"
        "lbfgs": full batch, from zero weights, minimizing mean cross-entropy + ‖W‖²/(2·C·n) (the bias
        unpenalized), as ``sklearn.linear_model.LogisticRegression(C=C)``; "adam": the seed recipe below.
    C : float, default 1.0
        Inverse L2 strength of "lbfgs" (scikit-learn's default); ``np.inf`` for none.
    max_iter : int, default 30
        L-BFGS iterations (preconditioned; see ``_minimize`` and docs/performance.md for the choice).
    epochs : int, default 20
    batch_size : int, default 128
    lr : float, default 1e-3 (Adam, default betas, no weight decay)
    random_state : int, default 0
        "adam": seeds the initialization (nn.Linear's: U(−1/√d, 1/√d) for weight and bias) and the
        shuffles, both drawn on the CPU, so a fit does not depend on the device or the global RNG.
    device : str, torch.device or None
        Where to compute; None uses the device of a tensor input, else the CPU.

    Attributes
    ----------
    classes_ : (K,) labels; coef_ : (K, d); intercept_ : (K,); n_features_in_ : int; n_iter_ : int
    (L-BFGS iterations, or the Adam epochs).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> LogisticRegressionProbe().fit(X, [0, 0, 1, 1]).predict([[0.8, 0.2], [0.2, 0.8]]).tolist()
    [0, 1]
    """

    _parameter_constraints = {
        "solver": [StrOptions({"lbfgs", "adam"})],
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
        "device": DEVICE_CONSTRAINT,
    }

    def __init__(
        self,
        solver: str = "lbfgs",
        C: float = 1.0,
        max_iter: int = 30,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        random_state: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        self.solver = solver
        self.C = C
        self.max_iter = max_iter
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # scikit-learn's accuracy check fits ~100 samples: with "adam" that is 1 batch per epoch, 20 Adam
        # steps of 1e-3 in all, too few to leave the random initialization.  The step budget is the recipe.
        tags.classifier_tags.poor_score = self.solver == "adam"
        return tags

    def fit(self, X, y):
        """Train the linear layer on ``X`` (n, d) and labels ``y``; returns self."""
        X, y = self._validate_fit_input(X, y)
        device = compute_device(X, self.device)
        labels = torch.from_numpy(self._encode_labels(y)).to(device)
        source = as_source_tensor(X)
        generator = torch.Generator().manual_seed(int(self.random_state))
        layer = _seeded_linear(X.shape[1], len(self.classes_), generator).to(device)
        with cpu_thread_policy(device), torch.enable_grad():
            if self.solver == "lbfgs":
                self._minimize(layer, Float32Rows(source, device, X.shape[0])(slice(0, X.shape[0])), labels)
            else:
                self._train(layer, Float32Rows(source, device, min(self._gather_rows(), X.shape[0])), labels, generator)
                self.n_iter_ = int(self.epochs)
        self.coef_ = layer.weight.detach().double().cpu().numpy()
        self.intercept_ = layer.bias.detach().double().cpu().numpy()
        return self

    def _minimize(self, layer: torch.nn.Linear, rows: torch.Tensor, labels: torch.Tensor) -> None:
        """Full-batch L-BFGS from zero weights on the penalized mean loss, in diagonally preconditioned
        coordinates, with scipy's L-BFGS-B (scikit-learn's own solver for ``LogisticRegression``).

        The optimizer moves U, c with W = U·diag(s) and b = c − W m (m the feature means): the same
        objective, minimum and zero start, only better conditioned.  s_j = (¼·var_j + 2λ)^(−½)
        approximates the inverse square root of the Hessian's diagonal in W (softmax curvature ≤ ¼ per
        centred feature, plus the penalty's 2λ): post-ReLU features are all positive (the bias and the
        weights then fight each other) with variances spread over orders of magnitude.  Scaling by
        1/std alone would blow up near-constant features (the penalty's curvature times s²).
        The loss and gradients are computed in torch on the rows' device (float32, one chunked pass);
        scipy holds only the K·(d + 1) parameters, in float64.  Not torch.optim.LBFGS: constructing any
        torch optimizer imports torch._dynamo, seconds of a score job's start (docs/performance.md).
        """
        from scipy.optimize import minimize  # scipy is imported by scikit-learn anyway

        n = rows.shape[0]
        penalty = 0.0 if math.isinf(float(self.C)) else 1.0 / (2.0 * float(self.C) * n)
        mean, variance = _column_mean_and_variance(rows)
        scale = (0.25 * variance + 2.0 * penalty).clamp_min(1e-12).rsqrt()
        shift = mean * scale
        classes, d = layer.weight.shape

        def weights_of(params: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            flat = torch.from_numpy(params.astype(np.float32)).to(rows.device)
            return flat[: classes * d].view(classes, d) * scale, flat[classes * d :]

        def loss_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
            weight, c = weights_of(params)
            loss, weight_grad, bias_grad = _cross_entropy_and_gradients(rows, labels, weight, c - weight @ mean)
            loss += penalty * float(weight.double().square().sum())
            weight_grad.add_(weight, alpha=2.0 * penalty)
            u_grad = weight_grad * scale - bias_grad[:, None] * shift  # the chain rule through b = c − W m
            gradient = torch.cat([u_grad.reshape(-1), bias_grad]).double().cpu().numpy()
            return loss, gradient

        result = minimize(
            loss_and_gradient,
            np.zeros(classes * (d + 1)),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": int(self.max_iter), "maxcor": 10, "gtol": 1e-6, "ftol": 1e-9},
        )
        self.n_iter_ = int(result.nit)
        weight, c = weights_of(result.x)
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.bias.copy_(c - weight @ mean)

    def _gather_rows(self) -> int:
        """Rows gathered at once: whole batches, about SCORE_CHUNK_ROWS (one gather and NaN check per
        chunk instead of per batch: on the 2048-unit layers the per-batch gather cost as much as the step)."""
        batch = int(self.batch_size)
        return batch * max(1, SCORE_CHUNK_ROWS // batch)

    def _train(
        self, layer: torch.nn.Linear, chunk_rows: Float32Rows, labels: torch.Tensor, generator: torch.Generator
    ) -> None:
        """Adam on shuffled minibatches; the batches (and so the result) do not depend on the chunking."""
        optimizer = torch.optim.Adam(layer.parameters(), lr=float(self.lr))
        n, batch, chunk = labels.shape[0], int(self.batch_size), self._gather_rows()
        for _ in range(int(self.epochs)):
            order = torch.randperm(n, generator=generator).to(labels.device)
            for chunk_start in range(0, n, chunk):
                chunk_index = order[chunk_start : chunk_start + chunk]
                rows, chunk_labels = chunk_rows(chunk_index.cpu().numpy()), labels[chunk_index]
                for start in range(0, rows.shape[0], batch):
                    loss = torch.nn.functional.cross_entropy(
                        layer(rows[start : start + batch]), chunk_labels[start : start + batch]
                    )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()


# Rows per pass of the logistic loss: a 1,024 x 2048 float32 block (8 MB) is read once for the logits
# and again, still in cache, for the gradient (one pass over the layer per evaluation, not two).
LOGREG_CHUNK_ROWS = 1024


def _column_mean_and_variance(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and (biased) variances of float32 ``rows``, as float32: sums over chunks of rows
    accumulated in float64.  ``Tensor.var(dim=0)`` reduces across rows in a strided pass several times
    slower on these CPUs (docs/performance.md, "Measured choices in the code")."""
    n = rows.shape[0]
    mean = torch.zeros(rows.shape[1], dtype=torch.float64, device=rows.device)
    for start in range(0, n, LOGREG_CHUNK_ROWS):
        mean += rows[start : start + LOGREG_CHUNK_ROWS].sum(dim=0).double()
    mean /= n
    centred_mean = mean.float()
    squares = torch.zeros_like(mean)
    for start in range(0, n, LOGREG_CHUNK_ROWS):
        squares += (rows[start : start + LOGREG_CHUNK_ROWS] - centred_mean).square_().sum(dim=0).double()
    return centred_mean, (squares / n).float()


def _cross_entropy_and_gradients(
    rows: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of rows·Wᵀ + b and its gradients in W and b, in one chunked pass over ``rows``."""
    n = rows.shape[0]
    weight_grad = torch.zeros_like(weight)
    bias_grad = torch.zeros_like(bias)
    total = 0.0
    weight_t = weight.T.contiguous()
    for start in range(0, n, LOGREG_CHUNK_ROWS):
        chunk, chunk_labels = rows[start : start + LOGREG_CHUNK_ROWS], labels[start : start + LOGREG_CHUNK_ROWS]
        logits = cpu_blas.matmul(chunk, weight_t).add_(bias)
        log_norm = logits.logsumexp(dim=1)
        total += float((log_norm - logits.gather(1, chunk_labels[:, None])[:, 0]).sum(dtype=torch.float64))
        residual = logits.sub_(log_norm[:, None]).exp_()  # softmax, in place of the logits
        residual[torch.arange(residual.shape[0], device=residual.device), chunk_labels] -= 1.0
        weight_grad += cpu_blas.matmul(residual.T, chunk)
        bias_grad += residual.sum(dim=0)
    return total / n, weight_grad.div_(n), bias_grad.div_(n)


def _seeded_linear(d: int, classes: int, generator: torch.Generator) -> torch.nn.Linear:
    """nn.Linear(d, classes) with its default initialization drawn from ``generator``."""
    layer = torch.nn.Linear(d, classes)
    bound = 1.0 / math.sqrt(d)
    with torch.no_grad():
        layer.weight.copy_(torch.empty(classes, d).uniform_(-bound, bound, generator=generator))
        layer.bias.copy_(torch.empty(classes).uniform_(-bound, bound, generator=generator))
    return layer


# --------------------------------------------------------------------------------------------------
# k nearest neighbours
# --------------------------------------------------------------------------------------------------

# Query rows per similarity block: a (512, n_fit) float32 block is 123 MB at n_fit = 60,000.
KNN_QUERY_BLOCK = 512


class KNN(TorchProbe):
    """k nearest neighbours by cosine similarity, exact, majority vote; see the module docstring.

    Parameters
    ----------
    n_neighbors : int, default 5
    device : str, torch.device or None
        Where to compute; None uses the device of a tensor input, else the CPU.

    Attributes
    ----------
    classes_ : (K,) labels; fit_X_ : (n, d) float32 unit rows of the training data; labels_ : (n,) int64
    index of each training row's label in ``classes_``; n_features_in_ : int.

    ``predict_scores`` returns the fraction of the k neighbours in each class.  Vote ties go to the
    first of ``classes_`` (as scikit-learn's mode); among equally similar neighbours ``torch.topk``
    decides, which may differ from scikit-learn's order.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> KNN(n_neighbors=1).fit(X, [0, 0, 1, 1]).predict([[0.8, 0.2], [0.2, 0.8]]).tolist()
    [0, 1]
    """

    resubstitutes_training = False  # leave-one-out on the training samples

    _parameter_constraints = {"n_neighbors": [Interval(Integral, 1, None, closed="left")], "device": DEVICE_CONSTRAINT}

    def __init__(self, n_neighbors: int = 5, device: str | torch.device | None = None) -> None:
        self.n_neighbors = n_neighbors
        self.device = device

    def fit(self, X, y):
        """Store the unit rows of ``X`` (n, d) and the labels ``y``; returns self."""
        X, y = self._validate_fit_input(X, y)
        device = compute_device(X, self.device)
        self.labels_ = self._encode_labels(y)
        source = as_source_tensor(X)
        chunk = Float32Rows(source, device, max_rows=min(SCORE_CHUNK_ROWS, X.shape[0]))
        self.fit_X_ = np.empty(X.shape, dtype=np.float32)
        with cpu_thread_policy(device):
            for start in range(0, X.shape[0], SCORE_CHUNK_ROWS):
                unit = _unit_rows_(chunk(slice(start, start + SCORE_CHUNK_ROWS)))
                self.fit_X_[start : start + unit.shape[0]] = unit.cpu().numpy()
        return self

    def predict_training(self, X, rows: np.ndarray | None = None) -> np.ndarray:
        """Leave-one-out predictions of the training samples (``X`` must be the data ``fit`` was given).

        Each sample's neighbours are the k most similar *other* training samples (an exact duplicate
        of it still counts).  ``rows``: sorted indices of the samples to predict, default all.
        """
        X = self._validate_predict_input(X)
        if X.shape[0] != self.fit_X_.shape[0]:
            raise ValueError(f"predict_training needs the {self.fit_X_.shape[0]} fitted samples, got {X.shape[0]}")
        rows = np.arange(X.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        device = compute_device(X, self.device)
        references = self._scoring_weights(device)
        self._check_neighbours(self.fit_X_.shape[0] - 1)
        with cpu_thread_policy(device):
            queries = torch.from_numpy(self.fit_X_[rows]).to(device)
            votes = self._votes(queries, references, torch.as_tensor(rows, device=device))
        return self.classes_[votes.argmax(dim=1).cpu().numpy()]

    def _scoring_weights(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.fit_X_).to(device), torch.from_numpy(self.labels_).to(device)

    def _score_rows(self, rows: torch.Tensor, weights) -> torch.Tensor:
        self._check_neighbours(weights[0].shape[0])
        return self._votes(_unit_rows_(rows), weights) / int(self.n_neighbors)

    def _check_neighbours(self, available: int) -> None:
        if int(self.n_neighbors) > available:
            raise ValueError(
                f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {self.n_neighbors}, "
                f"n_samples_fit = {available}"
            )

    def _votes(self, queries: torch.Tensor, references, self_index: torch.Tensor | None = None) -> torch.Tensor:
        """(n, K) neighbour counts per class for unit ``queries``; ``self_index[i]`` is excluded for row i."""
        fit_rows, labels = references
        k = int(self.n_neighbors)
        votes = []
        for start in range(0, queries.shape[0], KNN_QUERY_BLOCK):
            block = queries[start : start + KNN_QUERY_BLOCK]
            similarity = cpu_blas.matmul(block, fit_rows.T)  # (b, n_fit) cosines
            if self_index is not None:
                own = self_index[start : start + KNN_QUERY_BLOCK]
                similarity[torch.arange(block.shape[0], device=block.device), own] = -torch.inf
            neighbours = similarity.topk(k, dim=1).indices  # (b, k)
            counts = queries.new_zeros((block.shape[0], len(self.classes_)))
            votes.append(counts.scatter_add_(1, labels[neighbours], torch.ones_like(neighbours, dtype=counts.dtype)))
        return torch.cat(votes)


# --------------------------------------------------------------------------------------------------
# The registry scoring uses
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeSpec:
    """How scoring builds and fits one probe of ``scoring.probes``.

    ``build(masc_variance)`` returns the unfitted estimator; ``fit_on`` names the training labels it
    is fitted on ("corrupted", or "true" for an oracle); ``max_scored_rows`` caps the samples of each
    split it is scored on (a seeded random subset; None: every sample).
    """

    build: Callable[[float], TorchProbe]
    fit_on: str = "corrupted"
    max_scored_rows: int | None = None


# kNN costs one product with every training row per query: 60,000 x 60,000 x 2048 for the training
# split of the MLP's 2048-unit layers alone.  Its accuracies are means over samples, so at full scale
# they are estimated on 2,000 samples per split (standard error <= 1.1 points); the quick-start (2,000
# training, 1,000 test samples) is scored on every sample.  docs/performance.md, "Probe family".
KNN_SCORED_ROWS = 2000

PROBES: dict[str, ProbeSpec] = {
    "masc": ProbeSpec(lambda variance: MASC(variance=variance)),
    "velpic": ProbeSpec(lambda variance: VeLPIC()),
    "logreg": ProbeSpec(lambda variance: LogisticRegressionProbe()),
    "ncm": ProbeSpec(lambda variance: NCM()),
    "knn": ProbeSpec(lambda variance: KNN(n_neighbors=5), max_scored_rows=KNN_SCORED_ROWS),
    "lda": ProbeSpec(lambda variance: LDA(shrinkage=0.1)),
    "masc_true": ProbeSpec(lambda variance: MASC(variance=variance), fit_on="true"),  # the ORACLE
}
assert tuple(PROBES) == PROBE_NAMES, "latentgen.probes.names lists the same probes in the same order"


def build_probe(name: str, masc_variance: float) -> tuple[TorchProbe, ProbeSpec]:
    """The unfitted estimator for ``name`` (a key of ``PROBES``) and its spec."""
    spec = PROBES[name]
    return spec.build(masc_variance), spec
