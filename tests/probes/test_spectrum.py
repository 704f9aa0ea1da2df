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


def _many_component_class(seed: int, n: int = 1200, d: int = 1100, top: int = 300) -> np.ndarray:
    """(n, d) float32 rows whose second moment has exactly ``top`` large eigenvalues (1 down to 0.5) over a
    flat tail of d - top small ones holding 0.9 % of the variance: 0.99 of it needs all ``top`` components,
    cut at a wide gap (so the kept subspace is well defined), at a width above ``DENSE_LIMIT``."""
    rng = np.random.default_rng(seed)
    tail = 0.009 / 0.991 * np.linspace(1.0, 0.5, top).sum() / (d - top)
    singular = np.sqrt(np.concatenate([np.linspace(1.0, 0.5, top), np.full(d - top, tail)]))
    left = np.linalg.qr(rng.normal(size=(n, d)))[0]  # orthonormal columns: XᵀX = V diag(s²) Vᵀ exactly
    right = np.linalg.qr(rng.normal(size=(d, d)))[0]
    return ((left * singular) @ right.T).astype(np.float32)


def test_class_needing_hundreds_of_components_switches_to_dense_early_and_matches_float64(monkeypatch):
    """A class whose 0.99 cut needs 300 of its 1,100 dimensions: the Krylov path gives up at its first check
    (the estimated components would need more columns than its cap) instead of growing to the cap, and the
    dense path's subspace and MASC's predictions agree with float64 eigh."""
    import float64_probes
    from latentgen.probes.paper import MASC

    classes = [_many_component_class(seed) for seed in range(3)]
    products = []
    real = spectrum._second_moment_times
    monkeypatch.setattr(spectrum, "_second_moment_times", lambda *args: products.append(1) or real(*args))
    krylov = []
    monkeypatch.setattr(
        spectrum,
        "_krylov_spectrum",
        lambda *args, real=spectrum._krylov_spectrum: krylov.append(real(*args)) or krylov[-1],
    )
    data = torch.from_numpy(classes[0])
    found = spectrum.class_spectrum(data, 0.99)
    assert krylov == [None], "the Krylov path was tried (min(n, d) > DENSE_LIMIT) and handed over to dense"
    cap_steps = int(min(data.shape) * spectrum.KRYLOV_MAX_FRACTION) // spectrum.KRYLOV_BLOCK
    assert len(products) == spectrum.KRYLOV_FIRST_CHECK < cap_steps, "it gave up at its first check, not at the cap"

    reference_values, reference_vectors = np.linalg.eigh(
        classes[0].astype(np.float64).T @ classes[0].astype(np.float64)
    )
    reference_values, reference_vectors = reference_values[::-1], reference_vectors[:, ::-1]
    needed = spectrum.components_needed(torch.from_numpy(reference_values.copy()), float(reference_values.sum()), 0.99)
    assert needed == 300
    assert spectrum.components_needed(found.eigenvalues, found.trace, 0.99) == needed
    np.testing.assert_allclose(found.eigenvalues[:needed].numpy(), reference_values[:needed], rtol=1e-4)
    # the same 300-dimensional subspace: all principal angles to float64's are tiny
    cosines = np.linalg.svd(reference_vectors[:, :needed].T @ found.eigenvectors[:, :needed].numpy(), compute_uv=False)
    assert cosines.min() > 1 - 1e-8

    legacy = []
    monkeypatch.setattr(spectrum, "_second_moment_times", lambda *args: legacy.append(1) or real(*args))
    spectrum.class_spectrum(data, 0.99, solver="legacy")
    assert len(legacy) == cap_steps, "the old choice grows the space to its cap before going dense"

    train = np.concatenate(classes)
    labels = np.repeat(np.arange(3), len(classes[0]))
    rng = np.random.default_rng(7)
    test = np.concatenate(
        [classes[c][rng.choice(len(classes[c]), 200)] + 0.02 * rng.normal(size=(200, 1100)) for c in range(3)]
    )
    test = np.concatenate([test, rng.normal(size=(600, 1100)) * 0.03]).astype(np.float32)  # near-ties too
    bases = float64_probes.subspaces(float64_probes.class_pcas(train, labels, float64_probes.svd_pca), 0.99)
    masc = MASC().fit(train, labels)
    assert masc.n_components_.tolist() == [basis.shape[1] for basis in bases] == [300, 300, 300]
    assert np.mean(masc.predict(test) == float64_probes.masc_predict(test, bases)) >= 0.999
