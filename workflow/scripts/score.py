"""Snakemake script of rule score: every checkpoint of one run (activations, the configured probes, model,
transfer) to the run's score table."""

from latentgen.pipeline import logging_to, score
from latentgen.scoring.cache import ScoreJob, ScoreSettings

params, wildcards = snakemake.params, snakemake.wildcards
with logging_to(snakemake.log[0], snakemake.threads):
    score(
        ScoreJob(
            prepared_dir=params.prepared_dir,
            labels=snakemake.input.labels,
            run_json=snakemake.input.run_json,
            checkpoints=list(snakemake.input.checkpoints),
            fragments_dir=params.fragments_dir,
            activations_dir=params.activations_dir,
            out=snakemake.output.table,
            pair=wildcards.pair,
            corruption=int(wildcards.corruption),
            seed=int(wildcards.seed),
            keep_activations=params.keep_activations,
        ),
        ScoreSettings(
            variance=params.variance,
            layers=list(params.layers),
            batch_size=params.batch_size,
            dtype=params.dtype,
            device=params.device,
            code=dict(params.code),
            holdout=params.holdout,
            probes=list(params.probes),
            edit_epoch=params.edit_epoch,
        ),
    )
