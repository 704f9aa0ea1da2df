"""What a run trains and is scored on (latentgen.runs): the label table of every rate, and the data it selects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latentgen import datasets
from latentgen.corruption import corrupt_labels
from latentgen.fileio import parquet_metadata, read_parquet
from latentgen.runs import (LABEL_RATES, load_run_data, make_label_table, rate_column, select_indices,
                            train_data_from_table, write_label_table)

N_TRAIN, N_TEST, CLASSES = 400, 100, 10


@pytest.fixture(scope="module")
def prepared_dir(tmp_path_factory) -> Path:
    """A prepared 10-class dataset of random 3x32x32 images (CIFAR-10's form, whose content is not pinned)."""
    rng = np.random.default_rng(0)
    raw = datasets.RawDataset(
        train_images=rng.integers(0, 256, size=(N_TRAIN, 3, 32, 32), dtype=np.uint8),
        train_labels=np.arange(N_TRAIN) % CLASSES,  # 40 per class, in a known order
        test_images=rng.integers(0, 256, size=(N_TEST, 3, 32, 32), dtype=np.uint8),
        test_labels=rng.integers(0, CLASSES, size=N_TEST),
        classes=list(datasets.CIFAR10_CLASSES),
    )
    out = tmp_path_factory.mktemp("prepared") / "cifar10"
    datasets.write_prepared(out, datasets.dataset_info("cifar10"), raw, digest="not pinned")
    return out


@pytest.fixture(scope="module")
def prepared(prepared_dir) -> datasets.PreparedDataset:
    return datasets.load(prepared_dir)


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


def test_the_label_table_holds_every_rate_for_the_subset(prepared):
    table = make_label_table(prepared, seed=5, train_subset={"per_class": 4}, test_subset={"size": 30, "seed": 1})
    assert list(table.columns) == ["split", "index", "true", *(f"c{rate}" for rate in range(101))]
    train, test = table[table.split == "train"], table[table.split == "test"]
    assert len(train) == 40 and len(test) == 30
    # the index points into the prepared dataset, whose labels the table's true column repeats
    np.testing.assert_array_equal(train["index"], select_indices(prepared.train_labels, {"per_class": 4}))
    np.testing.assert_array_equal(train["true"], prepared.train_labels[train["index"]])
    np.testing.assert_array_equal(test["true"], prepared.test_labels[test["index"]])
    assert all(table[rate_column(rate)].dtype == np.uint8 for rate in LABEL_RATES)
    # each column is corrupt_labels at its rate on the training rows, with the table's seed; test rows never
    for rate in (0, 37, 80, 100):
        expected, _ = corrupt_labels(train["true"].to_numpy(), rate / 100, CLASSES, 5)
        np.testing.assert_array_equal(train[rate_column(rate)], expected)
        np.testing.assert_array_equal(test[rate_column(rate)], test["true"])
    np.testing.assert_array_equal(train["c0"], train["true"])


def test_the_corrupted_sets_are_nested_across_rates(prepared):
    table = make_label_table(prepared, seed=0)
    train = table[table.split == "train"]
    changed = {rate: train[rate_column(rate)].to_numpy() != train["true"].to_numpy() for rate in LABEL_RATES}
    for low, high in zip(LABEL_RATES, LABEL_RATES[1:]):
        assert not np.any(changed[low] & ~changed[high]), f"a label changed at {low} % is kept at {high} %"
    both = changed[30] & changed[90]
    np.testing.assert_array_equal(train["c30"][both], train["c90"][both])  # the same new label at both rates


def test_a_run_reads_its_rate_from_the_written_table(prepared_dir, prepared, tmp_path):
    labels = tmp_path / "labels.parquet"
    write_label_table(prepared_dir, labels, seed=2, train_subset={"per_class": 10}, test_subset=None)
    meta = parquet_metadata(labels)
    assert meta["dataset"] == "cifar10" and meta["seed"] == 2 and meta["train_subset"] == {"per_class": 10}
    assert meta["n_train"] == 100 and meta["n_test"] == N_TEST and meta["num_classes"] == CLASSES
    run = load_run_data(prepared_dir, labels, 60)
    table = read_parquet(labels)
    train = table[table.split == "train"]
    np.testing.assert_array_equal(run.data.train_images, prepared.train_images[train["index"]])
    np.testing.assert_array_equal(run.data.train_noisy, train["c60"])
    np.testing.assert_array_equal(run.data.train_true, train["true"])
    np.testing.assert_array_equal(run.data.test_images, prepared.test_images)
    np.testing.assert_array_equal(run.data.test_labels, prepared.test_labels)
    assert run.data.train_noisy.dtype == np.int64 and run.data.num_classes == CLASSES
    assert run.provenance["corruption"] == 60 and run.provenance["labels"] == meta
    changed = float(np.mean(run.data.train_noisy != run.data.train_true))
    assert run.provenance["fraction_labels_changed"] == changed and 0.4 < changed < 0.7  # 60 % x (1 - 1/10)
    at_zero = train_data_from_table(prepared, table, 0)
    np.testing.assert_array_equal(at_zero.train_noisy, at_zero.train_true)
