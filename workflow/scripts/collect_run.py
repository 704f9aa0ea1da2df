"""Snakemake script: one run's score fragments as one table."""

from latentgen.pipeline import collect_stage, logging_to

with logging_to(snakemake.log[0]):
    collect_stage(list(snakemake.input.fragments), snakemake.output.table)
