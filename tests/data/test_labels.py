"""Labels (latentgen.data.labels): corruption, training subsets and the label table of every rate."""

from __future__ import annotations

import numpy as np
import pytest

from latentgen.data import datasets
from latentgen.data.labels import (
    LABEL_RATES,
    corrupt_labels,
    make_label_table,
    rate_column,
    select_indices,
    subset_indices,
)

from conftest import RANDOM_CIFAR10_CLASSES as CLASSES

# --------------------------------------------------------------------------------------------------
# Corruption
# --------------------------------------------------------------------------------------------------

LABELS = np.random.default_rng(1).integers(0, 10, size=50_000)


def test_rate_zero_is_identity():
    noisy, mask = corrupt_labels(LABELS, 0.0, 10, seed=3)
    assert np.array_equal(noisy, LABELS)
    assert not mask.any()


def test_rate_one_redraws_everything_uniformly():
    noisy, mask = corrupt_labels(LABELS, 1.0, 10, seed=3)
    assert mask.all()
    counts = np.bincount(noisy, minlength=10) / noisy.size
    assert np.allclose(counts, 0.1, atol=0.01)
    # uniform over all classes, so about 1/K keep their label
    assert abs((noisy == LABELS).mean() - 0.1) < 0.01


@pytest.mark.parametrize("rate", [0.2, 0.4, 0.6, 0.8])
def test_fraction_changed_matches_rate(rate):
    noisy, mask = corrupt_labels(LABELS, rate, 10, seed=0)
    assert abs(mask.mean() - rate) < 0.01
    assert abs((noisy != LABELS).mean() - rate * (1 - 1 / 10)) < 0.01


def test_nested_across_rates_and_same_replacement():
    masks, noisy = {}, {}
    for rate in (0.2, 0.4, 0.6, 0.8, 1.0):
        noisy[rate], masks[rate] = corrupt_labels(LABELS, rate, 10, seed=7)
    rates = sorted(masks)
    for low, high in zip(rates, rates[1:]):
        assert np.all(masks[high][masks[low]]), f"{low} not nested in {high}"
        both = masks[low]
        assert np.array_equal(noisy[low][both], noisy[high][both])


def test_deterministic_and_pure():
    copy = LABELS.copy()
    a = corrupt_labels(LABELS, 0.4, 10, seed=5)
    b = corrupt_labels(LABELS, 0.4, 10, seed=5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(LABELS, copy)
    c = corrupt_labels(LABELS, 0.4, 10, seed=6)
    assert not np.array_equal(a[1], c[1])


def test_invalid_input_is_refused():
    with pytest.raises(ValueError, match="rate"):
        corrupt_labels(LABELS, 1.5, 10, 0)
    with pytest.raises(ValueError, match="0..9"):
        corrupt_labels(np.array([0, 10]), 0.5, 10, 0)


# --------------------------------------------------------------------------------------------------
# Subsets
# --------------------------------------------------------------------------------------------------


def test_subset_per_class_takes_the_first_of_each_class() -> None:
    labels = np.array([2, 0, 1, 0, 2, 1, 0, 2, 1, 1])
    indices = subset_indices(labels, per_class=2)
    assert indices.dtype == np.int64 and indices.tolist() == [0, 1, 2, 3, 4, 5]
    assert np.bincount(labels[indices]).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="fewer than per_class=4"):
        subset_indices(labels, per_class=4)


def test_subset_per_class_on_real_mnist(prepared_datasets) -> None:
    real_mnist = datasets.load(prepared_datasets / "mnist")
    indices = subset_indices(real_mnist.train_labels, per_class=100)
    assert np.bincount(real_mnist.train_labels[indices]).tolist() == [100] * 10
    for c in range(10):
        first = np.flatnonzero(real_mnist.train_labels == c)[:100]
        np.testing.assert_array_equal(np.intersect1d(indices, first), first)


