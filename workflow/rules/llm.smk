# Causal LMs pruned in one shot and evaluated zero-shot, with no fine-tuning (Section 7, Figure 11).
# OMP looks at the weights only; Wanda scores |W| by the norm of each input feature and SparseGPT
# removes weights with optimal-brain-surgeon updates of the rest, both from calibration text of
# the corpus's training documents. Every pruned model is evaluated on held-out text (perplexity)
# and on a multiple-choice task nobody trained it for.


rule corpus_text:
    output:
        train=f"{CORPUS}/train.jsonl",
        heldout=f"{CORPUS}/heldout.jsonl",
        definitions=f"{CORPUS}/definitions.jsonl",
        meta=f"{CORPUS}/meta.json",
    input:
        files=corpus_files(corpus_settings(config)),
        code=code("stages.llm"),
    params:
        cli=job_cli,
        settings=handed(corpus_settings(config)),
        out_dir=lambda wildcards, output: os.path.dirname(output.meta),
    conda:
        ENV
    log:
        "logs/corpus.log",
    benchmark:
        "results/benchmarks/corpus_text/corpus.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} corpus --out-dir {params.out_dir} > {log} 2>&1"


rule corpus:
    input:
        rules.corpus_text.output,


rule convert_causal_lm:
    output:
        directory(LLM_DENSE),
    input:
        code("catalog.sources"),
    params:
        cli=job_cli,
    conda:
        ENV
    log:
        "logs/convert/{model}.log",
    benchmark:
        "results/benchmarks/convert_causal_lm/{model}.tsv"
    resources:
        **job_resources("model"),
    shell:
        "{params.cli} convert-lm --model {wildcards.model} --out-dir {output} > {log} 2>&1"


rule llm_run:
    output:
        metrics=f"{LLM_RUN}/metrics.json",
        predictions=f"{LLM_RUN}/predictions.csv",  # each question's result
        windows=f"{LLM_RUN}/windows.csv",  # each held-out window's loss
        mask=f"{LLM_RUN}/mask.safetensors",
        report=f"{LLM_RUN}/mask.json",
    input:
        corpus=rules.corpus_text.output,
        model=lambda wildcards: llm_dense_input(wildcards.model),
        code=code("stages.llm"),
    params:
        cli=job_cli,
        location=lambda wildcards: llm_location(wildcards.model),
        corpus_dir=lambda wildcards, input: os.path.dirname(input.corpus[0]),
        settings=handed(config["llm"]),
    threads: config["llm"]["threads"]
    conda:
        ENV
    log:
        f"logs/llm/{LLM_RUN.removeprefix('results/llm/')}.log",
    benchmark:
        f"results/benchmarks/llm_run/{LLM_RUN.removeprefix('results/llm/')}.tsv"
    resources:
        **job_resources("train"),
    shell:
        "{params.cli} {params.settings} --threads {threads} llm-prune --model {wildcards.model}"
        " --location {params.location} --method {wildcards.method} --level {wildcards.level}"
        " --corpus-dir {params.corpus_dir} --metrics {output.metrics} --mask {output.mask}"
        " --predictions {output.predictions} --windows {output.windows} > {log} 2>&1"


rule llm_table:
    output:
        f"{TABLES}/llm_zero_shot.csv",
    input:
        runs=llm_metrics(),
        predictions=predictions_of(llm_metrics()),
        code=code("evaluation.tables"),
    params:
        cli=job_cli,
        settings=handed(llm_table_settings(config)),
    conda:
        ENV
    log:
        "logs/llm_table.log",
    benchmark:
        "results/benchmarks/llm_table/llm_table.tsv"
    resources:
        **job_resources("light"),
    shell:
        "{params.cli} {params.settings} llm-table --out {output} {input.runs} > {log} 2>&1"


rule llm:
    input:
        llm_metrics(),
