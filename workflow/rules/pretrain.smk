# Pre-training dynamics (Section 5, Figure 8). A BERT built from a config is pre-trained from
# scratch by masked-language modelling on nested random subsets of one corpus (pretrain.fractions
# of its packed sequences), with identical settings, seed and number of steps, checkpointing every
# pretrain.checkpoint_every steps. The zero and near-zero weights of every checkpoint trace the
# emergence of sparsity; each subset's last checkpoint is then pruned and fine-tuned like any
# pre-trained model (rules prune and finetune_run), and the tables put the three together.


rule pretrain_data:
    output:
        directory(PRETRAIN_DATA),
    input:
        files=corpus_files(pretrain_data_settings(config)),
        code=code("stages.pretrain"),
    params:
        cli=job_cli,
        settings=handed(pretrain_data_settings(config)),
    conda:
        ENV
    log:
        "logs/pretrain/data.log",
    benchmark:
        "results/benchmarks/pretrain_data/data.tsv"
    resources:
        **job_resources("model"),
    shell:
        "{params.cli} {params.settings} pretrain-data --out-dir {output} > {log} 2>&1"


rule pretrain_run:
    output:
        directory(PRETRAIN_RUN),
    input:
        data=rules.pretrain_data.output,
        code=code("stages.pretrain"),
    params:
        cli=job_cli,
        settings=lambda wildcards: handed(pretrain_run_settings(config, wildcards.model)),
    wildcard_constraints:
        model=r"scratch-\d+",
    threads: config["pretrain"]["threads"]
    conda:
        ENV
    log:
        "logs/pretrain/{model}.log",
    benchmark:
        "results/benchmarks/pretrain_run/{model}.tsv"
    resources:
        **job_resources("train"),
    shell:
        "{params.cli} {params.settings} --threads {threads} pretrain --model {wildcards.model}"
        " --data-dir {input.data} --out-dir {output} > {log} 2>&1"


rule pretrain_tables:
    output:
        zero_weights=f"{TABLES}/pretrain_zero_weights.csv",
        onset=f"{TABLES}/pretrain_onset.csv",
        losses=f"{TABLES}/pretrain_losses.csv",
        drops=f"{TABLES}/pretrain_drop_vs_sparsity.csv",
    input:
        runs=expand(PRETRAIN_RUN, model=SCRATCH),
        finetune=scratch_metrics(),
        predictions=predictions_of(scratch_metrics()),
        code=code("stages.pretrain_tables"),
    params:
        cli=job_cli,
        settings=handed(pretrain_tables_settings(config)),
    conda:
        ENV
    log:
        "logs/pretrain_tables.log",
    benchmark:
        "results/benchmarks/pretrain_tables/pretrain_tables.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} pretrain-tables --runs {input.runs} --finetune {input.finetune}"
        " --zero-weights {output.zero_weights} --onset {output.onset} --losses {output.losses}"
        " --drop-vs-sparsity {output.drops} > {log} 2>&1"


rule pretrain:
    input:
        expand(PRETRAIN_RUN, model=SCRATCH),
