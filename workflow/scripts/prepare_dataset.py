"""Snakemake script: prepare one dataset (thin; the logic is latentgen.pipeline.prepare_stage)."""

from latentgen.pipeline import logging_to, prepare_stage

with logging_to(snakemake.log[0]):
    prepare_stage(snakemake.wildcards.dataset, snakemake.params.out_dir, snakemake.params.source)
