# Prepare a dataset once into uint8/int64 arrays + meta.json (content hash pinned for MNIST and
# Fashion-MNIST). Shared by every config: the same content whatever the source.


rule prepare_dataset:
    output:
        files=multiext(f"{DATASETS_DIR}/{{dataset}}/", *PREPARED_FILES),
    log:
        f"{DATASETS_DIR}/logs/{{dataset}}.log",
    conda:
        "../../environment.yml"
    params:
        code=stage_code("prepare_dataset"),
        source=lambda wildcards: config["datasets"][wildcards.dataset]["source"],
        out_dir=lambda wildcards: f"{DATASETS_DIR}/{wildcards.dataset}",
    script:
        "../scripts/prepare_dataset.py"
