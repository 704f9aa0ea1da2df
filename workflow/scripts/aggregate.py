"""Snakemake script: every run's scores in results/scores.parquet."""

from latentgen.pipeline import aggregate_stage, logging_to

with logging_to(snakemake.log[0]):
    aggregate_stage(list(snakemake.input.runs), snakemake.output.scores, dict(snakemake.params.config_summary))
