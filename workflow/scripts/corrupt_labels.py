"""Snakemake script of rule corrupt_labels: the label table of one dataset and seed."""

from latentgen.pipeline import logging_to, corrupt_labels

with logging_to(snakemake.log[0]):
    corrupt_labels(
        prepared_dir=snakemake.params.prepared_dir,
        out=snakemake.output.table,
        seed=int(snakemake.wildcards.seed),
        train_subset=snakemake.params.train_subset,
        test_subset=snakemake.params.test_subset,
        label_draw=snakemake.params.label_draw,
    )
