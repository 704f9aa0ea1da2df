"""The clean variant's training set: the run's fitted examples minus those the truth-free choice flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentgen.data.cleaning import cleaned_split, flags_to_exclude, index_digest
from latentgen.data.holdout import HoldoutSplit


def _write_tables(tmp_path, chosen_layer: str = "fc2"):
    """Flags of two methods on two layers at the peak (epoch 5) and the final checkpoint (epoch 10)."""
    index = np.array([10, 11, 12, 13, 14, 15])
    rows = []
    for epoch in (5, 10):
        for layer in ("fc1", "fc2"):
            for probe in ("velpic", "ncm"):
                chosen = {(10, "fc2", "velpic"): [11, 14], (10, "fc1", "velpic"): [10]}
                flagged = chosen.get((epoch, layer, probe), [15])
                rows += [
                    {"index": i, "epoch": epoch, "layer": layer, "probe": probe, "is_label_issue": i in flagged}
                    for i in index
                ]
    metrics = pd.DataFrame(
        [
            {"epoch": 5, "checkpoint": "peak", "layer": "fc1", "method": "velpic", "is_choice": True, "choice": "r"},
            {
                "epoch": 10,
                "checkpoint": "final",
                "layer": "fc1",
                "method": "velpic",
                "is_choice": chosen_layer == "fc1",
                "choice": "rule",
            },  # fmt: skip
            {
                "epoch": 10,
                "checkpoint": "final",
                "layer": "fc2",
                "method": "velpic",
                "is_choice": chosen_layer == "fc2",
                "choice": "rule",
            },  # fmt: skip
        ]
    )
    pd.DataFrame(rows).to_parquet(tmp_path / "flags.parquet")
    metrics.to_parquet(tmp_path / "metrics.parquet")
    return tmp_path / "flags.parquet", tmp_path / "metrics.parquet"


def test_the_flags_of_the_final_checkpoints_truth_free_choice_are_excluded(tmp_path):
    flagged = flags_to_exclude(*_write_tables(tmp_path))
    assert (flagged.epoch, flagged.layer, flagged.method) == (10, "fc2", "velpic")  # not the peak's choice
    assert flagged.index.tolist() == [11, 14]
    assert flagged.record()["n"] == 2 and flagged.record()["indices_sha256"] == index_digest(np.array([14, 11]))
    other = flags_to_exclude(*_write_tables(tmp_path, chosen_layer="fc1"))
    assert other.index.tolist() == [10] and other.record()["indices_sha256"] != flagged.record()["indices_sha256"]


def test_no_choice_at_the_final_checkpoint_is_an_error_naming_the_file(tmp_path):
    flags, metrics = _write_tables(tmp_path, chosen_layer="none")
    with pytest.raises(ValueError, match="metrics.parquet: no truth-free choice"):
        flags_to_exclude(flags, metrics)


def test_the_cleaned_split_never_fits_a_flagged_example_and_keeps_the_held_out_slice(tmp_path):
    flagged = flags_to_exclude(*_write_tables(tmp_path))
    # training positions 0..5 hold dataset indices 15, 14, ..., 10 (a run's order need not be the dataset's)
    train_index = np.array([15, 14, 13, 12, 11, 10])
    split = HoldoutSplit(fit=np.array([0, 1, 3, 4, 5]), held_out=np.array([2]))
    cleaned = cleaned_split(split, train_index, flagged)
    assert not set(train_index[cleaned.fit]) & set(flagged.index)  # asserted on the dataset's indices
    assert cleaned.fit.tolist() == [0, 3, 5]  # positions 1 (index 14) and 4 (index 11) removed
    assert cleaned.held_out.tolist() == [2]
    assert cleaned.record()["indices_sha256"] == split.record()["indices_sha256"]  # scoring's check passes
