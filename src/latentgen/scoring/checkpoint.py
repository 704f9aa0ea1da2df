"""Scoring one checkpoint: the configured probes (``scoring.probes``, see ``latentgen.probes.family``) on
every probed layer, the model itself, the transfer from every scored layer (bias-free head; for heads
with a bias also the last layer's with the bias kept: ``transfer_bias``), and the probe chosen without
the test set (``selected``).

Probes are fitted on the *corrupted* training labels (as the paper; ``masc_true``, an oracle, on the true
ones) of the training set minus a stratified held-out slice (``holdout``, a fraction;
``latentgen.scoring.selection``), and scored against: ``train_corrupted`` (the labels the model was trained on) and
``train_true`` (the clean labels of the same samples), both over the samples the probes were fitted on;
``holdout_corrupted`` and ``holdout_true``, the same over the held-out slice (only when something is held
out); and ``test`` (the true test labels).  The model's rows use the same samples for each split.  A probe
with a row cap (``ProbeSpec.max_scored_rows``, kNN) is scored on seeded subsets of each split's samples.

``selected`` repeats every split of the candidate (probe, layer) chosen on ``holdout_corrupted`` by the
one-standard-error rule (``latentgen.scoring.selection``), with ``layer`` = ``"probe:layer"`` (e.g.
``"velpic:fc3"``); no test row is read to choose it.  The result is a tidy table, one row per (layer, probe,
split); see :data:`SCORE_COLUMNS`.  The ``test`` and ``holdout_corrupted`` rows also carry which samples were
right (``correct``, packed bits, ``latentgen.scoring.selection.pack_correct``), so that the choice and the claims
can compare two classifiers sample by sample (paired standard errors); ``transfer`` rows carry
``velpic_disagreements``: test images on which the transferred model's prediction differs from VeLPIC's on the
same float32 activations (0 when the transfer is exact).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentgen.scoring.activations import Activations, read_activations
from latentgen.common.fileio import tensor_over
from latentgen.scoring.selection import pack_correct, selected_rows
from latentgen.data.holdout import HoldoutSplit
from latentgen.training.models import load_checkpoint
from latentgen.probes.family import build_probe
from latentgen.probes.names import PROBE_NAMES
from latentgen.probes.paper import VeLPIC, velpic_for_every_class
from latentgen.data.arrays import TrainData, to_unit_float
from latentgen.training.editing import apply_velpic
from latentgen.scoring.transfer import transfer_from_layer

SCORED_SPLITS = ("train_corrupted", "train_true", "test")
SCORE_COLUMNS = [
    "model",
    "dataset",
    "pair",
    "corruption",
    "seed",
    "epoch",
    "layer",
    "probe",
    "split",
    "accuracy",
    "n_samples",
    "correct",
    "n_components",
    "fit_seconds",
    "velpic_disagreements",
]
# the splits whose per-sample correctness is kept: the test set (claims) and the slice (the choice)
PAIRED_SPLITS = ("test", "holdout_corrupted")


def whole_training_set(data: TrainData) -> HoldoutSplit:
    """Nothing held out: probes fit on every training sample (the paper's setting)."""
    return data.holdout(0.0)


def _split_correct(
    predictions: dict[str, np.ndarray], samples: dict[str, np.ndarray], data: TrainData
) -> dict[str, np.ndarray]:
    """Which samples of each split are right, from the predictions of its samples: ``fit`` and ``held_out``
    index the training set, ``test`` the test set (a held-out slice only when it has predictions)."""

    def agreement(part: str, labels: np.ndarray) -> np.ndarray:
        return np.asarray(predictions[part] == labels[samples[part]])

    correct = {
        "train_corrupted": agreement("fit", data.train_noisy),
        "train_true": agreement("fit", data.train_true),
        "test": agreement("test", data.test_labels),
    }
    if "held_out" in predictions:
        correct["holdout_corrupted"] = agreement("held_out", data.train_noisy)
        correct["holdout_true"] = agreement("held_out", data.train_true)
    return correct


def _correct(
    train_pred: np.ndarray, test_pred: np.ndarray, data: TrainData, split: HoldoutSplit
) -> dict[str, np.ndarray]:
    """``train_pred``: predictions for every training sample; each split reads its own samples."""
    predictions = {"fit": train_pred[split.fit], "test": test_pred}
    samples = {"fit": split.fit, "test": np.arange(len(test_pred))}
    if len(split.held_out):
        predictions["held_out"], samples["held_out"] = train_pred[split.held_out], split.held_out
    return _split_correct(predictions, samples, data)


def _rows(
    layer: str,
    probe: str,
    correct: dict[str, np.ndarray],
    n_components: float | None,
    fit_seconds: float,
    paired: bool = True,
) -> list[dict[str, Any]]:
    """One row per split; ``paired``: the samples are the split's own (not a capped probe's subset), so the
    ``PAIRED_SPLITS`` rows keep which were right."""
    return [
        {
            "layer": layer,
            "probe": probe,
            "split": split,
            "accuracy": float(np.mean(right)),
            "n_samples": len(right),
            "correct": pack_correct(right) if paired and split in PAIRED_SPLITS else None,
            "n_components": n_components,
            "fit_seconds": fit_seconds,
        }
        for split, right in correct.items()
    ]


def _as_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """The layer on the device in its stored dtype: the probes widen float16 to float32 per class and per
    chunk of rows, so a whole-layer float32 copy (0.5 GB for a 60,000 x 2048 layer) is never made."""
    return tensor_over(np.asarray(array)).to(device)


def _fit_rows(train_x: torch.Tensor, split: HoldoutSplit) -> torch.Tensor:
    """The rows probes are fitted on (the layer itself when nothing is held out: no copy)."""
    if not len(split.held_out):
        return train_x
    return train_x.index_select(0, torch.as_tensor(split.fit, device=train_x.device))


# Seeds the subsets of samples a capped probe (``ProbeSpec.max_scored_rows``) is scored on.
SCORED_ROWS_SEED = 0


def _scored_rows(n: int, limit: int | None) -> np.ndarray | None:
    """Sorted indices of a seeded random subset of ``limit`` of ``n`` samples; None for all of them."""
    if limit is None or n <= limit:
        return None
    return np.sort(np.random.default_rng(SCORED_ROWS_SEED).choice(n, size=limit, replace=False))


def _subset(values, rows: np.ndarray | None):
    if rows is None:
        return values
    return values[torch.from_numpy(rows).to(values.device)] if isinstance(values, torch.Tensor) else values[rows]


def fit_and_score(
    name: str,
    variance: float,
    train_x: torch.Tensor,
    test_x: torch.Tensor,
    data: TrainData,
    split: HoldoutSplit | None = None,
) -> tuple[Any, dict[str, np.ndarray], float, bool]:
    """Fit probe ``name`` on the layer's ``split.fit`` rows (the labels its spec names), score every split:
    (probe, which samples of each split are right, fit seconds, whether those are the split's own samples).

    ``fit_seconds`` is the fit alone.  A probe with ``max_scored_rows`` is scored on seeded subsets of
    each split's samples (the fitted ones through ``predict_training``: leave-one-out for kNN).
    """
    split = split or whole_training_set(data)
    probe, spec = build_probe(name, variance)
    fit_labels = data.train_true if spec.fit_on == "true" else data.train_noisy
    started = time.perf_counter()
    fit_x = _fit_rows(train_x, split)
    probe.fit(fit_x, fit_labels[split.fit])
    seconds = time.perf_counter() - started
    limit = spec.max_scored_rows
    if probe.resubstitutes_training and limit is None:
        # every training row in one call, as the transfer model's forward pass computes them: a product's
        # rounding can depend on how many rows it has, and VeLPIC must equal the transfer bit for bit
        return (
            probe,
            _correct(np.asarray(probe.predict(train_x)), np.asarray(probe.predict(test_x)), data, split),
            seconds,
            True,
        )
    fit_rows = _scored_rows(len(split.fit), limit)  # into fit_x
    held_rows = _scored_rows(len(split.held_out), limit)  # into split.held_out
    test_rows = _scored_rows(test_x.shape[0], limit)
    predictions = {
        "fit": np.asarray(probe.predict_training(fit_x, rows=fit_rows)),
        "test": np.asarray(probe.predict(_subset(test_x, test_rows))),
    }
    samples = {
        "fit": _subset(split.fit, fit_rows),
        "held_out": _subset(split.held_out, held_rows),
        "test": np.arange(test_x.shape[0]) if test_rows is None else test_rows,
    }
    if len(split.held_out):
        held_x = train_x.index_select(0, torch.as_tensor(samples["held_out"], device=train_x.device))
        predictions["held_out"] = np.asarray(probe.predict(held_x))
    whole = fit_rows is None and held_rows is None and test_rows is None
    return probe, _split_correct(predictions, samples, data), seconds, whole


@torch.no_grad()
def predict_classes(model: torch.nn.Module, images: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    """The network's predicted class of every uint8 image, in batches (scoring's and repair's forward pass)."""
    predictions = []
    for start in range(0, images.shape[0], batch_size):
        batch = tensor_over(np.ascontiguousarray(images[start : start + batch_size])).to(device)
        predictions.append(model(to_unit_float(batch)).argmax(1).cpu())
    return torch.cat(predictions).numpy()


def _model_rows(
    transferred: torch.nn.Module,
    data: TrainData,
    split: HoldoutSplit,
    layer: str,
    probe: str,
    batch_size: int,
    device: torch.device,
) -> list[dict[str, Any]]:
    transferred = transferred.to(device).eval()
    test_predictions = predict_classes(transferred, data.test_images, batch_size, device)
    correct = _correct(
        predict_classes(transferred, data.train_images, batch_size, device), test_predictions, data, split
    )
    return _rows(layer, probe, correct, None, 0.0), test_predictions


def transfer_rows(
    model: torch.nn.Module,
    velpics: dict[str, VeLPIC],
    data: TrainData,
    last_layer: str,
    batch_size: int,
    device: torch.device,
    split: HoldoutSplit | None = None,
) -> list[dict[str, Any]]:
    """Accuracy of the real modified models (forward passes), not of VeLPIC relabelled.

    ``transfer`` on every layer of ``velpics``: the network up to that layer with a bias-free head of its
    VeLPIC vectors (``transfer_from_layer``; equal to VeLPIC on that layer exactly).  ``transfer_bias``
    keeps the trained bias of the real head (the authors' second score), for heads that have one (MLP,
    AlexNet; the CNN head has no bias): it exists for the last layer only.
    """
    split = split or whole_training_set(data)
    rows, transfer_predictions = [], {}
    padded = {layer: velpic_for_every_class(velpic, data.num_classes) for layer, velpic in velpics.items()}
    for layer, velpic in padded.items():
        transferred = transfer_from_layer(model, velpic, layer)
        layer_rows, transfer_predictions[layer] = _model_rows(
            transferred, data, split, layer, "transfer", batch_size, device
        )
        rows += layer_rows
    disagreements = velpic_disagreements(model, padded, transfer_predictions, data.test_images, batch_size, device)
    rows = [{**row, "velpic_disagreements": disagreements[row["layer"]]} for row in rows]
    if model.head.bias is not None:
        with_bias = apply_velpic(model, padded[last_layer], keep_bias=True)
        rows += _model_rows(with_bias, data, split, last_layer, "transfer_bias", batch_size, device)[0]
    return rows


@torch.no_grad()
def velpic_disagreements(
    model: torch.nn.Module,
    velpics: dict[str, VeLPIC],
    transfer_predictions: dict[str, np.ndarray],
    images: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> dict[str, int]:
    """Per layer, the test images on which the transferred model predicts otherwise than VeLPIC on the same
    float32 activations (a float32 forward pass: the input the transferred head sees).  Exactness is not claimed
    from the stored activations, float16 by default, where a rounding can flip a near-tie."""
    model = model.to(device).eval()
    counts = dict.fromkeys(velpics, 0)
    for start in range(0, images.shape[0], batch_size):
        batch = tensor_over(np.ascontiguousarray(images[start : start + batch_size])).to(device)
        features, _ = model.features_and_logits(to_unit_float(batch))
        for layer, velpic in velpics.items():
            expected = transfer_predictions[layer][start : start + batch.shape[0]]
            counts[layer] += int(np.sum(np.asarray(velpic.predict(features[layer])) != expected))
    return counts


def score_activations(
    activations: Activations,
    data: TrainData,
    layers: list[str],
    variance: float,
    device: torch.device,
    split: HoldoutSplit | None = None,
    probes: list[str] | tuple[str, ...] = PROBE_NAMES,
) -> tuple[list[dict[str, Any]], dict[str, VeLPIC]]:
    """Rows of every probe in ``probes`` for every layer and the model's own rows; also the fitted VeLPICs.

    Probes are fitted on ``split.fit`` only (default: the whole training set).
    """
    split = split or whole_training_set(data)
    rows = _rows(
        "output",
        "model",
        _correct(np.asarray(activations.train_model_pred), np.asarray(activations.test_model_pred), data, split),
        None,
        0.0,
    )
    velpics = {}
    for layer in layers:
        train_x = _as_tensor(activations.train[layer], device)
        test_x = _as_tensor(activations.test[layer], device)
        for name in probes:
            probe, correct, seconds, whole = fit_and_score(name, variance, train_x, test_x, data, split)
            n_components = float(np.mean(probe.n_components_)) if hasattr(probe, "n_components_") else None
            rows += _rows(layer, name, correct, n_components, seconds, paired=whole)
            if name == "velpic":
                velpics[layer] = probe
    return rows, velpics


def score_checkpoint(
    checkpoint: Path | str,
    activations_dir: Path | str,
    data: TrainData,
    model_name: str,
    variance: float,
    identity: dict[str, Any],
    layers: list[str] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 1000,
    split: HoldoutSplit | None = None,
    probes: list[str] | tuple[str, ...] = PROBE_NAMES,
) -> pd.DataFrame:
    """The tidy score table of one checkpoint.

    ``identity`` holds the run's model, dataset, pair, corruption, seed and epoch, repeated on every row.
    ``layers`` (default: all probed layers) get a row per split for each of ``probes`` and the transfer
    rows (which use VeLPIC, fitted for the transfer alone when ``velpic`` is not among ``probes``); the
    last probed layer (the one that feeds the pre-softmax layer) always gets its transfer rows.
    ``split``: the run's held-out slice (latentgen.data.holdout; withheld from training too), left out of every
    fit and ranked on to choose the ``selected`` rows; None or an empty slice fits on everything and selects
    nothing.
    """
    device = torch.device(device)
    model = load_checkpoint(checkpoint, model_name, data.input_shape, data.num_classes)
    activations = read_activations(activations_dir)
    last = model.probe_layers[-1]
    layers = list(layers or model.probe_layers)
    split = split or whole_training_set(data)
    rows, velpics = score_activations(activations, data, layers, variance, device, split, probes)
    for layer in dict.fromkeys([*layers, last]):  # every transfer needs its layer's VeLPIC
        if layer not in velpics:
            train_layer = _as_tensor(activations.train[layer], device)
            velpics[layer] = VeLPIC().fit(_fit_rows(train_layer, split), data.train_noisy[split.fit])
    rows += transfer_rows(model, velpics, data, last, batch_size, device, split)
    scored = pd.DataFrame(rows)
    frame = pd.concat([scored, selected_rows(scored)], ignore_index=True).assign(**identity)
    frame["n_components"] = frame["n_components"].astype("Float64")  # null where not a MASC(-true) row
    frame["n_samples"] = frame["n_samples"].astype("int64")
    frame["velpic_disagreements"] = frame["velpic_disagreements"].astype("Int64")  # null where not a transfer row
    _refuse_non_finite(frame, checkpoint)
    return frame[SCORE_COLUMNS]


def _refuse_non_finite(frame: pd.DataFrame, checkpoint: Path | str) -> None:
    if not np.isfinite(frame["accuracy"].to_numpy()).all():
        raise ValueError(f"scoring {checkpoint} produced a non-finite accuracy; refusing to write it")
