# Evaluation: every run's test metric in one tidy table, the drop from the dense model at each
# sparsity, and essential sparsity (largest grid sparsity within epsilon points of dense).


rule tabulate:
    output:
        runs=f"{TABLES}/finetune_runs.csv",
        drops=f"{TABLES}/drop_vs_sparsity.csv",
        essential=f"{TABLES}/essential_sparsity.csv",
        lth_vs_omp=f"{TABLES}/lth_vs_omp.csv",
        nm=f"{TABLES}/nm_patterns.csv",
        metrics="results/metrics/essential_sparsity.json",
    input:
        runs=run_metrics(),
        predictions=predictions_of(run_metrics()),
        code=code("evaluation.tables"),
    params:
        cli=job_cli,
        out_dir=lambda wildcards, output: os.path.dirname(output.runs),
        settings=handed(tables_settings(config)),
    conda:
        ENV
    log:
        "logs/tabulate.log",
    benchmark:
        "results/benchmarks/tabulate/tabulate.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} tables --out-dir {params.out_dir} --metrics-json {output.metrics} {input.runs} > {log} 2>&1"


rule mask_similarity:
    output:
        f"{TABLES}/mask_similarity.csv",
    input:
        lth=lth_masks(),
        code=code("stages.similarity"),
    params:
        cli=job_cli,
        settings=handed(similarity_settings(config)),
    conda:
        ENV
    log:
        "logs/mask_similarity.log",
    benchmark:
        "results/benchmarks/mask_similarity/mask_similarity.tsv"
    resources:
        **job_resources("model"),
    shell:
        "{params.cli} {params.settings} similarity --out {output} {input.lth} > {log} 2>&1"


rule claims:
    output:
        csv=f"{TABLES}/claims.csv",
        md="reports/claims.md",
    input:
        claims=repo_path("workflow", "claims.yaml"),
        tables=[rules.tabulate.output.runs, rules.tabulate.output.drops,
                rules.tabulate.output.essential, rules.tabulate.output.nm,
                rules.mask_similarity.output[0], rules.llm_table.output[0],
                rules.pretrain_tables.output.zero_weights, rules.pretrain_tables.output.drops,
                rules.vision_tables.output.zero_weights, rules.vision_tables.output.drops,
                rules.vision_tables.output.essential, rules.arithmetic_tables.output.essential],
        code=code("evaluation.tables"),
    params:
        cli=job_cli,
        tables_dir=lambda wildcards, output: os.path.dirname(output.csv),
        settings=handed(report_settings(config)),
    conda:
        ENV
    log:
        "logs/claims.log",
    benchmark:
        "results/benchmarks/claims/claims.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} claims --claims {input.claims} --tables {params.tables_dir}"
        " --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule mask_table:
    output:
        f"{TABLES}/pruned_by_component_{{model}}_{{method}}_{{sparsity}}.csv",
    input:
        report=MASK_REPORT,
        code=code("evaluation.tables"),
    params:
        cli=job_cli,
    conda:
        ENV
    log:
        "logs/mask_table/{model}_{method}_{sparsity}.log",
    benchmark:
        "results/benchmarks/mask_table/{model}_{method}_{sparsity}.tsv"
    resources:
        **job_resources("model"),
    shell:
        "{params.cli} mask-table --report {input.report} --out {output} > {log} 2>&1"


rule tables:
    input:
        rules.tabulate.output,
        rules.llm_table.output,
        rules.pretrain_tables.output,
        rules.vision_tables.output,
        rules.arithmetic_tables.output,
        rules.mask_similarity.output,
        rules.claims.output,
        expand(rules.mask_table.output, **FIG01),
