# Sparse fine-tuning: each task fine-tunes the pre-trained model under each mask, with the same
# settings at every sparsity; pruned weights stay exactly zero through every optimizer step.

CHECKPOINT = {"checkpoint": f"{RUN}/model.safetensors"} if config["finetune"]["save_checkpoint"] else {}


rule finetune_run:
    output:
        metrics=f"{RUN}/metrics.json",
        **CHECKPOINT,
    input:
        data=rules.split_task.output,
        mask=MASK,
        code=code("sources", "finetune", "masks", "stages"),
    params:
        cli=CLI,
        settings=lambda wildcards: finetune_settings(config, wildcards.task),
        checkpoint=lambda wildcards, output: (
            f"--checkpoint {output.checkpoint}" if CHECKPOINT else ""
        ),
    threads: config["finetune"]["threads"]
    conda:
        ENV
    log:
        f"logs/finetune/{RUN.removeprefix('results/finetune/')}.log",
    benchmark:
        f"results/benchmarks/finetune_run/{RUN.removeprefix('results/finetune/')}.tsv"
    shell:
        "{params.cli} finetune --model {wildcards.model} --task {wildcards.task} --mask {input.mask}"
        " --seed {wildcards.seed} --data-dir results/data/{wildcards.task}"
        " --metrics {output.metrics} {params.checkpoint} > {log} 2>&1"


rule finetune:
    input:
        run_metrics(),
