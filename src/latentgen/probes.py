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

How the eigenpairs are found (``latentgen.spectrum.class_spectrum``):

* Small problems (min(n_c, d) ≤ ``DENSE_LIMIT``): the d×d Gram X_cᵀX_c, or the n_c×n_c dual X_cX_cᵀ
  when n_c < d (eigenvectors u → v = X_cᵀu/√λ), accumulated in float32 and diagonalized by
  ``torch.linalg.eigh`` in float64.
* Large problems whose needed components are few compared with min(n_c, d) (the usual case: the
  MLP's 2048-unit ReLU layers need 5-25 components for 99 %): a block Krylov space built from
  products with X_c (never the d×d Gram, whose n_c·d² cost would dominate), Rayleigh-Ritz in
  float64, accepted when the Davis-Kahan bound on the angle between the kept Ritz subspace and the
  exact eigenspace is small; otherwise the space grows, and past a quarter of min(n_c, d) the dense
  path is used instead.  VeLPIC, which needs only the top eigenvector, takes this path from
  min(n_c, d) > ``TOP_VECTOR_DENSE_LIMIT``.

Precision (``benchmarks/bench_probes.py --precision``, real activations of the paper's MLP after one
epoch on MNIST with 40 % label noise, 60,000 train / 10,000 test, see docs/performance.md): against an
all-float64 computation, a float32 Gram with a float64 eigh gives identical MASC test predictions on
all four layers (cosines within 1.3e-6), a float32 eigh changes 0.01-0.05 % of them, and the library
as configured (dense or Krylov) is identical.  So products are float32 and eigensolvers float64.
"""

from __future__ import annotations

import threading
from numbers import Real
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from latentgen.cpu_threads import class_workers, cpu_thread_policy, large_products
from latentgen.cpu_threads import torch_threads  # noqa: F401 (re-exported: callers set threads through probes)
from latentgen.fileio import tensor_over
from latentgen.spectrum import class_spectrum, components_needed  # noqa: F401 (components_needed re-exported)

# Rows per chunk when scoring: bounds the float32 copy of a float16/memory-mapped input (16 MB at
# d = 2048, reused from chunk to chunk).
SCORE_CHUNK_ROWS = 2048
# numpy dtypes accepted as they are; anything else (ints, object) is converted to float64 by sklearn.
_KEPT_FLOAT_DTYPES = [np.float64, np.float32, np.float16]


# --------------------------------------------------------------------------------------------------
# Input handling shared by both probes
# --------------------------------------------------------------------------------------------------


def _to_numpy_labels(y) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        return y.detach().cpu().numpy()
    return y


def _compute_device(X, requested) -> torch.device:
    """The requested device, else the device of a tensor input, else the CPU."""
    if requested is not None:
        return torch.device(requested)
    if isinstance(X, torch.Tensor):
        return X.device
    return torch.device("cpu")


def _as_source_tensor(X) -> torch.Tensor:
    """The validated input as a tensor without copying: numpy (memory-mapped too) or a tensor as is."""
    return X if isinstance(X, torch.Tensor) else tensor_over(X)


class _Float32Rows:
    """Rows of the input (any float dtype, possibly over a memory map) as float32 on the compute device,
    written into two buffers that every call reuses.

    Fresh tensors of this size cost their page faults (a fit of the MLP's 2048-unit layers gathers ten
    6,000-row classes per probe).  Rows are gathered by torch in the input's dtype and widened by
    ``copy_``, faster than numpy's fancy indexing plus ``astype`` (docs/performance.md, "Measured choices in the code").
    A returned tensor is a view of the buffer: it is valid until the next call.
    Raises ValueError for NaN or infinite values, checked here on float32 data rather than by
    scikit-learn, whose check falls back to a slow element-wise pass for float16 (the float16 sum of a
    large array overflows).
    """

    def __init__(self, source: torch.Tensor, device: torch.device, max_rows: int) -> None:
        self.source = source
        shape = (max_rows, source.shape[1])
        self._widened = torch.empty(shape, dtype=torch.float32, device=device)
        gathers_in_place = source.dtype == torch.float32 and source.device == self._widened.device
        self._staging = None if gathers_in_place else source.new_empty(shape)

    def __call__(self, rows: np.ndarray | slice) -> torch.Tensor:
        if isinstance(rows, slice):
            selected = self.source[rows]
            widened = self._widened[: selected.shape[0]]
            widened.copy_(selected)
        else:
            index = torch.as_tensor(rows, device=self.source.device)
            widened = self._widened[: len(rows)]
            if self._staging is None:
                torch.index_select(self.source, 0, index, out=widened)
            else:
                staged = self._staging[: len(rows)]
                torch.index_select(self.source, 0, index, out=staged)
                widened.copy_(staged)
        if not bool(torch.isfinite(widened.sum(dim=1)).all()):  # a NaN or inf anywhere makes its row sum so
            raise ValueError("Input X contains NaN or infinity (or values too large for float32).")
        return widened


# scikit-learn's parameter-validation idiom: every probe's ``_parameter_constraints`` are checked by
# ``_validate_fit_input`` (``BaseEstimator._validate_params``) before a fit reads any data.
DEVICE_CONSTRAINT = [None, str, torch.device]


class _TorchProbe(ClassifierMixin, BaseEstimator):
    """Shared validation, label handling and chunked scoring of every probe; subclasses fit.

    Subclasses provide ``fit`` and the scoring hooks ``_scoring_weights`` (fitted state as tensors on
    the compute device, built once per call) and ``_score_rows`` (float32 scores of one chunk of rows).
    """

    # -- validation --------------------------------------------------------------------------------

    def _check_tensor(self, X: torch.Tensor, reset: bool) -> torch.Tensor:
        """The checks sklearn's validate_data makes, on a tensor left on its device."""
        if X.ndim != 2:
            raise ValueError(f"Expected 2D array, got a tensor of shape {tuple(X.shape)} instead.")
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"Found array with shape {tuple(X.shape)}; at least 1 sample and 1 feature are required.")
        if X.is_complex():
            raise ValueError("Complex data not supported")
        if not X.is_floating_point():
            X = X.to(torch.float32)
        if reset:
            self.n_features_in_ = int(X.shape[1])
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X

    def _validate_fit_input(self, X, y):
        self._validate_params()  # InvalidParameterError (a ValueError) naming the parameter
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = _to_numpy_labels(y)
        if isinstance(X, torch.Tensor):
            X = self._check_tensor(X, reset=True)
            y = column_or_1d(y, warn=True)
            if y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"Found input variables with inconsistent numbers of samples: [{X.shape[0]}, {y.shape[0]}]"
                )
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            X, y = validate_data(self, X, y, dtype=_KEPT_FLOAT_DTYPES, ensure_all_finite=False)
        check_classification_targets(y)
        return X, y

    def _validate_predict_input(self, X):
        check_is_fitted(self)
        if isinstance(X, torch.Tensor):
            return self._check_tensor(X, reset=False)
        return validate_data(self, X, dtype=_KEPT_FLOAT_DTYPES, reset=False, ensure_all_finite=False)

    def _encode_labels(self, y: np.ndarray) -> np.ndarray:
        """Sets ``classes_`` (the sorted labels) and returns each row's index into it (int64)."""
        self.classes_, encoded = np.unique(y, return_inverse=True)
        return encoded.astype(np.int64, copy=False)

    def _class_rows(self, y: np.ndarray) -> list[np.ndarray]:
        """Sets ``classes_`` and returns the row indices of each class, in ``classes_`` order."""
        encoded = self._encode_labels(y)
        order = np.argsort(encoded, kind="stable")
        boundaries = np.cumsum(np.bincount(encoded, minlength=len(self.classes_)))[:-1]
        return np.split(order, boundaries)

    # -- scoring -----------------------------------------------------------------------------------

    def predict_scores(self, X) -> np.ndarray:
        """(n, K) class scores in ``classes_`` order; ``predict`` is their argmax (ties → lowest index)."""
        X = self._validate_predict_input(X)
        device = _compute_device(X, self.device)
        source = _as_source_tensor(X)
        weights = self._scoring_weights(device)
        with cpu_thread_policy(device):
            chunk = _Float32Rows(source, device, max_rows=min(SCORE_CHUNK_ROWS, X.shape[0]))
            chunks = [
                self._score_rows(chunk(slice(start, start + SCORE_CHUNK_ROWS)), weights)
                for start in range(0, X.shape[0], SCORE_CHUNK_ROWS)
            ]
        return torch.cat(chunks).double().cpu().numpy()

    def decision_function(self, X) -> np.ndarray:
        """scikit-learn convention: (n, K) scores; for two classes the (n,) margin score₁ - score₀."""
        scores = self.predict_scores(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X) -> np.ndarray:
        """The class with the highest score; ties go to the first of ``classes_``."""
        scores = self.predict_scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    # True when predict_training is plain prediction of the fitted samples (KNN leaves each one out instead).
    resubstitutes_training = True

    def predict_training(self, X, rows: np.ndarray | None = None) -> np.ndarray:
        """Predictions for the very samples ``X`` that ``fit`` was given (the training-split scores).

        ``rows`` (sorted indices into ``X``) predicts only those samples.  Resubstitution, i.e.
        ``predict(X[rows])``: a parametric probe depends on one sample only through class statistics
        of many.  ``KNN`` overrides it with leave-one-out, since a sample is its own nearest neighbour.
        """
        return self.predict(X if rows is None else X[torch.as_tensor(rows) if isinstance(X, torch.Tensor) else rows])

    def _scoring_weights(self, device: torch.device):
        raise NotImplementedError

    def _score_rows(self, rows: torch.Tensor, weights) -> torch.Tensor:
        raise NotImplementedError


