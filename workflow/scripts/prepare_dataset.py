"""Snakemake script of rule prepare_dataset: one dataset from its source, prepared on disk."""

from latentgen.pipeline import logging_to, prepare_dataset

with logging_to(snakemake.log[0]):
    prepare_dataset(name=snakemake.wildcards.dataset, out_dir=snakemake.params.out_dir, source=snakemake.params.source)
