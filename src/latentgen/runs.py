"""What one run trains and is scored on: the label table and the data it selects.

The label table of (dataset, seed) holds one row per sample the runs use -- the training subset and
the test subset -- with the true label and one corrupted-label column for *every* integer rate
``c0`` .. ``c100``.  Writing all 101 rates (uint8, a few MB) makes the table independent of which
rates a config asks for, so adding a corruption rate never rewrites it and never reruns existing
runs; the nested corruption makes every column consistent with every other.  Test rows are never
corrupted (their ``c*`` columns equal ``true``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentgen import datasets
from latentgen.corruption import corrupt_labels
from latentgen.fileio import parquet_metadata, read_parquet, write_parquet
from latentgen.training import TrainData

LABEL_RATES = range(0, 101)  # every rate the label table has a column for


def rate_column(rate: int) -> str:
    return f"c{int(rate)}"


def select_indices(labels: np.ndarray, subset: dict[str, Any] | None) -> np.ndarray:
    """All indices, or the subset the config asks for (``{per_class: N}`` or ``{size: N, seed: S}``)."""
    if not subset:
        return np.arange(labels.shape[0], dtype=np.int64)
    return datasets.subset_indices(labels, per_class=subset.get("per_class"), size=subset.get("size"),
                                   seed=subset.get("seed", 0))


def make_label_table(prepared: datasets.PreparedDataset, seed: int, train_subset: dict | None = None,
                     test_subset: dict | None = None) -> pd.DataFrame:
    train_index = select_indices(prepared.train_labels, train_subset)
    test_index = select_indices(prepared.test_labels, test_subset)
    true_train = np.asarray(prepared.train_labels)[train_index]
    true_test = np.asarray(prepared.test_labels)[test_index]
    columns: dict[str, Any] = {
        "split": ["train"] * len(train_index) + ["test"] * len(test_index),
        "index": np.concatenate([train_index, test_index]),
        "true": np.concatenate([true_train, true_test]).astype(np.int64),
    }
    label_dtype = np.uint8 if prepared.num_classes <= 256 else np.int16
    for rate in LABEL_RATES:
        noisy, _ = corrupt_labels(true_train, rate / 100.0, prepared.num_classes, seed)
        columns[rate_column(rate)] = np.concatenate([noisy, true_test]).astype(label_dtype)
    return pd.DataFrame(columns)


def write_label_table(prepared_dir: Path | str, out: Path | str, seed: int, train_subset: dict | None,
                      test_subset: dict | None) -> None:
    prepared = datasets.load(Path(prepared_dir), verify=True, mmap=True)
    table = make_label_table(prepared, seed, train_subset, test_subset)
    write_parquet(table, out, metadata={
        "dataset": prepared.meta["name"], "dataset_content_sha256": prepared.meta.get("content_sha256"),
        "seed": seed, "train_subset": train_subset, "test_subset": test_subset,
        "num_classes": prepared.num_classes, "n_train": int((table.split == "train").sum()),
        "n_test": int((table.split == "test").sum()),
    })


@dataclass
class RunData:
    """Images and labels of one run (subset applied), plus where they came from."""

    data: TrainData
    provenance: dict[str, Any]


def train_data_from_table(prepared: datasets.PreparedDataset, table: pd.DataFrame, rate: int) -> TrainData:
    """The images and labels a run at ``rate`` % trains and is scored on, from its label table."""
    train = table[table.split == "train"]
    test = table[table.split == "test"]
    # fancy indexing a memory map reads only the selected rows into memory
    return TrainData(
        train_images=np.asarray(prepared.train_images[train["index"].to_numpy()]),
        train_noisy=train[rate_column(rate)].to_numpy().astype(np.int64),
        train_true=train["true"].to_numpy(),
        test_images=np.asarray(prepared.test_images[test["index"].to_numpy()]),
        test_labels=test["true"].to_numpy(),
        num_classes=prepared.num_classes,
    )


def load_run_data(prepared_dir: Path | str, labels_path: Path | str, rate: int, verify: bool = True) -> RunData:
    """The training and test data of a run at corruption ``rate`` (integer percent)."""
    prepared = datasets.load(Path(prepared_dir), verify=verify, mmap=True)
    table = read_parquet(labels_path, what="label table")
    data = train_data_from_table(prepared, table, rate)
    provenance = {"labels": parquet_metadata(labels_path), "corruption": rate,
                  "fraction_labels_changed": float(np.mean(data.train_noisy != data.train_true))}
    return RunData(data, provenance)