class _ClassGeometryProbe(_TorchProbe):
    """A probe fitted class by class: ``_fit_class`` on each class's rows, ``_store`` of the results."""

    concurrent_classes = True  # False: classes one after another, in order (their products still threaded)

    def fit(self, X, y):
        """Fit one geometric object per class on its activations ``X`` (n, d); returns self."""
        X, y = self._validate_fit_input(X, y)
        device = _compute_device(X, self.device)
        source = _as_source_tensor(X)
        class_rows = self._class_rows(y)
        max_rows = max(len(rows) for rows in class_rows)
        workers = class_workers(device, len(class_rows)) if self.concurrent_classes else 1
        with cpu_thread_policy(device, parallel_classes=workers > 1):
            if workers > 1:
                per_class = self._fit_classes_concurrently(source, device, class_rows, max_rows, workers)
            else:
                class_data = _Float32Rows(source, device, max_rows)
                per_class = [self._fit_class(class_data(rows)) for rows in class_rows]
        self._store(per_class)
        return self

    def _fit_classes_concurrently(self, source, device, class_rows, max_rows, workers) -> list:
        """Classes fitted by ``workers`` threads at once, each with one CPU thread and its own buffers."""
        buffers = threading.local()

        def fit_one(rows: np.ndarray):
            if not hasattr(buffers, "class_data"):
                buffers.class_data = _Float32Rows(source, device, max_rows)
            return self._fit_class(buffers.class_data(rows))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fit_one, class_rows))

    def _fit_class(self, class_data: torch.Tensor):
        raise NotImplementedError

    def _store(self, per_class: list) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------
