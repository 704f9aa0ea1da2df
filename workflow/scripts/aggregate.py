"""Snakemake script of rule aggregate: every run's scores in results/scores.parquet."""

from latentgen.pipeline import logging_to, aggregate

with logging_to(snakemake.log[0]):
    aggregate(
        run_tables=list(snakemake.input.runs),
        out=snakemake.output.scores,
        config_summary=dict(snakemake.params.config_summary),
    )
