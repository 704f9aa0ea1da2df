"""MASC and VeLPIC: agreement with the literal float64 definition on real activations, the math
(Proposition 1, the VeLPIC sign rule, dual = primal = Krylov), edge cases, scikit-learn conformance."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

import float64_probes
from sklearn_conformance import float32_expected_failures
import latentgen.probes.spectrum as spectrum
from latentgen.probes.paper import MASC, VeLPIC
from latentgen.data.arrays import to_unit_float

N_TRAIN, N_TEST = 3000, 2000


# --------------------------------------------------------------------------------------------------
# Real activations: the paper's MLP after one epoch on real MNIST with corrupted labels (tests/conftest.py)
# --------------------------------------------------------------------------------------------------


@dataclass
class LayerData:
    train: np.ndarray  # (N_TRAIN, width) float32, post-ReLU
    test: np.ndarray  # (N_TEST, width)


@dataclass(eq=False)  # hashed by identity: the cached reference PCA is computed once per instance
class RealActivations:
    layers: dict[str, LayerData]
    noisy_labels: np.ndarray  # (N_TRAIN,) the corrupted labels the model was trained on
    test_labels: np.ndarray


@pytest.fixture(scope="module")
def real(mnist_mlp) -> RealActivations:
    """The shared trained MLP's activations (tests/conftest.py) on the first N_TRAIN training and N_TEST test
    images of MNIST."""
    data = mnist_mlp.data
    model = mnist_mlp.model()
    train_x = to_unit_float(torch.from_numpy(data.train_images[:N_TRAIN]))
    test_x = to_unit_float(torch.from_numpy(data.test_images[:N_TEST]))
    with torch.no_grad():
        train_features, test_features = model.features(train_x), model.features(test_x)
    layers = {name: LayerData(train_features[name].numpy(), test_features[name].numpy()) for name in model.probe_layers}
    return RealActivations(layers, data.train_noisy[:N_TRAIN], data.test_labels[:N_TEST])


# --------------------------------------------------------------------------------------------------
# The literal definition, in float64, as the original authors' code computes it
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def reference_pca(real: RealActivations, layer: str) -> tuple[float64_probes.Pca, ...]:
    """(explained variances, principal axes) of every class of a real layer, in label order."""
    with threadpool_limits(1):  # LAPACK threads stall on a busy 2-core machine; one thread is steadier
        return float64_probes.class_pcas(real.layers[layer].train, real.noisy_labels, float64_probes.svd_pca)


def reference_subspaces(real: RealActivations, layer: str, variance: float) -> list[np.ndarray]:
    return float64_probes.subspaces(reference_pca(real, layer), variance)


def reference_velpic_vectors(real: RealActivations, layer: str) -> np.ndarray:
    return float64_probes.velpic_vectors(real.layers[layer].train, real.noisy_labels, reference_pca(real, layer))


# --------------------------------------------------------------------------------------------------
# (a) agreement with the reference on real activations
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["fc1", "fc2", "fc3", "fc4"])
def test_masc_matches_float64_reference_on_real_activations(real, layer):
    data = real.layers[layer]
    bases = reference_subspaces(real, layer, 0.99)
    masc = MASC().fit(data.train, real.noisy_labels)
    assert masc.n_components_.tolist() == [basis.shape[1] for basis in bases]
    predictions = masc.predict(data.test)
    assert np.mean(predictions == float64_probes.masc_predict(data.test, bases)) >= 0.999
    assert np.mean(predictions == real.test_labels) > 0.5  # a trained model, a working probe


@pytest.mark.parametrize("layer, variance", [("fc3", 0.995), ("fc4", 0.997)])
def test_krylov_path_matches_float64_reference_on_real_activations(real, layer, variance, monkeypatch):
    """Forced onto the Krylov path (used for min(n_c, d) > DENSE_LIMIT), the same subspaces.

    After one epoch this model keeps 10-20 (fc3) and 5-8 (fc4) of its ~300 dimensions per class for 99 %, so
    the variance is raised to keep 15-45 components (measured: fc3 23-41 at 99.5 %, fc4 17-36 at 99.7 %), the
    regime the Krylov path serves at full scale, and the space may use 3/4 of min(n_c, d).
    """
    data = real.layers[layer]
    spectra = []
    krylov = spectrum._krylov_spectrum
    monkeypatch.setattr(spectrum, "DENSE_LIMIT", 0)
    monkeypatch.setattr(spectrum, "KRYLOV_MAX_FRACTION", 0.75)
    monkeypatch.setattr(spectrum, "_krylov_spectrum", lambda *args: spectra.append(krylov(*args)) or spectra[-1])
    masc = MASC(variance=variance).fit(data.train, real.noisy_labels)
    assert len(spectra) == 10 and all(found is not None for found in spectra)
    bases = reference_subspaces(real, layer, variance)
    assert masc.n_components_.tolist() == [basis.shape[1] for basis in bases]
    assert min(masc.n_components_) >= 10
    assert np.mean(masc.predict(data.test) == float64_probes.masc_predict(data.test, bases)) >= 0.999


@pytest.mark.parametrize("layer", ["fc1", "fc4"])
def test_velpic_matches_float64_reference_on_real_activations(real, layer):
    data = real.layers[layer]
    expected = reference_velpic_vectors(real, layer)
    velpic = VeLPIC().fit(data.train, real.noisy_labels)
    # The Krylov path (min(n_c, d) > TOP_VECTOR_DENSE_LIMIT) accepts a top vector once its Davis-Kahan bound on
    # sin Θ is below SUBSPACE_TOL, so that is what an entry of a unit vector may differ by.  Measured on fc1:
    # classes 0 and 6 differ by 2.1e-4, the others by at most 2e-7; on fc4 every class by at most 3e-5.
    np.testing.assert_allclose(velpic.vectors_, expected, atol=spectrum.SUBSPACE_TOL)
    reference = float64_probes.velpic_predict(data.test, expected)
    assert np.mean(velpic.predict(data.test) == reference) >= 0.999


# --------------------------------------------------------------------------------------------------
# (b)-(d) the math
# --------------------------------------------------------------------------------------------------


def test_masc_is_the_quadratic_form_of_proposition_1(real):
    """cos²θ_c = xᵀP_c x / xᵀx with P_c = B_c B_cᵀ, and MASC predicts its argmax."""
    data = real.layers["fc2"]
    masc = MASC().fit(data.train, real.noisy_labels)
    X = data.test.astype(np.float64)
    quadratic = np.stack([np.sum((X @ (basis @ basis.T)) * X, axis=1) for basis in masc.components_], 1)
    quadratic /= np.sum(X * X, axis=1)[:, None]
    np.testing.assert_allclose(masc.predict_scores(data.test) ** 2, quadratic, atol=1e-5)
    assert np.mean(masc.predict(data.test) == masc.classes_[quadratic.argmax(1)]) >= 0.999
    for basis in masc.components_:  # orthonormal bases
        np.testing.assert_allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-10)


def test_velpic_sign_rule_makes_mean_projection_non_negative(real):
    data = real.layers["fc2"]
    for X in (data.train, -data.train):  # negated data: the rule must flip every vector
        velpic = VeLPIC().fit(X, real.noisy_labels)
        for index, label in enumerate(velpic.classes_):
            assert np.mean(X[real.noisy_labels == label] @ velpic.vectors_[index]) >= 0
        np.testing.assert_allclose(np.linalg.norm(velpic.vectors_, axis=1), 1.0, atol=1e-10)
    flipped = VeLPIC().fit(-data.train, real.noisy_labels)
    np.testing.assert_allclose(flipped.vectors_, -VeLPIC().fit(data.train, real.noisy_labels).vectors_, atol=1e-6)


def test_velpic_sign_rule_equals_the_authors_all_data_rule_on_non_negative_layers(real):
    """The authors flip a class vector when the mean projection of *all* training activations is negative;
    ours looks at the class's own activations.  On post-ReLU layers (every probed layer) both pick the same
    sign: the top eigenvector of a non-negative class is a non-negative vector up to sign."""
    for layer in ("fc1", "fc4"):
        X = real.layers[layer].train
        assert X.min() >= 0
        velpic = VeLPIC().fit(X, real.noisy_labels)
        projections_of_all_data = X @ velpic.vectors_.T  # (n, K)
        assert np.all(projections_of_all_data.mean(axis=0) >= 0)


def test_velpic_sign_rule_on_a_hand_made_class():
    """All-negative class data: the top eigenvector points into the negative orthant after the rule."""
    X = -np.abs(np.random.default_rng(0).normal(size=(40, 6))) - 1.0
    velpic = VeLPIC().fit(X, np.zeros(40, dtype=int))
    assert np.all(velpic.vectors_[0] < 0)
    np.testing.assert_array_equal(velpic.predict(X), 0)


def _projector(vectors: torch.Tensor) -> torch.Tensor:
    return vectors @ vectors.T


def test_dual_path_equals_primal_path(real):
    class_data = torch.from_numpy(real.layers["fc3"].train[real.noisy_labels == 3])  # n_c ~ 300 < d = 2048
    primal, dual = spectrum.primal_spectrum(class_data), spectrum.dual_spectrum(class_data)
    k = spectrum.components_needed(primal.eigenvalues, primal.trace, 0.99)
    assert k == spectrum.components_needed(dual.eigenvalues, dual.trace, 0.99)
    np.testing.assert_allclose(dual.eigenvalues[:k], primal.eigenvalues[:k], rtol=1e-5)
    torch.testing.assert_close(
        _projector(dual.eigenvectors[:, :k]), _projector(primal.eigenvectors[:, :k]), atol=1e-4, rtol=0
    )
    assert spectrum.dense_spectrum(class_data).eigenvectors.shape == dual.eigenvectors.shape  # dual chosen


def test_krylov_path_equals_dense_path(real, monkeypatch):
    monkeypatch.setattr(spectrum, "KRYLOV_MAX_FRACTION", 0.75)  # see the Krylov reference test above
    class_data = torch.from_numpy(real.layers["fc4"].train[real.noisy_labels == 1])
    dense = spectrum.dense_spectrum(class_data)
    krylov = spectrum._krylov_spectrum(class_data, 0.995)  # 13 components (3 at 97 %)
    assert krylov is not None
    k = krylov.eigenvalues.numel()
    assert k == spectrum.components_needed(dense.eigenvalues, dense.trace, 0.995) and k >= 10
    np.testing.assert_allclose(krylov.eigenvalues, dense.eigenvalues[:k], rtol=1e-5)
    torch.testing.assert_close(
        _projector(krylov.eigenvectors), _projector(dense.eigenvectors[:, :k]), atol=1e-3, rtol=0
    )
    again = spectrum._krylov_spectrum(class_data, 0.995)  # a seeded start: the same result every time
    assert torch.equal(again.eigenvectors, krylov.eigenvectors)


def test_no_augmentation_same_result_as_explicit_augmentation():
    """Fitting on [X; -X] (same labels twice) gives the same subspaces: the second moment only doubles."""
    rng = np.random.default_rng(1)
    X, y = np.abs(rng.normal(size=(300, 20))), rng.integers(0, 3, 300)
    plain = MASC().fit(X, y)
    augmented = MASC().fit(np.vstack([X, -X]), np.concatenate([y, y]))
    assert plain.n_components_.tolist() == augmented.n_components_.tolist()
    for a, b in zip(plain.components_, augmented.components_):
        np.testing.assert_allclose(a @ a.T, b @ b.T, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# (e) edge cases
# --------------------------------------------------------------------------------------------------


def _rng_data(n=60, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(size=(n, d))), rng.integers(0, classes, n)


@pytest.mark.parametrize("probe", [MASC(), VeLPIC()])
def test_all_zero_inputs_predict_first_class_without_nan(probe):
    X, y = _rng_data()
    probe.fit(X, y)
    scores = probe.predict_scores(np.zeros((4, X.shape[1])))
    assert np.all(scores == 0) and np.isfinite(scores).all()
    np.testing.assert_array_equal(probe.predict(np.zeros((4, X.shape[1]))), probe.classes_[0])


@pytest.mark.parametrize("probe", [MASC(), VeLPIC()])
def test_ties_go_to_the_lowest_class_index(probe):
    X = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    probe.fit(X, np.array([5, 5, 7, 7]))
    np.testing.assert_array_equal(probe.predict(np.array([[1.0, 1.0], [0.0, 2.0], [2.0, 0.0]])), [5, 7, 5])


@pytest.mark.parametrize("probe", [MASC(), VeLPIC()])
def test_class_with_all_zero_data_never_wins_unless_every_score_is_zero(probe):
    X, y = _rng_data()
    X[y == 0] = 0.0  # class 0's activations are all zero
    probe.fit(X, y)
    if isinstance(probe, MASC):
        assert probe.n_components_[0] == 0 and probe.components_[0].shape == (X.shape[1], 0)
    else:
        assert np.all(probe.vectors_[0] == 0)
    assert 0 not in set(probe.predict(np.abs(np.random.default_rng(5).normal(size=(50, X.shape[1])))))
    assert probe.predict(np.zeros((1, X.shape[1])))[0] == 0  # all scores 0: the tie rule


@pytest.mark.parametrize("probe", [MASC(), VeLPIC()])
def test_single_sample_class_and_constant_features(probe):
    X, y = _rng_data()
    X[:, 2] = 3.0  # a constant feature
    X = np.vstack([X, np.eye(X.shape[1])[0] * 5])
    y = np.append(y, 9)  # class 9 has exactly one sample, along axis 0
    probe.fit(X, y)
    scores = probe.predict_scores(X)
    assert np.isfinite(scores).all()
    assert probe.predict(np.eye(X.shape[1])[:1] * 2)[0] == 9
    if isinstance(probe, MASC):
        assert probe.n_components_[-1] == 1
        np.testing.assert_allclose(np.abs(probe.components_[-1][:, 0]), np.eye(X.shape[1])[0], atol=1e-6)
    else:
        np.testing.assert_allclose(probe.vectors_[-1], np.eye(X.shape[1])[0], atol=1e-6)


def _planes_data(n=90, d=12, classes=3, seed=0):
    """Class c lies (up to 1 % noise) in the positive quadrant of the plane of axes 2c and 2c+1."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, classes, n)
    X = 0.01 * np.abs(rng.normal(size=(n, d)))
    X[np.arange(n), 2 * codes] += rng.uniform(0.5, 1.5, n)
    X[np.arange(n), 2 * codes + 1] += rng.uniform(0.5, 1.5, n)
    return X, codes


