# Arithmetic reasoning (Section 4, Figure 4; SMC-Bench): math word problems, each labelled by the
# template of its equation, fine-tuned like any text task. Every model of sources.models is pruned
# one-shot by the first grid method (OMP) at each of arithmetic.sparsities, before fine-tuning,
# and fine-tuned on every arithmetic task with the mask held fixed (rules prune and finetune_run).
# The table sets each task's drop from its dense run against sparsity, with essential sparsity,
# and says which tasks are generated stand-ins for the paper's MAWPS, ASDiv-A and SVAMP.


rule arithmetic_tables:
    output:
        runs=f"{TABLES}/arithmetic_runs.csv",
        drops=f"{TABLES}/arithmetic_drop_vs_sparsity.csv",
        essential=f"{TABLES}/arithmetic_essential_sparsity.csv",
    input:
        runs=arithmetic_metrics(),
        predictions=predictions_of(arithmetic_metrics()),
        code=code("evaluation.tables"),
    params:
        cli=job_cli,
        settings=handed(arithmetic_tables_settings(config)),
    conda:
        ENV
    log:
        "logs/arithmetic_tables.log",
    benchmark:
        "results/benchmarks/arithmetic_tables/arithmetic_tables.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} arithmetic-tables --runs {output.runs} --drop-vs-sparsity {output.drops}"
        " --essential-sparsity {output.essential} {input.runs} > {log} 2>&1"


rule arithmetic:
    input:
        arithmetic_metrics(),
