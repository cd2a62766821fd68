# Figures: one papermill notebook per paper figure; each rule's outputs are the figure (png, pdf)
# and the executed notebook (html). Notebooks only load tables and draw; `render` renames their
# outputs into place only when the whole notebook succeeded.

NAMES = {
    "fig01": "fig01_pruned_weights",
    "fig02": "fig02_drop_vs_sparsity",
    "fig03": "fig03_vision_drop_vs_sparsity",
    "fig04": "fig04_arithmetic_drop_vs_sparsity",
    "fig05": "fig05_nm_patterns",
    "fig06": "fig06_sl_vs_ssl",
    "fig07": "fig07_weight_distribution",
    "fig08": "fig08_pretraining_sparsity",
    "fig08_loss": "fig08_pretraining_loss",
    "fig09": "fig09_lth_vs_omp",
    "fig10": "fig10_mask_similarity",
    "fig11": "fig11_llm_one_shot",
}
FIGURES = {fig: list(figure_outputs(name).values()) for fig, name in NAMES.items()}


rule draw_fig01:
    output:
        **drawn("fig01"),
    input:
        notebook=notebook("fig01"),
        mask=expand(MASK, **FIG01),
        table=expand(rules.mask_table.output, **FIG01),
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        model=json.dumps(FIG01["model"]),
        sparsity=json.dumps(float(FIG01["sparsity"])),
    conda:
        ENV
    log:
        "logs/figures/fig01.log",
    benchmark:
        "results/benchmarks/draw_fig01/fig01.tsv"
    resources:
        **job_resources("model"),
    shell:
        render(inputs=["mask", "table"], params=["model", "sparsity"])


rule draw_fig02:
    output:
        **drawn("fig02"),
    input:
        notebook=notebook("fig02"),
        drops=rules.tabulate.output.drops,
        essential=rules.tabulate.output.essential,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        methods=json.dumps(FIG["fig02"]["methods"]),
        epsilon=json.dumps(config["evaluate"]["epsilon"]),
    conda:
        ENV
    log:
        "logs/figures/fig02.log",
    benchmark:
        "results/benchmarks/draw_fig02/fig02.tsv"
    resources:
        **job_resources("light"),
    shell:
        render(inputs=["drops", "essential"], params=["methods", "epsilon"])


rule draw_fig03:
    output:
        **drawn("fig03"),
    input:
        notebook=notebook("fig03"),
        drops=rules.vision_tables.output.drops,
        essential=rules.vision_tables.output.essential,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        epsilon=json.dumps(config["evaluate"]["epsilon"]),
    conda:
        ENV
    log:
        "logs/figures/fig03.log",
    benchmark:
        "results/benchmarks/draw_fig03/fig03.tsv"
    resources:
        **job_resources("light"),
    shell:
        render(inputs=["drops", "essential"], params=["epsilon"])


rule draw_fig04:
    output:
        **drawn("fig04"),
    input:
        notebook=notebook("fig04"),
        drops=rules.arithmetic_tables.output.drops,
        essential=rules.arithmetic_tables.output.essential,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        epsilon=json.dumps(config["evaluate"]["epsilon"]),
    conda:
        ENV
    log:
        "logs/figures/fig04.log",
    benchmark:
        "results/benchmarks/draw_fig04/fig04.tsv"
    resources:
        **job_resources("light"),
    shell:
        render(inputs=["drops", "essential"], params=["epsilon"])


rule draw_fig06:
    output:
        **drawn("fig06"),
    input:
        notebook=notebook("fig06"),
        drops=rules.vision_tables.output.drops,
        essential=rules.vision_tables.output.essential,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        supervised=json.dumps(VISION["supervised"]),
        self_supervised=json.dumps(VISION["self_supervised"]),
    conda:
        ENV
    log:
        "logs/figures/fig06.log",
    benchmark:
        "results/benchmarks/draw_fig06/fig06.tsv"
    resources:
        **job_resources("light"),
    shell:
        render(inputs=["drops", "essential"], params=["supervised", "self_supervised"])


