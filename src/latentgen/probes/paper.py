"""Class-subspace probes of layer activations: MASC and VeLPIC, as scikit-learn classifiers.

Both probes look, per class c, at the eigenvectors of the class's *uncentered* second-moment matrix
G_c = X_cᵀX_c (X_c: the (n_c, d) activations labelled c).  That matrix is exactly what PCA of the
augmented set [X_c; -X_c] diagonalizes: the augmented set has zero mean, so its covariance is
2·G_c / (2·n_c - 1), the same eigenvectors and the same explained-variance ratios.  Nothing is
ever augmented or centered here.

* ``MASC`` (Minimum Angle Subspace Classifier, the paper's Algorithm 2): the class subspace is spanned
  by the fewest top eigenvectors whose cumulative explained-variance ratio *exceeds* ``variance``;
  prediction is the class whose subspace makes the smallest angle with x, i.e. argmax_c ‖P_c x‖/‖x‖.
  Since ‖x‖ is the same for every class this is argmax_c xᵀP_c x, the quadratic form of Proposition 1.
* ``VeLPIC`` (the paper's Algorithm 1): one unit vector per class, the top eigenvector, its sign chosen
  so that the mean projection of the class's own data is ≥ 0; prediction is argmax_c ⟨v_c, x⟩.

Deterministic rules for degenerate input (no NaN anywhere):

* An all-zero x has no angle with anything: every MASC score (a cosine) is 0, every VeLPIC score is 0.
* Ties go to the lowest class index, i.e. the first of ``classes_`` (``torch.argmax`` returns the first
  maximum).  So an all-zero x is predicted ``classes_[0]``.
* A class whose activations are all zero has a zero second moment: an empty subspace (MASC,
  ``n_components_ == 0``) or a zero vector (VeLPIC).  Its score is 0 for every x, so it only wins a
  tie in which every score is 0.
* Eigenvalues at or below a rank tolerance (rounding noise of a singular G_c) count as zero: they
  never become components, and ``variance=1.0`` keeps exactly the non-zero ones.

Computation runs in torch on the device of the data (a CUDA tensor stays on the GPU) or on ``device``.
Fitted attributes are plain numpy arrays so a fitted probe pickles and moves between machines.

How the eigenpairs are found (``latentgen.probes.spectrum.class_spectrum``):

* Small problems (min(n_c, d) ≤ ``DENSE_LIMIT``): the d×d Gram X_cᵀX_c, or the n_c×n_c dual X_cX_cᵀ
  when n_c < d (eigenvectors u → v = X_cᵀu/√λ), accumulated in float32 and diagonalized in float64
  (``torch.linalg.eigh``; on the CPU from 256 x 256 scipy's LAPACK, faster at these sizes).
* Large problems whose needed components are few compared with min(n_c, d) (the usual case: the
  MLP's 2048-unit ReLU layers need 5-25 components for 99 %): a block Krylov space built from
  products with X_c (never the d×d Gram, whose n_c·d² cost would dominate), Rayleigh-Ritz in
  float64, accepted when the Davis-Kahan bound on the angle between the kept Ritz subspace and the
  exact eigenspace is small; otherwise the space grows, and past a quarter of min(n_c, d) the dense
  path is used instead; at once, as soon as the components the class needs (a lower bound from the Ritz
  values) would take more columns than that (memorized checkpoints need hundreds of components;
  ``latentgen.probes.spectrum`` has the measured constants).  ``solver="legacy"`` keeps the choice before
  issue 27 (the space always grows to the cap first), ``solver="dense"`` skips Krylov.  VeLPIC, which needs
  only the top eigenvector, takes this path from min(n_c, d) > ``TOP_VECTOR_DENSE_LIMIT``.

Precision (``benchmarks/bench_probes.py --precision``, real activations of the paper's MLP after one
epoch on MNIST with 40 % label noise, 60,000 train / 10,000 test, see docs/performance.md): against an
all-float64 computation, a float32 Gram with a float64 eigh gives identical MASC test predictions on
all four layers (cosines within 1.3e-6), a float32 eigh changes 0.01-0.05 % of them, and the library
as configured (dense or Krylov) is identical.  So products are float32 and eigensolvers float64.
"""

from __future__ import annotations

import copy
from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from latentgen.probes.base import DEVICE_CONSTRAINT, ClassGeometryProbe
from latentgen.probes.cpu_threads import large_products
from latentgen.probes.spectrum import SOLVERS, class_spectrum, components_needed

__all__ = ["MASC", "VeLPIC", "velpic_for_every_class"]


# --------------------------------------------------------------------------------------------------
# MASC
# --------------------------------------------------------------------------------------------------


