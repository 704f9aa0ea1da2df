"""One probe on one layer, end to end: cross-fitted scores → calibrated probabilities → cleanlab's flags."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .calibration import SoftmaxCalibration, calibrated_probabilities
from .crossfit import CrossFit, cross_fitted_scores, label_codes
from .flags import label_issue_table

from latentgen.probes.family import build_probe

# MASC keeps the fewest components whose explained variance exceeds this: the pipeline's default
# (config.yaml, scoring.masc_variance).  Only MASC reads it.
DEFAULT_MASC_VARIANCE = 0.99


@dataclass(frozen=True)
class LayerIssues:
    """The flags of one probe on one layer and what they were computed from."""

    table: pd.DataFrame
    pred_probs: np.ndarray
    calibration: SoftmaxCalibration
    crossfit: CrossFit


def probe_factory(probe_name: str, masc_variance: float = DEFAULT_MASC_VARIANCE):
    """A function returning a fresh unfitted probe of latentgen's family named ``probe_name``.

    Probes fitted on anything but the given labels (the oracle ``masc_true``, fitted on the true labels by
    scoring) are refused: here every probe is fitted on the given labels, so the name would lie.
    """
    _, spec = build_probe(probe_name, masc_variance)  # KeyError for an unknown name
    if spec.fit_on != "corrupted":
        raise ValueError(f"probe {probe_name!r} is fitted on the {spec.fit_on} labels; it cannot flag given labels")
    return lambda: build_probe(probe_name, masc_variance)[0]


def layer_label_issues(
    features,
    given_labels,
    dataset_index,
    layer: str,
    probe_name: str,
    folds: int = 5,
    seed: int = 0,
    masc_variance: float = DEFAULT_MASC_VARIANCE,
) -> LayerIssues:
    """``score_layer`` with its intermediate results (out-of-fold scores, calibration, probabilities)."""
    labels = label_codes(given_labels)
    crossfit = cross_fitted_scores(features, labels, probe_factory(probe_name, masc_variance), folds, seed)
    pred_probs, calibration = calibrated_probabilities(crossfit.scores, labels)
    table = label_issue_table(labels, pred_probs, dataset_index, layer=layer, probe=probe_name)
    return LayerIssues(table=table, pred_probs=pred_probs, calibration=calibration, crossfit=crossfit)


def score_layer(
    features,
    given_labels,
    dataset_index,
    layer: str,
    probe_name: str,
    folds: int = 5,
    seed: int = 0,
    masc_variance: float = DEFAULT_MASC_VARIANCE,
) -> pd.DataFrame:
    """The label-issue table (``flags.ISSUE_COLUMNS``) of probe ``probe_name`` (a name of
    ``latentgen.probes.build_probe``: "velpic", "masc", "ncm", "lda", "logreg", "knn") cross-fitted on the
    layer's activations ``features`` (n, d) with the given labels (codes 0 .. K - 1)."""
    return layer_label_issues(
        features, given_labels, dataset_index, layer, probe_name, folds, seed, masc_variance
    ).table
