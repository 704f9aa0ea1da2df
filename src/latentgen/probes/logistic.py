"""``LogisticRegressionProbe`` (``logreg``): one linear layer with bias trained on cross-entropy.

By default (``solver="lbfgs"``) full-batch L-BFGS on scikit-learn's objective (mean cross-entropy plus
‖W‖²/(2·C·n), C = 1, from zero weights) in diagonally preconditioned coordinates (the same objective and
minimum, better conditioned), 30 iterations: on the full-MNIST MLP's 2048-unit layer that is a lower loss than
scikit-learn's own ``LogisticRegression()`` reaches in its 100 (unpreconditioned) iterations, at a third of
their cost.  ``solver="adam"`` is the seed repository's baseline recipe
(BASELINES/CNN_code/logistic_regression_probe.py): Adam lr 1e-3, 20 epochs, batch 128, shuffled every epoch
(seeded), no weight decay, not run to convergence.  docs/performance.md has both costs.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from latentgen.probes import cpu_blas
from latentgen.probes.base import (
    DEVICE_CONSTRAINT,
    SCORE_CHUNK_ROWS,
    Float32Rows,
    LinearScores,
    TorchProbe,
    as_source_tensor,
    compute_device,
)
from latentgen.probes.cpu_threads import cpu_thread_policy

__all__ = ["LOGREG_CHUNK_ROWS", "LogisticRegressionProbe"]


class LogisticRegressionProbe(LinearScores, TorchProbe):
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
