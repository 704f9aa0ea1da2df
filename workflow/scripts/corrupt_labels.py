"""Snakemake script: the label table of one dataset and seed."""

from latentgen.pipeline import labels_stage, logging_to

with logging_to(snakemake.log[0]):
    labels_stage(snakemake.params.prepared_dir, snakemake.output.table, int(snakemake.wildcards.seed),
                 snakemake.params.train_subset, snakemake.params.test_subset)
