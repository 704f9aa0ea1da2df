"""Choosing without the test set: the stratified held-out slice, the noisy-label ranking, the `selected` rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from latentgen.scoring.activations import extract_activations
from latentgen.data.labels import corrupt_labels
from latentgen.scoring.selection import (
    choose,
    expected_noisy_accuracy,
    is_candidate,
    pack_correct,
    parse_choice,
    selected_rows,
    transfer_layer,
)
from latentgen.data.holdout import stratified_holdout
from latentgen.training.models import build
from latentgen.data.arrays import TrainData
# The slice
# --------------------------------------------------------------------------------------------------------------


def test_slice_and_fit_part_the_training_set():
    labels = np.random.default_rng(0).integers(0, 10, size=5000)
    split = stratified_holdout(labels, 0.1, seed=3)
    assert np.intersect1d(split.fit, split.held_out).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([split.fit, split.held_out])), np.arange(5000))
    assert split.fraction == pytest.approx(0.1, abs=0.002)


def test_slice_is_stratified_by_the_corrupted_labels():
    labels = np.repeat(np.arange(4), [1000, 500, 200, 30])
    split = stratified_holdout(labels, 0.1, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[split.held_out]), [100, 50, 20, 3])


def test_every_class_keeps_samples_to_fit_on():
    labels = np.array([0, 1, 1, 2, 2, 2])  # classes of 1, 2 and 3 samples
    split = stratified_holdout(labels, 0.45, seed=0)
    assert set(labels[split.fit]) == {0, 1, 2}


def test_slice_is_a_function_of_labels_fraction_and_seed():
    labels = np.random.default_rng(1).integers(0, 10, size=1000)
    first, again = stratified_holdout(labels, 0.1, 7), stratified_holdout(labels, 0.1, 7)
    np.testing.assert_array_equal(first.held_out, again.held_out)
    assert not np.array_equal(first.held_out, stratified_holdout(labels, 0.1, 8).held_out)


def test_nothing_held_out_at_fraction_zero():
    split = stratified_holdout(np.arange(50) % 5, 0.0, seed=0)
    assert split.held_out.size == 0 and split.fit.size == 50


@pytest.mark.parametrize("fraction", [-0.1, 0.5, 0.9])
def test_fractions_outside_the_range_are_refused(fraction):
    with pytest.raises(ValueError, match=r"\[0, 0.5\)"):
        stratified_holdout(np.arange(10) % 2, fraction, seed=0)


# --------------------------------------------------------------------------------------------------------------
# Noisy labels rank classifiers as clean labels would
# --------------------------------------------------------------------------------------------------------------


def _classifier(true_labels: np.ndarray, accuracy: float, num_classes: int, rng) -> np.ndarray:
    """Predictions right with probability ``accuracy``, otherwise a uniformly drawn wrong class."""
    right = rng.random(true_labels.size) < accuracy
    wrong = (true_labels + rng.integers(1, num_classes, size=true_labels.size)) % num_classes
    return np.where(right, true_labels, wrong)


@pytest.mark.parametrize("corruption", [0.2, 0.5, 0.8, 0.95])
def test_noisy_accuracy_is_the_affine_map_of_true_accuracy_and_keeps_the_ranking(corruption):
    """Simulated: the repository's own corruption (a label re-drawn from all K classes with probability c),
    classifiers of known true accuracy.  Their agreement with the corrupted labels is (1 - c)·a + c/K within
    sampling error, so ranking them on noisy labels ranks them by true accuracy."""
    num_classes, n = 10, 200_000
    rng = np.random.default_rng(0)
    true_labels = rng.integers(0, num_classes, size=n)
    noisy, _ = corrupt_labels(true_labels, corruption, num_classes, seed=1)
    accuracies = [0.30, 0.45, 0.60, 0.75, 0.90]
    noisy_accuracies = []
    for accuracy in accuracies:
        predictions = _classifier(true_labels, accuracy, num_classes, rng)
        measured = float(np.mean(predictions == noisy))
        expected = float(expected_noisy_accuracy(np.mean(predictions == true_labels), corruption, num_classes))
        assert measured == pytest.approx(expected, abs=4 * np.sqrt(0.25 / n)), accuracy
        noisy_accuracies.append(measured)
    assert list(np.argsort(noisy_accuracies)) == list(range(len(accuracies)))


def test_the_map_is_increasing_below_full_corruption_and_flat_at_it():
    a = np.array([0.2, 0.5, 0.9])
    assert np.all(np.diff(expected_noisy_accuracy(a, 0.8, 10)) > 0)
    np.testing.assert_allclose(expected_noisy_accuracy(a, 1.0, 10), 0.1)  # at 100 % nothing can be ranked


# --------------------------------------------------------------------------------------------------------------
# The choice
# --------------------------------------------------------------------------------------------------------------


N_HELD_OUT = 1000


def _row(probe: str, layer: str, split: str, accuracy: float) -> dict:
    """A score row right on round(accuracy · n) samples drawn at random (seeded by the candidate): probes on
    different layers disagree on many samples, so a paired comparison has that noise to resolve."""
    seed = sum(map(ord, probe + layer))
    right = np.random.default_rng(seed).permutation(np.arange(N_HELD_OUT) < round(accuracy * N_HELD_OUT))
    return {
        "model": "mlp",
        "probe": probe,
        "layer": layer,
        "split": split,
        "accuracy": float(right.mean()),
        "n_samples": N_HELD_OUT,
        "correct": pack_correct(right),
    }


def _scores(holdout: dict[tuple[str, str], float], test: dict[tuple[str, str], float]) -> pd.DataFrame:
    rows = [_row(p, layer, "holdout_corrupted", a) for (p, layer), a in holdout.items()]
    rows += [_row(p, layer, "test", a) for (p, layer), a in test.items()]
    return pd.DataFrame(rows)


def test_choice_reads_the_held_out_slice_and_never_the_test_rows():
    holdout = {
        ("masc", "fc1"): 0.30,
        ("velpic", "fc2"): 0.35,
        ("model", "output"): 0.99,
        ("masc_true", "fc2"): 0.9,
        ("transfer", "fc2"): 0.35,
    }
    test = {key: 0.5 for key in holdout} | {("masc", "fc1"): 0.99}
    chosen = selected_rows(_scores(holdout, test))
    assert set(chosen.layer) == {"velpic:fc2"} and set(chosen.probe) == {"selected"}
    assert chosen.loc[chosen.split == "test", "accuracy"].item() == 0.5  # the chosen one's, not the best test
    changed = selected_rows(_scores(holdout, {key: 0.0 for key in test}))
    assert set(changed.layer) == {"velpic:fc2"}


def test_a_tie_goes_to_the_earlier_layer():
    scores = _scores({("masc", "fc2"): 0.4, ("velpic", "fc1"): 0.4}, {})
    assert choose(scores)["layer"] == "fc1"


def test_the_one_standard_error_rule_does_not_chase_noise():
    """A later layer 0.3 points ahead on 1,000 held-out samples is within one paired standard error of the best: the
    earlier layer is chosen.  10 points ahead, the better one is."""
    close = _scores({("velpic", "fc1"): 0.400, ("velpic", "fc4"): 0.403}, {})
    assert choose(close)["layer"] == "fc1"
    apart = _scores({("velpic", "fc1"): 0.400, ("velpic", "fc4"): 0.500}, {})
    assert choose(apart)["layer"] == "fc4"


def test_at_one_layer_the_simpler_probe_wins_a_tie():
    scores = _scores({("logreg", "fc2"): 0.401, ("velpic", "fc2"): 0.400}, {})
    assert choose(scores)["probe"] == "velpic"


def test_nothing_is_selected_without_a_slice():
    assert selected_rows(_scores({}, {("velpic", "fc1"): 0.5})).empty


def test_candidates_are_the_probes_fitted_on_corrupted_labels():
    assert is_candidate("masc") and is_candidate("velpic") and is_candidate("logreg")
    assert not any(map(is_candidate, ["model", "transfer", "transfer_bias", "selected", "masc_true"]))
    assert parse_choice("velpic:fc3") == ("velpic", "fc3")


# --------------------------------------------------------------------------------------------------------------
# Scoring with a slice
# --------------------------------------------------------------------------------------------------------------


class RecordingProbe:
    """Remembers what it was fitted on; predicts class 0."""

    resubstitutes_training = True

    def fit(self, X, y):
        self.rows_seen = np.asarray(X)[:, 0].astype(int)
        self.labels_seen = np.asarray(y)
        return self

    def predict(self, X):
        return np.zeros(len(X), dtype=np.int64)


def _data(n_train: int = 300, n_test: int = 100, seed: int = 0) -> TrainData:
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 10, size=n_train)
    noisy, _ = corrupt_labels(true, 0.5, 10, seed)
    images = rng.integers(0, 256, size=(n_train + n_test, 1, 28, 28), dtype=np.uint8)
    return TrainData(images[:n_train], noisy, true, images[n_train:], rng.integers(0, 10, size=n_test), 10)


def test_probes_never_see_the_held_out_slice(monkeypatch):
    from latentgen.scoring import checkpoint as scoring
    from latentgen.probes.family import ProbeSpec

    monkeypatch.setattr(scoring, "build_probe", lambda name, variance: (RecordingProbe(), ProbeSpec(None)))
    data = _data()
    split = stratified_holdout(data.train_noisy, 0.1, seed=0)
    identity_features = torch.arange(300, dtype=torch.float32).unsqueeze(1)  # row i holds i
    probe, correct, _, _ = scoring.fit_and_score(
        "recording", 0.99, identity_features, identity_features[:100], data, split
    )
    accuracies = {name: right.mean() for name, right in correct.items()}
    np.testing.assert_array_equal(np.sort(probe.rows_seen), split.fit)
    assert np.intersect1d(probe.rows_seen, split.held_out).size == 0
    np.testing.assert_array_equal(probe.labels_seen, data.train_noisy[probe.rows_seen])
    assert accuracies["holdout_corrupted"] == np.mean(data.train_noisy[split.held_out] == 0)
    assert accuracies["train_corrupted"] == np.mean(data.train_noisy[split.fit] == 0)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """An untrained MLP's checkpoint scored with 10 % held out (float32 activations: transfer = VeLPIC)."""
    from latentgen.scoring.checkpoint import score_checkpoint

    tmp = tmp_path_factory.mktemp("scored")
    data = _data()
    torch.manual_seed(0)
    model = build("mlp", data.input_shape, 10)
    torch.save(model.state_dict(), tmp / "epoch_0000.pt")
    extract_activations(
        model, data.train_images, data.test_images, tmp / "activations", dtype="float32", batch_size=100
    )
    identity = {"model": "mlp", "dataset": "mnist", "pair": "mlp-mnist", "corruption": 50, "seed": 0, "epoch": 0}
    split = stratified_holdout(data.train_noisy, 0.1, seed=0)
    scores = score_checkpoint(
        tmp / "epoch_0000.pt", tmp / "activations", data, "mlp", 0.99, identity, batch_size=100, split=split
    )
    return scores, data


