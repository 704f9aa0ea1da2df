# The functions the rules call for their inputs, params and resources, and the paths and config look-ups they
# share. The configuration, RESULTS, RUN and the wildcard constraints are in settings.smk.
import json
import sys
from inspect import signature
from pathlib import Path

from latentgen.common import fingerprint
from latentgen.data.labels import label_table_name
from latentgen.report.figure_specs import (
    buildable_figures,
    figure_pairs_and_rates,
    figure_spec,
)
from latentgen.training.model_names import probe_layers_of
from latentgen.training.run_files import RunFiles, checkpoint_name
from latentgen.training.schedule import edit_base_epoch
from snakemake.exceptions import IncompleteCheckpointException


include: "settings.smk"


def per_job(function):
    """A function of the rules (an input, params or resource function), its parameters recorded once.

    Snakemake calls such a function for every job, and before each call reads which of its parameters
    (wildcards, input, attempt, ...) to pass: `inspect.signature`, about ten times per score job,
    unless the function carries its parameters (snakemake.common.overwrite_function_params, which
    Snakemake's own ioutils use). The same parameters, so the same calls; planning the paper grid makes
    hundreds of thousands of them (docs/performance.md "Planning at scale"). A Snakemake without that
    helper inspects them as before.
    """
    try:
        from snakemake.common import overwrite_function_params
    except ImportError:
        return function
    overwrite_function_params(function, signature(function).parameters)
    return function


# ----------------------------------------------------------------------------------------------------------
# Paths of a run
# ----------------------------------------------------------------------------------------------------------


def run_path(pair, corruption, seed, variant=""):
    """A run's place under runs/, scores/, logs/...: RUN with its wildcards filled."""
    return RUN.format(pair=pair, corruption=corruption, seed=seed, variant=variant)


def edit_suffix(epoch):
    """What the {variant} wildcard holds for the run edited at `epoch`: a subdirectory of its base run."""
    return f"{RUN_SEPARATOR}edit{epoch}"


# What the {variant} wildcard holds for a run retrained without its flagged examples (label_issues.retrain)
CLEAN_SUFFIX = f"{RUN_SEPARATOR}clean"


def run_directory(run):
    """The directory training writes a run into (RunFiles.root)."""
    return f"{RESULTS}/runs/{run}"


def epoch_file(epoch):
    """The file name of a model saved at `epoch` (an int, or the {epoch} wildcard's four digits)."""
    return checkpoint_name(epoch)


def run_checkpoint(run, epoch):
    """A run's checkpoint at `epoch`, as the trainer writes it."""
    return str(RunFiles(run_directory(run)).checkpoint(epoch))


# ----------------------------------------------------------------------------------------------------------
# Config look-ups
# ----------------------------------------------------------------------------------------------------------


def pair_dataset(wildcards):
    return config["pairs"][wildcards.pair]["dataset"]


def label_seed(run_seed):
    """The corruption a run trains on: the shared draw of `label_seed` (the authors' one fixed draw),
    or, with `label_seed: null`, the run's own seed."""
    shared = config["label_seed"]
    return int(run_seed) if shared is None else shared


def all_runs(pairs=None, rates=None):
    """(pair, corruption, seed) of every configured run, optionally restricted."""
    return [
        (pair, rate, seed)
        for pair in (pairs if pairs is not None else config["pairs"])
        for rate in (rates if rates is not None else config["corruption"])
        for seed in config["seeds"]
    ]


def edit_runs(pairs=None, rates=None):
    """(pair, corruption, seed, edit suffix) of every edited run: each pair's `edits.epochs` x its runs."""
    return [
        (pair, rate, seed, edit_suffix(epoch))
        for pair, rate, seed in all_runs(pairs, rates)
        for epoch in config["pairs"][pair].get("edits", {}).get("epochs", [])
    ]


def scored_layers(pair):
    pair_config = config["pairs"][pair]
    return pair_config.get("layers") or probe_layers_of(pair_config["model"])


def layer_order():
    return {config["pairs"][p]["model"]: scored_layers(p) for p in config["pairs"]}


def edited_pairs():
    """The pairs with edited runs (`pairs.<pair>.edits`): figure 18 shows them."""
    return [pair for pair, settings in config["pairs"].items() if settings.get("edits")]


def compute(stage, key, default):
    return config["compute"].get(stage, {}).get(key, default)


# ----------------------------------------------------------------------------------------------------------
# Datasets, labels and training
# ----------------------------------------------------------------------------------------------------------


@per_job
def prepared_dir(wildcards):
    return f"{DATASETS_DIR}/{pair_dataset(wildcards)}"


