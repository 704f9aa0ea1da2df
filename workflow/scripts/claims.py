"""Snakemake script of rule claims: which of the paper's claims this results set reproduces."""

from latentgen.pipeline import logging_to, claims

with logging_to(snakemake.log[0]):
    claims(
        scores=snakemake.input.scores,
        histories=list(snakemake.input.histories),
        out=snakemake.output.table,
        label_issue_metrics=snakemake.input.label_issue_metrics,
        retrained=list(snakemake.input.retrained),
    )
