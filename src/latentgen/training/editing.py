"""Editing a model midway through training: its pre-softmax weights become its own VeLPIC vectors.

The published version of the paper (the seed repository's ``training_using_VeLPIC/``: ``VeLPIC_intervention.py``,
``MAVC/retrain.py``'s ``weight_change``) takes a run's checkpoint at epoch E (1, 10 and 40), fits VeLPIC on the
last probed layer's activations of the corrupted training labels, writes the class vectors into the
pre-softmax layer with the bias zeroed, and trains on.  This module makes the edited weights; training on is an
ordinary run that starts from them (``latentgen.training.trainer.train``'s ``start_weights``).

VeLPIC is fitted as scoring fits it (``latentgen.scoring.checkpoint``): on the training set minus the same stratified
held-out slice (``scoring.holdout``, latentgen.data.holdout), a missing class padded with a zero vector, and
written in with ``latentgen.scoring.transfer.apply_velpic``.  So the edited model at epoch E predicts exactly what
scoring's ``transfer`` reports for the base checkpoint at E (up to the activations' stored dtype).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from torch import nn

from latentgen.common.fileio import tensor_over
from latentgen.data.holdout import HoldoutSplit
from latentgen.training.models import ProbedNetwork
from latentgen.probes.paper import VeLPIC
from latentgen.probes.paper import velpic_for_every_class
from latentgen.data.arrays import TrainData, to_unit_float


@torch.no_grad()
def last_layer_activations(
    model: ProbedNetwork, images: np.ndarray, batch_size: int, device: torch.device
) -> torch.Tensor:
    """The activations feeding ``model.head`` for every image, in eval mode (as extraction computes them)."""
    model = model.to(device).eval()
    last = model.probe_layers[-1]
    batches = []
    for start in range(0, images.shape[0], batch_size):
        batch = tensor_over(np.ascontiguousarray(images[start : start + batch_size])).to(device)
        batches.append(model.features(to_unit_float(batch))[last])
    return torch.cat(batches)


def velpic_edited(
    model: ProbedNetwork,
    data: TrainData,
    split: HoldoutSplit,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
) -> ProbedNetwork:
    """A copy of ``model`` whose head is the VeLPIC probe of its last probed layer (bias zero).

    VeLPIC is fitted on the corrupted training labels of the samples scoring fits on (``split.fit``).
    """
    device = torch.device(device)
    activations = last_layer_activations(model, data.train_images, batch_size, device)
    fit_rows = activations.index_select(0, torch.as_tensor(split.fit, device=activations.device))
    velpic = VeLPIC().fit(fit_rows, data.train_noisy[split.fit])
    return apply_velpic(model, velpic_for_every_class(velpic, data.num_classes)).eval()


def _head_of(model: nn.Module) -> nn.Linear:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise TypeError(
            f"{type(model).__name__} has no pre-softmax nn.Linear named 'head' (found {type(head).__name__}); "
            "the intervention replaces that layer's weight"
        )
    return head


def class_vectors(velpic: VeLPIC, head: nn.Linear) -> np.ndarray:
    """``velpic.vectors_`` (K, d) after checking they can stand in for ``head.weight`` row by row."""
    if not isinstance(velpic, VeLPIC):
        raise TypeError(f"expected a fitted latentgen.probes.paper.VeLPIC, got {type(velpic).__name__}")
    try:
        check_is_fitted(velpic)
    except NotFittedError as error:
        raise NotFittedError(f"the VeLPIC probe is not fitted: {error}") from None
    vectors = np.asarray(velpic.vectors_)
    expected = (head.out_features, head.in_features)
    if vectors.shape != expected:
        raise ValueError(
            f"VeLPIC has {vectors.shape[0]} class vectors of width {vectors.shape[1]}, but the head maps "
            f"{head.in_features} features to {head.out_features} classes: fit VeLPIC on the activations of the "
            "layer that feeds this head, with labels covering every class"
        )
    classes = np.asarray(velpic.classes_)
    is_integer = np.issubdtype(classes.dtype, np.integer)
    if not is_integer or not np.array_equal(classes, np.arange(head.out_features)):
        raise ValueError(
            f"VeLPIC classes must be the head's output indices 0..{head.out_features - 1} in order, "
            f"got {classes.tolist()[:10]}{'...' if classes.size > 10 else ''}"
        )
    return vectors


def apply_velpic(model: nn.Module, velpic: VeLPIC, keep_bias: bool = False) -> nn.Module:
    """A deep copy of ``model`` whose ``head`` weight is ``velpic.vectors_`` and whose bias is zero.

    ``velpic`` must be fitted on the activations of ``model.probe_layers[-1]`` (the input of
    ``model.head``) with labels 0..K-1.  The original model is not modified.  ``keep_bias=True`` keeps
    the trained bias instead (the authors' second transfer score for the MLP and AlexNet); the model
    then no longer predicts exactly what VeLPIC predicts.
    """
    head = _head_of(model)
    vectors = class_vectors(velpic, head)
    transferred = copy.deepcopy(model)
    new_head = _head_of(transferred)
    with torch.no_grad():
        weight = torch.from_numpy(vectors).to(dtype=new_head.weight.dtype, device=new_head.weight.device)
        new_head.weight.copy_(weight)  # (K, d): logit c = ⟨v_c, h⟩
        if new_head.bias is not None and not keep_bias:
            new_head.bias.zero_()
    return transferred
