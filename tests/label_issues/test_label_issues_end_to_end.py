"""End to end on Gaussian blobs in 20 dimensions with 10 % of the labels flipped: probes and baselines
rank the flipped labels far above the base rate."""

from __future__ import annotations

import numpy as np
import pytest
from label_issues_synthetic import noisy_blobs

from latentgen.label_issues import (
    deep_knn_issues,
    label_issue_metrics,
    layer_label_issues,
    pixel_logreg_issues,
)


@pytest.fixture(scope="module")
def blobs():
    return noisy_blobs(n=800, classes=5, dims=20, separation=3.0, flip_rate=0.1, seed=7)


def _metrics(blobs, table):
    return label_issue_metrics(blobs.is_wrong, table["is_label_issue"], table["label_score"])


@pytest.mark.parametrize("probe_name", ["velpic", "ncm"])
def test_probe_flags_find_the_flipped_labels(blobs, probe_name):
    issues = layer_label_issues(blobs.features, blobs.given_labels, np.arange(800), "fc3", probe_name, seed=1)
    metrics = _metrics(blobs, issues.table)
    assert metrics["base_rate"] == pytest.approx(0.1)
    assert metrics["auprc"] > 0.7
    assert metrics["precision"] > 0.6 and metrics["recall"] > 0.6
    assert np.isfinite(issues.pred_probs).all()


@pytest.mark.parametrize("baseline", [pixel_logreg_issues, deep_knn_issues])
def test_baselines_find_the_flipped_labels(blobs, baseline):
    if baseline is deep_knn_issues:
        table = deep_knn_issues(blobs.features, blobs.given_labels, None, layer="fc3")
    else:
        table = pixel_logreg_issues(blobs.features.reshape(800, 4, 5), blobs.given_labels, None)
    assert _metrics(blobs, table)["auprc"] > 0.6
