# The paper's figures 1-14. Each reads only the runs of the pairs and rates it shows, so
# `snakemake results/figures/fig3.pdf` builds only what figure 3 needs.
rule figure:
    input:
        runs=figure_inputs,
    output:
        pdf=report(
            f"{RESULTS}/figures/fig{{number}}.pdf",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{number}"},
        ),
    log:
        f"{RESULTS}/logs/figures/fig{{number}}.log",
    conda:
        "../../environment.yml"
    params:
        code=stage_code("figure"),
        number=lambda wildcards: int(wildcards.number),
        title=lambda wildcards: figure_spec(int(wildcards.number)).title,
        layer_order=layer_order(),
        style=config["figures"]["style"],
    script:
        "../scripts/figure.py"
