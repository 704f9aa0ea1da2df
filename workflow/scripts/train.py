"""Snakemake script of rule train: one run (resumes an interrupted one); an edited run starts from its VeLPIC edit,
the clean variant trains without the examples its base run's label issues flag."""

from latentgen.pipeline import logging_to, train

wildcards = snakemake.wildcards
with logging_to(snakemake.log[0], snakemake.threads):
    train(
        prepared_dir=snakemake.params.prepared_dir,
        labels=snakemake.input.labels,
        run_dir=snakemake.params.run_dir,
        pair=wildcards.pair,
        corruption=int(wildcards.corruption),
        seed=int(wildcards.seed),
        pair_config=dict(snakemake.params.pair_config),
        device=snakemake.params.device,
        edit=snakemake.params.edit,
        edited_weights=snakemake.input.get("edited"),
        holdout=snakemake.params.holdout,
        code=dict(snakemake.params.code),
        clean_flags=((snakemake.input.flags, snakemake.input.flag_metrics) if snakemake.input.get("flags") else None),
    )
