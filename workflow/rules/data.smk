# Task data: deterministic, stratified, seeded train/validation/test splits, written once and
# shared by every model, mask and seed.


rule split_task:
    output:
        train=f"{DATA}/train.jsonl",
        validation=f"{DATA}/validation.jsonl",
        test=f"{DATA}/test.jsonl",
        meta=f"{DATA}/meta.json",
    input:
        code("stages.split"),
    params:
        cli=job_cli,
        settings=lambda wildcards: handed(split_settings(config, wildcards.task)),
    conda:
        ENV
    log:
        "logs/split/{task}.log",
    wildcard_constraints:
        task="|".join(TEXT_TASKS),
    benchmark:
        "results/benchmarks/split_task/{task}.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} split --task {wildcards.task} --out-dir results/data/{wildcards.task} > {log} 2>&1"


# Image tasks split by the same rule into uint8 tensors; the pre-training task of the vision
# transformers (vision.pretrain.task) is read whole by its own stage and never split here.


rule split_images:
    output:
        train=f"{DATA}/train.safetensors",
        validation=f"{DATA}/validation.safetensors",
        test=f"{DATA}/test.safetensors",
        meta=f"{DATA}/meta.json",
    input:
        code("stages.split"),
    params:
        cli=job_cli,
        settings=lambda wildcards: handed(split_settings(config, wildcards.task)),
    wildcard_constraints:
        task="|".join(IMAGE_TASKS),
    conda:
        ENV
    log:
        "logs/split/{task}.log",
    benchmark:
        "results/benchmarks/split_images/{task}.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} split --task {wildcards.task} --out-dir results/data/{wildcards.task} > {log} 2>&1"


# Arithmetic word problems (Figure 4) split by the same rule: generated stand-ins in the default
# profile, MAWPS, ASDiv-A and SVAMP from the hub in the paper profile, each problem labelled by
# its equation's template.


rule split_arithmetic:
    output:
        train=f"{DATA}/train.jsonl",
        validation=f"{DATA}/validation.jsonl",
        test=f"{DATA}/test.jsonl",
        meta=f"{DATA}/meta.json",
    input:
        code("stages.split"),
    params:
        cli=job_cli,
        settings=lambda wildcards: handed(split_settings(config, wildcards.task)),
    wildcard_constraints:
        task="|".join(ARITHMETIC_TASKS),
    conda:
        ENV
    log:
        "logs/split/{task}.log",
    benchmark:
        "results/benchmarks/split_arithmetic/{task}.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} split --task {wildcards.task} --out-dir results/data/{wildcards.task} > {log} 2>&1"


# A task of params.yaml's catalog (files, a folder of images or a hub data set, the columns it
# names) splits by the same rule; its files are the job's inputs, so editing one splits the task
# again. Text and question-answering tasks become JSON lines, image tasks uint8 tensors.


rule split_catalog_task:
    output:
        train=f"{DATA}/train.jsonl",
        validation=f"{DATA}/validation.jsonl",
        test=f"{DATA}/test.jsonl",
        meta=f"{DATA}/meta.json",
    input:
        files=catalog_files,
        code=code("stages.split"),
    params:
        cli=job_cli,
        settings=lambda wildcards: handed(split_settings(config, wildcards.task)),
    wildcard_constraints:
        task="|".join(CATALOG_TEXT) or "(?!)",  # no such catalog task: a pattern matching none
    conda:
        ENV
    log:
        "logs/split/{task}.log",
    benchmark:
        "results/benchmarks/split_catalog_task/{task}.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} split --task {wildcards.task} --out-dir results/data/{wildcards.task} > {log} 2>&1"


use rule split_catalog_task as split_catalog_images with:
    output:
        train=f"{DATA}/train.safetensors",
        validation=f"{DATA}/validation.safetensors",
        test=f"{DATA}/test.safetensors",
        meta=f"{DATA}/meta.json",
    wildcard_constraints:
        task="|".join(CATALOG_IMAGES) or "(?!)",
    benchmark:
        "results/benchmarks/split_catalog_images/{task}.tsv"


rule data:
    input:
        expand(rules.split_task.output, task=TASKS),  # split_catalog_task's files alike
        expand(rules.split_images.output, task=VISION["tasks"]),
        expand(rules.split_arithmetic.output, task=ARITHMETIC["tasks"]),
