"""Snakemake script: score one checkpoint (the configured probes, model, transfer) to a Parquet fragment."""

from latentgen.pipeline import logging_to, score_stage

wc = snakemake.wildcards
with logging_to(snakemake.log[0], snakemake.threads):
    score_stage(snakemake.params.prepared_dir, snakemake.input.labels, snakemake.input.run_json,
                snakemake.input.checkpoint, snakemake.input.activations, snakemake.output.scores, wc.pair,
                int(wc.corruption), int(wc.seed), int(wc.epoch), snakemake.params.variance,
                list(snakemake.params.layers), snakemake.params.batch_size,
                snakemake.params.device, snakemake.params.holdout, list(snakemake.params.probes),
                snakemake.params.edit_epoch)