@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "emu"]), np.array([-3, -1, 7])])
@pytest.mark.parametrize("probe", [MASC(), VeLPIC()])
def test_arbitrary_labels(probe, labels):
    X, codes = _planes_data()
    probe.fit(X, labels[codes])
    np.testing.assert_array_equal(probe.classes_, np.sort(labels))
    np.testing.assert_array_equal(probe.predict(X), labels[codes])


def test_variance_one_keeps_all_non_zero_components():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 10))  # rank 3 in 10 dimensions
    masc = MASC(variance=1.0).fit(X, np.zeros(50, dtype=int))
    assert masc.n_components_.tolist() == [3]


def test_threshold_is_strictly_exceeded():
    """Eigenvalues 3, 1 (cumulative ratios 0.75, 1.0): variance 0.75 needs both components, 0.7 one."""
    X = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # X^T X = diag(3, 1), all exact
    assert MASC(variance=0.75).fit(X, [0] * 4).n_components_.tolist() == [2]
    assert MASC(variance=0.7).fit(X, [0] * 4).n_components_.tolist() == [1]


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_invalid_variance_is_rejected(bad):
    with pytest.raises(ValueError, match="variance"):
        MASC(variance=bad).fit(*_rng_data())


@pytest.mark.parametrize("probe_class", [MASC, VeLPIC])
def test_float16_memmap_and_tensor_inputs_give_the_same_predictions(probe_class, tmp_path, real):
    data = real.layers["fc1"]
    train16, test16 = data.train.astype(np.float16), data.test.astype(np.float16)
    np.save(tmp_path / "train.npy", train16)
    np.save(tmp_path / "test.npy", test16)
    mapped_train = np.load(tmp_path / "train.npy", mmap_mode="r")
    mapped_test = np.load(tmp_path / "test.npy", mmap_mode="r")
    from_memmap = probe_class().fit(mapped_train, real.noisy_labels).predict(mapped_test)
    from_tensor = probe_class().fit(torch.from_numpy(train16), torch.from_numpy(real.noisy_labels))
    np.testing.assert_array_equal(from_tensor.predict(torch.from_numpy(test16)), from_memmap)
    from_float64 = probe_class().fit(train16.astype(np.float64), real.noisy_labels).predict(test16.astype(np.float64))
    np.testing.assert_array_equal(from_float64, from_memmap)


