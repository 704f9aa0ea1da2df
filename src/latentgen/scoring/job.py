"""The score job: every checkpoint of one run, in epoch order, extracted and scored, resuming per checkpoint.

One job per run, not per checkpoint (planning 15,000 checkpoints as jobs took minutes, docs/performance.md): it
resumes instead. Each checkpoint's scores are a fragment (``fragments_dir/epoch_XXXX.parquet``) keyed by the
checkpoint's sha256, the settings and the code, kept by a rerun after a kill or a change that leaves them as they
were; activations live in ``activations_dir/epoch_XXXX/`` while scored (after only with ``keep_activations``), and
kept ones of the same checkpoint and extraction are read, not extracted again.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from latentgen import __version__
from latentgen.common.devices import assign_device
from latentgen.common.fileio import read_json, write_parquet
from latentgen.common.pairs import run_identity
from latentgen.data.runs import RunData, load_run_data
from latentgen.scoring.activations import extract_activations
from latentgen.scoring.cache import (
    ScoreJob,
    ScoreSettings,
    fragment_key,
    kept_activations,
    kept_fragment,
    remove_unscheduled,
)
from latentgen.scoring.checkpoint import score_checkpoint
from latentgen.training.checkpoints import model_from_run, verify_checkpoint

log = logging.getLogger("latentgen")


def _extract_checkpoint(
    run: RunData,
    run_json: Path | str,
    checkpoint: Path | str,
    out_dir: Path,
    key: dict[str, Any],
    dtype: str,
    batch_size: int,
    device: torch.device,
) -> None:
    """Write one checkpoint's activations (latentgen.scoring.activations), their key in the manifest."""
    started = time.perf_counter()
    extract_activations(
        model_from_run(run_json, checkpoint),
        run.data.train_images,
        run.data.test_images,
        out_dir,
        dtype=dtype,
        batch_size=batch_size,
        device=device,
        provenance={"checkpoint": str(checkpoint), "key": key, "latentgen_version": __version__},
    )
    log.info("extracted %s activations of %s in %.1fs", dtype, checkpoint, time.perf_counter() - started)


def _checkpoint_scores(
    run: RunData,
    run_json: Path | str,
    summary: dict[str, Any],
    checkpoint: Path,
    fragments_dir: Path,
    activations_dir: Path,
    pair: str,
    corruption: int,
    seed: int,
    settings: ScoreSettings,
    keep_activations: bool,
    device: torch.device,
) -> tuple[pd.DataFrame, bool]:
    """One checkpoint's scores, and whether they were kept from an earlier job (its fragment still current)."""
    # first: kept scores are keyed by the hash run.json records, which a damaged file still matches
    verify_checkpoint(run_json, summary, checkpoint)
    sha256 = summary.get("checkpoint_sha256", {}).get(checkpoint.name)
    fragment = fragments_dir / f"{checkpoint.stem}.parquet"
    key = fragment_key(sha256, asdict(settings))
    frame = kept_fragment(fragment, key)
    if frame is not None:
        return frame, True
    activations = activations_dir / checkpoint.stem
    extraction_key = settings.extraction_key(sha256)
    if not kept_activations(activations, extraction_key):
        _extract_checkpoint(
            run, run_json, checkpoint, activations, extraction_key, settings.dtype, settings.batch_size, device
        )
    frame = _score_checkpoint(run, summary, checkpoint, activations, pair, corruption, seed, settings, device)
    write_parquet(frame, fragment, metadata=_fragment_metadata(frame, settings, summary, key))
    if not keep_activations:
        shutil.rmtree(activations)
    return frame, False


def _score_checkpoint(
    run: RunData,
    summary: dict[str, Any],
    checkpoint: Path,
    activations: Path,
    pair: str,
    corruption: int,
    seed: int,
    settings: ScoreSettings,
    device: torch.device,
) -> pd.DataFrame:
    started = time.perf_counter()
    identity = {**run_identity(pair, corruption, seed), "epoch": int(checkpoint.stem.removeprefix("epoch_"))}
    frame = score_checkpoint(
        checkpoint,
        activations,
        run.data,
        summary["settings"]["model"],
        settings.variance,
        identity,
        layers=list(settings.layers),
        device=device,
        batch_size=settings.batch_size,
        split=run.data.holdout(settings.holdout),
        **({} if settings.probes is None else {"probes": list(settings.probes)}),
    )
    # which run of the setting: null = standard training, E = the run edited at epoch E (its own run)
    frame["edit_epoch"] = pd.array([settings.edit_epoch] * len(frame), dtype="Int64")
    log.info("scored %s in %.1fs", checkpoint, time.perf_counter() - started)
    return frame


