"""The VeLPIC weight intervention: a model whose pre-softmax layer *is* the VeLPIC probe.

VeLPIC fitted on the last probed layer (the activations h that feed ``model.head``) predicts
argmax_c ⟨v_c, h⟩.  A linear head computes W h + b; with W = the stacked class vectors (K, d) and
b = 0 its logits are exactly those projections, so the modified network predicts what the probe
predicts, for every input, through an ordinary forward pass (the paper's Section 7).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from torch import nn

from latentgen.probes import VeLPIC


def _head_of(model: nn.Module) -> nn.Linear:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise TypeError(
            f"{type(model).__name__} has no pre-softmax nn.Linear named 'head' (found {type(head).__name__}); "
            "the intervention replaces that layer's weight"
        )
    return head


def _class_vectors(velpic: VeLPIC, head: nn.Linear) -> np.ndarray:
    """``velpic.vectors_`` (K, d) after checking they can stand in for ``head.weight`` row by row."""
    if not isinstance(velpic, VeLPIC):
        raise TypeError(f"expected a fitted latentgen.probes.VeLPIC, got {type(velpic).__name__}")
    try:
        check_is_fitted(velpic)
    except NotFittedError as error:
        raise NotFittedError(f"the VeLPIC probe is not fitted: {error}") from None
    vectors = np.asarray(velpic.vectors_)
    expected = (head.out_features, head.in_features)
    if vectors.shape != expected:
        raise ValueError(
            f"VeLPIC has {vectors.shape[0]} class vectors of width {vectors.shape[1]}, but the head maps "
            f"{head.in_features} features to {head.out_features} classes: fit VeLPIC on the last probed "
            "layer's activations with labels covering every class"
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
    vectors = _class_vectors(velpic, head)
    transferred = copy.deepcopy(model)
    new_head = _head_of(transferred)
    with torch.no_grad():
        weight = torch.from_numpy(vectors).to(dtype=new_head.weight.dtype, device=new_head.weight.device)
        new_head.weight.copy_(weight)  # (K, d): logit c = ⟨v_c, h⟩
        if new_head.bias is not None and not keep_bias:
            new_head.bias.zero_()
    return transferred
