"""Resuming an interrupted run: its saved state (model, optimizer, history) is used only when it was saved under the
same settings; a digest of the state guards against a damaged file."""

from __future__ import annotations

import hashlib
import logging
import shutil
from typing import Any

import torch
from torch import nn

from latentgen.common.fileio import load_torch, save_torch
from latentgen.training.run_files import RunFiles
from latentgen.training.settings import TrainSettings

__all__ = ["load_resume_state", "save_resume_state", "start_fresh", "state_digest"]

log = logging.getLogger("latentgen")


def load_resume_state(files: RunFiles, settings: TrainSettings) -> dict[str, Any] | None:
    """The saved state of an interrupted run with the same settings, else None (start afresh)."""
    if not files.resume.exists():
        return None
    try:
        state = load_torch(files.resume, what="resume state")
    except ValueError as error:
        log.warning("%s; starting the run from scratch", error)
        return None
    if not isinstance(state, dict) or ("digest" in state and state.pop("digest") != state_digest(state)):
        # a torch zip stores no checksum over tensor data: a flipped byte would load as a wrong weight
        log.warning(
            "resume state %s is damaged (its content does not match its digest); starting the run from scratch",
            files.resume,
        )
        return None
    if state.get("fingerprint") != settings.fingerprint():
        log.info("settings changed since %s was saved; starting the run from scratch", files.resume)
        return None
    return state


def start_fresh(files: RunFiles) -> None:
    """Remove what an earlier run with other settings left, so no stale checkpoint survives."""
    shutil.rmtree(files.checkpoints, ignore_errors=True)
    for stale in (files.resume, files.history, files.run_json):
        stale.unlink(missing_ok=True)
    files.checkpoints.mkdir(parents=True, exist_ok=True)


def state_digest(value: Any) -> str:
    """sha256 over a saved state's content (tensor bytes, plain values), so its load can be verified."""
    digest = hashlib.sha256()

    def feed(item: Any) -> None:
        if isinstance(item, torch.Tensor):
            tensor = item.detach().cpu().contiguous()
            digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(item, dict):
            digest.update(f"dict {len(item)}".encode())
            for key in sorted(item, key=repr):
                digest.update(repr(key).encode())
                feed(item[key])
        elif isinstance(item, (list, tuple)):
            digest.update(f"{type(item).__name__} {len(item)}".encode())
            for element in item:
                feed(element)
        else:
            digest.update(repr(item).encode())

    feed(value)
    return digest.hexdigest()


def save_resume_state(
    files: RunFiles,
    settings: TrainSettings,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    history: list[dict[str, Any]],
    checkpoint_sha256: dict[str, str],
) -> None:
    state = {
        "fingerprint": settings.fingerprint(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": history,
        "checkpoint_sha256": checkpoint_sha256,
    }
    save_torch({**state, "digest": state_digest(state)}, files.resume)