class MASC(ClassGeometryProbe):
    """Minimum Angle Subspace Classifier (Ketha & Ramaswamy 2025; the paper's Algorithm 2).

    Parameters
    ----------
    variance : float in (0, 1]
        Each class keeps the fewest principal components of its augmented activations whose
        cumulative explained-variance ratio exceeds this (the original: > 0.99).  1.0 keeps every
        non-zero component.
    device : str, torch.device or None
        Where to compute; None uses the device of a tensor input, else the CPU.
    solver : "auto", "legacy" or "dense"
        How each class's eigenpairs are found (``latentgen.probes.spectrum.class_spectrum``): "auto" chooses
        dense or Krylov from the class's size, width and the components it needs; "legacy" is the choice
        before issue 27 (a Krylov space grown to its cap, then dense), kept for benchmarks; "dense" always.

    Attributes
    ----------
    classes_ : (K,) the labels, sorted.
    components_ : list of K arrays (d, k_c), orthonormal bases of the class subspaces, leading first.
    n_components_ : (K,) int array, k_c per class (0 for a class whose activations are all zero).
    explained_variance_ratio_ : (K,) float array, the variance ratio the kept components explain.
    n_features_in_ : int.

    ``predict_scores`` returns cos θ_c = ‖P_c x‖/‖x‖ ∈ [0, 1] per class (0 for an all-zero x).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> MASC().fit(X, [0, 0, 1, 1]).predict([[0.8, 0.2], [0.2, 0.8]]).tolist()
    [0, 1]
    """

    _parameter_constraints = {
        "variance": [Interval(Real, 0, 1, closed="right")],
        "device": DEVICE_CONSTRAINT,
        "solver": [StrOptions(set(SOLVERS))],
    }

    def __init__(self, variance: float = 0.99, device: str | torch.device | None = None, solver: str = "auto") -> None:
        self.variance = variance
        self.device = device
        self.solver = solver

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # scikit-learn's generic accuracy check fits 2-feature, standardized (zero-mean) blobs.  A
        # subspace classifier needs d well above the number of classes: with d = 2, 3 classes, any class
        # whose blob is not a thin ray from the origin gets a 2-D subspace, i.e. the whole plane, and then
        # claims every point.  That is MASC's definition, not a defect, so its accuracy there is "poor".
        tags.classifier_tags.poor_score = True
        return tags

    def _fit_class(self, class_data: torch.Tensor) -> tuple[np.ndarray, float]:
        spectrum = class_spectrum(class_data, float(self.variance), self.solver)
        kept = components_needed(spectrum.eigenvalues, spectrum.trace, float(self.variance))
        if kept is None:
            # The trace also counts the eigenvalues below the rank tolerance; on a very wide layer (ResNet-18's
            # 16,384-wide stem, untrained) their float32 rounding can hold more than 1 - variance of it, so even
            # every component above the tolerance falls short: keep them all, as variance=1.0 does.
            kept = int(spectrum.eigenvalues.numel())
        explained = float(spectrum.eigenvalues[:kept].sum()) / spectrum.trace if kept else 0.0
        return spectrum.eigenvectors[:, :kept].cpu().numpy(), explained

    def _store(self, per_class: list[tuple[np.ndarray, float]]) -> None:
        self.components_ = [basis for basis, _ in per_class]
        self.n_components_ = np.array([basis.shape[1] for basis in self.components_], dtype=np.int64)
        self.explained_variance_ratio_ = np.array([ratio for _, ratio in per_class], dtype=np.float64)

    def _scoring_weights(self, device: torch.device) -> tuple[torch.Tensor, list[int]]:
        """All bases side by side (d, Σk_c) float32, and where each class's columns end (K,)."""
        stacked = np.concatenate(self.components_, axis=1) if self.components_ else np.zeros((self.n_features_in_, 0))
        return (
            torch.from_numpy(np.ascontiguousarray(stacked, dtype=np.float32)).to(device),
            np.cumsum(self.n_components_).tolist(),
        )

    def _score_rows(self, rows: torch.Tensor, weights) -> torch.Tensor:
        """cos of the angle to each class subspace: sqrt(Σ_j ⟨x, p_j^c⟩²)/‖x‖, (n, K); 0 for x = 0.

        The one product (n × d by d × Σk_c) is the cost; with hundreds of components per class (memorized
        checkpoints) it is n·d·Σk_c multiply-adds, the floor of the definition.  The squares are summed per
        class over contiguous column slices (an ``index_add_`` over columns took 12 % of the product's time
        at Σk_c = 4,000; the slices 1 %; docs/performance.md, "Probes at a memorized checkpoint").
        """
        stacked, ends = weights
        with large_products(2.0 * rows.numel() * stacked.shape[1]):
            coordinates = rows @ stacked  # (n, Σk_c): coordinates in every class basis at once
        coordinates.square_()
        captured = torch.stack(  # ‖P_c x‖² per class (0 for an empty subspace)
            [coordinates[:, start:end].sum(dim=1) for start, end in zip([0, *ends[:-1]], ends)], dim=1
        )
        norm_sq = rows.square().sum(dim=1, keepdim=True)
        safe = torch.where(norm_sq > 0, norm_sq, torch.ones_like(norm_sq))
        # Rounding can put ‖P_c x‖² a hair above ‖x‖²; cosines are clamped to 1.
        return torch.where(norm_sq > 0, (captured / safe).clamp(max=1.0).sqrt(), torch.zeros_like(captured))


