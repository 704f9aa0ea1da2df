"""cleanlab gets out-of-sample probabilities of shape (n, K), rows summing to 1, row i for example i."""

from __future__ import annotations

import numpy as np
import pytest
from label_issues_synthetic import noisy_blobs

from latentgen.label_issues import ISSUE_COLUMNS, label_issue_table, score_layer
from latentgen.label_issues import flags as flags_module


@pytest.fixture
def cleanlab_calls(monkeypatch):
    """Every call of cleanlab's find_label_issues made through the flags module, arguments copied."""
    calls = []
    real = flags_module.cleanlab_filter.find_label_issues

    def spy(labels, pred_probs, **kwargs):
        calls.append((np.array(labels), np.array(pred_probs), kwargs))
        return real(labels, pred_probs, **kwargs)

    monkeypatch.setattr(flags_module.cleanlab_filter, "find_label_issues", spy)
    return calls


@pytest.mark.parametrize("probe_name", ["velpic", "ncm"])
def test_cleanlab_sees_out_of_sample_rows_in_input_order(cleanlab_calls, probe_name):
    # Far-apart blobs: every out-of-sample probe predicts each row's true class, flipped label or not.
    blobs = noisy_blobs(n=300, classes=4, separation=12.0, flip_rate=0.1, seed=2)
    dataset_index = 5000 + np.arange(300)[::-1]
    table = score_layer(blobs.features, blobs.given_labels, dataset_index, "fc2", probe_name, folds=5)

    [(labels, pred_probs, kwargs)] = cleanlab_calls
    assert "filter_by" not in kwargs  # cleanlab's default filter
    assert pred_probs.shape == (300, 4)
    np.testing.assert_allclose(pred_probs.sum(axis=1), 1.0)
    assert np.array_equal(labels, blobs.given_labels)
    assert np.array_equal(pred_probs.argmax(axis=1), blobs.true_labels)  # row i is example i
    assert np.array_equal(table["index"], dataset_index)
    assert np.array_equal(table["predicted_label"], blobs.true_labels)
    # Separable: every flag is a flipped label, and every flipped label ranks below every correct one.
    assert not (table["is_label_issue"] & ~blobs.is_wrong).any()
    assert table["label_score"][blobs.is_wrong].max() < table["label_score"][~blobs.is_wrong].min()


def test_table_columns_follow_datalab():
    labels = np.array([0, 1, 1, 0])
    pred_probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])
    table = label_issue_table(labels, pred_probs, [10, 11, 12, 13], layer="fc1", probe="velpic")
    assert tuple(table.columns) == ISSUE_COLUMNS
    assert table["is_label_issue"].dtype == bool
    np.testing.assert_allclose(table["label_score"], [0.9, 0.8, 0.3, 0.6])  # self-confidence: p(given | x)
    assert table["predicted_label"].tolist() == [0, 1, 0, 0]
    assert set(table["layer"]) == {"fc1"} and set(table["probe"]) == {"velpic"}


def test_probabilities_that_are_not_probabilities_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        label_issue_table([0, 1], [[0.5, 0.6], [0.1, 0.9]], None, layer="fc1", probe="velpic")


def test_the_oracle_probe_is_refused():
    blobs = noisy_blobs(n=100)
    with pytest.raises(ValueError, match="true labels"):
        score_layer(blobs.features, blobs.given_labels, None, "fc1", "masc_true")
