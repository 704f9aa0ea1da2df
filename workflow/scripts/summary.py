"""Snakemake script of rule summary: the final-epoch summary table of the report."""

from latentgen.pipeline import logging_to, summary

with logging_to(snakemake.log[0]):
    summary(scores=snakemake.input.scores, out=snakemake.output.table, layer_order=dict(snakemake.params.layer_order))
