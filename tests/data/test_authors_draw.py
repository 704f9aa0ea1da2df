"""The authors' label draw (``label_draw: authors``, latentgen.data.labels.authors_corrupt_labels).

Their loaders (Dynamics_during_training_DNN ``MASC_during_training/CNN_code/mlp_mnist.py``, MASC_DNN
``MASC/cnn_create.py``) draw with numpy's legacy global generator: ``np.random.seed(42)``,
``mask = np.random.rand(N) <= c``, ``labels[mask] = np.random.choice(K, mask.sum())``; Tiny ImageNet with ``<``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from latentgen.config import ConfigError, check_config
from latentgen.data import datasets
from latentgen.data.labels import (
    authors_corrupt_labels,
    draw_labels,
    label_table_name,
    make_label_table,
    rate_column,
)

# The authors' draw on MNIST's 60,000 training labels at 80 %, label seed 42 (numpy's legacy generator):
# the first 20 corrupted labels, how many samples were marked and how many labels ended up wrong.
MNIST_80_FIRST_LABELS = [3, 0, 2, 3, 5, 2, 0, 3, 5, 1, 8, 5, 3, 5, 0, 3, 4, 7, 2, 8]
MNIST_80_MARKED = 48_061
MNIST_80_WRONG = 43_276  # 27.87 % of the labels stay right


def _authors_formula(labels: np.ndarray, c: float, num_classes: int, seed: int = 42) -> np.ndarray:
    """Their corrupt_labels, written out with numpy's global legacy generator (state saved and restored)."""
    saved = np.random.get_state()
    try:
        labels = np.array(labels, dtype=np.int64)
        np.random.seed(seed)
        mask = np.random.rand(len(labels)) <= c
        rnd_labels = np.random.choice(num_classes, mask.sum())
        labels[mask] = rnd_labels
        return labels
    finally:
        np.random.set_state(saved)


def test_the_authors_mnist_labels_at_80_percent(prepared_datasets):
    mnist = datasets.load(prepared_datasets / "mnist")
    true = np.asarray(mnist.train_labels).astype(np.int64)
    expected = _authors_formula(true, 0.8, 10)
    noisy, flipped = authors_corrupt_labels(true, 0.8, 10, seed=42)
    np.testing.assert_array_equal(noisy, expected)
    assert noisy[:20].tolist() == MNIST_80_FIRST_LABELS
    assert int(flipped.sum()) == MNIST_80_MARKED
    assert int((noisy != true).sum()) == MNIST_80_WRONG
    # the label table's 80 % column is that draw (rate 80 / 100.0 is the float of their literal 0.8)
    table = make_label_table(mnist, seed=42, draw="authors")
    train = table[table.split == "train"]
    np.testing.assert_array_equal(train[rate_column(80)].to_numpy(), expected)
    test = table[table.split == "test"]
    np.testing.assert_array_equal(test[rate_column(80)], test["true"])  # test labels are never corrupted


def test_the_authors_draw_at_every_rate_equals_their_formula():
    labels = np.random.default_rng(3).integers(0, 10, size=5_000)
    for rate in (0, 20, 40, 60, 80, 100):
        noisy, _ = authors_corrupt_labels(labels, rate / 100.0, 10, seed=42)
        np.testing.assert_array_equal(noisy, _authors_formula(labels, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0][rate // 20], 10))


def test_numpy_global_state_is_untouched():
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    authors_corrupt_labels(np.zeros(100, dtype=np.int64), 0.5, 10, seed=42)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_masks_nest_across_rates_but_new_labels_are_fresh():
    labels = np.random.default_rng(4).integers(0, 10, size=20_000)
    low, low_mask = authors_corrupt_labels(labels, 0.4, 10, seed=42)
    high, high_mask = authors_corrupt_labels(labels, 0.8, 10, seed=42)
    assert np.all(high_mask[low_mask])  # the same rand draws against a larger rate
    both = low_mask & high_mask
    # re-seeded per rate, the choice draw follows the mask: a sample corrupted at both gets an independent label
    agree = float(np.mean(low[both] == high[both]))
    assert 0.07 < agree < 0.13


def test_tiny_imagenet_compares_strictly():
    labels = np.zeros(50, dtype=np.int64)
    draws = np.random.RandomState(42).rand(50)
    rate = float(draws[3])  # a rate equal to one sample's draw: <= marks it, < does not
    _, loose = authors_corrupt_labels(labels, rate, 200, seed=42)
    _, strict = authors_corrupt_labels(labels, rate, 200, seed=42, strict=True)
    assert loose[3] and not strict[3]
    np.testing.assert_array_equal(loose & (draws != rate), strict)
    _, tiny = draw_labels(labels, rate, 200, 42, draw="authors", dataset="tiny_imagenet")
    _, mnist = draw_labels(labels, rate, 200, 42, draw="authors", dataset="mnist")
    np.testing.assert_array_equal(tiny, strict)
    np.testing.assert_array_equal(mnist, loose)
    assert not authors_corrupt_labels(labels, 0.0, 200, 42, strict=True)[1].any()


def test_a_subset_takes_its_rows_of_the_full_draw(random_cifar10):
    subset = {"per_class": 4}
    table = make_label_table(random_cifar10, seed=42, train_subset=subset, draw="authors")
    train = table[table.split == "train"]
    full = np.asarray(random_cifar10.train_labels)
    for rate in (20, 80):
        drawn, _ = authors_corrupt_labels(full, rate / 100.0, 10, seed=42)
        np.testing.assert_array_equal(train[rate_column(rate)].to_numpy(), drawn[train["index"].to_numpy()])
    # the held-out slice's draw does not depend on the label draw
    nested = make_label_table(random_cifar10, seed=42, train_subset=subset)
    np.testing.assert_array_equal(table["holdout_draw"].to_numpy(), nested["holdout_draw"].to_numpy())


def test_table_names_and_unknown_draws():
    assert label_table_name(42) == "s42.parquet"
    assert label_table_name(42, "authors") == "s42-authors.parquet"
    with pytest.raises(ValueError, match="label_draw"):
        label_table_name(42, "numpy")
    with pytest.raises(ValueError, match="label_draw"):
        draw_labels(np.zeros(3, dtype=np.int64), 0.5, 10, 0, draw="numpy")


def test_the_config_refuses_an_unknown_draw_naming_the_key():
    with open(Path(__file__).resolve().parents[2] / "config" / "fidelity.yaml") as handle:
        config = yaml.safe_load(handle)
    assert check_config(copy.deepcopy(config))["label_draw"] == "authors"
    config["label_draw"] = "numpy"
    with pytest.raises(ConfigError, match="label_draw"):
        check_config(config)
