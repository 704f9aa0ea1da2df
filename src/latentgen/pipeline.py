"""One function per workflow stage, named as its rule and its script: what each Snakemake script calls
(with keyword arguments), testable without Snakemake.  docs/architecture.md maps each stage to the module
holding its logic.

Each stage takes plain paths and values, logs its progress to the job's log file, and writes its
outputs atomically.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentgen import __version__

from latentgen.data import datasets

from latentgen.training import trainer as training
from latentgen.common.devices import assign_device
from latentgen.common.pairs import run_identity
from latentgen.training.checkpoints import model_from_run
from latentgen.common.fileio import (
    atomic_path,
    file_sha256,
    load_torch,
    parquet_metadata,
    read_json,
    read_parquet,
    save_torch,
    write_parquet,
)
from latentgen.data.labels import write_label_table
from latentgen.data.runs import load_run_data, train_index
from latentgen.data.cleaning import cleaned_split, flags_to_exclude
from latentgen.report.summary import write_summary
from latentgen.training.schedule import Schedule
from latentgen.training.settings import TrainSettings
from latentgen.scoring.cache import ScoreJob, ScoreSettings

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


def prepare_dataset(name: str, out_dir: Path | str, source: str) -> None:
    meta = datasets.prepare(name, Path(out_dir), source=source)
    log.info("prepared %s from %s: %d train, %d test", name, meta["source"], meta["n_train"], meta["n_test"])


def corrupt_labels(
    prepared_dir: Path | str,
    out: Path | str,
    seed: int,
    train_subset: dict | None,
    test_subset: dict | None,
    label_draw: str = "nested",
) -> None:
    write_label_table(prepared_dir, out, seed, train_subset, test_subset, label_draw)
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


def train_settings(
    pair_config: dict[str, Any],
    seed: int,
    edit: dict[str, Any] | None = None,
    holdout: float = 0.0,
    excluded: dict[str, Any] | None = None,
) -> TrainSettings:
    """A pair's validated config (defaults filled by latentgen.config) as the trainer's settings.

    ``edit`` ({epoch, until, weights_sha256}): an edited run, which starts from the VeLPIC-edited weights of
    the pair's checkpoint at ``epoch`` and trains on, with the pair's settings, up to epoch ``until`` in total.
    """
    given = {k: pair_config[k] for k in TRAIN_SETTING_KEYS if k in pair_config}
    if edit is not None:
        given.update(
            max_epochs=int(edit["until"]), start_epoch=int(edit["epoch"]), start_weights=edit["weights_sha256"]
        )
    return TrainSettings(
        **given,
        seed=int(seed),
        schedule=Schedule(**pair_config["checkpoints"]),
        holdout=float(holdout),
        excluded=excluded["indices_sha256"] if excluded else None,
    )


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
    holdout: float = 0.0,
    clean_flags: tuple[Path | str, Path | str] | None = None,
    code: dict[str, Any] | None = None,
) -> None:
    """Train one run; with ``edit`` ({epoch, until}) and ``edited_weights`` (velpic_edit's file), an edited run;
    with ``clean_flags`` (a run's label-issue table and its metrics), the run retrained without the examples its
    truth-free choice flags (latentgen.label_issues.retraining).

    The run's held-out slice (``holdout``, a fraction; latentgen.data.holdout) is withheld: the network never
    trains on it, so scoring can rank probes and layers on it and ``latentgen repair`` can choose on it.
    ``code``: the train stage's code (its params), recorded in run.json; a clean variant that finished with the
    same settings, data, exclusions and code is restored instead of trained again (its flags are rewritten
    whenever the label-issue stage reruns, mostly with the same content)."""
    run = load_run_data(prepared_dir, labels, int(corruption))
    split = run.data.holdout(holdout)
    held_out = split.record()  # the run's slice, whatever else the clean variant leaves out
    start_weights, edit_settings, excluded = None, None, None
    if edit is not None:
        start_weights = load_torch(edited_weights, what="edited weights")
        edit_settings = {**edit, "weights_sha256": file_sha256(edited_weights)}
    if clean_flags is not None:
        split, excluded = _without_flagged(run.data, split, labels, clean_flags)
    settings = train_settings(pair_config, seed, edit_settings, holdout, excluded)
    identity = {**run_identity(pair, corruption, seed), "edit_epoch": edit["epoch"] if edit else None}
    log.info(
        "training %s/c%s/s%s%s on %d samples (%d held out; %.1f %% labels changed), device %s",
        pair,
        corruption,
        seed,
        _variant_note(edit, excluded),
        len(split.fit),
        len(split.held_out),
        100 * run.provenance["fraction_labels_changed"],
        assign_device(device),
    )
    training.train(
        run.data.training_part(split),
        settings,
        run_dir,
        provenance=_run_provenance(run, identity, held_out, excluded, code),
        device=device,
        start_weights=start_weights,
        reuse_finished=excluded is not None,
    )


def _run_provenance(run, identity: dict, held_out: dict, excluded: dict | None, code: dict | None) -> dict:
    """What run.json records beside the settings: which run, its data, the held-out slice, and for a clean
    variant what it left out and the code it trained with (what ``reuse_finished`` compares)."""
    return {
        **identity,
        **run.provenance,
        "held_out": held_out,
        "input_shape": list(run.data.input_shape),
        "num_classes": run.data.num_classes,
        **({"excluded": excluded} if excluded else {}),
        **({"training_code": code} if code else {}),
    }


def _variant_note(edit: dict[str, Any] | None, excluded: dict[str, Any] | None) -> str:
    if edit:
        return f" from its VeLPIC edit at epoch {edit['epoch']}"
    if excluded:
        return (
            f" without the {excluded['n']} examples {excluded['method']}:{excluded['layer']} flags at epoch "
            f"{excluded['epoch']} ({excluded['n_wrong']} of them wrong; {excluded['n_trained_wrong']} wrong left)"
        )
    return ""


def _without_flagged(data, split, labels: Path | str, clean_flags: tuple[Path | str, Path | str]):
    """(the split without the flagged examples, run.json's record of what was removed and what is left wrong)."""

    flagged = flags_to_exclude(*clean_flags)
    index = train_index(labels)
    cleaned = cleaned_split(split, index, flagged)
    wrong = data.train_noisy != data.train_true
    removed = np.setdiff1d(split.fit, cleaned.fit)
    record = {
        **flagged.record(),
        "n_wrong": int(wrong[np.isin(index, flagged.index)].sum()),
        "n_trained": int(len(cleaned.fit)),
        "n_trained_wrong": int(wrong[cleaned.fit].sum()),
        "n_removed_from_fit": int(len(removed)),
    }
    return cleaned, record


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
    """The VeLPIC-edited weights of one checkpoint (latentgen.training.editing), the start of an edited run."""
    from latentgen.training.editing import velpic_edited  # the probes pull in scikit-learn: only where needed

    run = load_run_data(prepared_dir, labels, int(corruption))
    split = run.data.holdout(holdout)
    split.check(read_json(run_json, what="run summary").get("held_out"), str(run_json))
    model = model_from_run(run_json, checkpoint)
    edited = velpic_edited(model, run.data, split, batch_size, assign_device(device))
    save_torch({name: tensor.detach().cpu() for name, tensor in edited.state_dict().items()}, out)
    log.info("wrote the VeLPIC edit of %s to %s", checkpoint, out)


def score(job: ScoreJob, settings: ScoreSettings) -> None:
    """Every checkpoint of one run, extracted and scored in epoch order, resuming per checkpoint
    (latentgen.scoring.job.score_run)."""
    from latentgen.scoring.job import score_run  # the probes pull in scikit-learn and torch: only where needed

    score_run(job, settings)


def aggregate(run_tables: list[str], out: Path | str, config_summary: dict[str, Any]) -> None:
    frames = [read_parquet(path, what="run score table") for path in run_tables]
    table = pd.concat(frames, ignore_index=True)
    write_parquet(table, out, metadata={**config_summary, "latentgen_version": __version__, "runs": len(run_tables)})
    log.info("aggregated %d rows from %d runs into %s", len(table), len(run_tables), out)


def figure(
    run_tables: list[str], number: int, out: Path | str, layer_order: dict[str, list[str]], style: dict[str, Any]
) -> None:
    from latentgen.report.figures import plot_figure

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


def claims(
    scores: Path | str,
    histories: list[str],
    out: Path | str,
    label_issue_metrics: Path | str | None = None,
    retrained: list[str] | None = None,
) -> None:
    """The claims table; with the label-issue metrics, its rows on finding the wrong labels too, and with the
    retrain-comparison tables (``retrained``), those on retraining without the flagged examples."""
    from latentgen.report.claims import append_rows, claims_table  # pandas and scipy: only in this job
    from latentgen.report.claims_label_issues import label_issue_claim_rows
    from latentgen.report.claims_retrained import retrained_claim_rows

    claims = claims_table(read_parquet(scores, what="scores table"), read_histories(histories))
    extra = []
    if label_issue_metrics is not None:
        extra += label_issue_claim_rows(read_parquet(label_issue_metrics, what="label-issue metrics"))
    if retrained:
        tables = [read_parquet(path, what="retrain-comparison table") for path in retrained]
        extra += retrained_claim_rows(pd.concat(tables, ignore_index=True))
    if extra:
        claims = append_rows(claims, extra)
    # Rounded for reading only: outcomes were decided on the exact values (a 1-in-10,000 test difference is 0.01 pp).
    numbers = ["value", "ci_low", "ci_high", "standard_error", "reference", "wrong_label_fraction"]
    claims[numbers] = claims[numbers].round(4)
    with atomic_path(out) as tmp:
        claims.to_csv(tmp, index=False)
    for run in claims[(claims["claim"] == "run_learned") & (claims["outcome"] == "fails")].itertuples():
        log.warning(
            "%s/c%s/s%s did not learn: training loss %.3f at epoch %s, ln K = %.3f",
            run.pair,
            run.corruption,
            run.seed,
            run.value,
            run.epoch,
            run.reference,
        )
    outcomes = claims["outcome"].value_counts().to_dict()
    log.info("%d claims (%s); wrote %s", len(claims), ", ".join(f"{n} {o}" for o, n in outcomes.items()), out)


@dataclass(frozen=True)
class LabelIssueJob:
    """One run: what the job reads (dataset, label table, run.json, checkpoints, the run's scores), where it writes
    (the flags and their metrics) and which run it is."""

    prepared_dir: Path | str
    labels: Path | str
    run_json: Path | str
    checkpoints: list[str]
    scores: Path | str
    out: Path | str
    metrics_out: Path | str
    pair: str
    corruption: int
    seed: int


@dataclass(frozen=True)
class LabelIssueSettings:
    """The config's ``label_issues:`` section and the job's batch size and device."""

    layers: list[str]
    probes: list[str]
    folds: int
    checkpoint_mode: str
    resamples: int
    masc_variance: float
    batch_size: int
    device: str


def label_issues(job: LabelIssueJob, settings: LabelIssueSettings) -> None:
    """One run's wrong-label flags at its peak and final checkpoints, and their metrics against the corruption
    mask (latentgen.label_issues.job.label_issue_run)."""
    # cleanlab, scikit-learn and the probes: imported only by the stage that uses them
    from latentgen.label_issues.job import FlagOptions, label_issue_run

    options = FlagOptions(
        layers=list(settings.layers),
        probes=list(settings.probes),
        folds=int(settings.folds),
        masc_variance=float(settings.masc_variance),
        batch_size=int(settings.batch_size),
        device=assign_device(settings.device),
        resamples=int(settings.resamples),
    )
    label_issue_run(
        prepared_dir=job.prepared_dir,
        labels=job.labels,
        run_json=job.run_json,
        checkpoints=list(job.checkpoints),
        scores=job.scores,
        out=job.out,
        metrics_out=job.metrics_out,
        pair=job.pair,
        corruption=int(job.corruption),
        seed=int(job.seed),
        options=options,
        checkpoint_mode=settings.checkpoint_mode,
    )


def label_issue_metrics(run_tables: list[str], out: Path | str) -> None:
    """Every run's label-issue metrics in one table (a concatenation)."""
    table = pd.concat([read_parquet(path, what="label-issue metrics table") for path in run_tables], ignore_index=True)
    write_parquet(table, out, metadata={"latentgen_version": __version__, "runs": len(run_tables)})
    log.info("aggregated %d label-issue metric rows from %d runs into %s", len(table), len(run_tables), out)


@dataclass(frozen=True)
class RetrainedRun:
    """A run and its clean variant: what the retrain_comparison job reads (latentgen.label_issues.retraining)."""

    scores: Path | str  # the run's score table (the memorized model and its repair)
    clean_run_json: Path | str
    clean_checkpoint: Path | str  # the clean variant's final checkpoint
    prepared_dir: Path | str
    labels: Path | str
    pair: str
    corruption: int
    seed: int


def retrain_comparison(
    run: RetrainedRun, layers: list[str], out: Path | str, batch_size: int = 1000, device: str = "auto"
) -> None:
    """The memorized, repaired and retrained-on-clean models of one run on the test set, per image."""
    from latentgen.label_issues.retraining import compare_retrained  # torch: only in this job

    table = compare_retrained(
        run.scores, run.clean_run_json, run.clean_checkpoint, run.prepared_dir, run.labels, run.corruption,
        layers, batch_size, device,
    )  # fmt: skip
    table = table.assign(**run_identity(run.pair, run.corruption, run.seed))
    write_parquet(table, out, metadata={"latentgen_version": __version__})
    accuracies = ", ".join(f"{row.network} {100 * row.accuracy:.1f} %" for row in table.itertuples())
    log.info("test accuracy of %s/c%s/s%s: %s; wrote %s", run.pair, run.corruption, run.seed, accuracies, out)


def label_issue_figure(
    run_tables: list[str], out: Path | str, layer_order: dict[str, list[str]], style: dict[str, Any]
) -> None:
    """AUPRC of the flags over epochs per layer, against the baselines and the base rate
    (latentgen.report.label_issue_figure)."""
    from latentgen.report.label_issue_figure import plot_label_issue_figure  # matplotlib: only where drawn

    frames = [read_parquet(path, what="label-issue metrics table") for path in run_tables]
    plot_label_issue_figure(pd.concat(frames, ignore_index=True), Path(out), layer_order, style)
    log.info("drew the label-issue figure from %d runs", len(run_tables))
