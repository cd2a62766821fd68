# The report page: every figure with its caption (workflow/report/<figure>.rst, shared with
# `snakemake --report`), the essential-sparsity and claims tables, links to the executed
# notebooks, and the provenance of the build, in one static page that renders offline.


rule report_page:
    output:
        "reports/index.html",
    input:
        figures=[outputs[0] for outputs in FIGURES.values()],
        notebooks=[outputs[2] for outputs in FIGURES.values()],
        captions=[caption(fig) for fig in FIGURES],
        essential=rules.tabulate.output.essential,
        claims=rules.claims.output.csv,
        code=code("records.report"),
    params:
        cli=job_cli,
        notebooks_dir=lambda wildcards, input: os.path.dirname(input.notebooks[0]),
        captions_dir=lambda wildcards, input: os.path.dirname(input.captions[0]),
        settings=handed(report_settings(config)),
    conda:
        ENV
    log:
        "logs/report.log",
    benchmark:
        "results/benchmarks/report_page/report.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} report --out {output} --notebooks-dir {params.notebooks_dir}"
        " --captions-dir {params.captions_dir} --essential {input.essential}"
        " --claims {input.claims} {input.figures} > {log} 2>&1"


rule report:
    input:
        rules.report_page.output,
