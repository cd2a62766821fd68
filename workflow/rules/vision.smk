# Vision transformers, supervised against self-supervised (Section 4, Figures 3, 6, 7). One ViT
# configuration is pre-trained twice, from the same initial weights, on the same images, for the
# same steps with the same optimizer and seed: once supervised (vit-sl, classification of
# vision.pretrain.task) and once self-supervised (vit-ssl, DINO: a student and its momentum
# teacher over multi-crop views, with centering and sharpening). Each vision model is then pruned
# one-shot from its last checkpoint and fine-tuned on every image task like any pre-trained model
# (rules prune and finetune_run); the paper profile reads ViT-base/large and DINO-base from the hub
# instead. The tables set the pre-training losses, the normalized weight distributions and the
# downstream drops side by side.


rule vision_pretrain_run:
    output:
        directory(VISION_RUN),
    input:
        code=code("stages.vision"),
    params:
        cli=job_cli,
        settings=lambda wildcards: handed(vision_pretrain_settings(config, wildcards.model)),
    wildcard_constraints:
        model="|".join(VISION_HERE) or "(?!)",
    threads: VISION["pretrain"]["threads"]
    conda:
        ENV
    log:
        "logs/vision/{model}.log",
    benchmark:
        "results/benchmarks/vision_pretrain_run/{model}.tsv"
    resources:
        **job_resources("train"),
    shell:
        "{params.cli} {params.settings} --threads {threads} vision-pretrain --model {wildcards.model}"
        " --out-dir {output} > {log} 2>&1"


rule vision_tables:
    output:
        losses=f"{TABLES}/vision_losses.csv",
        zero_weights=f"{TABLES}/vision_zero_weights.csv",
        histograms=f"{TABLES}/vision_weight_histograms.csv",
        drops=f"{TABLES}/vision_drop_vs_sparsity.csv",
        essential=f"{TABLES}/vision_essential_sparsity.csv",
    input:
        runs=expand(VISION_RUN, model=VISION_HERE),
        finetune=vision_metrics(),
        predictions=predictions_of(vision_metrics()),
        code=code("stages.vision_tables"),
    params:
        cli=job_cli,
        settings=handed(vision_tables_settings(config)),
    conda:
        ENV
    log:
        "logs/vision_tables.log",
    benchmark:
        "results/benchmarks/vision_tables/vision_tables.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} vision-tables --runs {input.runs} --finetune {input.finetune}"
        " --losses {output.losses} --zero-weights {output.zero_weights}"
        " --weight-histograms {output.histograms} --drop-vs-sparsity {output.drops}"
        " --essential-sparsity {output.essential} > {log} 2>&1"


rule vision:
    input:
        expand(VISION_RUN, model=VISION_HERE),
