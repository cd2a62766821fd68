# Sparse fine-tuning: each task fine-tunes the pre-trained model under each mask (grid, N:M or an
# LTH round), with the same settings at every sparsity; pruned weights stay exactly zero through
# every optimizer step. LTH rounds prune the checkpoint further, so it is kept until they ran even
# when finetune.save_checkpoint is false. Models pre-trained from scratch here fine-tune the same
# way, with pretrain.finetune's overrides of the settings; the vision transformers fine-tune on the
# image tasks with vision.finetune's, and every model on the arithmetic word problems with
# arithmetic.finetune's.

CHECKPOINT = f"{RUN}/model.safetensors"


# A text task is tokenized once per model: every run of the pair reads the same token ids.


rule encode_task:
    output:
        ENCODED,
    input:
        data=task_data,
        model=model_input,
        code=code("stages.encode"),
    params:
        cli=job_cli,
        location=model_location,
        settings=lambda wildcards: handed(encode_settings(config, wildcards.task,
                                                          wildcards.model)),
    wildcard_constraints:
        task="|".join([*TEXT_TASKS, *CATALOG_TEXT, *ARITHMETIC_TASKS]),
    conda:
        ENV
    log:
        "logs/encode/{model}/{task}.log",
    benchmark:
        "results/benchmarks/encode_task/{model}/{task}.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} encode --model {wildcards.model} --task {wildcards.task}"
        " --data-dir results/data/{wildcards.task} --out {output} {params.location} > {log} 2>&1"


rule finetune_run:
    output:
        metrics=RUN_METRICS,
        predictions=RUN_PREDICTIONS,
        checkpoint=CHECKPOINT if config["finetune"]["save_checkpoint"] else temp(CHECKPOINT),
    input:
        data=task_data,
        encoded=encoded_input,
        mask=run_mask,
        model=model_input,
        code=code("stages.finetune"),
    params:
        cli=job_cli,
        location=model_location,
        encoded=encoded_option,
        settings=lambda wildcards: handed(finetune_settings(config, wildcards.task,
                                                            wildcards.model)),
    threads: config["finetune"]["threads"]
    priority: lth_chain_priority
    conda:
        ENV
    log:
        f"logs/finetune/{RUN.removeprefix('results/finetune/')}.log",
    benchmark:
        f"results/benchmarks/finetune_run/{RUN.removeprefix('results/finetune/')}.tsv"
    resources:
        **job_resources("train"),
    shell:
        "{params.cli} {params.settings} --threads {threads} finetune --model {wildcards.model}"
        " --task {wildcards.task} --mask {input.mask} --seed {wildcards.seed}"
        " --data-dir results/data/{wildcards.task} --metrics {output.metrics}"
        " --predictions {output.predictions} --checkpoint {output.checkpoint}"
        " {params.location} {params.encoded} > {log} 2>&1"


rule finetune:
    input:
        run_metrics(),
        scratch_metrics(),
        vision_metrics(),
        arithmetic_metrics(),
