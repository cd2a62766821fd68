# One-shot pruning of the pre-trained weights, before any fine-tuning. OMP removes the round(s x N)
# smallest-magnitude weights of the scope (attention Q, K, V, output and FFN in, out), globally or
# per matrix; the random control removes as many drawn uniformly; an N:M pattern keeps the N
# largest of every M consecutive weights of a row. One mask per (model, method, sparsity), shared by
# every task; masks of one model and grid method are nested across sparsities. Models pre-trained
# from scratch here (Figure 8) and the vision transformers pre-trained here (Figures 3, 6, 7) are
# pruned from their last checkpoint the same way. The arithmetic runs (Figure 4) share the grid's
# masks and add a prune job only at a sparsity the grid lacks.


rule prune:
    output:
        mask=MASK,
        report=MASK_REPORT,
    input:
        model=model_input,
        code=code("stages.prune"),
    params:
        cli=job_cli,
        location=model_location,
        settings=handed(prune_settings(config)),
    conda:
        ENV
    log:
        "logs/prune/{model}/{method}/{sparsity}.log",
    benchmark:
        "results/benchmarks/prune/{model}/{method}/{sparsity}.tsv"
    resources:
        **job_resources("model"),
    shell:
        "{params.cli} {params.settings} prune --model {wildcards.model} --method {wildcards.method}"
        " --sparsity {wildcards.sparsity} --out {output.mask} {params.location} > {log} 2>&1"


rule masks:
    input:
        [MASK.format(model=model, method=method, sparsity=sparsity)
         for model in MODELS for method, sparsity in RUN_LEVELS if method != LTH],
        [MASK.format(model=model, method=method, sparsity=sparsity)
         for model in SCRATCH for method, sparsity in SCRATCH_LEVELS],
        [MASK.format(model=model, method=method, sparsity=sparsity)
         for model in VISION["models"] for method, sparsity in VISION_LEVELS],
        [MASK.format(model=model, method=method, sparsity=sparsity)
         for model in MODELS for method, sparsity in ARITHMETIC_LEVELS],
