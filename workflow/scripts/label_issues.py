"""Snakemake script of rule label_issues: one run's wrong-label flags and their metrics."""

from latentgen.pipeline import LabelIssueJob, LabelIssueSettings, label_issues, logging_to

params, wildcards = snakemake.params, snakemake.wildcards
with logging_to(snakemake.log[0], snakemake.threads):
    label_issues(
        LabelIssueJob(
            prepared_dir=params.prepared_dir,
            labels=snakemake.input.labels,
            run_json=snakemake.input.run_json,
            checkpoints=list(snakemake.input.checkpoints),
            scores=snakemake.input.scores,
            out=snakemake.output.issues,
            metrics_out=snakemake.output.metrics,
            pair=wildcards.pair,
            corruption=int(wildcards.corruption),
            seed=int(wildcards.seed),
        ),
        LabelIssueSettings(
            layers=list(params.layers),
            probes=list(params.probes),
            folds=params.folds,
            checkpoint_mode=params.checkpoints,
            resamples=params.resamples,
            masc_variance=params.masc_variance,
            batch_size=params.batch_size,
            device=params.device,
        ),
    )
