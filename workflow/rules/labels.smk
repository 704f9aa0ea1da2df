# Corrupted labels of one dataset and seed, for every integer rate at once, so adding a corruption rate to the
# config never rewrites this table. `label_draw` picks latentgen's nested draw (s<seed>.parquet) or the authors'
# numpy sequence (s<seed>-authors.parquet): latentgen.data.labels.


rule corrupt_labels:
    input:
        meta=f"{DATASETS_DIR}/{{dataset}}/meta.json",
    output:
        table=f"{RESULTS}/labels/{{dataset}}/{label_table_name('{seed}', config['label_draw'])}",
    log:
        f"{RESULTS}/logs/labels/{{dataset}}/{label_table_name('{seed}', config['label_draw']).removesuffix('.parquet')}.log",
    conda:
        "../../environment.yml"
    params:
        code=stage_code("corrupt_labels"),
        prepared_dir=lambda wildcards: f"{DATASETS_DIR}/{wildcards.dataset}",
        train_subset=config["train_subset"],
        test_subset=config["test_subset"],
        label_draw=config["label_draw"],
    script:
        "../scripts/corrupt_labels.py"
