# Task data: deterministic, stratified, seeded train/validation/test splits, written once and
# shared by every model, mask and seed.


rule split_task:
    output:
        train=f"{DATA}/train.jsonl",
        validation=f"{DATA}/validation.jsonl",
        test=f"{DATA}/test.jsonl",
        meta=f"{DATA}/meta.json",
    input:
        code("sources", "data"),
    params:
        cli=CLI,
        data=config["data"],
    conda:
        ENV
    log:
        "logs/split/{task}.log",
    benchmark:
        "results/benchmarks/split_task/{task}.tsv"
    shell:
        "{params.cli} split --task {wildcards.task} --out-dir results/data/{wildcards.task} > {log} 2>&1"


rule data:
    input:
        expand(rules.split_task.output, task=TASKS),
