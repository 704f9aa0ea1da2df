"""Snakemake script: one of the paper's figures as a PDF."""

from latentgen.pipeline import figure_stage, logging_to

with logging_to(snakemake.log[0]):
    figure_stage(list(snakemake.input.runs), snakemake.params.number, snakemake.output.pdf,
                 dict(snakemake.params.layer_order), dict(snakemake.params.style))
