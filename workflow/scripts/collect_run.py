"""Snakemake script of rule collect_run: one run's score fragments as one table."""

from latentgen.pipeline import logging_to, collect_run

with logging_to(snakemake.log[0]):
    collect_run(fragments=list(snakemake.input.fragments), out=snakemake.output.table)
