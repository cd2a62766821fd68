# Figures: one papermill notebook per paper figure; each draw rule's outputs are the figure (png,
# pdf) and the executed notebook (html). Notebooks only load tables and draw; `render` renames
# their outputs into place only when the whole notebook succeeded.
#
# A figure is one row of this table, its notebook (workflow/notebooks/NAME.ipynb) and its caption
# (workflow/report/NAME.rst): `inputs` are the tables it draws and `params` the settings it is
# drawn with, both handed to the notebook as parameters of the same names (settings as JSON);
# `resources` is its job's class (default light); `code` the library modules its notebook uses
# beyond the shared theme. `fig08_loss` is drawn beside Figure 8.
EPSILON = config["evaluate"]["epsilon"]
FIGURE_TABLE = {
    "fig01": {
        "name": "fig01_pruned_weights",
        "inputs": {"mask": expand(MASK, **FIG01), "table": expand(rules.mask_table.output, **FIG01)},
        "params": {"model": FIG01["model"], "sparsity": float(FIG01["sparsity"])},
        "resources": "model",
        "code": ["pruning.masks"],
    },
    "fig02": {
        "name": "fig02_drop_vs_sparsity",
        "inputs": {"drops": rules.tabulate.output.drops,
                   "essential": rules.tabulate.output.essential},
        "params": {"methods": FIG["fig02"]["methods"], "epsilon": EPSILON},
    },
    "fig03": {
        "name": "fig03_vision_drop_vs_sparsity",
        "inputs": {"drops": rules.vision_tables.output.drops,
                   "essential": rules.vision_tables.output.essential},
        "params": {"epsilon": EPSILON},
    },
    "fig04": {
        "name": "fig04_arithmetic_drop_vs_sparsity",
        "inputs": {"drops": rules.arithmetic_tables.output.drops,
                   "essential": rules.arithmetic_tables.output.essential},
        "params": {"epsilon": EPSILON},
    },
    "fig05": {
        "name": "fig05_nm_patterns",
        "inputs": {"table": rules.tabulate.output.nm},
        "params": {"epsilon": EPSILON},
    },
    "fig06": {
        "name": "fig06_sl_vs_ssl",
        "inputs": {"drops": rules.vision_tables.output.drops,
                   "essential": rules.vision_tables.output.essential},
        "params": {"supervised": VISION["supervised"],
                   "self_supervised": VISION["self_supervised"], "epsilon": EPSILON},
    },
    "fig07": {
        "name": "fig07_weight_distribution",
        "inputs": {"zero_weights": rules.vision_tables.output.zero_weights,
                   "histograms": rules.vision_tables.output.histograms},
        "params": {"supervised": VISION["supervised"],
                   "self_supervised": VISION["self_supervised"], "near_zero": VISION["near_zero"]},
        "resources": "model",
    },
    "fig08": {
        "name": "fig08_pretraining_sparsity",
        "inputs": {"zero_weights": rules.pretrain_tables.output.zero_weights,
                   "onset": rules.pretrain_tables.output.onset,
                   "drops": rules.pretrain_tables.output.drops},
        "params": {"epsilon": EPSILON},
    },
    "fig08_loss": {
        "name": "fig08_pretraining_loss",
        "inputs": {"losses": rules.pretrain_tables.output.losses},
        "params": {},
    },
    "fig09": {
        "name": "fig09_lth_vs_omp",
        "inputs": {"table": rules.tabulate.output.lth_vs_omp},
        "params": {"method": FIG["fig09"]["method"], "epsilon": EPSILON},
    },
    "fig10": {
        "name": "fig10_mask_similarity",
        "inputs": {"table": rules.mask_similarity.output},
        "params": {"method": FIG["fig10"]["method"]},
    },
    "fig11": {
        "name": "fig11_llm_one_shot",
        "inputs": {"table": rules.llm_table.output},
        "params": {"epsilon": EPSILON},
    },
}
NAMES = {fig: row["name"] for fig, row in FIGURE_TABLE.items()}
FIGURES = {fig: list(figure_outputs(name).values()) for fig, name in NAMES.items()}


for fig, row in FIGURE_TABLE.items():

    rule:
        name:
            f"draw_{fig}"
        output:
            **drawn(fig),
        input:
            notebook=notebook(fig),
            **row["inputs"],
            code=code("records.render", "records.theme", *row.get("code", [])),
        params:
            cli=job_cli,
            notebook=notebook_parameters(row["inputs"], {"dpi": FIG["dpi"], **row["params"]}),
        conda:
            ENV
        log:
            f"logs/figures/{fig}.log",
        benchmark:
            f"results/benchmarks/draw_{fig}/{fig}.tsv"
        resources:
            **job_resources(row.get("resources", "light")),
        shell:
            RENDER


# `snakemake fig08` builds Figure 8 and what is drawn beside it
for number in sorted({fig.partition("_")[0] for fig in FIGURE_TABLE}):

    rule:
        name:
            number
        input:
            [FIGURES[fig] for fig in FIGURE_TABLE if fig.partition("_")[0] == number],


rule fig01_mask:
    input:
        expand(MASK, **FIG01),
