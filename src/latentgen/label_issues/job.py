"""The label-issue job of one run: which training labels are wrong, by every method, at the chosen checkpoints.

For the checkpoints of ``choices.checkpoints_to_flag`` (the model's peak, found without test data where the run
has a held-out slice, and its final checkpoint), one forward pass gives every probed layer's activations and the
logits.  On each flagged layer each configured probe is cross-fitted (K folds), calibrated and handed to cleanlab
(``layer.score_layer``); beside them, on the same examples, the baselines: cleanlab on the network's own softmax
(in sample), the network's prediction != given label, deep k-NN on the last probed layer, and, once per run (it
reads no network), cleanlab on a K-fold pixel logistic regression.  Everything is scored against the truth of the
label table (``tables``), bootstrapped on one set of resamples per run (``metrics``), and written as two tables:
the flags (per example, checkpoint, layer, method) and the metrics (per checkpoint, layer, method).

Every training example of the label table is flagged, the run's held-out slice included: the network never trained
on that slice, so its softmax there is out of sample, which can only help the "network's own softmax" baseline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentgen import __version__
from latentgen.common.fileio import read_json, read_parquet, write_parquet
from latentgen.common.pairs import run_identity
from latentgen.data.arrays import TrainData
from latentgen.data.runs import load_run_data, train_index
from latentgen.training.checkpoints import model_from_run
from latentgen.training.models import ProbedNetwork
from latentgen.training.run_files import checkpoint_name

from .baselines import deep_knn_issues, network_disagreement_issues, network_softmax_issues, pixel_logreg_issues
from .choices import checkpoints_to_flag, truth_free_choice
from .layer import DEFAULT_MASC_VARIANCE, score_layer
from .metrics import DEFAULT_RESAMPLES, bootstrap_counts
from .network import network_outputs
from .tables import METRICS_COLUMNS, issue_rows, metrics_table

log = logging.getLogger("latentgen")

DEFAULT_PROBES = ("velpic", "ncm")
DEFAULT_FOLDS = 5
CALIBRATION = "softmax(beta * scores + b) fitted on the out-of-fold scores and the given labels (no test data)"


def checkpoint_issues(
    model: ProbedNetwork,
    images: np.ndarray,
    given: np.ndarray,
    index: np.ndarray,
    layers: list[str],
    probes: list[str] | tuple[str, ...],
    folds: int,
    seed: int,
    masc_variance: float = DEFAULT_MASC_VARIANCE,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
    on_step: Callable[[str], None] | None = None,
    baselines: bool = True,
) -> list[pd.DataFrame]:
    """The flag tables (``flags.ISSUE_COLUMNS``) of one checkpoint: every probe on every layer of ``layers``,
    then (``baselines``) the network's softmax, its disagreement and deep k-NN on its last probed layer.
    ``on_step(name)`` is called after the forward pass, each probe and the baselines (a progress bar's update)."""
    step = on_step or (lambda name: None)
    last = model.probe_layers[-1]
    outputs = network_outputs(model, images, list(dict.fromkeys([*layers, last])), batch_size, torch.device(device))
    step("activations")
    tables = []
    for layer in layers:
        for probe in probes:
            tables.append(score_layer(outputs.features[layer], given, index, layer, probe, folds, seed, masc_variance))
            step(f"{probe} on {layer}")
    if not baselines:
        return tables
    tables.append(network_softmax_issues(outputs.logits, given, index))
    tables.append(network_disagreement_issues(outputs.logits, given, index))
    tables.append(deep_knn_issues(outputs.features[last], given, index, layer=last))
    step("baselines")
    return tables


def _checkpoint_paths(checkpoints: list[str], epochs: list[int]) -> dict[int, Path]:
    by_name = {Path(path).name: Path(path) for path in checkpoints}
    missing = [epoch for epoch in epochs if checkpoint_name(epoch) not in by_name]
    if missing:
        raise ValueError(f"no checkpoint file given for epochs {missing} (given: {sorted(by_name)})")
    return {epoch: by_name[checkpoint_name(epoch)] for epoch in epochs}


@dataclass(frozen=True)
class FlagOptions:
    """How a run's labels are flagged: the flagged layers, the probes, the folds, the seed of the folds and of
    the bootstrap (the run's), MASC's variance, the forward pass's batch size and device, the resamples."""

    layers: list[str]
    probes: list[str]
    folds: int = DEFAULT_FOLDS
    seed: int = 0
    masc_variance: float = DEFAULT_MASC_VARIANCE
    batch_size: int = 1000
    device: torch.device = torch.device("cpu")
    resamples: int = DEFAULT_RESAMPLES

    def as_metadata(self) -> dict[str, Any]:
        return {**asdict(self), "device": str(self.device)}


def _flag_run(
    run_json: Path | str, paths: dict[int, Path], data: TrainData, index: np.ndarray, options: FlagOptions
) -> pd.DataFrame:
    """The flag rows of every planned checkpoint (and the pixel baseline, repeated at each), one table."""
    is_wrong = data.train_noisy != data.train_true
    started = time.perf_counter()
    pixel = pixel_logreg_issues(data.train_images, data.train_noisy, index, options.folds, options.seed)
    log.info("pixel logistic regression, %d-fold: %.1fs", options.folds, time.perf_counter() - started)
    frames = []
    for epoch, path in paths.items():
        started = time.perf_counter()
        tables = checkpoint_issues(
            model_from_run(run_json, path),
            data.train_images,
            data.train_noisy,
            index,
            options.layers,
            options.probes,
            options.folds,
            options.seed,
            options.masc_variance,
            options.batch_size,
            options.device,
        )
        frames += [issue_rows(table, epoch, is_wrong) for table in [*tables, pixel]]
        log.info("flagged epoch %d (%d methods) in %.1fs", epoch, len(tables) + 1, time.perf_counter() - started)
    return pd.concat(frames, ignore_index=True)


def label_issue_run(
    prepared_dir: Path | str,
    labels: Path | str,
    run_json: Path | str,
    checkpoints: list[str],
    scores: Path | str,
    out: Path | str,
    metrics_out: Path | str,
    pair: str,
    corruption: int,
    seed: int,
    options: FlagOptions,
    checkpoint_mode: str = "peak_and_final",
) -> None:
    """Flag one run's training labels at its planned checkpoints and score the flags (module docstring).
    ``options.seed`` is replaced by the run's ``seed``."""
    started = time.perf_counter()
    options = replace(options, seed=int(seed))
    run = load_run_data(prepared_dir, labels, int(corruption))
    index = train_index(labels)
    score_table = read_parquet(scores, what="run score table")
    epochs = read_json(run_json, what="run summary")["checkpoint_epochs"]
    plan = checkpoints_to_flag(score_table, epochs, checkpoint_mode)
    log.info(
        "flagging %s/c%s/s%s at epochs %s (peak %d, chosen on %s): layers %s, probes %s, %d folds; %d of %d wrong",
        pair, corruption, seed, plan.epochs, plan.peak_epoch, plan.peak_chosen_on, options.layers, options.probes,
        options.folds, int((run.data.train_noisy != run.data.train_true).sum()), len(index),
    )  # fmt: skip
    issues = _flag_run(run_json, _checkpoint_paths(checkpoints, plan.epochs), run.data, index, options)
    choices = {epoch: truth_free_choice(score_table, epoch, options.layers, options.probes) for epoch in plan.epochs}
    counts = bootstrap_counts(len(index), options.resamples, options.seed) if options.resamples else None
    identity = run_identity(pair, corruption, seed)
    metrics = metrics_table(issues, plan.roles, choices, counts, index)
    metrics = metrics.assign(**identity, peak_chosen_on=plan.peak_chosen_on)
    metadata = {
        **identity,
        "peak_epoch": plan.peak_epoch,
        "final_epoch": plan.final_epoch,
        "peak_chosen_on": plan.peak_chosen_on,
        "settings": {**options.as_metadata(), "checkpoints": checkpoint_mode},
        "calibration": CALIBRATION,
        "seconds": round(time.perf_counter() - started, 1),
        "latentgen_version": __version__,
    }
    write_parquet(issues, out, metadata=metadata)
    write_parquet(metrics[[*identity, "peak_chosen_on", *METRICS_COLUMNS]], metrics_out, metadata=metadata)
    log.info("wrote %d flag rows and %d metric rows in %.1fs", len(issues), len(metrics), metadata["seconds"])


def read_metrics(paths: list[str]) -> pd.DataFrame:
    """Every run's metrics table, one frame (the aggregate's and the figure's input)."""
    return pd.concat([read_parquet(path, what="label-issue metrics table") for path in paths], ignore_index=True)
