"""Snakemake script: which of the paper's claims this results set reproduces."""

from latentgen.pipeline import claims_stage, logging_to

with logging_to(snakemake.log[0]):
    claims_stage(snakemake.input.scores, list(snakemake.input.histories), snakemake.output.table)
