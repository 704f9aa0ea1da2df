# Every run's scores in one tidy table, the final-epoch summary and the claims table (for the report).


rule aggregate:
    input:
        runs=run_tables(edits=True),
    output:
        scores=f"{RESULTS}/scores.parquet",
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        "../../environment.yml"
    params:
        code=stage_code("aggregate"),
        config_summary={
            "pairs": list(config["pairs"]),
            "corruption": config["corruption"],
            "seeds": config["seeds"],
            "masc_variance": config["scoring"]["masc_variance"],
            "holdout": config["scoring"]["holdout"],
        },
    script:
        "../scripts/aggregate.py"


rule summary:
    input:
        scores=f"{RESULTS}/scores.parquet",
    output:
        table=report(
            f"{RESULTS}/summary.csv",
            caption="../report/summary.rst",
            category="Final-epoch summary",
        ),
    log:
        f"{RESULTS}/logs/summary.log",
    conda:
        "../../environment.yml"
    params:
        code=stage_code("summary"),
        layer_order=layer_order(),
    script:
        "../scripts/summary.py"


rule claims:
    input:
        scores=f"{RESULTS}/scores.parquet",
        histories=run_histories(),
        label_issue_metrics=f"{RESULTS}/label_issue_metrics.parquet",
        retrained=retrain_comparison_tables(),
    output:
        table=report(
            f"{RESULTS}/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        f"{RESULTS}/logs/claims.log",
    conda:
        "../../environment.yml"
    params:
        code=stage_code("claims"),
    script:
        "../scripts/claims.py"
