"""Editing a model midway through training: its pre-softmax weights become its own VeLPIC vectors.

The published version of the paper (the seed repository's ``training_using_VeLPIC/``: ``VeLPIC_intervention.py``,
``MAVC/retrain.py``'s ``weight_change``) takes a run's checkpoint at epoch E (1, 10 and 40), fits VeLPIC on the
last probed layer's activations of the corrupted training labels, writes the class vectors into the
pre-softmax layer with the bias zeroed, and trains on.  This module makes the edited weights; training on is an
ordinary run that starts from them (``latentgen.training.train``'s ``start_weights``).

VeLPIC is fitted as scoring fits it (``latentgen.scoring``): on the training set minus the same stratified
held-out slice (``scoring.holdout``, drawn from the run's seed), a missing class padded with a zero vector, and
written in with ``latentgen.transfer.apply_velpic``.  So the edited model at epoch E predicts exactly what
scoring's ``transfer`` reports for the base checkpoint at E (up to the activations' stored dtype).
"""

from __future__ import annotations

import numpy as np
import torch

from latentgen.fileio import tensor_over
from latentgen.holdout import stratified_holdout
from latentgen.models import ProbedNetwork
from latentgen.probes import VeLPIC
from latentgen.scoring import velpic_for_every_class
from latentgen.training import TrainData, to_unit_float
from latentgen.transfer import apply_velpic


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
    holdout: float,
    seed: int,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
) -> ProbedNetwork:
    """A copy of ``model`` whose head is the VeLPIC probe of its last probed layer (bias zero).

    VeLPIC is fitted on the corrupted training labels of the samples scoring fits on (``holdout``, ``seed``).
    """
    device = torch.device(device)
    activations = last_layer_activations(model, data.train_images, batch_size, device)
    split = stratified_holdout(data.train_noisy, holdout, seed=int(seed))
    fit_rows = activations.index_select(0, torch.as_tensor(split.fit, device=activations.device))
    velpic = VeLPIC().fit(fit_rows, data.train_noisy[split.fit])
    return apply_velpic(model, velpic_for_every_class(velpic, data.num_classes)).eval()
