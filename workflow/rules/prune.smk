# One-shot magnitude pruning (OMP) of the pre-trained weights, before any fine-tuning: remove the
# round(s x N) smallest-magnitude weights of the scope (attention Q, K, V, output and FFN in, out),
# globally or per matrix. One mask per (model, method, sparsity), shared by every task; masks of
# one model are nested across sparsities.


rule prune:
    output:
        mask=MASK,
        report=MASK_REPORT,
    input:
        code("sources", "scope", "masks"),
    params:
        cli=CLI,
        scope=config["prune"]["scope"],
    conda:
        ENV
    log:
        "logs/prune/{model}/{method}/{sparsity}.log",
    benchmark:
        "results/benchmarks/prune/{model}/{method}/{sparsity}.tsv"
    shell:
        "{params.cli} prune --model {wildcards.model} --method {wildcards.method}"
        " --sparsity {wildcards.sparsity} --out {output.mask} > {log} 2>&1"


rule masks:
    input:
        expand(MASK, model=MODELS, method=METHODS, sparsity=SPARSITIES),
