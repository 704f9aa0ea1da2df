"""What one run trains and is scored on: the images and labels its label table (``latentgen.data.labels``) selects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentgen.data import datasets
from latentgen.common.fileio import parquet_metadata, read_parquet
from latentgen.data.labels import HOLDOUT_DRAW, rate_column
from latentgen.data.arrays import TrainData


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
        holdout_draw=train[HOLDOUT_DRAW].to_numpy(),
    )


def load_run_data(prepared_dir: Path | str, labels_path: Path | str, rate: int, verify: bool = True) -> RunData:
    """The training and test data of a run at corruption ``rate`` (integer percent)."""
    prepared = datasets.load(Path(prepared_dir), verify=verify, mmap=True)
    table = read_parquet(labels_path, what="label table")
    data = train_data_from_table(prepared, table, rate)
    provenance = {
        "labels": parquet_metadata(labels_path),
        "corruption": rate,
        "fraction_labels_changed": float(np.mean(data.train_noisy != data.train_true)),
    }
    return RunData(data, provenance)


def train_index(labels: Path | str) -> np.ndarray:
    """The dataset index (the label table's ``index``) of each training example, in the run's order."""
    table = read_parquet(labels, what="label table")
    return table.loc[table["split"] == "train", "index"].to_numpy().astype(np.int64)