def _fragment_metadata(
    frame: pd.DataFrame, settings: ScoreSettings, summary: dict[str, Any], key: str
) -> dict[str, Any]:
    return {
        **frame.iloc[0][["pair", "model", "dataset", "corruption", "seed", "epoch"]].to_dict(),
        "masc_variance": settings.variance,
        "holdout": settings.holdout,
        "latentgen_version": __version__,
        "run_fingerprint": summary["fingerprint"],
        "fragment_key": key,
    }


def _test_summary(frame: pd.DataFrame) -> str:
    test = frame[frame.split == "test"]
    model_test = test[test.probe == "model"].accuracy.iloc[0]
    selected = test[test.probe == "selected"]
    if not len(selected):
        return f"{model_test:.4f}, nothing held out, nothing selected"
    return f"{model_test:.4f}, selected {selected.layer.iloc[0]} (held-out choice) test {selected.accuracy.iloc[0]:.4f}"


def score_run(job: ScoreJob, settings: ScoreSettings) -> None:
    """Every checkpoint of one run, in epoch order: its activations (extracted, or read where kept), the
    configured probes, the model and the transfers (latentgen.scoring.checkpoint), as one table.
    (How it resumes: the module docstring.)
    """
    prepared_dir, labels, run_json, checkpoints = job.prepared_dir, job.labels, job.run_json, job.checkpoints
    fragments_dir, activations_dir, out = job.fragments_dir, job.activations_dir, job.out
    pair, corruption, seed, keep_activations = job.pair, job.corruption, job.seed, job.keep_activations
    started = time.perf_counter()
    run = load_run_data(prepared_dir, labels, int(corruption))
    summary = read_json(run_json, what="run summary")
    # the slice the network was kept from, redrawn from the label table: refuse to rank on any other
    run.data.holdout(settings.holdout).check(summary.get("held_out"), str(run_json))
    fragments_dir, activations_dir = Path(fragments_dir), Path(activations_dir)
    device = assign_device(settings.device)
    frames = []
    for index, checkpoint in enumerate(sorted(checkpoints), 1):
        epoch_started = time.perf_counter()
        frame, kept = _checkpoint_scores(
            run,
            run_json,
            summary,
            Path(checkpoint),
            fragments_dir,
            activations_dir,
            pair,
            corruption,
            seed,
            settings,
            keep_activations,
            device,
        )
        how = "scores kept from an earlier job" if kept else "scored"
        seconds = time.perf_counter() - epoch_started
        log.info(
            "checkpoint %d of %d, %s: %s in %.1fs; model test %s",
            index,
            len(checkpoints),
            Path(checkpoint).name,
            how,
            seconds,
            _test_summary(frame),
        )
        frames.append(frame)
    _remove_unscheduled_files(checkpoints, fragments_dir, activations_dir, keep_activations)
    table = pd.concat(frames, ignore_index=True).sort_values(["epoch", "layer", "probe", "split"], kind="stable")
    identity = run_identity(pair, corruption, seed)
    metadata = {**identity, "checkpoints": len(frames), "run_fingerprint": summary["fingerprint"]}
    write_parquet(table, out, metadata={**metadata, "latentgen_version": __version__})
    log.info("scored %d checkpoints of %s in %.1fs", len(frames), run_json, time.perf_counter() - started)


def _remove_unscheduled_files(
    checkpoints: list[str], fragments_dir: Path, activations_dir: Path, keep_activations: bool
) -> None:
    """Fragments and activations of epochs the run no longer has; activations not kept."""
    kept = {Path(c).stem for c in checkpoints}
    remove_unscheduled(fragments_dir, "epoch_*.parquet", {f"{stem}.parquet" for stem in kept})
    if activations_dir.exists():
        remove_unscheduled(activations_dir, "epoch_*", kept if keep_activations else set())
        with contextlib.suppress(OSError):  # left in place when it still holds an edited run's directory
            activations_dir.rmdir()
