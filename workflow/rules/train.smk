# One training run per pair x corruption x seed. A checkpoint: the epochs that get a checkpoint are
# known only after training stops. Checkpoint files are written into checkpoints/ (not declared as
# outputs on purpose: Snakemake deletes declared outputs before rerunning a job, which would throw
# away what an interrupted run resumes from). run.json is written last and marks completion.


checkpoint train:
    input:
        unpack(variant_input),
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
        mem_mb=per_attempt("train", "mem_mb", 16000),
        runtime=per_attempt("train", "runtime", 720),
        gpu=1,
    params:
        code=stage_code("train"),
        prepared_dir=prepared_dir,
        run_dir=run_dir,
        pair_config=training_pair_config,
        edit=edit_param,
        holdout=config["scoring"]["holdout"],
        device=config["device"],
    script:
        "../scripts/train.py"


# The start of an edited run: the VeLPIC vectors of a standard run's checkpoint at epoch E written into its
# pre-softmax layer with the bias zeroed (latentgen.training.editing; VeLPIC fitted as scoring fits it).
rule velpic_edit:
    input:
        unpack(edited_checkpoint),
        meta=prepared_input,
        labels=labels_input,
    output:
        edited=f"{RESULTS}/edits/{{pair}}/c{{corruption}}/s{{seed}}/epoch_{{epoch}}.pt",
    log:
        f"{RESULTS}/logs/velpic_edit/{{pair}}/c{{corruption}}/s{{seed}}/epoch_{{epoch}}.log",
    conda:
        "../../environment.yml"
    threads: compute("score", "threads", 2)
    resources:
        mem_mb=per_attempt("score", "mem_mb", 16000),
        runtime=per_attempt("score", "runtime", 30),
        gpu=1,
    params:
        code=stage_code("velpic_edit"),
        prepared_dir=prepared_dir,
        holdout=config["scoring"]["holdout"],
        batch_size=config["activations"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/velpic_edit.py"
