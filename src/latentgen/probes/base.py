"""What every probe shares: input validation, label handling, chunked float32 scoring, and the
class-by-class fit of the geometric probes (MASC, VeLPIC, NCM, LDA).

The estimators themselves live beside it: ``latentgen.probes.paper`` (MASC, VeLPIC), ``latentgen.probes.geometry``
(NCM, LDA), ``latentgen.probes.logistic`` and ``latentgen.probes.knn``; ``latentgen.probes.family`` is the
registry scoring builds them from.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from latentgen.common.fileio import tensor_over
from latentgen.probes.cpu_threads import class_workers, cpu_thread_policy, large_products

__all__ = [
    "DEVICE_CONSTRAINT",
    "SCORE_CHUNK_ROWS",
    "ClassGeometryProbe",
    "Float32Rows",
    "LinearScores",
    "TorchProbe",
    "as_source_tensor",
    "compute_device",
    "unit_rows_",
]

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


def compute_device(X, requested) -> torch.device:
    """The requested device, else the device of a tensor input, else the CPU."""
    if requested is not None:
        return torch.device(requested)
    if isinstance(X, torch.Tensor):
        return X.device
    return torch.device("cpu")


def as_source_tensor(X) -> torch.Tensor:
    """The validated input as a tensor without copying: numpy (memory-mapped too) or a tensor as is."""
    return X if isinstance(X, torch.Tensor) else tensor_over(X)


class Float32Rows:
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


class TorchProbe(ClassifierMixin, BaseEstimator):
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
        device = compute_device(X, self.device)
        source = as_source_tensor(X)
        weights = self._scoring_weights(device)
        with cpu_thread_policy(device):
            chunk = Float32Rows(source, device, max_rows=min(SCORE_CHUNK_ROWS, X.shape[0]))
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


class ClassGeometryProbe(TorchProbe):
    """A probe fitted class by class: ``_fit_class`` on each class's rows, ``_store`` of the results."""

    concurrent_classes = True  # False: classes one after another, in order (their products still threaded)

    def fit(self, X, y):
        """Fit one geometric object per class on its activations ``X`` (n, d); returns self."""
        X, y = self._validate_fit_input(X, y)
        device = compute_device(X, self.device)
        source = as_source_tensor(X)
        class_rows = self._class_rows(y)
        max_rows = max(len(rows) for rows in class_rows)
        workers = class_workers(device, len(class_rows)) if self.concurrent_classes else 1
        with cpu_thread_policy(device, parallel_classes=workers > 1):
            if workers > 1:
                per_class = self._fit_classes_concurrently(source, device, class_rows, max_rows, workers)
            else:
                class_data = Float32Rows(source, device, max_rows)
                per_class = [self._fit_class(class_data(rows)) for rows in class_rows]
        self._store(per_class)
        return self

    def _fit_classes_concurrently(self, source, device, class_rows, max_rows, workers) -> list:
        """Classes fitted by ``workers`` threads at once, each with one CPU thread and its own buffers."""
        buffers = threading.local()

        def fit_one(rows: np.ndarray):
            if not hasattr(buffers, "class_data"):
                buffers.class_data = Float32Rows(source, device, max_rows)
            return self._fit_class(buffers.class_data(rows))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fit_one, class_rows))

    def _fit_class(self, class_data: torch.Tensor):
        raise NotImplementedError

    def _store(self, per_class: list) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------
# Shared by several probes (NCM and kNN: unit rows; LDA and logistic regression: linear scores)
# --------------------------------------------------------------------------------------------------


def unit_rows_(rows: torch.Tensor) -> torch.Tensor:
    """``rows`` scaled in place to unit Euclidean length; all-zero rows stay zero (as sklearn's normalize)."""
    norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
    return rows.div_(torch.where(norms > 0, norms, torch.ones_like(norms)))


class LinearScores:
    """Scoring of probes whose scores are an affine map x ↦ W x + b (``coef_`` (K, d), ``intercept_`` (K,))."""

    def _scoring_weights(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        weight = torch.from_numpy(np.ascontiguousarray(self.coef_, dtype=np.float32)).to(device)
        return weight, torch.from_numpy(np.asarray(self.intercept_, dtype=np.float32)).to(device)

    def _score_rows(self, rows: torch.Tensor, weights) -> torch.Tensor:
        weight, bias = weights
        with large_products(2.0 * rows.numel() * weight.shape[0]):
            return torch.nn.functional.linear(rows, weight, bias)
