"""MASC and VeLPIC by their literal definitions, in float64: the reference that tests/probes/test_probes.py checks
latentgen.probes.paper against, and the ``baseline`` that benchmarks/bench_probes.py times it against.

Per class the data are augmented to [X_c; -X_c] and their PCA taken (explained variances descending,
principal axes as columns).  MASC keeps the fewest axes whose cumulative explained-variance ratio exceeds
``variance`` and sends a vector to the class whose subspace makes the smallest angle with it (the arccos of
the cosine between the vector and its projection).  VeLPIC (Algorithm 1) keeps the top axis, negated when
the class's mean projection on it is negative, and sends a vector to its largest projection.

Two ways to take the PCA, equal in exact arithmetic: :func:`covariance_pca` is the original authors' (np.cov,
centered, then np.linalg.eigh: what the benchmark times), :func:`svd_pca` the SVD of the centered data (far
cheaper when a class has fewer samples than dimensions, as in the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Pca = tuple[np.ndarray, np.ndarray]  # (explained variances descending, principal axes as columns)


def covariance_pca(class_data: np.ndarray) -> Pca:
    """PCA of [X_c; -X_c] the authors' way: float64 covariance (centered), eigh, sorted descending."""
    augmented = np.asarray(np.vstack([class_data, -class_data]), dtype=np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(augmented, rowvar=False))
    order = np.argsort(eigenvalues)[::-1]
    return eigenvalues[order], eigenvectors[:, order]


def svd_pca(class_data: np.ndarray) -> Pca:
    """PCA of [X_c; -X_c] by the SVD of the centered data: variances s² / (2n - 1), axes as columns."""
    augmented = np.asarray(np.vstack([class_data, -class_data]), dtype=np.float64)
    centered = augmented - augmented.mean(axis=0)
    _, singular_values, right = np.linalg.svd(centered, full_matrices=False)
    return singular_values**2 / (len(augmented) - 1), right.T


def class_pcas(
    train: np.ndarray, labels: np.ndarray, pca: Callable[[np.ndarray], Pca] = covariance_pca
) -> tuple[Pca, ...]:
    """The PCA of every class of ``train``, in label order."""
    train = np.asarray(train, dtype=np.float64)
    return tuple(pca(train[labels == label]) for label in np.unique(labels))


def subspaces(pcas: Sequence[Pca], variance: float) -> list[np.ndarray]:
    """Per class, the fewest principal axes whose cumulative explained-variance ratio exceeds ``variance``."""
    bases = []
    for explained, axes in pcas:
        ratio = np.cumsum(explained) / np.sum(explained)
        bases.append(axes[:, : int(np.argmax(ratio > variance)) + 1])
    return bases


def masc_predict(X: np.ndarray, bases: Sequence[np.ndarray]) -> np.ndarray:
    """argmin over classes of arccos(cos(x, projection of x on the class subspace))."""
    X = np.asarray(X, dtype=np.float64)
    angles = []
    for basis in bases:
        projection = X @ basis @ basis.T
        cosine = np.sum(X * projection, axis=1) / (np.linalg.norm(X, axis=1) * np.linalg.norm(projection, axis=1))
        angles.append(np.arccos(np.clip(cosine, -1.0, 1.0)))
    return np.argmin(np.stack(angles, axis=1), axis=1)


def velpic_vectors(train: np.ndarray, labels: np.ndarray, pcas: Sequence[Pca]) -> np.ndarray:
    """Top principal axis per class (rows), negated when the class's mean projection on it is negative."""
    train = np.asarray(train, dtype=np.float64)
    vectors = []
    for (_, axes), label in zip(pcas, np.unique(labels)):
        top = axes[:, 0]
        vectors.append(-top if np.mean(train[labels == label] @ top) < 0 else top)
    return np.stack(vectors)


def velpic_predict(X: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    return np.argmax(np.asarray(X, dtype=np.float64) @ vectors.T, axis=1)
