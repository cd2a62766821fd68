# Lottery tickets by iterative magnitude pruning (BERT-Tickets), per task. Round r prunes the
# weights fine-tuned under round r-1's mask (round 1: the dense run) down to its sparsity, keeping
# a `rate` of the original weights fewer each round, and the next fine-tuning rewinds the survivors
# to their pre-trained values. Each round's run is an ordinary fine-tuning run (rule finetune_run,
# method lth), so the chain alternates: finetune_run -> lth_round -> finetune_run -> ...


rule lth_round:
    output:
        mask=LTH_MASK,
        report=LTH_REPORT,
    input:
        unpack(lth_parent),
        code=code("stages.lth"),
    params:
        cli=job_cli,
        settings=lambda wildcards: handed(lth_round_settings(config, int(wildcards.round))),
    priority: lth_chain_priority
    conda:
        ENV
    log:
        "logs/lth/{model}/{task}/round-{round}.log",
    benchmark:
        "results/benchmarks/lth_round/{model}/{task}/round-{round}.tsv"
    resources:
        **job_resources("model"),
    shell:
        "{params.cli} {params.settings} lth --model {wildcards.model} --task {wildcards.task}"
        " --round {wildcards.round} --checkpoint {input.checkpoint} --previous {input.previous}"
        " --out {output.mask} > {log} 2>&1"


rule lth:
    input:
        lth_masks(),
        run_metrics(levels=[(LTH, sparsity) for sparsity in LTH_LEVELS]),
