"""latentgen.probes.spectrum: the class eigen-solvers against numpy's float64 eigh on small synthetic data.

Agreement on real activations (dense and Krylov paths) is tested in test_probes.py."""

import numpy as np
import pytest
import torch

from latentgen.probes import spectrum


def _class_data(n=120, d=30, rank=12, seed=0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) * np.linspace(3, 0.1, d)
    return torch.from_numpy(data.astype(np.float32))


def _reference(data: torch.Tensor) -> np.ndarray:
    values = np.linalg.eigvalsh(data.double().T @ data.double())[::-1]
    return values


@pytest.mark.parametrize("solver", [spectrum.primal_spectrum, spectrum.dual_spectrum, spectrum.dense_spectrum])
def test_dense_solvers_give_the_non_zero_eigenpairs(solver):
    data = _class_data()
    found = solver(data)
    reference = _reference(data)
    assert found.eigenvalues.numel() == 12, "rank 12: the null space is dropped"
    np.testing.assert_allclose(found.eigenvalues.numpy(), reference[:12], rtol=1e-4)
    vectors = found.eigenvectors
    np.testing.assert_allclose((vectors.T @ vectors).numpy(), np.eye(12), atol=1e-8)
    gram = data.double().T @ data.double()
    np.testing.assert_allclose(
        (gram @ vectors).numpy(),
        (vectors * found.eigenvalues).numpy(),
        rtol=1e-4,
        atol=1e-3 * float(found.eigenvalues[0]),
    )
    assert found.trace == pytest.approx(float(reference.sum()), rel=1e-5)


def test_components_needed():
    values = torch.tensor([6.0, 3.0, 1.0], dtype=torch.float64)
    assert spectrum.components_needed(values, 10.0, 0.5) == 1
    assert spectrum.components_needed(values, 10.0, 0.6) == 2, "strictly exceeds"
    assert spectrum.components_needed(values, 10.0, 1.0) == 3
    assert spectrum.components_needed(values[:2], 10.0, 0.95) is None, "more eigenvalues are needed"
    assert spectrum.components_needed(values, 10.0, 0.999999999) == 3, "all known and they add up to the trace"
    assert spectrum.components_needed(values[:0], 0.0, 0.5) == 0


def test_class_spectrum_krylov_path_keeps_the_variance(monkeypatch):
    rng = np.random.default_rng(1)  # non-negative (post-ReLU-like) with a decaying spectrum: Krylov converges
    data = torch.from_numpy((np.abs(rng.normal(size=(1000, 300))) * np.exp(-np.arange(300) / 10)).astype(np.float32))
    monkeypatch.setattr(spectrum, "DENSE_LIMIT", 10)  # the Krylov path on small data
    krylov = []
    monkeypatch.setattr(
        spectrum,
        "_krylov_spectrum",
        lambda *args, real=spectrum._krylov_spectrum: krylov.append(real(*args)) or krylov[-1],
    )
    found = spectrum.class_spectrum(data, 0.9)
    assert krylov and krylov[0] is found, "answered by the Krylov path, not the dense fallback"
    reference = _reference(data)
    needed = spectrum.components_needed(torch.from_numpy(reference.copy()), float(reference.sum()), 0.9)
    assert spectrum.components_needed(found.eigenvalues, found.trace, 0.9) == needed
    np.testing.assert_allclose(found.eigenvalues[:needed].numpy(), reference[:needed], rtol=1e-4)


def test_all_zero_class_has_no_eigenpairs():
    found = spectrum.class_spectrum(torch.zeros(5, 4), 0.99)
    assert found.trace == 0.0 and found.eigenvalues.numel() == 0 and found.eigenvectors.shape == (4, 0)
