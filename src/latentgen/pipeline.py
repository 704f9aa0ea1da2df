"""One function per workflow stage, named as its rule and its script: what each Snakemake script calls
(with keyword arguments), testable without Snakemake.  docs/architecture.md maps each stage to the module
holding its logic.

Each stage takes plain paths and values, logs its progress to the job's log file, and writes its
outputs atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from latentgen import __version__, datasets, training
from latentgen.activations import MANIFEST as ACTIVATION_MANIFEST
from latentgen.activations import extract_activations, read_activations
from latentgen.devices import assign_device
from latentgen.fileio import (
    DamagedFileError,
    atomic_path,
    file_sha256,
    load_torch,
    parquet_metadata,
    read_json,
    read_parquet,
    save_torch,
    verify_sha256,
    write_parquet,
)
from latentgen.labels import write_label_table
from latentgen.models import load_checkpoint
from latentgen.runs import RunData, load_run_data
from latentgen.summary import write_summary
from latentgen.training import Schedule, TrainSettings

log = logging.getLogger("latentgen")


@contextlib.contextmanager
def logging_to(path: Path | str | None, threads: int | None = None) -> Iterator[None]:
    """Send latentgen's log lines to the job's log file and bound torch's CPU threads to the job's."""
    if threads:
        torch.set_num_threads(int(threads))
    handler: logging.Handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("latentgen")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    except BaseException:
        root.exception("stage failed")
        raise
    finally:
        root.removeHandler(handler)
        handler.close()


def run_identity(pair: str, corruption: int, seed: int) -> dict[str, Any]:
    # a pair is <model>-<dataset>, or <model>-<dataset>-<variant> (e.g. mlp-mnist-dropout; latentgen.config)
    model, dataset = pair.split("-")[:2]
    return {"pair": pair, "model": model, "dataset": dataset, "corruption": int(corruption), "seed": int(seed)}


def prepare_dataset(name: str, out_dir: Path | str, source: str) -> None:
    meta = datasets.prepare(name, Path(out_dir), source=source)
    log.info("prepared %s from %s: %d train, %d test", name, meta["source"], meta["n_train"], meta["n_test"])


def corrupt_labels(
    prepared_dir: Path | str, out: Path | str, seed: int, train_subset: dict | None, test_subset: dict | None
) -> None:
    write_label_table(prepared_dir, out, seed, train_subset, test_subset)
    log.info("wrote label table %s", out)


TRAIN_SETTING_KEYS = (
    "model",
    "optimizer",
    "lr",
    "batch_size",
    "max_epochs",
    "stop_accuracy",
    "momentum",
    "normalize",
    "shuffle",
    "stop_on",
    "dropout",
)


def train_settings(pair_config: dict[str, Any], seed: int, edit: dict[str, Any] | None = None) -> TrainSettings:
    """A pair's validated config (defaults filled by latentgen.config) as the trainer's settings.

    ``edit`` ({epoch, until, weights_sha256}): an edited run, which starts from the VeLPIC-edited weights of
    the pair's checkpoint at ``epoch`` and trains on, with the pair's settings, up to epoch ``until`` in total.
    """
    given = {k: pair_config[k] for k in TRAIN_SETTING_KEYS if k in pair_config}
    if edit is not None:
        given.update(
            max_epochs=int(edit["until"]), start_epoch=int(edit["epoch"]), start_weights=edit["weights_sha256"]
        )
    return TrainSettings(**given, seed=int(seed), schedule=Schedule(**pair_config["checkpoints"]))


def train(
    prepared_dir: Path | str,
    labels: Path | str,
    run_dir: Path | str,
    pair: str,
    corruption: int,
    seed: int,
    pair_config: dict[str, Any],
    device: str,
    edit: dict[str, Any] | None = None,
    edited_weights: Path | str | None = None,
) -> None:
    """Train one run; with ``edit`` ({epoch, until}) and ``edited_weights`` (velpic_edit's file), an edited run."""
    run = load_run_data(prepared_dir, labels, int(corruption))
    start_weights, edit_settings = None, None
    if edit is not None:
        start_weights = load_torch(edited_weights, what="edited weights")
        edit_settings = {**edit, "weights_sha256": file_sha256(edited_weights)}
    settings = train_settings(pair_config, seed, edit_settings)
    identity = {**run_identity(pair, corruption, seed), "edit_epoch": edit["epoch"] if edit else None}
    log.info(
        "training %s/c%s/s%s%s on %d samples (%.1f %% labels changed), device %s",
        pair,
        corruption,
        seed,
        f" from its VeLPIC edit at epoch {edit['epoch']}" if edit else "",
        len(run.data.train_noisy),
        100 * run.provenance["fraction_labels_changed"],
        assign_device(device),
    )
    training.train(
        run.data,
        settings,
        run_dir,
        provenance={
            **identity,
            **run.provenance,
            "input_shape": list(run.data.input_shape),
            "num_classes": run.data.num_classes,
        },
        device=device,
        start_weights=start_weights,
    )


def velpic_edit(
    prepared_dir: Path | str,
    labels: Path | str,
    run_json: Path | str,
    checkpoint: Path | str,
    out: Path | str,
    corruption: int,
    seed: int,
    holdout: float,
    batch_size: int,
    device: str,
) -> None:
    """The VeLPIC-edited weights of one checkpoint (latentgen.editing), the start of an edited run."""
    from latentgen.editing import velpic_edited  # the probes pull in scikit-learn: only where needed

    run = load_run_data(prepared_dir, labels, int(corruption))
    model = _model_from_run(run_json, checkpoint)
    edited = velpic_edited(model, run.data, holdout, int(seed), batch_size, assign_device(device))
    save_torch({name: tensor.detach().cpu() for name, tensor in edited.state_dict().items()}, out)
    log.info("wrote the VeLPIC edit of %s to %s", checkpoint, out)


def _checkpoint_advice(run_json: Path | str) -> str:
    return (
        f"Retrain this run with `snakemake --forcerun {run_json}` (plus your usual options): it is trained "
        "from scratch (bit-identical on a CPU) and only its own score job follows."
    )


def verify_checkpoint(run_json: Path | str, summary: dict[str, Any], checkpoint: Path | str) -> None:
    """Refuse a checkpoint whose bytes differ from what training recorded in run.json.

    A torch checkpoint is a zip archive without a checksum over tensor data: a flipped byte there loads
    silently as a wrong weight.  Runs trained before hashes were recorded are not checked.
    """
    recorded = summary.get("checkpoint_sha256")
    if recorded is None:
        log.warning(
            "%s records no checkpoint hashes (trained by an older latentgen); %s is not verified", run_json, checkpoint
        )
        return
    name = Path(checkpoint).name
    if name not in recorded:
        raise DamagedFileError(
            checkpoint, "checkpoint", f"{run_json} records no checkpoint of that name. " + _checkpoint_advice(run_json)
        )
    verify_sha256(checkpoint, recorded[name], "checkpoint", _checkpoint_advice(run_json))


def _model_from_run(run_json: Path | str, checkpoint: Path | str) -> torch.nn.Module:
    summary = read_json(run_json, what="run summary")
    verify_checkpoint(run_json, summary, checkpoint)
    return load_checkpoint(
        checkpoint,
        summary["settings"]["model"],
        summary["input_shape"],
        summary["num_classes"],
        dropout=summary["settings"].get("dropout", 0.0),  # runs from before dropout: none
        advice=_checkpoint_advice(run_json),
    )


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
    """Write one checkpoint's activations (latentgen.activations), their key in the manifest."""
    started = time.perf_counter()
    extract_activations(
        _model_from_run(run_json, checkpoint),
        run.data.train_images,
        run.data.test_images,
        out_dir,
        dtype=dtype,
        batch_size=batch_size,
        device=device,
        provenance={"checkpoint": str(checkpoint), "key": key, "latentgen_version": __version__},
    )
    log.info("extracted %s activations of %s in %.1fs", dtype, checkpoint, time.perf_counter() - started)


def _kept_activations(directory: Path, key: dict[str, Any]) -> bool:
    """Whether ``directory`` holds the activations ``key`` describes, every file intact.

    A damaged or outdated directory is not an error: it is re-extracted (the log names it)."""
    if not directory.exists():
        return False
    if not (directory / ACTIVATION_MANIFEST).exists():
        log.warning("re-extracting %s: %s is missing", directory, directory / ACTIVATION_MANIFEST)
        return False
    try:
        if read_json(directory / ACTIVATION_MANIFEST, what="activation manifest").get("key") != key:
            log.info("%s holds activations of another checkpoint or setting: re-extracting", directory)
            return False
        read_activations(directory)  # checks every file against the manifest's CRC-32
    except (DamagedFileError, ValueError) as error:
        log.warning("re-extracting %s: %s", directory, error)
        return False
    return True


def _kept_fragment(path: Path, key: str) -> pd.DataFrame | None:
    """The scores an earlier job of this run wrote for a checkpoint, when they are of the same checkpoint,
    settings and code (``key``); a damaged or outdated fragment is scored again (the log names it)."""
    if not path.exists():
        return None
    try:
        if parquet_metadata(path).get("fragment_key") != key:
            return None
        return read_parquet(path, what="score fragment")
    except Exception as error:  # a truncated or overwritten file: score the checkpoint again
        log.warning("%s is damaged (%s): scoring its checkpoint again", path, error)
        return None


def _fragment_key(checkpoint_sha256: str | None, settings: dict[str, Any]) -> str:
    """What a checkpoint's scores depend on: its bytes, and every setting and the code that scored it."""
    text = json.dumps({"checkpoint_sha256": checkpoint_sha256, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _remove_unscheduled(directory: Path, pattern: str, kept: set[str]) -> None:
    """Remove what an earlier training of this run left for checkpoints it no longer has (a retrained run
    may stop at another epoch). Only ``epoch_*`` entries: an edited run's directory lies inside its base run's."""
    for path in directory.glob(pattern):
        if path.name not in kept:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


@dataclass(frozen=True)
class ScoreSettings:
    """How every checkpoint of a run is extracted and scored: the score rule's params."""

    variance: float
    layers: list[str]
    batch_size: int
    dtype: str
    device: str
    code: dict[str, Any]  # stage_code("score"): a fragment scored by other code is scored again
    holdout: float = 0.0
    probes: list[str] | None = None
    edit_epoch: int | None = None

    def extraction_key(self, checkpoint_sha256: str | None) -> dict[str, Any]:
        """What a checkpoint's activations depend on: the probes and scoring settings do not count, so a
        changed probe list re-scores kept activations without extracting them again."""
        return {
            "checkpoint_sha256": checkpoint_sha256,
            "dtype": self.dtype,
            "batch_size": self.batch_size,
            "code": extraction_code(),
        }


def extraction_code() -> str:
    """A digest of the extraction's code (latentgen.fingerprint): kept activations of other code are stale."""
    from latentgen.fingerprint import definition_code

    return definition_code("latentgen.pipeline", "_extract_checkpoint")


def score(
    prepared_dir: Path | str,
    labels: Path | str,
    run_json: Path | str,
    checkpoints: list[str],
    fragments_dir: Path | str,
    activations_dir: Path | str,
    out: Path | str,
    pair: str,
    corruption: int,
    seed: int,
    settings: ScoreSettings,
    keep_activations: bool,
) -> None:
    """Every checkpoint of one run, in epoch order: its activations (extracted, or read where kept), the
    configured probes, the model and the transfers (latentgen.scoring), as one table.

    One job per run, not per checkpoint: planning the paper grid's 15,000 checkpoints as two jobs each took
    minutes (docs/performance.md). The job resumes instead: each checkpoint's scores are written as a
    fragment (``fragments_dir/epoch_XXXX.parquet``) keyed by the checkpoint's sha256, the settings and the
    code, so a rerun after a kill, or with settings that left a checkpoint's scores unchanged, keeps them.
    Activations live in ``activations_dir/epoch_XXXX/`` while their checkpoint is scored, and after it
    only with ``keep_activations``; kept activations of the same checkpoint and extraction settings are
    read, not extracted again.
    """
    started = time.perf_counter()
    run = load_run_data(prepared_dir, labels, int(corruption))
    summary = read_json(run_json, what="run summary")
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
        log.info(
            "checkpoint %d of %d, %s: %s in %.1fs; model test %s",
            index,
            len(checkpoints),
            Path(checkpoint).name,
            "scores kept from an earlier job" if kept else "scored",
            time.perf_counter() - epoch_started,
            _test_summary(frame),
        )
        frames.append(frame)
    kept = {Path(c).stem for c in checkpoints}
    _remove_unscheduled(fragments_dir, "epoch_*.parquet", {f"{stem}.parquet" for stem in kept})
    if activations_dir.exists():
        _remove_unscheduled(activations_dir, "epoch_*", kept if keep_activations else set())
        with contextlib.suppress(OSError):  # left in place when it still holds an edited run's directory
            activations_dir.rmdir()
    table = pd.concat(frames, ignore_index=True).sort_values(["epoch", "layer", "probe", "split"], kind="stable")
    write_parquet(
        table,
        out,
        metadata={
            **run_identity(pair, corruption, seed),
            "checkpoints": len(frames),
            "run_fingerprint": summary["fingerprint"],
            "latentgen_version": __version__,
        },
    )
    log.info("scored %d checkpoints of %s in %.1fs", len(frames), run_json, time.perf_counter() - started)


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
    key = _fragment_key(sha256, asdict(settings))
    frame = _kept_fragment(fragment, key)
    if frame is not None:
        return frame, True
    activations = activations_dir / checkpoint.stem
    extraction_key = settings.extraction_key(sha256)
    if not _kept_activations(activations, extraction_key):
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
    from latentgen.scoring import score_checkpoint  # the probes pull in scikit-learn: only where needed

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
        holdout=settings.holdout,
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


def aggregate(run_tables: list[str], out: Path | str, config_summary: dict[str, Any]) -> None:
    frames = [read_parquet(path, what="run score table") for path in run_tables]
    table = pd.concat(frames, ignore_index=True)
    write_parquet(table, out, metadata={**config_summary, "latentgen_version": __version__, "runs": len(run_tables)})
    log.info("aggregated %d rows from %d runs into %s", len(table), len(run_tables), out)


def figure(
    run_tables: list[str], number: int, out: Path | str, layer_order: dict[str, list[str]], style: dict[str, Any]
) -> None:
    from latentgen.figures import plot_figure

    scores = pd.concat([read_parquet(path, what="run score table") for path in run_tables], ignore_index=True)
    plot_figure(scores, int(number), Path(out), layer_order, style)
    log.info("drew figure %s from %d runs", number, len(run_tables))


def summary(scores: Path | str, out: Path | str, layer_order: dict[str, list[str]]) -> None:
    write_summary(scores, out, layer_order)
    log.info("wrote the summary table %s", out)


def read_histories(paths: list[str]) -> pd.DataFrame:
    """Every run's training history, one row per run and epoch, with the run's identity and number of classes
    (from the provenance training wrote into each history's metadata)."""
    frames = []
    for path in paths:
        run = parquet_metadata(path)
        history = read_parquet(path, what="training history")
        frames.append(
            history.assign(
                pair=run["pair"],
                corruption=int(run["corruption"]),
                seed=int(run["seed"]),
                num_classes=int(run["num_classes"]),
            )
        )
    return pd.concat(frames, ignore_index=True)


def claims(scores: Path | str, histories: list[str], out: Path | str) -> None:
    from latentgen.claims import claims_table

    claims = claims_table(read_parquet(scores, what="scores table"), read_histories(histories))
    # Rounded for reading only: "holds" was decided on the exact values (a 1-in-10,000 test difference is 0.01 pp).
    claims[["value", "reference"]] = claims[["value", "reference"]].round(4)
    with atomic_path(out) as tmp:
        claims.to_csv(tmp, index=False)
    for run in claims[(claims["claim"] == "run_learned") & (claims["holds"] == "no")].itertuples():
        log.warning(
            "%s/c%s/s%s did not learn: training loss %.3f at epoch %s, ln K = %.3f",
            run.pair,
            run.corruption,
            run.seed,
            run.value,
            run.epoch,
            run.reference,
        )
    log.info("%d of %d claims hold; wrote %s", (claims["holds"] == "yes").sum(), len(claims), out)
