# latentgen: latent generalization during memorization, end to end.
#   snakemake -c 4                            # the grid in config.yaml, locally
#   snakemake --profile slurm -j 50           # on a SLURM GPU cluster
#   snakemake --configfile config/quickstart.yaml -c 2   # the offline quick-start
# Stages (one .smk each): datasets -> labels -> train -> score (extraction inside) -> aggregate -> figures;
# after score, label_issues (which training labels are wrong) -> its metrics table and figure.


from snakemake.utils import min_version

min_version("9.0")


# config.yaml is the default; a --configfile (e.g. config/quickstart.yaml) replaces it instead of
# being merged into it, so the quick-start never inherits the paper grid's pairs.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/label_issues.smk"


localrules:
    all,
    prepare_dataset,
    corrupt_labels,
    aggregate,
    summary,
    claims,
    figure,


rule all:
    default_target: True
    input:
        scores=f"{RESULTS}/scores.parquet",
        summary=f"{RESULTS}/summary.csv",
        claims=f"{RESULTS}/claims.csv",
        figures=figure_targets(),
        label_issues=f"{RESULTS}/label_issue_metrics.parquet",
        label_issue_figure=label_issue_figure_targets(),
