"""A run's checkpoints as training recorded them: verified against run.json, loaded as a model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from latentgen.common.fileio import DamagedFileError, read_json, verify_sha256
from latentgen.training.models import load_checkpoint

log = logging.getLogger("latentgen")


def checkpoint_advice(run_json: Path | str) -> str:
    return (
        f"Retrain this run with `snakemake --forcerun {run_json}` (plus your usual options): it is trained "
        "from scratch (bit-identical on a CPU) and only its own score job follows."
    )


def verify_checkpoint(run_json: Path | str, summary: dict[str, Any], checkpoint: Path | str) -> None:
    """Refuse a checkpoint whose bytes differ from what training recorded in run.json.

    A torch checkpoint is a zip archive without a checksum over tensor data: a flipped byte there loads
    silently as a wrong weight.
    """
    recorded = summary.get("checkpoint_sha256")
    if recorded is None:
        raise DamagedFileError(
            run_json, "run summary", "It records no checkpoint hashes. " + checkpoint_advice(run_json)
        )
    name = Path(checkpoint).name
    if name not in recorded:
        raise DamagedFileError(
            checkpoint, "checkpoint", f"{run_json} records no checkpoint of that name. " + checkpoint_advice(run_json)
        )
    verify_sha256(checkpoint, recorded[name], "checkpoint", checkpoint_advice(run_json))


def model_from_run(run_json: Path | str, checkpoint: Path | str) -> torch.nn.Module:
    summary = read_json(run_json, what="run summary")
    verify_checkpoint(run_json, summary, checkpoint)
    return load_checkpoint(
        checkpoint,
        summary["settings"]["model"],
        summary["input_shape"],
        summary["num_classes"],
        dropout=summary["settings"]["dropout"],
        advice=checkpoint_advice(run_json),
    )
