# MASC, VeLPIC (every scored layer), the model itself and the VeLPIC weight transfer at one
# checkpoint, as a tidy Parquet fragment; then one table per run.


rule score:
    input:
        activations=f"{RESULTS}/activations/{RUN}/epoch_{{epoch}}",
        run_json=f"{RESULTS}/runs/{RUN}/run.json",
        checkpoint=f"{RESULTS}/runs/{RUN}/checkpoints/epoch_{{epoch}}.pt",
        meta=prepared_input,
        labels=labels_input,
    output:
        scores=f"{RESULTS}/scores/{RUN}/epoch_{{epoch}}.parquet",
    log:
        f"{RESULTS}/logs/score/{RUN}/epoch_{{epoch}}.log",
    conda:
        "../../environment.yml"
    threads: compute("score", "threads", 2)
    resources:
        mem_mb=lambda wildcards, attempt: compute("score", "mem_mb", 16000) * attempt,
        runtime=lambda wildcards, attempt: compute("score", "runtime", 30) * attempt,
        gpu=1,
    params:
        prepared_dir=prepared_dir,
        variance=config["scoring"]["masc_variance"],
        layers=lambda wildcards: scored_layers(wildcards.pair),
        device=config["device"],
    script:
        "../scripts/score.py"


rule collect_run:
    input:
        fragments=run_fragments,
    output:
        table=f"{RESULTS}/scores/{RUN}.parquet",
    log:
        f"{RESULTS}/logs/collect/{RUN}.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/collect_run.py"
