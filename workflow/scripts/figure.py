"""Snakemake script of rule figure: one of the paper's figures as a PDF."""

from latentgen.pipeline import logging_to, figure

with logging_to(snakemake.log[0]):
    figure(
        run_tables=list(snakemake.input.runs),
        number=snakemake.params.number,
        out=snakemake.output.pdf,
        layer_order=dict(snakemake.params.layer_order),
        style=dict(snakemake.params.style),
    )
