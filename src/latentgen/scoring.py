"""Scoring one checkpoint: the configured probes (``scoring.probes``, see ``latentgen.probe_family``) on
every probed layer, the model itself, and the transfer (bias zeroed, and for heads with a bias also
the bias kept: ``transfer_bias``).

Probes are fitted on the *corrupted* training labels (as the paper; ``masc_true``, an oracle, on the
true ones) and scored three ways:
``train_corrupted`` (against the labels the model was trained on), ``train_true`` (against the clean
labels of the same samples) and ``test`` (against the true test labels).  The result is a tidy
table, one row per (layer, probe, split); see :data:`SCORE_COLUMNS`.
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
from latentgen.models import build
from latentgen.probe_family import build_probe
from latentgen.probe_names import PROBE_NAMES
from latentgen.probes import VeLPIC
from latentgen.training import TrainData, to_unit_float
from latentgen.transfer import apply_velpic

SPLITS = ("train_corrupted", "train_true", "test")
SCORE_COLUMNS = ["model", "dataset", "pair", "corruption", "seed", "epoch", "layer", "probe", "split",
                 "accuracy", "n_components", "fit_seconds"]


def _accuracies(train_pred: np.ndarray, test_pred: np.ndarray, data: TrainData) -> dict[str, float]:
    return {
        "train_corrupted": float(np.mean(train_pred == data.train_noisy)),
        "train_true": float(np.mean(train_pred == data.train_true)),
        "test": float(np.mean(test_pred == data.test_labels)),
    }


def _rows(layer: str, probe: str, accuracies: dict[str, float], n_components: float | None,
          fit_seconds: float) -> list[dict[str, Any]]:
    return [{"layer": layer, "probe": probe, "split": split, "accuracy": accuracies[split],
             "n_components": n_components, "fit_seconds": fit_seconds} for split in SPLITS]


def _as_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """The layer on the device in its stored dtype: the probes widen float16 to float32 per class and per
    chunk of rows, so a whole-layer float32 copy (0.5 GB for a 60,000 x 2048 layer) is never made."""
    return tensor_over(np.asarray(array)).to(device)


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


def _fit_and_score(name: str, variance: float, train_x: torch.Tensor, test_x: torch.Tensor, data: TrainData
                   ) -> tuple[Any, dict[str, float], float]:
    """Fit probe ``name`` on the training layer (the labels its spec names), score the three splits.

    ``fit_seconds`` is the fit alone.  A probe with ``max_scored_rows`` is scored on seeded subsets.
    """
    probe, spec = build_probe(name, variance)
    fit_labels = data.train_true if spec.fit_on == "true" else data.train_noisy
    started = time.perf_counter()
    probe.fit(train_x, fit_labels)
    seconds = time.perf_counter() - started
    train_rows = _scored_rows(train_x.shape[0], spec.max_scored_rows)
    test_rows = _scored_rows(test_x.shape[0], spec.max_scored_rows)
    train_pred = np.asarray(probe.predict_training(train_x, rows=train_rows))
    test_pred = np.asarray(probe.predict(_subset(test_x, test_rows)))
    accuracies = {
        "train_corrupted": float(np.mean(train_pred == _subset(data.train_noisy, train_rows))),
        "train_true": float(np.mean(train_pred == _subset(data.train_true, train_rows))),
        "test": float(np.mean(test_pred == _subset(data.test_labels, test_rows))),
    }
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


def transfer_rows(model: torch.nn.Module, velpic: VeLPIC, data: TrainData, last_layer: str,
                  batch_size: int, device: torch.device) -> list[dict[str, Any]]:
    """Accuracy of the real modified model (forward passes), not of VeLPIC relabelled.

    ``transfer`` zeroes the head's bias (so it equals VeLPIC on the last layer exactly);
    ``transfer_bias`` keeps the trained bias, the authors' second score, for heads that have one
    (MLP, AlexNet; the CNN head has no bias).
    """
    velpic = velpic_for_every_class(velpic, data.num_classes)
    variants = {"transfer": False}
    if model.head.bias is not None:
        variants["transfer_bias"] = True
    rows = []
    for probe, keep_bias in variants.items():
        transferred = apply_velpic(model, velpic, keep_bias=keep_bias).to(device).eval()
        accuracies = _accuracies(_predict(transferred, data.train_images, batch_size, device),
                                 _predict(transferred, data.test_images, batch_size, device), data)
        rows += _rows(last_layer, probe, accuracies, None, 0.0)
    return rows


def score_activations(activations: Activations, data: TrainData, layers: list[str], variance: float,
                      device: torch.device, probes: list[str] | tuple[str, ...] = PROBE_NAMES
                      ) -> tuple[list[dict[str, Any]], dict[str, VeLPIC]]:
    """Rows of every probe in ``probes`` for every layer and the model's own rows; also the fitted VeLPICs."""
    rows = _rows("output", "model", _accuracies(np.asarray(activations.train_model_pred),
                                                np.asarray(activations.test_model_pred), data), None, 0.0)
    velpics = {}
    for layer in layers:
        train_x = _as_tensor(activations.train[layer], device)
        test_x = _as_tensor(activations.test[layer], device)
        for name in probes:
            probe, accuracies, seconds = _fit_and_score(name, variance, train_x, test_x, data)
            n_components = float(np.mean(probe.n_components_)) if hasattr(probe, "n_components_") else None
            rows += _rows(layer, name, accuracies, n_components, seconds)
            if name == "velpic":
                velpics[layer] = probe
    return rows, velpics


def score_checkpoint(checkpoint: Path | str, activations_dir: Path | str, data: TrainData, model_name: str,
                     variance: float, identity: dict[str, Any], layers: list[str] | None = None,
                     device: str | torch.device = "cpu", batch_size: int = 1000,
                     probes: list[str] | tuple[str, ...] = PROBE_NAMES) -> pd.DataFrame:
    """The tidy score table of one checkpoint.

    ``identity`` holds the run's model, dataset, pair, corruption, seed and epoch, repeated on every row.
    ``layers`` (default: all probed layers) get a row per split for each of ``probes``; the transfer
    always uses a VeLPIC fitted on the last probed layer, the one that feeds the pre-softmax layer
    (fitted for it alone when ``velpic`` is not among ``probes`` or that layer is not scored).
    """
    device = torch.device(device)
    model = build(model_name, data.input_shape, data.num_classes)
    model.load_state_dict(load_torch(checkpoint, what="checkpoint"))
    activations = read_activations(activations_dir)
    last = model.probe_layers[-1]
    layers = list(layers or model.probe_layers)
    rows, velpics = score_activations(activations, data, layers, variance, device, probes)
    if last in velpics:
        velpic_last = velpics[last]
    else:
        velpic_last = VeLPIC().fit(_as_tensor(activations.train[last], device), data.train_noisy)
    rows += transfer_rows(model, velpic_last, data, last, batch_size, device)
    frame = pd.DataFrame(rows).assign(**identity)
    frame["n_components"] = frame["n_components"].astype("Float64")  # null where not a MASC(-true) row
    _refuse_non_finite(frame, checkpoint)
    return frame[SCORE_COLUMNS]


def _refuse_non_finite(frame: pd.DataFrame, checkpoint: Path | str) -> None:
    if not np.isfinite(frame["accuracy"].to_numpy()).all():
        raise ValueError(f"scoring {checkpoint} produced a non-finite accuracy; refusing to write it")
