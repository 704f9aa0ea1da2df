"""Cross-fitting: no example is ever scored by a probe fitted on it, and scores come back in input order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from label_issues_synthetic import noisy_blobs

from latentgen.label_issues import cross_fitted_scores
from latentgen.label_issues.layer import probe_factory

N_CLASSES = 3


class RecordingProbe:
    """Reads each example's index from feature column 0: which examples it was fitted on and scored."""

    def fit(self, X, y):
        self.fitted_rows = np.asarray(X[:, 0]).astype(np.int64)
        self.classes_ = np.unique(y)
        return self

    def predict_scores(self, X):
        self.scored_rows = np.asarray(X[:, 0]).astype(np.int64)
        scores = np.zeros((len(X), N_CLASSES))
        scores[:, 0] = self.scored_rows  # lets the test check that row i comes back as row i
        return scores


@pytest.fixture
def indexed_examples():
    rng = np.random.default_rng(1)
    n = 53
    labels = rng.integers(0, N_CLASSES, n)
    features = np.column_stack([np.arange(n), rng.normal(size=(n, 4))])
    return features, labels


def test_no_example_is_scored_by_a_probe_fitted_on_it(indexed_examples):
    features, labels = indexed_examples
    probes = []

    def make_probe():
        probes.append(RecordingProbe())
        return probes[-1]

    crossfit = cross_fitted_scores(features, labels, make_probe, folds=5, seed=3)
    assert len(probes) == 5
    for fold, probe in enumerate(probes):
        assert np.intersect1d(probe.fitted_rows, probe.scored_rows).size == 0
        assert np.array_equal(np.sort(probe.fitted_rows), crossfit.training_indices[fold])
        assert (crossfit.fold_of[probe.scored_rows] == fold).all()
        assert (crossfit.fold_of[probe.fitted_rows] != fold).all()
    every_scored = np.concatenate([probe.scored_rows for probe in probes])
    assert np.array_equal(np.sort(every_scored), np.arange(len(labels)))  # each example scored exactly once
    assert np.array_equal(crossfit.scores[:, 0], np.arange(len(labels)))  # in input order


def test_folds_are_stratified_by_given_label(indexed_examples):
    features, labels = indexed_examples
    crossfit = cross_fitted_scores(features, labels, RecordingProbe, folds=5, seed=0)
    for label in range(N_CLASSES):
        per_fold = np.bincount(crossfit.fold_of[labels == label], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1


def test_a_class_with_fewer_examples_than_folds_is_refused():
    labels = np.array([0] * 10 + [1] * 10 + [2] * 3)
    with pytest.raises(ValueError, match="class 2: 3"):
        cross_fitted_scores(np.zeros((23, 2)), labels, RecordingProbe, folds=5)


def test_a_class_code_without_examples_is_refused():
    labels = np.array([0] * 10 + [2] * 10)  # class 1 never occurs, so no probe could score it
    with pytest.raises(ValueError, match="class 1: 0"):
        cross_fitted_scores(np.zeros((20, 2)), labels, RecordingProbe, folds=5)


def test_a_probe_fitted_on_fewer_classes_is_refused(indexed_examples):
    features, labels = indexed_examples

    class ForgetfulProbe(RecordingProbe):
        def fit(self, X, y):
            super().fit(X, y)
            self.classes_ = self.classes_[:-1]
            return self

    with pytest.raises(ValueError, match="missing from its training part"):
        cross_fitted_scores(features, labels, ForgetfulProbe, folds=5)


def test_float16_and_tensor_features_give_the_numpy_scores():
    blobs = noisy_blobs(n=200)
    make_ncm = probe_factory("ncm")
    reference = cross_fitted_scores(blobs.features, blobs.given_labels, make_ncm, folds=4).scores
    as_tensor = cross_fitted_scores(torch.from_numpy(blobs.features), blobs.given_labels, make_ncm, folds=4).scores
    as_float16 = cross_fitted_scores(blobs.features.astype(np.float16), blobs.given_labels, make_ncm, folds=4).scores
    np.testing.assert_allclose(as_tensor, reference, atol=1e-6)
    np.testing.assert_allclose(as_float16, reference, atol=1e-2)


def test_a_confident_scikit_learn_model_gives_finite_scores():
    """A logistic regression on far-apart classes puts probabilities that round to 0: its log-probabilities are
    -inf there, its logits (the scores used) are finite, and their softmax is its probabilities."""
    from sklearn.linear_model import LogisticRegression

    from latentgen.label_issues import softmax_rows

    blobs = noisy_blobs(n=200, classes=3, separation=400.0, flip_rate=0.0)

    def make_model():
        return LogisticRegression(C=1e6, max_iter=1000)

    model = make_model().fit(blobs.features, blobs.given_labels)
    with np.errstate(divide="ignore"):
        assert np.isneginf(model.predict_log_proba(blobs.features)).any()
    crossfit = cross_fitted_scores(blobs.features, blobs.given_labels, make_model, folds=4)
    assert np.isfinite(crossfit.scores).all()
    held = np.flatnonzero(crossfit.fold_of == 0)
    refit = make_model().fit(
        blobs.features[crossfit.training_indices[0]], blobs.given_labels[crossfit.training_indices[0]]
    )
    np.testing.assert_allclose(
        softmax_rows(crossfit.scores[held]), refit.predict_proba(blobs.features[held]), atol=1e-9
    )
