# Figures: one papermill notebook per paper figure; each rule's outputs are the figure (png, pdf)
# and the executed notebook (html). Notebooks only load tables and draw; `render` renames their
# outputs into place only when the whole notebook succeeded.


FIGURES = {
    "fig01": list(figure_outputs("fig01_pruned_weights").values()),
    "fig02": list(figure_outputs("fig02_drop_vs_sparsity").values()),
}


rule draw_fig01:
    output:
        **figure_outputs("fig01_pruned_weights"),
    input:
        notebook=repo_path("workflow", "notebooks", "fig01_pruned_weights.ipynb"),
        mask=expand(MASK, **FIG01),
        table=expand(rules.mask_table.output, **FIG01),
        code=code("render"),
    params:
        cli=CLI,
        dpi=FIG["dpi"],
        model=FIG01["model"],
        sparsity=FIG01["sparsity"],
    conda:
        ENV
    log:
        "logs/figures/fig01.log",
    benchmark:
        "results/benchmarks/draw_fig01/fig01.tsv"
    shell:
        "{params.cli} render --notebook {input.notebook} --html {output.html}"
        " --out out_png={output.png} --out out_pdf={output.pdf} --param dpi={params.dpi}"
        " --param mask={input.mask} --param table={input.table}"
        " --param model={params.model} --param sparsity={params.sparsity} > {log} 2>&1"


rule draw_fig02:
    output:
        **figure_outputs("fig02_drop_vs_sparsity"),
    input:
        notebook=repo_path("workflow", "notebooks", "fig02_drop_vs_sparsity.ipynb"),
        drops=rules.tabulate.output.drops,
        essential=rules.tabulate.output.essential,
        code=code("render"),
    params:
        cli=CLI,
        dpi=FIG["dpi"],
        method=FIG["fig02"]["method"],
        epsilon=config["evaluate"]["epsilon"],
    conda:
        ENV
    log:
        "logs/figures/fig02.log",
    benchmark:
        "results/benchmarks/draw_fig02/fig02.tsv"
    shell:
        "{params.cli} render --notebook {input.notebook} --html {output.html}"
        " --out out_png={output.png} --out out_pdf={output.pdf} --param dpi={params.dpi}"
        " --param drops={input.drops} --param essential={input.essential}"
        " --param method={params.method} --param epsilon={params.epsilon} > {log} 2>&1"


rule fig01:
    input:
        FIGURES["fig01"],


rule fig02:
    input:
        FIGURES["fig02"],


rule fig01_mask:
    input:
        expand(MASK, **FIG01),
