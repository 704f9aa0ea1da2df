# The label-issue stage's input functions and targets (rules in label_issues.smk, which includes this file; apart
# from the rules, as Snakemake's linter asks; the functions every stage shares stay in common.smk).
LABEL_ISSUE_RUN = "{pair}/c{corruption}/s{seed}"


@per_job
def label_issue_input(wildcards):
    """What a run's label-issue job reads: the run (run.json and every checkpoint: the peak is known only from the
    scores), the dataset, the label table and the run's score table (the peak and the held-out choice).
    """
    run = run_path(wildcards.pair, wildcards.corruption, wildcards.seed)
    return {
        "run_json": train_output(wildcards).run_json,
        "checkpoints": [
            run_checkpoint(run, epoch) for epoch in checkpoint_epochs(wildcards)
        ],
        "meta": prepared_input(wildcards),
        "labels": labels_input(wildcards),
        "scores": f"{RESULTS}/scores/{run}.parquet",
    }


def label_issue_layers(pair):
    """The layers `label_issues.layers` flags for `pair`: all it scores, its last, or those of a list it has."""
    chosen = config["label_issues"]["layers"]
    layers = scored_layers(pair)
    if chosen == "all":
        return layers
    if chosen == "last":
        return layers[-1:]
    kept = [layer for layer in layers if layer in chosen]
    if not kept:
        raise WorkflowError(
            f"config key 'label_issues.layers': none of {chosen} is a scored layer of pair {pair} ({layers})"
        )
    return kept


@per_job
def label_issue_pair_layers(wildcards):
    return label_issue_layers(wildcards.pair)


def label_issue_metrics_tables(pairs=None, rates=None):
    """The metrics tables of the standard runs (optionally of some pairs and rates)."""
    return [
        f"{RESULTS}/label_issues/{run_path(*run)}_metrics.parquet"
        for run in all_runs(pairs, rates)
    ]


def label_issue_figure_rates():
    return [rate for rate in config["corruption"] if rate > 0]


def label_issue_figure_targets():
    """The figure, when some configured rate corrupts labels (at 0 % there is nothing to find)."""
    if not label_issue_figure_rates():
        return []
    return [f"{RESULTS}/figures/label_issues.pdf"]


@per_job
def retrain_comparison_input(wildcards):
    """The run's score table (its memorized model and repair), the clean variant's run.json and final checkpoint
    (asking the train checkpoint for it makes Snakemake retrain first), the dataset and the labels.
    """
    run = run_path(wildcards.pair, wildcards.corruption, wildcards.seed)
    clean = checkpoints.train.get(
        pair=wildcards.pair,
        corruption=wildcards.corruption,
        seed=wildcards.seed,
        variant=CLEAN_SUFFIX,
    ).output
    final = json.loads(Path(clean.run_json).read_text())["final_epoch"]
    return {
        "scores": f"{RESULTS}/scores/{run}.parquet",
        "clean_run_json": clean.run_json,
        "clean_checkpoint": run_checkpoint(run + CLEAN_SUFFIX, final),
        "meta": prepared_input(wildcards),
        "labels": labels_input(wildcards),
    }
