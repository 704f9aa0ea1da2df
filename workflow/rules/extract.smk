# Activations of every probed layer at one checkpoint, written once to disk (float16 by default) and
# deleted after scoring unless activations.keep is set.


rule extract:
    input:
        unpack(checkpoint_job_input),
    output:
        activations=activations_output(
            directory(f"{RESULTS}/activations/{RUN}/epoch_{{epoch}}")
        ),
    log:
        f"{RESULTS}/logs/extract/{RUN}/epoch_{{epoch}}.log",
    conda:
        "../../environment.yml"
    threads: compute("extract", "threads", 2)
    resources:
        mem_mb=per_attempt("extract", "mem_mb", 16000),
        runtime=per_attempt("extract", "runtime", 30),
        gpu=1,
    params:
        code=stage_code("extract"),
        prepared_dir=prepared_dir,
        dtype=config["activations"]["dtype"],
        batch_size=config["activations"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/extract.py"