@per_job
def prepared_input(wildcards):
    return f"{prepared_dir(wildcards)}/meta.json"


@per_job
def labels_input(wildcards):
    seed = label_seed(wildcards.seed)
    return f"{RESULTS}/labels/{pair_dataset(wildcards)}/{label_table_name(seed, config['label_draw'])}"


@per_job
def edit_epoch(wildcards):
    """E of an edited run (suffix edit<E>), None for standard training and the clean variant."""
    variant = wildcards.get("variant", "")
    return (
        int(variant.removeprefix(edit_suffix("")))
        if variant.startswith(edit_suffix(""))
        else None
    )


@per_job
def variant_input(wildcards):
    """An edited run starts from the VeLPIC edit of its base run's checkpoint at E (rule velpic_edit); the clean
    variant reads its base run's label issues (the flags and the metrics naming the truth-free choice).
    """
    base = run_path(wildcards.pair, wildcards.corruption, wildcards.seed)
    if wildcards.variant == CLEAN_SUFFIX:
        return {
            "flags": f"{RESULTS}/label_issues/{base}.parquet",
            "flag_metrics": f"{RESULTS}/label_issues/{base}_metrics.parquet",
        }
    epoch = edit_epoch(wildcards)
    if epoch is None:
        return {}
    return {"edited": f"{RESULTS}/edits/{base}/{epoch_file(epoch)}"}


@per_job
def edit_param(wildcards):
    epoch = edit_epoch(wildcards)
    if epoch is None:
        return None
    return {"epoch": epoch, "until": config["pairs"][wildcards.pair]["edits"]["until"]}


@per_job
def run_dir(wildcards):
    return run_directory(
        run_path(
            wildcards.pair, wildcards.corruption, wildcards.seed, wildcards.variant
        )
    )


@per_job
def training_pair_config(wildcards):
    """The pair's training settings, without `edits`: adding edit runs never retrains the runs they edit."""
    return {
        key: value
        for key, value in config["pairs"][wildcards.pair].items()
        if key != "edits"
    }


# ----------------------------------------------------------------------------------------------------------
# A trained run's checkpoints (the train checkpoint's output), for scoring and editing
# ----------------------------------------------------------------------------------------------------------

_TRAINED = {}


def train_output(wildcards):
    """The train checkpoint's output of a run: Snakemake raises until the run has trained (then the DAG is
    re-evaluated). A finished run stays finished for this process, so its answer is kept: planning the paper
    grid asks for it several times per score job and per velpic_edit job."""
    run = (
        wildcards.pair,
        wildcards.corruption,
        wildcards.seed,
        wildcards.get("variant", ""),
    )
    if run not in _TRAINED:
        _TRAINED[run] = checkpoints.train.get(
            pair=run[0], corruption=run[1], seed=run[2], variant=run[3]
        ).output
    return _TRAINED[run]


def checkpoint_epochs(wildcards):
    """Epochs with a checkpoint; known only once training finished (a Snakemake checkpoint)."""
    run_json = train_output(wildcards).run_json
    return json.loads(Path(run_json).read_text())["checkpoint_epochs"]


def checkpoint_count(wildcards):
    """How many checkpoints the run has; 1 while it has not trained (a placeholder job)."""
    try:
        return len(checkpoint_epochs(wildcards))
    except IncompleteCheckpointException:
        return 1


def trained_checkpoint(wildcards):
    """run.json and the checkpoint file at {epoch} of a finished run (what a velpic_edit job reads).

    Asking the train checkpoint for its output makes Snakemake train first when needed (the checkpoint
    files themselves are not declared outputs, see train.smk).
    """
    run = run_path(
        wildcards.pair,
        wildcards.corruption,
        wildcards.seed,
        wildcards.get("variant", ""),
    )
    return {
        "run_json": train_output(wildcards).run_json,
        "checkpoint": run_checkpoint(run, wildcards.epoch),
    }


@per_job
def run_score_input(wildcards):
    """Every input of a run's score job: run.json, each of its checkpoint files (a retrained run, newer
    checkpoints, reruns it), the dataset and the labels. Asking the train checkpoint for run.json makes
    Snakemake train the run first when needed."""
    run = run_path(
        wildcards.pair, wildcards.corruption, wildcards.seed, wildcards.variant
    )
    return {
        "run_json": train_output(wildcards).run_json,
        "checkpoints": [
            run_checkpoint(run, epoch) for epoch in checkpoint_epochs(wildcards)
        ],
        "meta": prepared_input(wildcards),
        "labels": labels_input(wildcards),
    }


