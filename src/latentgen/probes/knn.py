"""``KNN`` (``knn``): k = 5 nearest neighbours by cosine similarity, majority vote, exact (blocked products
with every training row).

On the training samples themselves (``predict_training``) each sample is left out of its own neighbourhood,
as ``KNeighborsClassifier.kneighbors()`` without X does: otherwise a sample would be one of its own five
voters, for its own (corrupted) label.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from latentgen.probes import cpu_blas
from latentgen.probes.base import (
    DEVICE_CONSTRAINT,
    SCORE_CHUNK_ROWS,
    Float32Rows,
    TorchProbe,
    as_source_tensor,
    compute_device,
    unit_rows_,
)
from latentgen.probes.cpu_threads import cpu_thread_policy

__all__ = ["KNN", "KNN_QUERY_BLOCK"]


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
                unit = unit_rows_(chunk(slice(start, start + SCORE_CHUNK_ROWS)))
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
        return self._votes(unit_rows_(rows), weights) / int(self.n_neighbors)

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
