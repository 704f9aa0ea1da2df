"""Snakemake script: the final-epoch summary table of the report."""

from latentgen.pipeline import logging_to, summary_stage

with logging_to(snakemake.log[0]):
    summary_stage(snakemake.input.scores, snakemake.output.table, dict(snakemake.params.layer_order))