@per_job
def edited_checkpoint(wildcards):
    """The standard run's checkpoint its edit at epoch E is made on: the one at E, or, when the run stopped
    before E, its final checkpoint (the model it is from then on; latentgen.training.schedule.edit_base_epoch).
    """
    files = trained_checkpoint(wildcards)
    edit = int(wildcards.epoch)
    try:
        base = edit_base_epoch(checkpoint_epochs(wildcards), edit)
    except ValueError as error:
        raise WorkflowError(f"{files['run_json']}: {error}")
    if base != edit:
        note_stopped_before_edit(files["run_json"], base, edit)
        run = run_path(wildcards.pair, wildcards.corruption, wildcards.seed)
        files["checkpoint"] = run_checkpoint(run, base)
    return files


_STOPPED_BEFORE_EDIT = set()


def note_stopped_before_edit(run_json, final, edit):
    """Say once per plan that an edit is made on a run's final checkpoint because the run stopped before E."""
    if (run_json, edit) not in _STOPPED_BEFORE_EDIT:
        _STOPPED_BEFORE_EDIT.add((run_json, edit))
        print(
            f"edit at epoch {edit}: {run_json} stopped at epoch {final} (its stop_accuracy), so the edit is made "
            f"on its final checkpoint, epoch {final} (the model it is at epoch {edit})",
            file=sys.stderr,
        )


@per_job
def pair_layers(wildcards):
    return scored_layers(wildcards.pair)


# ----------------------------------------------------------------------------------------------------------
# Resources and the code a stage runs
# ----------------------------------------------------------------------------------------------------------


def per_attempt(stage, key, default, per_checkpoint=False):
    """A job size of `compute:` (mem_mb, runtime) as a resource that grows with each retry (x attempt); with
    `per_checkpoint`, the size is per checkpoint and also grows with the run's checkpoints (the score job).

    Before the run has trained, its checkpoints are unknown: the job is only a placeholder then (Snakemake
    rebuilds it, and asks again, once the train checkpoint has run), so one checkpoint's size stands in.
    """
    size = compute(stage, key, default)

    @per_job
    def resource(wildcards, attempt):
        return size * (checkpoint_count(wildcards) if per_checkpoint else 1) * attempt

    return resource


def stage_code(stage):
    """The code a stage's jobs run, as their `params: code=`: the params trigger reruns them when it changes.

    Comments, docstrings and file times do not count; training code counts by its recorded version
    (latentgen.common.fingerprint, docs/architecture.md "Rerun triggers").
    """
    return fingerprint.stage_code(stage, WORKFLOW_DIR)


# ----------------------------------------------------------------------------------------------------------
# Aggregation and figures
# ----------------------------------------------------------------------------------------------------------


def run_tables(pairs=None, rates=None, edits=False):
    """Score tables of the standard runs, and with `edits` of the edited runs too."""
    runs = all_runs(pairs, rates) + (edit_runs(pairs, rates) if edits else [])
    return [f"{RESULTS}/scores/{run_path(*run)}.parquet" for run in runs]


def retrained_runs():
    """(pair, corruption, seed) of every run retrained on the examples not flagged (label_issues.retrain): the
    retrained pairs' runs at rates above 0 % (at 0 % no label is wrong)."""
    rates = [rate for rate in config["corruption"] if rate > 0]
    return all_runs(retrained_pairs(config), rates) if rates else []


def retrain_comparison_tables():
    """The retrain_comparison tables the claims rule reads (label_issues.smk)."""
    return [f"{RESULTS}/retrained/{run_path(*run)}.parquet" for run in retrained_runs()]


def run_histories(pairs=None, rates=None):
    """Training histories of the runs: the claims table checks from them that each run learned."""
    return [
        f"{run_directory(run_path(*run))}/history.parquet"
        for run in all_runs(pairs, rates)
    ]


def figure_numbers():
    buildable = buildable_figures(
        list(config["pairs"]), list(config["corruption"]), edited_pairs()
    )
    return [n for n in config["figures"]["numbers"] if n in buildable]


def figure_targets():
    return [f"{RESULTS}/figures/fig{n}.pdf" for n in figure_numbers()]


@per_job
def figure_inputs(wildcards):
    number = int(wildcards.number)
    pairs, rates = figure_pairs_and_rates(
        number, list(config["pairs"]), list(config["corruption"]), edited_pairs()
    )
    if not pairs:
        edits = " with edits" if figure_spec(number).needs_edits else ""
        raise WorkflowError(
            f"figure {wildcards.number} shows no pair{edits} or rate of this config "
            f"(pairs {list(config['pairs'])}, rates {config['corruption']})"
        )
    # a figure of edited runs reads them beside the standard runs they are compared with
    return run_tables(pairs, rates, edits=figure_spec(number).needs_edits)
