"""One function per workflow stage, named as its rule and its script: what each Snakemake script calls
(with keyword arguments), testable without Snakemake.  docs/architecture.md maps each stage to the module
holding its logic.

Each stage takes plain paths and values, logs its progress to the job's log file, and writes its
outputs atomically.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from latentgen import __version__, datasets, training
from latentgen.activations import extract_activations
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
from latentgen.runs import load_run_data
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
        "from scratch (bit-identical on a CPU) and only its own extract and score jobs follow."
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


def extract(
    prepared_dir: Path | str,
    labels: Path | str,
    run_json: Path | str,
    checkpoint: Path | str,
    out_dir: Path | str,
    corruption: int,
    dtype: str,
    batch_size: int,
    device: str,
) -> None:
    started = time.perf_counter()
    run = load_run_data(prepared_dir, labels, int(corruption))
    model = _model_from_run(run_json, checkpoint)
    extract_activations(
        model,
        run.data.train_images,
        run.data.test_images,
        out_dir,
        dtype=dtype,
        batch_size=batch_size,
        device=assign_device(device),
        provenance={"checkpoint": str(checkpoint), "latentgen_version": __version__},
    )
    log.info("extracted %s activations of %s in %.1fs", dtype, checkpoint, time.perf_counter() - started)


def score(
    prepared_dir: Path | str,
    labels: Path | str,
    run_json: Path | str,
    checkpoint: Path | str,
    activations_dir: Path | str,
    out: Path | str,
    pair: str,
    corruption: int,
    seed: int,
    epoch: int,
    variance: float,
    layers: list[str],
    batch_size: int,
    device: str,
    holdout: float = 0.0,
    probes: list[str] | None = None,
    edit_epoch: int | None = None,
) -> None:
    from latentgen.scoring import score_checkpoint  # the probes pull in scikit-learn: only where needed

    started = time.perf_counter()
    run = load_run_data(prepared_dir, labels, int(corruption))
    summary = read_json(run_json, what="run summary")
    verify_checkpoint(run_json, summary, checkpoint)
    identity = {**run_identity(pair, corruption, seed), "epoch": int(epoch)}
    frame = score_checkpoint(
        checkpoint,
        activations_dir,
        run.data,
        summary["settings"]["model"],
        variance,
        identity,
        layers=layers,
        device=assign_device(device),
        batch_size=batch_size,
        holdout=holdout,
        **({} if probes is None else {"probes": list(probes)}),
    )
    # which run of the setting: null = standard training, E = the run edited at epoch E (its own run)
    frame["edit_epoch"] = pd.array([edit_epoch] * len(frame), dtype="Int64")
    write_parquet(
        frame,
        out,
        metadata={
            **identity,
            "masc_variance": variance,
            "holdout": holdout,
            "latentgen_version": __version__,
            "run_fingerprint": summary["fingerprint"],
        },
    )
    test = frame[frame.split == "test"]
    model_test = test[test.probe == "model"].accuracy.iloc[0]
    selected = test[test.probe == "selected"]
    choice = (
        f"selected {selected.layer.iloc[0]} (held-out choice) test {selected.accuracy.iloc[0]:.4f}"
        if len(selected)
        else "nothing held out, nothing selected"
    )
    log.info(
        "scored %s epoch %s in %.1fs: model test %.4f, %s",
        pair,
        epoch,
        time.perf_counter() - started,
        model_test,
        choice,
    )


def collect_run(fragments: list[str], out: Path | str) -> None:
    """One run's per-checkpoint score fragments as one table (what figures read)."""
    frames = [read_parquet(path, what="score fragment") for path in fragments]
    table = pd.concat(frames, ignore_index=True).sort_values(["epoch", "layer", "probe", "split"], kind="stable")
    write_parquet(table, out, metadata={"fragments": len(fragments), "latentgen_version": __version__})


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
