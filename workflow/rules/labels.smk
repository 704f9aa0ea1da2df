# Corrupted labels of one dataset and seed, for every integer rate at once (nested by construction),
# so adding a corruption rate to the config never rewrites this table.


rule corrupt_labels:
    input:
        meta=f"{DATASETS_DIR}/{{dataset}}/meta.json",
    output:
        table=f"{RESULTS}/labels/{{dataset}}/s{{seed}}.parquet",
    log:
        f"{RESULTS}/logs/labels/{{dataset}}/s{{seed}}.log",
    conda:
        "../../environment.yml"
    params:
        code=stage_code("corrupt_labels"),
        prepared_dir=lambda wildcards: f"{DATASETS_DIR}/{wildcards.dataset}",
        train_subset=config["train_subset"],
        test_subset=config["test_subset"],
    script:
        "../scripts/corrupt_labels.py"