# --------------------------------------------------------------------------------------------------
# VeLPIC
# --------------------------------------------------------------------------------------------------


class VeLPIC(ClassGeometryProbe):
    """Vector Linear Probe Intermediate-layer Classifier (the paper's Algorithm 1).

    Per class, the top eigenvector of X_cᵀX_c (= the first principal component of the augmented
    class data), negated when the class's mean projection on it is negative.

    Parameters
    ----------
    device : str, torch.device or None
        Where to compute; None uses the device of a tensor input, else the CPU.

    Attributes
    ----------
    classes_ : (K,) the labels, sorted.
    vectors_ : (K, d) float64, unit rows (a zero row for a class whose activations are all zero).
    explained_variance_ratio_ : (K,) the variance ratio each vector explains of its class.
    n_features_in_ : int.

    ``predict_scores`` returns the projections ⟨v_c, x⟩, i.e. the logits of a linear layer with weight
    ``vectors_`` and no bias (what ``latentgen.scoring.transfer.apply_velpic`` installs).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> VeLPIC().fit(X, [0, 0, 1, 1]).predict([[0.8, 0.2], [0.2, 0.8]]).tolist()
    [0, 1]
    """

    _parameter_constraints = {"device": DEVICE_CONSTRAINT}

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.device = device

    def _fit_class(self, class_data: torch.Tensor) -> tuple[np.ndarray, float]:
        d = class_data.shape[1]
        # variance 0 asks for the single top component; the Krylov path then only needs it converged.
        spectrum = class_spectrum(class_data, variance=0.0)
        if spectrum.eigenvalues.numel() == 0:
            return np.zeros(d), 0.0
        top = spectrum.eigenvectors[:, 0]  # (d,)
        projections = class_data @ top.to(class_data.dtype)  # (n_c,) ⟨x_i, p⟩
        if float(projections.double().mean()) < 0:
            top = -top
        return top.cpu().numpy(), float(spectrum.eigenvalues[0]) / spectrum.trace

    def _store(self, per_class: list[tuple[np.ndarray, float]]) -> None:
        self.vectors_ = np.stack([vector for vector, _ in per_class])
        self.explained_variance_ratio_ = np.array([ratio for _, ratio in per_class], dtype=np.float64)

    def _scoring_weights(self, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.vectors_, dtype=np.float32)).to(device)  # (K, d)

    def _score_rows(self, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        # F.linear is the very operation of the transferred model's bias-free head (weights = the same
        # float32 (K, d) rows), so on equal activations the two agree bit for bit, near-ties included.
        with large_products(2.0 * rows.numel() * weights.shape[0]):
            return torch.nn.functional.linear(rows, weights)  # (n, K) projections ⟨v_c, x⟩


def velpic_for_every_class(velpic: VeLPIC, num_classes: int) -> VeLPIC:
    """``velpic`` with one vector per class 0..K-1, as the transfer needs one weight row per output.

    At high corruption on a small training set a class can be missing from the corrupted labels
    VeLPIC was fitted on (it then has no vector).  Such a class gets a zero vector: in the transferred
    head (bias zeroed) its logit is 0 for every input, so the modified model predicts it only where
    no present class projects positively -- never for typical post-ReLU activations, whose projections
    on the present classes' (non-negative, Perron) vectors are >= 0; an exact tie at 0 goes to the
    lowest class index.  Returns ``velpic`` itself when every class is present.
    """
    classes = np.asarray(velpic.classes_)
    if np.array_equal(classes, np.arange(num_classes)):
        return velpic
    if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0 or classes.max() >= num_classes:
        raise ValueError(f"VeLPIC classes {classes.tolist()} are not class indices 0..{num_classes - 1}")
    padded = copy.copy(velpic)
    padded.classes_ = np.arange(num_classes, dtype=classes.dtype)
    padded.vectors_ = np.zeros((num_classes, velpic.vectors_.shape[1]), dtype=velpic.vectors_.dtype)
    padded.vectors_[classes] = velpic.vectors_
    padded.explained_variance_ratio_ = np.zeros(num_classes)
    padded.explained_variance_ratio_[classes] = velpic.explained_variance_ratio_
    return padded
