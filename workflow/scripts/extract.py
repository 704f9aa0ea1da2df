"""Snakemake script: activations of one checkpoint to disk."""

from latentgen.pipeline import extract_stage, logging_to

with logging_to(snakemake.log[0], snakemake.threads):
    extract_stage(snakemake.params.prepared_dir, snakemake.input.labels, snakemake.input.run_json,
                  snakemake.input.checkpoint, snakemake.output.activations, int(snakemake.wildcards.corruption),
                  snakemake.params.dtype, snakemake.params.batch_size, snakemake.params.device)
