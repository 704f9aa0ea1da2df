"""Snakemake script of rule label_issue_figure: AUPRC of the wrong-label flags over epochs, per layer."""

from latentgen.pipeline import label_issue_figure, logging_to

with logging_to(snakemake.log[0]):
    label_issue_figure(
        run_tables=list(snakemake.input.runs),
        out=snakemake.output.pdf,
        layer_order=dict(snakemake.params.layer_order),
        style=dict(snakemake.params.style),
    )
