"""Which training labels are wrong: cleanlab's confident learning on probes cross-fitted on a layer.

Array-level API (no files, no pipeline):

* ``crossfit``: out-of-fold class scores of any probe (``cross_fitted_scores``), with the fold bookkeeping;
* ``calibration``: scores → probabilities by a softmax fitted on the out-of-fold scores and given labels;
* ``flags``: cleanlab's flags and label-quality scores as a table (``label_issue_table``);
* ``layer``: the three for one probe of ``latentgen.probes.build_probe`` on one layer (``score_layer``);
* ``metrics``: flags and ranking against the truly wrong labels (``label_issue_metrics``), and the paired
  bootstrap of AUPRC differences (``bootstrap_counts``, ``bootstrap_auprc``, ``paired_auprc_difference``);
* ``baselines``: the network's own softmax and disagreement, pixel logistic regression, deep k-NN.

The pipeline's stage (rule ``label_issues``) on top of them, reading files:

* ``network``: a checkpoint's probed-layer activations and logits from one forward pass;
* ``choices``: the checkpoints to flag (the model's peak on the held-out slice, and its final checkpoint) and the
  probe and layer chosen without the truth mask;
* ``tables``: the flag rows and the metrics table of a run;
* ``job``: one run, end to end (``label_issue_run``; ``checkpoint_issues`` is shared with ``latentgen
  label-issues``).

Labels are integer class codes 0 .. K - 1 throughout.
"""

from .baselines import (
    deep_knn_issues,
    network_disagreement_issues,
    network_softmax_issues,
    pixel_logreg_issues,
    pixel_logreg_pred_probs,
)
from .calibration import SoftmaxCalibration, calibrated_probabilities, fit_softmax_calibration, softmax_rows
from .crossfit import CrossFit, cross_fitted_scores, stratified_fold_assignment
from .flags import ISSUE_COLUMNS, label_issue_table
from .layer import LayerIssues, layer_label_issues, score_layer
from .metrics import bootstrap_auprc, bootstrap_counts, label_issue_metrics, paired_auprc_difference

__all__ = [
    "ISSUE_COLUMNS",
    "CrossFit",
    "LayerIssues",
    "SoftmaxCalibration",
    "bootstrap_auprc",
    "bootstrap_counts",
    "calibrated_probabilities",
    "cross_fitted_scores",
    "deep_knn_issues",
    "fit_softmax_calibration",
    "label_issue_metrics",
    "label_issue_table",
    "layer_label_issues",
    "network_disagreement_issues",
    "network_softmax_issues",
    "paired_auprc_difference",
    "pixel_logreg_issues",
    "pixel_logreg_pred_probs",
    "score_layer",
    "softmax_rows",
    "stratified_fold_assignment",
]