def test_subset_size_is_seeded() -> None:
    labels = np.zeros(1000, dtype=np.int64)
    a = subset_indices(labels, size=100, seed=3)
    assert a.dtype == np.int64 and len(np.unique(a)) == 100 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, subset_indices(labels, size=100, seed=3))
    assert not np.array_equal(a, subset_indices(labels, size=100, seed=4))
    assert subset_indices(labels, size=1000).tolist() == list(range(1000))
    with pytest.raises(ValueError, match="exactly one"):
        subset_indices(labels, per_class=1, size=10)
    with pytest.raises(ValueError, match="exactly one"):
        subset_indices(labels)
    with pytest.raises(ValueError, match="size must be in"):
        subset_indices(labels, size=1001)


# --------------------------------------------------------------------------------------------------
# The label table
# --------------------------------------------------------------------------------------------------


def test_rate_columns_are_named_by_integer_percent():
    assert rate_column(40) == "c40" and rate_column(40.0) == "c40" and rate_column(0) == "c0"


def test_select_indices_is_everything_or_the_configured_subset():
    labels = np.arange(50) % 5
    np.testing.assert_array_equal(select_indices(labels, None), np.arange(50))
    np.testing.assert_array_equal(select_indices(labels, {}), np.arange(50))
    np.testing.assert_array_equal(select_indices(labels, {"per_class": 2}), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    drawn = select_indices(labels, {"size": 7, "seed": 3})
    assert len(drawn) == 7 and np.all(np.diff(drawn) > 0)
    np.testing.assert_array_equal(drawn, select_indices(labels, {"size": 7, "seed": 3}))
    assert not np.array_equal(drawn, select_indices(labels, {"size": 7, "seed": 4}))
    np.testing.assert_array_equal(select_indices(labels, {"size": 7}), select_indices(labels, {"size": 7, "seed": 0}))


def test_the_label_table_holds_every_rate_for_the_subset(random_cifar10):
    table = make_label_table(random_cifar10, seed=5, train_subset={"per_class": 4}, test_subset={"size": 30, "seed": 1})
    assert list(table.columns) == ["split", "index", "true", *(f"c{rate}" for rate in range(101)), "holdout_draw"]
    # the held-out slice's draw: one uniform number per training row, none for test rows (never held out)
    train = table["split"] == "train"
    assert table.loc[train, "holdout_draw"].between(0, 1).all() and table.loc[~train, "holdout_draw"].isna().all()
    train, test = table[table.split == "train"], table[table.split == "test"]
    assert len(train) == 40 and len(test) == 30
    # the index points into the prepared dataset, whose labels the table's true column repeats
    np.testing.assert_array_equal(train["index"], select_indices(random_cifar10.train_labels, {"per_class": 4}))
    np.testing.assert_array_equal(train["true"], random_cifar10.train_labels[train["index"]])
    np.testing.assert_array_equal(test["true"], random_cifar10.test_labels[test["index"]])
    assert all(table[rate_column(rate)].dtype == np.uint8 for rate in LABEL_RATES)
    # each column is corrupt_labels at its rate on the training rows, with the table's seed; test rows never
    for rate in (0, 37, 80, 100):
        expected, _ = corrupt_labels(train["true"].to_numpy(), rate / 100, CLASSES, 5)
        np.testing.assert_array_equal(train[rate_column(rate)], expected)
        np.testing.assert_array_equal(test[rate_column(rate)], test["true"])
    np.testing.assert_array_equal(train["c0"], train["true"])


def test_the_corrupted_sets_are_nested_across_rates(random_cifar10):
    table = make_label_table(random_cifar10, seed=0)
    train = table[table.split == "train"]
    changed = {rate: train[rate_column(rate)].to_numpy() != train["true"].to_numpy() for rate in LABEL_RATES}
    for low, high in zip(LABEL_RATES, LABEL_RATES[1:]):
        assert not np.any(changed[low] & ~changed[high]), f"a label changed at {low} % is kept at {high} %"
    both = changed[30] & changed[90]
    np.testing.assert_array_equal(train["c30"][both], train["c90"][both])  # the same new label at both rates
