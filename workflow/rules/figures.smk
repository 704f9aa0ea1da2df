# Every figure of latentgen.report.figure_specs.FIGURES: the paper's 1-14 and latentgen's 16, 17 and 18 (there
# is no 15). A config builds those of its figures.numbers that show one of its pairs at one of its rates
# (figure_numbers in common.smk). Each reads only the runs of the pairs and rates it shows, so
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
