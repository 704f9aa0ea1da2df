"""Snakemake script: the VeLPIC-edited weights of one checkpoint (the start of an edited run)."""

from latentgen.pipeline import edit_stage, logging_to

wc = snakemake.wildcards
with logging_to(snakemake.log[0], snakemake.threads):
    edit_stage(snakemake.params.prepared_dir, snakemake.input.labels, snakemake.input.run_json,
               snakemake.input.checkpoint, snakemake.output.edited, int(wc.corruption), int(wc.seed),
               snakemake.params.holdout, snakemake.params.batch_size, snakemake.params.device)