def test_scores_hold_the_slice_splits_and_one_selected_choice(scored):
    scores, _ = scored
    assert set(scores.split) == {"train_corrupted", "train_true", "test", "holdout_corrupted", "holdout_true"}
    selected = scores[scores.probe == "selected"]
    assert len(selected) == 5 and selected.layer.nunique() == 1
    probe, layer = parse_choice(selected.layer.iloc[0])
    assert probe in {"masc", "velpic", "logreg", "ncm", "knn", "lda"}  # a candidate, chosen by the one-SE rule
    chosen = scores[(scores.probe == probe) & (scores.layer == layer)].set_index("split").accuracy
    pd.testing.assert_series_equal(selected.set_index("split").accuracy, chosen)


def test_transfer_is_scored_on_every_layer_and_equals_velpic(scored):
    scores, _ = scored
    keys = ["layer", "split"]
    transfer = scores[scores.probe == "transfer"].set_index(keys).accuracy
    velpic = scores[scores.probe == "velpic"].set_index(keys).accuracy
    assert set(scores[scores.probe == "transfer"].layer) == {"fc1", "fc2", "fc3", "fc4"}
    pd.testing.assert_series_equal(transfer.sort_index(), velpic.sort_index(), check_names=False)
    assert set(scores[scores.probe == "transfer_bias"].layer) == {"fc4"}