def test_tensor_input_is_validated():
    masc = MASC().fit(torch.rand(20, 4), torch.randint(0, 2, (20,)))
    with pytest.raises(ValueError, match="features"):
        masc.predict(torch.rand(3, 5))
    with pytest.raises(ValueError, match="NaN"):
        MASC().fit(torch.full((4, 2), float("nan")), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="2D"):
        masc.predict(torch.rand(4))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("probe_class", [MASC, VeLPIC])
def test_cuda_tensors_are_computed_on_the_gpu_and_agree_with_cpu(probe_class, real):
    data = real.layers["fc4"]
    on_gpu = probe_class().fit(torch.from_numpy(data.train).cuda(), torch.from_numpy(real.noisy_labels).cuda())
    gpu_predictions = on_gpu.predict(torch.from_numpy(data.test).cuda())
    cpu_predictions = probe_class().fit(data.train, real.noisy_labels).predict(data.test)
    assert np.mean(gpu_predictions == cpu_predictions) >= 0.999


# --------------------------------------------------------------------------------------------------
# (f) scikit-learn conformance
# --------------------------------------------------------------------------------------------------


@parametrize_with_checks([MASC(), VeLPIC()], expected_failed_checks=float32_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_decision_function_follows_the_scikit_learn_convention():
    X, y = _rng_data(classes=2)
    masc = MASC().fit(X, y)
    margin = masc.decision_function(X)
    assert margin.shape == (len(X),)
    np.testing.assert_array_equal(masc.classes_[(margin > 0).astype(int)], masc.predict(X))
    X3, y3 = _rng_data(classes=3)
    assert VeLPIC().fit(X3, y3).decision_function(X3).shape == (len(X3), 3)
