# One training run per pair x corruption x seed. A checkpoint: the epochs that get a checkpoint are
# known only after training stops. Checkpoint files are written into checkpoints/ (not declared as
# outputs on purpose: Snakemake deletes declared outputs before rerunning a job, which would throw
# away what an interrupted run resumes from). run.json is written last and marks completion.


checkpoint train:
    input:
        meta=prepared_input,
        labels=labels_input,
    output:
        run_json=f"{RESULTS}/runs/{RUN}/run.json",
        history=f"{RESULTS}/runs/{RUN}/history.parquet",
    log:
        f"{RESULTS}/logs/train/{RUN}.log",
    conda:
        "../../environment.yml"
    threads: compute("train", "threads", 4)
    resources:
        mem_mb=lambda wildcards, attempt: compute("train", "mem_mb", 16000) * attempt,
        runtime=lambda wildcards, attempt: compute("train", "runtime", 720) * attempt,
        gpu=1,
    params:
        code=stage_code("train"),
        prepared_dir=prepared_dir,
        run_dir=lambda wildcards: f"{RESULTS}/runs/{run_path(wildcards.pair, wildcards.corruption, wildcards.seed)}",
        pair_config=lambda wildcards: config["pairs"][wildcards.pair],
        device=config["device"],
    script:
        "../scripts/train.py"