def test_train_splits_cover_the_fitted_samples_only(scored):
    scores, data = scored
    split = stratified_holdout(data.train_noisy, 0.1, seed=0)  # the run's seed: the slice scoring drew
    model = scores[scores.probe == "model"].set_index("split").accuracy
    assert 25 <= len(split.held_out) <= 35
    for name, samples in (("train_corrupted", split.fit), ("holdout_corrupted", split.held_out)):
        correct = model[name] * len(samples)  # a whole number of samples only over the right sample count
        assert correct == pytest.approx(round(correct), abs=1e-9), name


def test_the_repaired_layer_is_velpics_held_out_choice_else_the_last_layer():
    """``latentgen repair`` and the retrained-on-clean comparison transfer this layer: VeLPIC's one-SE choice on
    the slice (a better MASC layer is no candidate: its decision cannot be written into a head)."""
    n = 200
    right = np.arange(n) < 150  # 75 % right
    rows = pd.DataFrame(
        [
            {
                "probe": probe,
                "layer": layer,
                "split": "holdout_corrupted",
                "n_samples": n,
                "accuracy": acc,
                "correct": pack_correct(np.arange(n) < int(acc * n)),
            }  # fmt: skip
            for probe, layer, acc in [("velpic", "fc1", 0.4), ("velpic", "fc2", 0.75), ("masc", "fc1", 0.95)]
        ]
        + [
            {
                "probe": "velpic",
                "layer": "fc1",
                "split": "test",
                "n_samples": n,
                "accuracy": 0.99,
                "correct": pack_correct(right),
            }
        ]  # fmt: skip
    )
    assert transfer_layer(rows, ["fc1", "fc2", "fc3"]) == ("fc2", True)
    assert transfer_layer(rows[rows.split == "test"], ["fc1", "fc2", "fc3"]) == ("fc3", False)