# MASC
# --------------------------------------------------------------------------------------------------


class MASC(_ClassGeometryProbe):
    """Minimum Angle Subspace Classifier (Ketha & Ramaswamy 2025; the paper's Algorithm 2).

    Parameters
    ----------
    variance : float in (0, 1]
        Each class keeps the fewest principal components of its augmented activations whose
        cumulative explained-variance ratio exceeds this (the original: > 0.99).  1.0 keeps every
        non-zero component.
    device : str, torch.device or None
        Where to compute; None uses the device of a tensor input, else the CPU.

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

    _parameter_constraints = {"variance": [Interval(Real, 0, 1, closed="right")], "device": DEVICE_CONSTRAINT}

    def __init__(self, variance: float = 0.99, device: str | torch.device | None = None) -> None:
        self.variance = variance
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # scikit-learn's generic accuracy check fits 2-feature, standardized (zero-mean) blobs.  A
        # subspace classifier needs d well above the number of classes: with d = 2, 3 classes, any class
        # whose blob is not a thin ray from the origin gets a 2-D subspace, i.e. the whole plane, and then
        # claims every point.  That is MASC's definition, not a defect, so its accuracy there is "poor".
        tags.classifier_tags.poor_score = True
        return tags

    def _fit_class(self, class_data: torch.Tensor) -> tuple[np.ndarray, float]:
        spectrum = class_spectrum(class_data, float(self.variance))
        kept = components_needed(spectrum.eigenvalues, spectrum.trace, float(self.variance))
        assert kept is not None, "a dense spectrum always reaches the threshold"
        explained = float(spectrum.eigenvalues[:kept].sum()) / spectrum.trace if kept else 0.0
        return spectrum.eigenvectors[:, :kept].cpu().numpy(), explained

    def _store(self, per_class: list[tuple[np.ndarray, float]]) -> None:
        self.components_ = [basis for basis, _ in per_class]
        self.n_components_ = np.array([basis.shape[1] for basis in self.components_], dtype=np.int64)
        self.explained_variance_ratio_ = np.array([ratio for _, ratio in per_class], dtype=np.float64)

    def _scoring_weights(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """All bases side by side (d, Σk_c) float32, and the class index of each column (Σk_c,)."""
        stacked = np.concatenate(self.components_, axis=1) if self.components_ else np.zeros((self.n_features_in_, 0))
        owner = np.repeat(np.arange(len(self.components_)), self.n_components_)
        return (
            torch.from_numpy(np.ascontiguousarray(stacked, dtype=np.float32)).to(device),
            torch.from_numpy(owner).to(device),
        )

    def _score_rows(self, rows: torch.Tensor, weights) -> torch.Tensor:
        """cos of the angle to each class subspace: sqrt(Σ_j ⟨x, p_j^c⟩²)/‖x‖, (n, K); 0 for x = 0."""
        stacked, owner = weights
        with large_products(2.0 * rows.numel() * stacked.shape[1]):
            coordinates = rows @ stacked  # (n, Σk_c): coordinates in every class basis at once
        captured = rows.new_zeros((rows.shape[0], len(self.components_)))
        captured.index_add_(1, owner, coordinates.square())  # ‖P_c x‖² per class
        norm_sq = rows.square().sum(dim=1, keepdim=True)
        safe = torch.where(norm_sq > 0, norm_sq, torch.ones_like(norm_sq))
        # Rounding can put ‖P_c x‖² a hair above ‖x‖²; cosines are clamped to 1.
        return torch.where(norm_sq > 0, (captured / safe).clamp(max=1.0).sqrt(), torch.zeros_like(captured))


# --------------------------------------------------------------------------------------------------
# VeLPIC
# --------------------------------------------------------------------------------------------------


class VeLPIC(_ClassGeometryProbe):
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
    ``vectors_`` and no bias (what ``latentgen.transfer.apply_velpic`` installs).

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


# --------------------------------------------------------------------------------------------------
# The rest of the family (latentgen.probe_family), re-exported lazily: that module imports this one.
# --------------------------------------------------------------------------------------------------

_FAMILY_NAMES = ("KNN", "LDA", "NCM", "LogisticRegressionProbe", "PROBES", "ProbeSpec", "build_probe")


def __getattr__(name: str):
    if name in _FAMILY_NAMES:
        from latentgen import probe_family

        return getattr(probe_family, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
