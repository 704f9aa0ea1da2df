"""Snakemake script of rule extract: activations of one checkpoint to disk."""

from latentgen.pipeline import logging_to, extract

with logging_to(snakemake.log[0], snakemake.threads):
    extract(
        prepared_dir=snakemake.params.prepared_dir,
        labels=snakemake.input.labels,
        run_json=snakemake.input.run_json,
        checkpoint=snakemake.input.checkpoint,
        out_dir=snakemake.output.activations,
        corruption=int(snakemake.wildcards.corruption),
        dtype=snakemake.params.dtype,
        batch_size=snakemake.params.batch_size,
        device=snakemake.params.device,
    )
