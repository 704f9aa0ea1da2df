# The configured probes (scoring.probes, every scored layer), the model itself, the VeLPIC weight
# transfer (every scored layer) and the held-out choice (probe "selected") at one checkpoint, as a
# tidy Parquet fragment; then one table per run.


rule score:
    input:
        unpack(checkpoint_job_input),
        activations=f"{RESULTS}/activations/{RUN}/epoch_{{epoch}}",
    output:
        scores=f"{RESULTS}/scores/{RUN}/epoch_{{epoch}}.parquet",
    log:
        f"{RESULTS}/logs/score/{RUN}/epoch_{{epoch}}.log",
    conda:
        "../../environment.yml"
    threads: compute("score", "threads", 2)
    resources:
        mem_mb=per_attempt("score", "mem_mb", 16000),
        runtime=per_attempt("score", "runtime", 30),
        gpu=1,
    params:
        code=stage_code("score"),
        prepared_dir=prepared_dir,
        variance=config["scoring"]["masc_variance"],
        holdout=config["scoring"]["holdout"],
        # a params value: adding or removing a probe reruns scoring (and what reads it) only
        probes=config["scoring"]["probes"],
        layers=pair_layers,
        edit_epoch=edit_epoch,
        # the transfer's forward passes batch like the extraction, so both see bitwise-equal activations
        batch_size=config["activations"]["batch_size"],
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
    params:
        code=stage_code("collect_run"),
    script:
        "../scripts/collect_run.py"
