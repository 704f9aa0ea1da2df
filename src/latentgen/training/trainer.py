"""Training on corrupted labels, resumable, with checkpoints along the way.

The whole dataset lives on the device as one uint8 tensor; a batch is an index into it, so there is
no per-sample Python work.  Every source of randomness is derived from the run's seed:
  * initialization: ``torch.manual_seed(seed)`` right before the model is built;
  * batch order: the dataset's own order (``shuffle=False``, as the authors' corrupted-label loader),
    or, with ``shuffle=True``, a fresh generator seeded with (seed, epoch) each epoch.
Because the order of epoch e does not depend on how many epochs ran in this process, a run resumed
from its saved state (model, optimizer, history) continues exactly as an uninterrupted run would.

Defaults follow the authors' code (docs/architecture.md, "Paper text, authors' code, latentgen"):
inputs in [-1, 1] (``normalize="half"``), no shuffling, and the stop rule of their trainers: the
*running* accuracy of an epoch (over its minibatches, on the corrupted labels) reaching the threshold.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from latentgen import __version__
from latentgen.training.learning import LEARNING_CHECK_EPOCH, LEARNING_TOLERANCE, has_learned
from latentgen.common.devices import assign_device
from latentgen.common.fileio import file_sha256, read_json, save_torch, write_json, write_parquet
from latentgen.data.arrays import TrainData, to_unit_float
from latentgen.training.models import ProbedNetwork, build
from latentgen.training.run_files import RunFiles
from latentgen.training.resume import load_resume_state, save_resume_state, start_fresh
from latentgen.training.settings import TrainSettings, input_statistics

log = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """The loss stopped being finite: scores from such a run would be meaningless."""


@dataclass
class DeviceData:
    """The dataset moved to the device once; batches are slices of these tensors."""

    train_images: torch.Tensor
    train_noisy: torch.Tensor
    train_true: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    @classmethod
    def from_arrays(cls, data: TrainData, device: torch.device) -> DeviceData:
        def put(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.array(array, order="C")).to(
                device
            )  # a writable copy: labels from Arrow are read-only

        return cls(
            put(data.train_images),
            put(data.train_noisy),
            put(data.train_true),
            put(data.test_images),
            put(data.test_labels),
        )


def build_model(settings: TrainSettings, data: TrainData) -> ProbedNetwork:
    torch.manual_seed(settings.seed)
    model = build(settings.model, data.input_shape, data.num_classes, dropout=settings.dropout)
    model.set_input_normalization(*input_statistics(settings.normalize, data.train_images))
    return model


def build_optimizer(settings: TrainSettings, model: nn.Module) -> torch.optim.Optimizer:
    if settings.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum)
    if settings.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings.lr)
    raise ValueError(f"unknown optimizer {settings.optimizer!r}; choose 'sgd' or 'adam'")


def epoch_seed(seed: int, epoch: int) -> int:
    """The generator seed of one epoch's sample order."""
    return seed * 1_000_003 + epoch


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """The sample order of one epoch: the dataset's order, or shuffled as a function of (seed, epoch) only."""
    if not shuffle:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=generator)


