"""What a run trains and is scored on (latentgen.data.runs): the data its label table selects."""

from __future__ import annotations


import numpy as np

from latentgen.data import datasets
from latentgen.common.fileio import parquet_metadata, read_parquet
from latentgen.data.labels import write_label_table
from latentgen.data.runs import load_run_data, train_data_from_table

from conftest import RANDOM_CIFAR10_CLASSES as CLASSES, RANDOM_CIFAR10_TEST as N_TEST


def test_a_run_reads_its_rate_from_the_written_table(random_cifar10_dir, tmp_path):
    prepared_dir, prepared = random_cifar10_dir, datasets.load(random_cifar10_dir)
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
