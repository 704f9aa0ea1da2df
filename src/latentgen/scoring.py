"""Scoring one checkpoint: MASC and VeLPIC on every probed layer, the model itself, the transfer from
every scored layer (bias-free head; for heads with a bias also the last layer's with the bias kept:
``transfer_bias``), and the probe chosen without the test set (``selected``).

Probes are fitted on the *corrupted* training labels (as the paper) of the training set minus a
stratified held-out slice (``holdout``, a fraction; ``latentgen.holdout``), and scored against:
``train_corrupted`` (the labels the model was trained on) and ``train_true`` (the clean labels of the
same samples), both over the samples the probes were fitted on; ``holdout_corrupted`` and
``holdout_true``, the same over the held-out slice (only when something is held out); and ``test``
(the true test labels).  The model's rows use the same samples for each split.

``selected`` repeats every split of the candidate (probe, layer) with the highest ``holdout_corrupted``
accuracy, with ``layer`` = ``"probe:layer"`` (e.g. ``"velpic:fc3"``); no test row is read to choose it.
The result is a tidy table, one row per (layer, probe, split); see :data:`SCORE_COLUMNS`.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentgen.activations import Activations, read_activations
from latentgen.fileio import load_torch, tensor_over
from latentgen.holdout import HOLDOUT_SPLITS, HoldoutSplit, selected_rows, stratified_holdout
from latentgen.models import build
from latentgen.probes import MASC, VeLPIC
from latentgen.training import TrainData, to_unit_float
from latentgen.transfer import apply_velpic, transfer_from_layer

SPLITS = ("train_corrupted", "train_true", "test")
ALL_SPLITS = SPLITS + HOLDOUT_SPLITS
SCORE_COLUMNS = ["model", "dataset", "pair", "corruption", "seed", "epoch", "layer", "probe", "split",
                 "accuracy", "n_components", "fit_seconds"]


def whole_training_set(data: TrainData) -> HoldoutSplit:
    """Nothing held out: probes fit on every training sample (the paper's setting)."""
    return stratified_holdout(data.train_noisy, 0.0, seed=0)


def _accuracies(train_pred: np.ndarray, test_pred: np.ndarray, data: TrainData, split: HoldoutSplit
                ) -> dict[str, float]:
    """``train_pred``: predictions for every training sample; each split reads its own samples."""
    def agreement(rows: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(train_pred[rows] == labels[rows]))

    accuracies = {"train_corrupted": agreement(split.fit, data.train_noisy),
                  "train_true": agreement(split.fit, data.train_true),
                  "test": float(np.mean(test_pred == data.test_labels))}
    if len(split.held_out):
        accuracies["holdout_corrupted"] = agreement(split.held_out, data.train_noisy)
        accuracies["holdout_true"] = agreement(split.held_out, data.train_true)
    return accuracies


def _rows(layer: str, probe: str, accuracies: dict[str, float], n_components: float | None,
          fit_seconds: float) -> list[dict[str, Any]]:
    return [{"layer": layer, "probe": probe, "split": split, "accuracy": accuracy,
             "n_components": n_components, "fit_seconds": fit_seconds} for split, accuracy in accuracies.items()]


def _as_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """The layer on the device in its stored dtype: the probes widen float16 to float32 per class and per
    chunk of rows, so a whole-layer float32 copy (0.5 GB for a 60,000 x 2048 layer) is never made."""
    return tensor_over(np.asarray(array)).to(device)


def _fit_rows(train_x: torch.Tensor, split: HoldoutSplit) -> torch.Tensor:
    """The rows probes are fitted on (the layer itself when nothing is held out: no copy)."""
    if not len(split.held_out):
        return train_x
    return train_x.index_select(0, torch.as_tensor(split.fit, device=train_x.device))


def _fit_and_score(probe: Any, train_x: torch.Tensor, test_x: torch.Tensor, data: TrainData, split: HoldoutSplit
                   ) -> tuple[Any, dict[str, float], float]:
    started = time.perf_counter()
    probe.fit(_fit_rows(train_x, split), data.train_noisy[split.fit])
    seconds = time.perf_counter() - started
    accuracies = _accuracies(np.asarray(probe.predict(train_x)), np.asarray(probe.predict(test_x)), data, split)
    return probe, accuracies, seconds


@torch.no_grad()
def _predict(model: torch.nn.Module, images: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    predictions = []
    for start in range(0, images.shape[0], batch_size):
        batch = tensor_over(np.ascontiguousarray(images[start:start + batch_size])).to(device)
        predictions.append(model(to_unit_float(batch)).argmax(1).cpu())
    return torch.cat(predictions).numpy()


def velpic_for_every_class(velpic: VeLPIC, num_classes: int) -> VeLPIC:
    """``velpic`` with one vector per class 0..K-1, as the transfer needs one weight row per output.

    At high corruption on a small training set a class can be missing from the corrupted labels
    VeLPIC was fitted on (it then has no vector).  Such a class gets a zero vector: in the transferred
    head (bias zeroed) its logit is 0 for every input, so the modified model predicts it only where
    no present class projects positively -- never for typical post-ReLU activations, whose projections
    on the present classes' (non-negative, Perron) vectors are >= 0; an exact tie at 0 goes to the
    lowest class index.  Returns ``velpic`` itself when every class is present.
    """
    classes = np.asarray(velpic.classes_)
    if np.array_equal(classes, np.arange(num_classes)):
        return velpic
    if not np.issubdtype(classes.dtype, np.integer) or classes.min() < 0 or classes.max() >= num_classes:
        raise ValueError(f"VeLPIC classes {classes.tolist()} are not class indices 0..{num_classes - 1}")
    padded = copy.copy(velpic)
    padded.classes_ = np.arange(num_classes, dtype=classes.dtype)
    padded.vectors_ = np.zeros((num_classes, velpic.vectors_.shape[1]), dtype=velpic.vectors_.dtype)
    padded.vectors_[classes] = velpic.vectors_
    padded.explained_variance_ratio_ = np.zeros(num_classes)
    padded.explained_variance_ratio_[classes] = velpic.explained_variance_ratio_
    return padded


def _model_rows(transferred: torch.nn.Module, data: TrainData, split: HoldoutSplit, layer: str, probe: str,
                batch_size: int, device: torch.device) -> list[dict[str, Any]]:
    transferred = transferred.to(device).eval()
    accuracies = _accuracies(_predict(transferred, data.train_images, batch_size, device),
                             _predict(transferred, data.test_images, batch_size, device), data, split)
    return _rows(layer, probe, accuracies, None, 0.0)


def transfer_rows(model: torch.nn.Module, velpics: dict[str, VeLPIC], data: TrainData, last_layer: str,
                  batch_size: int, device: torch.device, split: HoldoutSplit | None = None
                  ) -> list[dict[str, Any]]:
    """Accuracy of the real modified models (forward passes), not of VeLPIC relabelled.

    ``transfer`` on every layer of ``velpics``: the network up to that layer with a bias-free head of its
    VeLPIC vectors (``transfer_from_layer``; equal to VeLPIC on that layer exactly).  ``transfer_bias``
    keeps the trained bias of the real head (the authors' second score), for heads that have one (MLP,
    AlexNet; the CNN head has no bias): it exists for the last layer only.
    """
    split = split or whole_training_set(data)
    rows = []
    for layer, velpic in velpics.items():
        transferred = transfer_from_layer(model, velpic_for_every_class(velpic, data.num_classes), layer)
        rows += _model_rows(transferred, data, split, layer, "transfer", batch_size, device)
    if model.head.bias is not None:
        with_bias = apply_velpic(model, velpic_for_every_class(velpics[last_layer], data.num_classes), keep_bias=True)
        rows += _model_rows(with_bias, data, split, last_layer, "transfer_bias", batch_size, device)
    return rows


def score_activations(activations: Activations, data: TrainData, layers: list[str], variance: float,
                      device: torch.device, split: HoldoutSplit | None = None
                      ) -> tuple[list[dict[str, Any]], dict[str, VeLPIC]]:
    """MASC and VeLPIC rows for every layer and the model's own rows; also the fitted VeLPICs.

    Probes are fitted on ``split.fit`` only (default: the whole training set).
    """
    split = split or whole_training_set(data)
    rows = _rows("output", "model", _accuracies(np.asarray(activations.train_model_pred),
                                                np.asarray(activations.test_model_pred), data, split), None, 0.0)
    velpics = {}
    for layer in layers:
        train_x = _as_tensor(activations.train[layer], device)
        test_x = _as_tensor(activations.test[layer], device)
        masc, accuracies, seconds = _fit_and_score(MASC(variance=variance), train_x, test_x, data, split)
        rows += _rows(layer, "masc", accuracies, float(np.mean(masc.n_components_)), seconds)
        velpics[layer], accuracies, seconds = _fit_and_score(VeLPIC(), train_x, test_x, data, split)
        rows += _rows(layer, "velpic", accuracies, None, seconds)
    return rows, velpics


def score_checkpoint(checkpoint: Path | str, activations_dir: Path | str, data: TrainData, model_name: str,
                     variance: float, identity: dict[str, Any], layers: list[str] | None = None,
                     device: str | torch.device = "cpu", batch_size: int = 1000, holdout: float = 0.0
                     ) -> pd.DataFrame:
    """The tidy score table of one checkpoint.

    ``identity`` holds the run's model, dataset, pair, corruption, seed and epoch, repeated on every row.
    ``layers`` (default: all probed layers) get MASC, VeLPIC and transfer rows; the last probed layer (the
    one that feeds the pre-softmax layer) always gets its transfer rows.  ``holdout``: the fraction of the
    training set held out from every fit (stratified by corrupted label, drawn from the run's seed) to
    choose the ``selected`` rows; 0 fits on everything and selects nothing.
    """
    device = torch.device(device)
    model = build(model_name, data.input_shape, data.num_classes)
    model.load_state_dict(load_torch(checkpoint, what="checkpoint"))
    activations = read_activations(activations_dir)
    last = model.probe_layers[-1]
    layers = list(layers or model.probe_layers)
    split = stratified_holdout(data.train_noisy, holdout, seed=int(identity["seed"]))
    rows, velpics = score_activations(activations, data, layers, variance, device, split)
    if last not in velpics:
        train_last = _as_tensor(activations.train[last], device)
        velpics[last] = VeLPIC().fit(_fit_rows(train_last, split), data.train_noisy[split.fit])
    rows += transfer_rows(model, velpics, data, last, batch_size, device, split)
    scored = pd.DataFrame(rows)
    frame = pd.concat([scored, selected_rows(scored)], ignore_index=True).assign(**identity)
    frame["n_components"] = frame["n_components"].astype("Float64")  # null where not a MASC row
    _refuse_non_finite(frame, checkpoint)
    return frame[SCORE_COLUMNS]


def _refuse_non_finite(frame: pd.DataFrame, checkpoint: Path | str) -> None:
    if not np.isfinite(frame["accuracy"].to_numpy()).all():
        raise ValueError(f"scoring {checkpoint} produced a non-finite accuracy; refusing to write it")
