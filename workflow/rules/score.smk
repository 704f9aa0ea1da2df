# Every checkpoint of one run, one job: its activations (extracted, or read where activations.keep kept them),
# the configured probes (scoring.probes, every scored layer), the model itself, the VeLPIC weight transfer (every
# scored layer) and the held-out choice (probe "selected"), as the run's tidy table. A killed job resumes: each
# checkpoint's scores are kept as a fragment (scores/{run}/epoch_XXXX.parquet) keyed by the checkpoint's bytes,
# these params and the code (latentgen.pipeline.score).


rule score:
    input:
        unpack(run_score_input),
    output:
        table=f"{RESULTS}/scores/{RUN}.parquet",
    log:
        f"{RESULTS}/logs/score/{RUN}.log",
    conda:
        "../../environment.yml"
    threads: compute("score", "threads", 2)
    resources:
        mem_mb=per_attempt("score", "mem_mb", 16000),
        # compute.score.runtime is per checkpoint: the job's limit grows with the run's checkpoints
        runtime=per_attempt("score", "runtime", 30, per_checkpoint=True),
        gpu=1,
    params:
        code=stage_code("score"),
        prepared_dir=prepared_dir,
        fragments_dir=f"{RESULTS}/scores/{RUN}",
        activations_dir=f"{RESULTS}/activations/{RUN}",
        keep_activations=config["activations"]["keep"],
        dtype=config["activations"]["dtype"],
        variance=config["scoring"]["masc_variance"],
        holdout=config["scoring"]["holdout"],
        # a params value: adding or removing a probe reruns scoring (and what reads it) only; kept activations
        # are read, not extracted again
        probes=config["scoring"]["probes"],
        layers=pair_layers,
        edit_epoch=edit_epoch,
        # the transfer's forward passes batch like the extraction, so both see bitwise-equal activations
        batch_size=config["activations"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/score.py"
