# Config validation and the input functions every stage shares.
import json
from pathlib import Path

from latentgen import fingerprint
from latentgen.config import ConfigError, check_config
from latentgen.figure_specs import (
    buildable_figures,
    figure_pairs_and_rates,
    figure_spec,
)
from latentgen.model_names import probe_layers_of

try:
    config = check_config(
        config
    )  # schema + semantic checks, defaults filled; before any job
except ConfigError as error:
    raise WorkflowError(f"invalid configuration:\n{error}")

RESULTS = config["results"].rstrip("/")
WORKFLOW_DIR = Path(workflow.basedir) / "workflow"
DATASETS_DIR = config["datasets_dir"].rstrip("/")
RUN = "{pair}/c{corruption}/s{seed}"
PREPARED_FILES = [
    "train_images.npy",
    "train_labels.npy",
    "test_images.npy",
    "test_labels.npy",
    "meta.json",
]


wildcard_constraints:
    pair=r"[a-z0-9]+-[a-z0-9_]+(?:-[a-z0-9_]+)?",  # <model>-<dataset>[-<variant>]
    dataset=r"[a-z0-9_]+",
    corruption=r"\d+",
    seed=r"\d+",
    epoch=r"\d{4}",
    number=r"\d+",


def pair_dataset(wildcards):
    return config["pairs"][wildcards.pair]["dataset"]


def prepared_dir(wildcards):
    return f"{DATASETS_DIR}/{pair_dataset(wildcards)}"


def prepared_input(wildcards):
    return f"{prepared_dir(wildcards)}/meta.json"


def label_seed(run_seed):
    """The corruption a run trains on: the shared draw of `label_seed` (the authors' one fixed draw),
    or, with `label_seed: null`, the run's own seed."""
    shared = config["label_seed"]
    return int(run_seed) if shared is None else shared


def labels_input(wildcards):
    seed = label_seed(wildcards.seed)
    return f"{RESULTS}/labels/{pair_dataset(wildcards)}/s{seed}.parquet"


def all_runs(pairs=None, rates=None):
    """(pair, corruption, seed) of every configured run, optionally restricted."""
    return [
        (pair, rate, seed)
        for pair in (pairs if pairs is not None else config["pairs"])
        for rate in (rates if rates is not None else config["corruption"])
        for seed in config["seeds"]
    ]


def run_path(pair, corruption, seed):
    return f"{pair}/c{corruption}/s{seed}"


def checkpoint_epochs(wildcards):
    """Epochs with a checkpoint; known only once training finished (a Snakemake checkpoint)."""
    run_json = checkpoints.train.get(
        pair=wildcards.pair, corruption=wildcards.corruption, seed=wildcards.seed
    ).output.run_json
    return json.loads(Path(run_json).read_text())["checkpoint_epochs"]


def trained_checkpoint(wildcards):
    """run.json and one checkpoint file of a finished run.

    Asking the train checkpoint for its output makes Snakemake train first when needed, even when a
    single checkpoint's activations or scores are the target (the checkpoint files themselves are not
    declared outputs, see train.smk).
    """
    run = run_path(wildcards.pair, wildcards.corruption, wildcards.seed)
    run_json = checkpoints.train.get(
        pair=wildcards.pair, corruption=wildcards.corruption, seed=wildcards.seed
    ).output.run_json
    return {
        "run_json": run_json,
        "checkpoint": f"{RESULTS}/runs/{run}/checkpoints/epoch_{wildcards.epoch}.pt",
    }


def run_fragments(wildcards):
    run = run_path(wildcards.pair, wildcards.corruption, wildcards.seed)
    return [
        f"{RESULTS}/scores/{run}/epoch_{epoch:04d}.parquet"
        for epoch in checkpoint_epochs(wildcards)
    ]


def run_tables(pairs=None, rates=None):
    return [
        f"{RESULTS}/scores/{run_path(*run)}.parquet" for run in all_runs(pairs, rates)
    ]


def run_histories(pairs=None, rates=None):
    """Training histories of the runs: the claims table checks from them that each run learned."""
    return [
        f"{RESULTS}/runs/{run_path(*run)}/history.parquet"
        for run in all_runs(pairs, rates)
    ]


def layer_order():
    return {config["pairs"][p]["model"]: scored_layers(p) for p in config["pairs"]}


def scored_layers(pair):
    pair_config = config["pairs"][pair]
    return pair_config.get("layers") or probe_layers_of(pair_config["model"])


def figure_numbers():
    buildable = buildable_figures(list(config["pairs"]), list(config["corruption"]))
    return [n for n in config["figures"]["numbers"] if n in buildable]


def figure_targets():
    return [f"{RESULTS}/figures/fig{n}.pdf" for n in figure_numbers()]


def compute(stage, key, default):
    return config["compute"].get(stage, {}).get(key, default)


def figure_inputs(wildcards):
    pairs, rates = figure_pairs_and_rates(
        int(wildcards.number), list(config["pairs"]), list(config["corruption"])
    )
    if not pairs:
        raise WorkflowError(
            f"figure {wildcards.number} shows no pair or rate of this config "
            f"(pairs {list(config['pairs'])}, rates {config['corruption']})"
        )
    return run_tables(pairs, rates)


def activations_output(path):
    """Temporary unless activations.keep: the paper grid's activations would need terabytes."""
    return path if config["activations"]["keep"] else temp(path)


def stage_code(stage):
    """The code a stage's jobs run, as their `params: code=`: the params trigger reruns them when it changes.

    Comments, docstrings and file times do not count; training code counts by its recorded version
    (latentgen.fingerprint, docs/architecture.md "Rerun triggers").
    """
    return fingerprint.stage_code(stage, WORKFLOW_DIR)
