# Which training labels are wrong (latentgen.label_issues): per standard run, at the model's peak (found on the
# held-out slice, never the test set) and final checkpoints, probes cross-fitted on every flagged layer and handed
# to cleanlab, beside the baselines (cleanlab on the network's softmax, its disagreement, a pixel logistic
# regression, deep k-NN), all scored against the corruption mask. Edited runs are not flagged.
include: "label_issues_inputs.smk"


rule label_issues:
    input:
        unpack(label_issue_input),
    output:
        issues=f"{RESULTS}/label_issues/{LABEL_ISSUE_RUN}.parquet",
        metrics=f"{RESULTS}/label_issues/{LABEL_ISSUE_RUN}_metrics.parquet",
    log:
        f"{RESULTS}/logs/label_issues/{LABEL_ISSUE_RUN}.log",
    conda:
        "../../environment.yml"
    threads: compute("label_issues", "threads", 2)
    resources:
        mem_mb=per_attempt("label_issues", "mem_mb", 16000),
        runtime=per_attempt("label_issues", "runtime", 60),
        gpu=1,
    params:
        code=stage_code("label_issues"),
        prepared_dir=prepared_dir,
        layers=label_issue_pair_layers,
        probes=config["label_issues"]["probes"],
        folds=config["label_issues"]["folds"],
        checkpoints=config["label_issues"]["checkpoints"],
        resamples=config["label_issues"]["resamples"],
        masc_variance=config["scoring"]["masc_variance"],
        batch_size=config["activations"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/label_issues.py"


rule label_issue_metrics:
    input:
        runs=label_issue_metrics_tables(),
    output:
        table=f"{RESULTS}/label_issue_metrics.parquet",
    log:
        f"{RESULTS}/logs/label_issue_metrics.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        code=stage_code("label_issue_metrics"),
    script:
        "../scripts/label_issue_metrics.py"


rule label_issue_figure:
    input:
        runs=label_issue_metrics_tables(rates=label_issue_figure_rates()),
    output:
        pdf=report(
            f"{RESULTS}/figures/label_issues.pdf",
            caption="../report/label_issues.rst",
            category="Figures",
            labels={"figure": "label issues"},
        ),
    log:
        f"{RESULTS}/logs/figures/label_issues.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        code=stage_code("label_issue_figure"),
        layer_order=layer_order(),
        style=config["figures"]["style"],
    script:
        "../scripts/label_issue_figure.py"


# The payoff (label_issues.retrain): a run retrained without the examples its label issues flag (the train rule's
# clean variant, {pair}/c{rate}/s{seed}/clean) against the memorized model and its `latentgen repair`, on the test
# set, per image (latentgen.label_issues.retraining); the claims table compares them.
rule retrain_comparison:
    input:
        unpack(retrain_comparison_input),
    output:
        table=f"{RESULTS}/retrained/{LABEL_ISSUE_RUN}.parquet",
    log:
        f"{RESULTS}/logs/retrain_comparison/{LABEL_ISSUE_RUN}.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=per_attempt("score", "mem_mb", 16000),
        runtime=per_attempt("score", "runtime", 30),
    params:
        code=stage_code("retrain_comparison"),
        prepared_dir=prepared_dir,
        layers=pair_layers,
        batch_size=config["activations"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/retrain_comparison.py"