rule draw_fig07:
    output:
        **drawn("fig07"),
    input:
        notebook=notebook("fig07"),
        zero_weights=rules.vision_tables.output.zero_weights,
        histograms=rules.vision_tables.output.histograms,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        supervised=json.dumps(VISION["supervised"]),
        self_supervised=json.dumps(VISION["self_supervised"]),
        near_zero=json.dumps(VISION["near_zero"]),
    conda:
        ENV
    log:
        "logs/figures/fig07.log",
    benchmark:
        "results/benchmarks/draw_fig07/fig07.tsv"
    resources:
        **job_resources("model"),
    shell:
        render(inputs=["zero_weights", "histograms"],
               params=["supervised", "self_supervised", "near_zero"])


rule draw_fig05:
    output:
        **drawn("fig05"),
    input:
        notebook=notebook("fig05"),
        table=rules.tabulate.output.nm,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        epsilon=json.dumps(config["evaluate"]["epsilon"]),
    conda:
        ENV
    log:
        "logs/figures/fig05.log",
    benchmark:
        "results/benchmarks/draw_fig05/fig05.tsv"
    resources:
        **job_resources("light"),
    shell:
        render(inputs=["table"], params=["epsilon"])


rule draw_fig08:
    output:
        **drawn("fig08"),
    input:
        notebook=notebook("fig08"),
        zero_weights=rules.pretrain_tables.output.zero_weights,
        onset=rules.pretrain_tables.output.onset,
        drops=rules.pretrain_tables.output.drops,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        epsilon=json.dumps(config["evaluate"]["epsilon"]),
    conda:
        ENV
    log:
        "logs/figures/fig08.log",
    benchmark:
        "results/benchmarks/draw_fig08/fig08.tsv"
    resources:
        **job_resources("light"),
    shell:
        render(inputs=["zero_weights", "onset", "drops"], params=["epsilon"])


rule draw_fig08_loss:
    output:
        **drawn("fig08_loss"),
    input:
        notebook=notebook("fig08_loss"),
        losses=rules.pretrain_tables.output.losses,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
    conda:
        ENV
    log:
        "logs/figures/fig08_loss.log",
    benchmark:
        "results/benchmarks/draw_fig08_loss/fig08_loss.tsv"
    resources:
        **job_resources("light"),
    shell:
        render(inputs=["losses"])


rule draw_fig09:
    output:
        **drawn("fig09"),
    input:
        notebook=notebook("fig09"),
        table=rules.tabulate.output.lth_vs_omp,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        method=json.dumps(FIG["fig09"]["method"]),
        epsilon=json.dumps(config["evaluate"]["epsilon"]),
    conda:
        ENV
    log:
        "logs/figures/fig09.log",
    benchmark:
        "results/benchmarks/draw_fig09/fig09.tsv"
    resources:
        **job_resources("light"),
    shell:
        render(inputs=["table"], params=["method", "epsilon"])


rule draw_fig10:
    output:
        **drawn("fig10"),
    input:
        notebook=notebook("fig10"),
        table=rules.mask_similarity.output,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        method=json.dumps(FIG["fig10"]["method"]),
    conda:
        ENV
    log:
        "logs/figures/fig10.log",
    benchmark:
        "results/benchmarks/draw_fig10/fig10.tsv"
    resources:
        **job_resources("light"),
    shell:
        render(inputs=["table"], params=["method"])


rule draw_fig11:
    output:
        **drawn("fig11"),
    input:
        notebook=notebook("fig11"),
        table=rules.llm_table.output,
        code=code("render"),
    params:
        cli=job_cli,
        dpi=FIG["dpi"],
        epsilon=json.dumps(config["evaluate"]["epsilon"]),
    conda:
        ENV
    log:
        "logs/figures/fig11.log",
    benchmark:
        "results/benchmarks/draw_fig11/fig11.tsv"
    resources:
        **job_resources("light"),
    shell:
        render(inputs=["table"], params=["epsilon"])


rule fig01:
    input:
        FIGURES["fig01"],


rule fig02:
    input:
        FIGURES["fig02"],


rule fig03:
    input:
        FIGURES["fig03"],


rule fig04:
    input:
        FIGURES["fig04"],


rule fig05:
    input:
        FIGURES["fig05"],


rule fig06:
    input:
        FIGURES["fig06"],


rule fig07:
    input:
        FIGURES["fig07"],


rule fig08:
    input:
        FIGURES["fig08"],
        FIGURES["fig08_loss"],


rule fig09:
    input:
        FIGURES["fig09"],


rule fig10:
    input:
        FIGURES["fig10"],


rule fig11:
    input:
        FIGURES["fig11"],


rule fig01_mask:
    input:
        expand(MASK, **FIG01),
