"""Snakemake script of rule retrain_comparison: a run's memorized, repaired and retrained-on-clean models."""

from latentgen.pipeline import RetrainedRun, logging_to, retrain_comparison

params, wildcards = snakemake.params, snakemake.wildcards
with logging_to(snakemake.log[0], snakemake.threads):
    retrain_comparison(
        RetrainedRun(
            scores=snakemake.input.scores,
            clean_run_json=snakemake.input.clean_run_json,
            clean_checkpoint=snakemake.input.clean_checkpoint,
            prepared_dir=params.prepared_dir,
            labels=snakemake.input.labels,
            pair=wildcards.pair,
            corruption=int(wildcards.corruption),
            seed=int(wildcards.seed),
        ),
        layers=list(params.layers),
        out=snakemake.output.table,
        batch_size=params.batch_size,
        device=params.device,
    )
