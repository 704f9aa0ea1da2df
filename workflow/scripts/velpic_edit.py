"""Snakemake script of rule velpic_edit: the VeLPIC-edited weights of one checkpoint (the start of an edited run)."""

from latentgen.pipeline import logging_to, velpic_edit

wildcards = snakemake.wildcards
with logging_to(snakemake.log[0], snakemake.threads):
    velpic_edit(
        prepared_dir=snakemake.params.prepared_dir,
        labels=snakemake.input.labels,
        run_json=snakemake.input.run_json,
        checkpoint=snakemake.input.checkpoint,
        out=snakemake.output.edited,
        corruption=int(wildcards.corruption),
        seed=int(wildcards.seed),
        holdout=snakemake.params.holdout,
        batch_size=snakemake.params.batch_size,
        device=snakemake.params.device,
    )