@torch.no_grad()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: list[torch.Tensor], batch_size: int
) -> tuple[list[float], float]:
    """Accuracy against each label vector and the mean loss against the first, in eval mode."""
    model.eval()
    correct = [torch.zeros((), device=images.device) for _ in labels]
    loss_sum = torch.zeros((), device=images.device)
    for start in range(0, images.shape[0], batch_size):
        logits = model(to_unit_float(images[start : start + batch_size]))
        predicted = logits.argmax(1)
        for i, target in enumerate(labels):
            correct[i] += (predicted == target[start : start + batch_size]).sum()
        loss_sum += nn.functional.cross_entropy(logits, labels[0][start : start + batch_size], reduction="sum")
    n = images.shape[0]
    return [c.item() / n for c in correct], loss_sum.item() / n


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    dev: DeviceData,
    settings: TrainSettings,
    epoch: int,
    progress: bool,
) -> tuple[float, float]:
    """One pass over the training set; returns the mean minibatch loss and the running accuracy on the
    corrupted labels (each minibatch's predictions before its update, what the authors' stop rule reads).

    Both are accumulated on the device and read once at the end, so a GPU never waits on the host.
    """
    model.train()
    n = dev.train_images.shape[0]
    order = epoch_order(n, settings.seed, epoch, settings.shuffle).to(dev.train_images.device)
    loss_sum = torch.zeros((), device=dev.train_images.device)
    correct = torch.zeros((), device=dev.train_images.device, dtype=torch.int64)
    starts = range(0, n, settings.batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc=f"epoch {epoch}", leave=False, unit="batch")
    for start in starts:
        index = order[start : start + settings.batch_size]
        logits = model(to_unit_float(dev.train_images[index]))
        loss = nn.functional.cross_entropy(logits, dev.train_noisy[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * index.shape[0]
        correct += (logits.detach().argmax(1) == dev.train_noisy[index]).sum()
    return loss_sum.item() / n, correct.item() / n


def measure_epoch(
    model: nn.Module,
    dev: DeviceData,
    settings: TrainSettings,
    epoch: int,
    running: tuple[float, float] | None,
    seconds: float,
) -> dict[str, Any]:
    """One history row; ``running`` is the epoch's (mean minibatch loss, running accuracy), None at epoch 0."""
    (acc_noisy, acc_true), eval_loss = evaluate(
        model, dev.train_images, [dev.train_noisy, dev.train_true], settings.eval_batch_size
    )
    (acc_test,), test_loss = evaluate(model, dev.test_images, [dev.test_labels], settings.eval_batch_size)
    # epoch 0 has no minibatches: its loss and running accuracy are those of a full pass at initialization
    train_loss, running_accuracy = running if running is not None else (eval_loss, acc_noisy)
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_accuracy_running": running_accuracy,
        "train_accuracy_corrupted": acc_noisy,
        "train_accuracy_true": acc_true,
        "test_accuracy": acc_test,
        "test_loss": test_loss,
        "seconds": seconds,
    }


def _save_checkpoint(files: RunFiles, model: nn.Module, epoch: int, checkpoint_sha256: dict[str, str]) -> None:
    """Save one checkpoint and record its sha256 (run.json carries it; velpic_edit and score verify it)."""
    path = files.checkpoint(epoch)
    checkpoint_sha256[path.name] = save_torch(model.state_dict(), path)


def _stop_accuracy(row: dict[str, Any], settings: TrainSettings) -> float:
    """The accuracy the stop rule reads: the epoch's running accuracy over its minibatches (the authors'), or a full
    pass after it."""
    if settings.stop_on == "running":
        return row["train_accuracy_running"]
    return row["train_accuracy_corrupted"]


def _stop_reason(row: dict[str, Any], settings: TrainSettings) -> str | None:
    # the first epoch (0, or where a run starts from given weights) never stops a run: its "running" accuracy
    # is a full pass over the weights it starts from
    if row["epoch"] > settings.start_epoch and _stop_accuracy(row, settings) >= settings.stop_accuracy:
        return "reached_stop_accuracy"
    if row["epoch"] >= settings.max_epochs:
        return "reached_max_epochs"
    return None


def _check_finite(row: dict[str, Any], files: RunFiles, model: nn.Module) -> None:
    """The epoch's losses and the weights it ends with: the minibatch loss is measured before each
    update, so a last update that blows up shows only in the weights (and the evaluation loss)."""
    weights_finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    if not (np.isfinite(row["train_loss"]) and np.isfinite(row["test_loss"]) and weights_finite):
        raise TrainingDivergedError(
            f"training of {files.root} diverged at epoch {row['epoch']} (loss {row['train_loss']}, test loss "
            f"{row['test_loss']}, weights {'finite' if weights_finite else 'not finite'}); no checkpoint of this "
            "epoch was kept. Lower the learning rate for this model and rerun."
        )


def _warn_if_not_learning(row: dict[str, Any], num_classes: int, files: RunFiles) -> None:
    """A dead network would make every figure of its run meaningless: say so in the job log (the claims
    table flags the same runs by the same rule)."""
    if row["epoch"] == LEARNING_CHECK_EPOCH and not has_learned(
        row["train_loss"], num_classes, row["train_accuracy_true"]
    ):
        log.warning(
            "run %s did not learn: training loss %.4f after epoch %d is within %d %% of ln K = %.4f, "
            "the loss of a uniform guess, and its accuracy on the clean training labels is %.3f, near "
            "chance (expected only when every label is random); its probes and figures show an "
            "untrained network. Lower the learning rate or check the data.",
            files.root,
            row["train_loss"],
            row["epoch"],
            round(100 * LEARNING_TOLERANCE),
            np.log(num_classes),
            row["train_accuracy_true"],
        )


def _log_epoch(row: dict[str, Any]) -> None:
    log.info(
        "epoch %4d  loss %.4f  running %.4f  train(corrupted) %.4f  train(true) %.4f  test %.4f  %.1fs",
        row["epoch"],
        row["train_loss"],
        row["train_accuracy_running"],
        row["train_accuracy_corrupted"],
        row["train_accuracy_true"],
        row["test_accuracy"],
        row["seconds"],
    )


def _start_or_resume(
    files: RunFiles,
    settings: TrainSettings,
    model: ProbedNetwork,
    optimizer: torch.optim.Optimizer,
    dev: DeviceData,
    start_weights: dict[str, torch.Tensor] | None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(history, checkpoint hashes): an interrupted run's saved ones, with its model and optimizer restored; or a
    fresh start, its first epoch measured and checkpointed."""
    state = load_resume_state(files, settings)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        log.info("resuming %s after epoch %d", files.root, state["history"][-1]["epoch"])
        return state["history"], dict(state.get("checkpoint_sha256", {}))
    start_fresh(files)
    if start_weights is not None:
        model.load_state_dict(start_weights)
    history = [measure_epoch(model, dev, settings, settings.start_epoch, None, 0.0)]
    hashes: dict[str, str] = {}
    _save_checkpoint(files, model, settings.start_epoch, hashes)
    save_resume_state(files, settings, model, optimizer, history, hashes)
    _log_epoch(history[0])
    return history, hashes


def train(
    data: TrainData,
    settings: TrainSettings,
    run_dir: Path | str,
    provenance: dict[str, Any] | None = None,
    device: str = "auto",
    start_weights: dict[str, torch.Tensor] | None = None,
    reuse_finished: bool = False,
) -> dict[str, Any]:
    """Train one run into ``run_dir``, resuming an interrupted run with the same settings; with
    ``reuse_finished``, a run that finished with the same settings and provenance is restored, not trained again.

    Writes ``checkpoints/epoch_XXXX.pt`` (model state dicts) at the scheduled epochs and the final
    one, ``history.parquet`` (one row per epoch) and, last, ``run.json``; returns run.json's content.
    ``start_weights`` (with ``settings.start_epoch`` > 0): the state dict the run starts from at that epoch,
    instead of its initialization at epoch 0; the optimizer starts fresh.  Its first checkpoint holds them.
    """
    files = RunFiles(Path(run_dir))
    if reuse_finished:
        restored = restore_finished(files, settings, provenance or {})
        if restored is not None:
            return restored
    dev_kind = assign_device(device)  # auto: the CPU, the one visible GPU, or a free one of several
    model = build_model(settings, data).to(dev_kind)
    optimizer = build_optimizer(settings, model)
    dev = DeviceData.from_arrays(data, dev_kind)
    progress = sys.stderr.isatty()
    if (start_weights is not None) != (settings.start_epoch > 0):
        raise ValueError("start_weights are given exactly when settings.start_epoch > 0")

    history, hashes = _start_or_resume(files, settings, model, optimizer, dev, start_weights)
    reason = _stop_reason(history[-1], settings)
    while reason is None:
        epoch = history[-1]["epoch"] + 1
        started = time.perf_counter()
        running = train_one_epoch(model, optimizer, dev, settings, epoch, progress)
        row = measure_epoch(model, dev, settings, epoch, running, 0.0)
        row["seconds"] = time.perf_counter() - started
        _check_finite(row, files, model)
        history.append(row)
        _log_epoch(row)
        _warn_if_not_learning(row, data.num_classes, files)
        reason = _stop_reason(row, settings)
        if reason is not None or settings.schedule.is_checkpoint(epoch):
            _save_checkpoint(files, model, epoch, hashes)
        save_resume_state(files, settings, model, optimizer, history, hashes)

    return _finish(files, settings, history, reason, provenance, dev_kind, hashes)


def _finish(
    files: RunFiles,
    settings: TrainSettings,
    history: list[dict[str, Any]],
    reason: str,
    provenance: dict[str, Any] | None,
    device: torch.device,
    checkpoint_sha256: dict[str, str],
) -> dict[str, Any]:
    final_epoch = history[-1]["epoch"]
    epochs = [
        row["epoch"]
        for row in history  # the first epoch always has a checkpoint (0, or the start)
        if row["epoch"] in (settings.start_epoch, final_epoch) or settings.schedule.is_checkpoint(row["epoch"])
    ]
    paths = [files.checkpoint(epoch) for epoch in epochs]
    summary = {
        **(provenance or {}),
        "settings": dataclasses.asdict(settings),
        "fingerprint": settings.fingerprint(),
        "final_epoch": final_epoch,
        "checkpoint_epochs": epochs,
        # recorded when each checkpoint was saved (a resume state from before hashes existed: hashed now)
        "checkpoint_sha256": {path.name: checkpoint_sha256.get(path.name) or file_sha256(path) for path in paths},
        "stop_reason": reason,
        "final": {k: v for k, v in history[-1].items() if k != "epoch"},
        "device": str(device),
        "latentgen_version": __version__,
        "torch_version": torch.__version__,
    }
    write_parquet(pd.DataFrame(history), files.history, metadata=summary)
    # the history's column order too: write_json sorts keys
    write_json({"summary": summary, "history": history, "columns": list(history[-1])}, files.finished)
    write_json(summary, files.run_json)
    files.resume.unlink(missing_ok=True)  # the final checkpoint holds the weights; free the disk
    log.info("finished %s at epoch %d (%s)", files.root, final_epoch, reason)
    return summary


def restore_finished(files: RunFiles, settings: TrainSettings, provenance: dict[str, Any]) -> dict[str, Any] | None:
    """run.json and the history of a run that finished with these settings (fingerprint) and this provenance (data,
    labels, what was excluded, the training code), written back when every checkpoint still has its recorded
    sha256; None otherwise.  Snakemake reruns a job whose input was rewritten even when its content is the same
    (the clean variant's flags, rewritten whenever the label-issue stage reruns): this keeps such a rerun from
    training again."""
    if not files.finished.exists():
        return None
    record = read_json(files.finished, what="finished-run record")
    summary = record["summary"]
    same = summary.get("fingerprint") == settings.fingerprint() and all(
        summary.get(key) == value for key, value in provenance.items()
    )
    checkpoints = summary.get("checkpoint_sha256", {})
    intact = all(
        files.checkpoints.joinpath(name).exists() and file_sha256(files.checkpoints / name) == digest
        for name, digest in checkpoints.items()
    )
    if not (same and intact):
        return None
    write_parquet(pd.DataFrame(record["history"])[record["columns"]], files.history, metadata=summary)
    write_json(summary, files.run_json)
    log.info("reusing %s: it finished at epoch %d with these settings and data", files.root, summary["final_epoch"])
    return summary
