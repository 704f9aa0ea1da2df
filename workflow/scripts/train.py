"""Snakemake script: train one run (resumes an interrupted one); an edited run starts from its VeLPIC edit."""

from latentgen.pipeline import logging_to, train_stage

wc = snakemake.wildcards
with logging_to(snakemake.log[0], snakemake.threads):
    train_stage(snakemake.params.prepared_dir, snakemake.input.labels, snakemake.params.run_dir, wc.pair,
                int(wc.corruption), int(wc.seed), dict(snakemake.params.pair_config), snakemake.params.device,
                edit=snakemake.params.edit, edited_weights=snakemake.input.get("edited"))
