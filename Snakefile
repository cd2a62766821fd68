# The essential-sparsity pipeline (arXiv 2306.03805), from pre-trained checkpoints to figures.
#
#   snakemake --cores all                 every figure of the active profile (params.yaml)
#   snakemake --cores all fig02           one figure and only what it needs
#   snakemake --cores all --config profile=smoke
#
# params.yaml is validated before any rule is defined: a bad value stops here, with one line.

include: "workflow/rules/common.smk"


wildcard_constraints:
    sparsity=SPARSITY_PATTERN,  # how format_sparsity writes them, checked when params load
    seed=r"\d+",
    model=r"[a-z0-9][a-z0-9.-]*",
    task=r"[a-z0-9][a-z0-9.-]*",
    method=r"[a-z0-9][a-z0-9-]*",
    round=r"[1-9]\d*",
    level=rf"{SPARSITY_PATTERN}|nm-\d+-\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/prune.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/lth.smk"
include: "workflow/rules/vision.smk"
include: "workflow/rules/llm.smk"
include: "workflow/rules/arithmetic.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        FIGURES.values(),
        rules.claims.output,
        rules.report_page.output,
    default_target: True
