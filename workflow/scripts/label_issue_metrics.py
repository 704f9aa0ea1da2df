"""Snakemake script of rule label_issue_metrics: every run's label-issue metrics in one table."""

from latentgen.pipeline import label_issue_metrics, logging_to

with logging_to(snakemake.log[0]):
    label_issue_metrics(run_tables=list(snakemake.input.runs), out=snakemake.output.table)
