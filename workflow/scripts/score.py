"""Snakemake script of rule score: one checkpoint (the configured probes, model, transfer) to a Parquet fragment."""

from latentgen.pipeline import logging_to, score

wildcards = snakemake.wildcards
with logging_to(snakemake.log[0], snakemake.threads):
    score(
        prepared_dir=snakemake.params.prepared_dir,
        labels=snakemake.input.labels,
        run_json=snakemake.input.run_json,
        checkpoint=snakemake.input.checkpoint,
        activations_dir=snakemake.input.activations,
        out=snakemake.output.scores,
        pair=wildcards.pair,
        corruption=int(wildcards.corruption),
        seed=int(wildcards.seed),
        epoch=int(wildcards.epoch),
        variance=snakemake.params.variance,
        layers=list(snakemake.params.layers),
        batch_size=snakemake.params.batch_size,
        device=snakemake.params.device,
        holdout=snakemake.params.holdout,
        probes=list(snakemake.params.probes),
        edit_epoch=snakemake.params.edit_epoch,
    )
