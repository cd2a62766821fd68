# Load and validate params.yaml, and name every artefact path in one place.
import json
import os
import shlex
import sys
from pathlib import Path

from essential_sparsity.catalog import entries
from essential_sparsity.catalog.check import STAMP, check_catalog
from essential_sparsity.catalog.sources import CAUSAL_LMS, TASKS as TEXT_TASKS
from essential_sparsity.catalog.tasks import (
    ARITHMETIC,
    ARITHMETIC_TASKS,
    IMAGE,
    IMAGE_TASKS,
    QA,
    task_of,
)
from essential_sparsity.config.dependencies import job_files
from essential_sparsity.config.levels import (
    LTH,
    arithmetic_levels,
    curve_seeds,
    finetune_levels,
    llm_levels,
    lth_levels,
    lth_round_settings,
    pretrain_levels,
    pretrain_models,
    pretrain_run_settings,
    pretrain_tables_settings,
    vision_levels,
    vision_pretrain_settings,
    vision_pretrained,
)
from essential_sparsity.config.params import (
    SPARSITY_PATTERN,
    ParamsError,
    arithmetic_tables_settings,
    corpus_settings,
    encode_settings,
    finetune_settings,
    format_sparsity,
    llm_table_settings,
    load_params,
    pretrain_data_settings,
    prune_settings,
    report_settings,
    similarity_settings,
    split_settings,
    tables_settings,
    vision_tables_settings,
)


def repo_path(*parts):
    """A file of the project, relative to the working directory (which --directory may move)."""
    return os.path.relpath(Path(workflow.basedir, *parts))


PARAMS_FILE = repo_path("params.yaml")

_overrides = sorted(set(config) - {"profile"})
if _overrides:
    sys.exit(f"--config {_overrides[0]}=...: only --config profile=NAME is accepted; every other "
             f"knob lives in {PARAMS_FILE}")
try:
    config = load_params(PARAMS_FILE, config.get("profile"))
    if workflow.is_main_process:  # not again in each cluster job's own Snakemake
        check_catalog(config, STAMP)  # its files, columns and models, before any job
except ParamsError as exc:
    sys.exit(str(exc))

PROFILE = config["profile"]
CLI = f"essential-sparsity --params {PARAMS_FILE} --profile {PROFILE}"


def job_cli(wildcards, input, output):
    """Every job's params.cli (so the profile is part of its parameters): the CLI, told the job's
    inputs and outputs so that it writes a provenance record beside each output. One option per
    file: a table's hundreds of inputs at paper scale would overflow a single argument."""
    files = [f"--record-output {shlex.quote(str(f))}" for f in output]
    files += [f"--record-input {shlex.quote(str(f))}" for f in input]
    return " ".join([CLI, *files])


def handed(settings):
    """The settings Snakemake tracks for a job, as the option that hands them to it (--settings,
    JSON). The job runs on these rather than computing its own from params.yaml, so what is
    tracked is what the job used."""
    return "--settings " + shlex.quote(json.dumps(settings, sort_keys=True))
ENV = "../envs/pipeline.yaml"

MODELS = config["sources"]["models"]
TASKS = config["sources"]["tasks"]
CATALOG_TASKS = entries.user_tasks(config)
CATALOG_IMAGES = [name for name in CATALOG_TASKS if task_of(config, name).kind == IMAGE]
CATALOG_TEXT = [name for name in CATALOG_TASKS if name not in CATALOG_IMAGES]  # and QA
METHODS = config["prune"]["methods"]
SPARSITIES = [format_sparsity(s) for s in config["prune"]["sparsities"]]
LTH_LEVELS = [format_sparsity(s) for s in lth_levels(config)]  # after round 1, 2, ...
RUN_LEVELS = finetune_levels(config)  # (method, sparsity) of every run of a model and task
SEEDS = config["finetune"]["seeds"]
FIG = config["figures"]
FIG01 = {
    "model": FIG["fig01"]["model"],
    "method": FIG["fig01"]["method"],
    "sparsity": format_sparsity(FIG["fig01"]["sparsity"]),
}

DATA = "results/data/{task}"
MASK = "results/masks/{model}/{method}/{sparsity}.safetensors"
MASK_REPORT = "results/masks/{model}/{method}/{sparsity}.json"
ENCODED = "results/encoded/{model}/{task}.safetensors"  # a text task's token ids, per model
RUN = "results/finetune/{model}/{task}/{method}/{sparsity}/seed-{seed}"
RUN_METRICS = f"{RUN}/metrics.json"
RUN_PREDICTIONS = f"{RUN}/predictions.csv"  # each test example's result
LTH_MASK = "results/lth/{model}/{task}/round-{round}.safetensors"
LTH_REPORT = "results/lth/{model}/{task}/round-{round}.json"
TABLES = "results/tables"
LLM_MODELS = config["llm"]["models"]
LLM_LEVELS = llm_levels(config)  # (method, sparsity or nm-N-M) of every causal-LM run
CORPUS = "results/corpus"
LLM_DENSE = "results/llm/{model}/dense"  # a packaged GGUF model, dequantized once
LLM_RUN = "results/llm/{model}/{method}/{level}"
SCRATCH = pretrain_models(config)  # model -> data fraction, BERTs pre-trained from scratch here
SCRATCH_LEVELS = pretrain_levels(config)  # (method, sparsity) of their fine-tuning runs
PRETRAIN_DATA = "results/pretrain/data"
PRETRAIN_RUN = "results/pretrain/{model}"
VISION = config["vision"]
VISION_HERE = vision_pretrained(config)  # vision models pre-trained here (vit-sl, vit-ssl)
VISION_LEVELS = vision_levels(config)  # (method, sparsity) of their fine-tuning runs
VISION_RUN = "results/vision/{model}"
ARITHMETIC = config["arithmetic"]
ARITHMETIC_LEVELS = arithmetic_levels(config)  # (method, sparsity) of their fine-tuning runs


def job_resources(kind):
    """What a job of class `kind` (train, model, light) asks a cluster scheduler for: memory,
    minutes, and a GPU for training; Snakemake's Slurm executor reads these names."""
    ask = config["resources"][kind]
    gpu = {"gpu": ask["gpus"]} if ask["gpus"] else {}
    return {"mem_mb": ask["mem_mb"], "runtime": ask["runtime_min"], **gpu}


def code(*modules):
    """The library modules a job whose work is in `modules` runs (`dependencies`): editing one
    reruns its jobs; a test holds dvc.yaml's deps to the same files."""
    return [repo_path(path) for path in job_files(*modules)]


def figure_outputs(name):
    """A figure's build target: the figure as png and pdf, and the executed notebook as html."""
    return {
        "png": f"reports/figures/{name}.png",
        "pdf": f"reports/figures/{name}.pdf",
        "html": f"reports/notebooks/{name}.html",
    }


def figure2_seeds(method, sparsity):
    """The seeds of a run of Figure 2's curves: more for the repeated methods and dense."""
    return curve_seeds(config, method, sparsity)


def every_seed(method, sparsity):
    """The seeds of every other figure's runs: finetune.seeds."""
    return SEEDS


def run_metrics(models=MODELS, tasks=TASKS, levels=RUN_LEVELS, seeds=figure2_seeds):
    """metrics.json of every fine-tuning run: each (method, sparsity) level, task, model and the
    seeds `seeds` gives that level."""
    return [RUN_METRICS.format(model=model, task=task, method=method, sparsity=sparsity, seed=seed)
            for model in models for task in tasks for method, sparsity in levels
            for seed in seeds(method, sparsity)]


def predictions_of(metric_files):
    """The predictions.csv beside each run's metrics.json: the tables' intervals resample them."""
    return [os.path.join(os.path.dirname(path), "predictions.csv") for path in metric_files]


def scratch_metrics():
    """metrics.json of the fine-tuning runs of every model pre-trained from scratch, on the
    classification tasks: Figure 8 shows MNLI, QNLI, QQP and RTE, and these models' positions
    end at pretrain.max_length, short of a SQuAD context."""
    tasks = [name for name in TASKS if task_of(config, name).kind != QA]
    return run_metrics(models=list(SCRATCH), tasks=tasks, levels=SCRATCH_LEVELS,
                       seeds=every_seed)


def vision_metrics():
    """metrics.json of the fine-tuning runs of every vision model on every image task."""
    return run_metrics(models=VISION["models"], tasks=VISION["tasks"], levels=VISION_LEVELS,
                       seeds=every_seed)


def arithmetic_metrics():
    """metrics.json of the fine-tuning runs of every model on every arithmetic task."""
    return run_metrics(tasks=ARITHMETIC["tasks"], levels=ARITHMETIC_LEVELS,
                       seeds=every_seed)


def pretraining_run(model):
    """The pre-training run (directory, last step) a model comes from, or None for packaged and
    hub models."""
    if model in SCRATCH:
        return PRETRAIN_RUN.format(model=model), config["pretrain"]["steps"]
    if model in VISION_HERE:
        return VISION_RUN.format(model=model), VISION["pretrain"]["steps"]
    return None


def model_input(wildcards):
    """The pre-training run a model comes from; packaged and hub models need none."""
    run = pretraining_run(wildcards.model)
    return [run[0]] if run else []


def model_location(wildcards):
    """--location of a model pre-trained here (its last checkpoint) or of a catalog entry (its
    directory or hub id); built-in models need none."""
    run = pretraining_run(wildcards.model)
    if run:
        return f"--location {run[0]}/step-{run[1]}"
    where = entries.location(config, wildcards.model)
    return f"--location {shlex.quote(where)}" if where else ""


def task_data(wildcards):
    """A task's split files: JSON lines of text (arithmetic problems too), or uint8 image
    tensors."""
    kind = task_of(config, wildcards.task).kind
    if wildcards.task in CATALOG_TASKS:
        return (rules.split_catalog_images if kind == IMAGE else rules.split_catalog_task).output
    if kind == IMAGE:
        return rules.split_images.output
    if kind == ARITHMETIC:
        return rules.split_arithmetic.output
    return rules.split_task.output


def catalog_files(wildcards):
    """The files (or image folders) of a catalog task: inputs of its split, so editing one
    splits the task again."""
    return list(CATALOG_TASKS[wildcards.task].get("files", {}).values())


def corpus_files(settings):
    """The files of the catalog corpora a text job's settings name: inputs of the job."""
    return [path for entry in settings["corpora"].values()
            for path in entry.get("files", {}).values()]


def encoded_input(wildcards):
    """A text task's encoded splits for the run's model; image tasks are read as split."""
    if not task_of(config, wildcards.task).encoded:
        return []
    return ENCODED.format(model=wildcards.model, task=wildcards.task)


def encoded_option(wildcards):
    """--encoded of a text task's fine-tuning run."""
    path = encoded_input(wildcards)
    return f"--encoded {path}" if path else ""


def llm_metrics(models=LLM_MODELS, levels=LLM_LEVELS):
    """metrics.json of every one-shot causal-LM run."""
    return [f"{LLM_RUN}/metrics.json".format(model=model, method=method, level=level)
            for model in models for method, level in levels]


def llm_dense_input(model):
    """The dequantized copy a packaged causal LM is read from; hub and catalog models need
    none."""
    packaged = model in CAUSAL_LMS and "hub" not in CAUSAL_LMS[model]
    return [LLM_DENSE.format(model=model)] if packaged else []


def llm_location(model):
    """Where a causal LM's job loads it: a catalog entry's directory or hub id, a built-in hub
    model's id, or a packaged model's dequantized copy."""
    return (entries.location(config, model) or CAUSAL_LMS[model].get("hub")
            or LLM_DENSE.format(model=model))


def lth_masks(models=MODELS, tasks=TASKS):
    return expand(LTH_MASK, model=models, task=tasks, round=range(1, len(LTH_LEVELS) + 1))


def run_mask(wildcards):
    """A grid or N:M run's mask is shared by every task; an LTH round's is the task's own."""
    if wildcards.method != LTH:
        return MASK.format(model=wildcards.model, method=wildcards.method,
                           sparsity=wildcards.sparsity)
    if wildcards.sparsity not in LTH_LEVELS:
        raise ValueError(f"LTH rounds reach sparsities {', '.join(LTH_LEVELS)}, "
                         f"not {wildcards.sparsity}")
    return LTH_MASK.format(model=wildcards.model, task=wildcards.task,
                           round=LTH_LEVELS.index(wildcards.sparsity) + 1)


# The dense run every lottery-ticket chain starts from: the first pruning method at sparsity 0,
# first seed. Its rounds fine-tune with that seed too.
LTH_ROOT = {"method": METHODS[0], "sparsity": "0", "seed": str(SEEDS[0])}


def lth_parent(wildcards):
    """The run and mask a round prunes further: the previous round's, or the dense ones."""
    r = int(wildcards.round)
    if not 1 <= r <= len(LTH_LEVELS):
        raise ValueError(f"LTH has rounds 1..{len(LTH_LEVELS)} (lth.rate and the grid), "
                         f"not {r}")
    if r == 1:
        run = RUN.format(model=wildcards.model, task=wildcards.task, **LTH_ROOT)
        mask = MASK.format(model=wildcards.model, method=LTH_ROOT["method"],
                           sparsity=LTH_ROOT["sparsity"])
    else:
        run = RUN.format(model=wildcards.model, task=wildcards.task, method=LTH,
                         sparsity=LTH_LEVELS[r - 2], seed=LTH_ROOT["seed"])
        mask = LTH_MASK.format(model=wildcards.model, task=wildcards.task, round=r - 1)
    return {"checkpoint": f"{run}/model.safetensors", "previous": mask}


def lth_chain_priority(wildcards):
    """How many jobs of a lottery-ticket chain still follow this one (0 off the chains). A chain
    (dense run, round 1, its run, round 2, ...) is the build's longest line of jobs that must run
    one after the other; Snakemake starts the ready job of highest priority first, so the chains
    begin early and the other jobs fill the second core beside them, instead of one chain
    running alone at the end."""
    rounds = len(LTH_LEVELS)
    if wildcards.model not in MODELS or wildcards.task not in TASKS:
        return 0
    if "round" in wildcards.keys():
        return 2 * (rounds - int(wildcards.round)) + 1
    if wildcards.method == LTH:
        return 2 * (rounds - LTH_LEVELS.index(wildcards.sparsity) - 1)
    dense = all(wildcards[key] == value for key, value in LTH_ROOT.items())
    return 2 * rounds if dense else 0


def drawn(fig):
    """A draw rule's outputs; the png is also a result of `snakemake --report`, with the caption
    the report page uses."""
    outputs = figure_outputs(NAMES[fig])
    outputs["png"] = report(outputs["png"], caption=os.path.abspath(caption(fig)),
                            category="Figures", labels={"figure": figure_label(fig)})
    return outputs


def figure_label(fig):
    """fig08 is Figure 8; fig08_loss, an extra figure beside it, Figure 8 (loss)."""
    number, _, extra = fig.removeprefix("fig").partition("_")
    return f"Figure {int(number)}" + (f" ({extra})" if extra else "")


def caption(fig):
    """A figure's caption, used by the report page and by `snakemake --report`."""
    return repo_path("workflow", "report", f"{NAMES[fig]}.rst")


def notebook(fig):
    return repo_path("workflow", "notebooks", f"{NAMES[fig]}.ipynb")


RENDER = ("{params.cli} render --notebook {input.notebook} --html {output.html} "
          "--out out_png={output.png} --out out_pdf={output.pdf} {params.notebook} > {log} 2>&1")


def notebook_parameters(inputs, settings):
    """A figure's notebook parameters: each named input's path and each setting as JSON (so lists
    survive the shell). A function made when the rule is defined, because Snakemake evaluates a
    rule's shell expression when its job runs, by when a loop's variable holds its last row."""
    fixed = [f"--param {name}={shlex.quote(json.dumps(value))}" for name, value in settings.items()]

    def parameters(wildcards, input):
        paths = [f"--param {name}={shlex.quote(str(getattr(input, name)))}" for name in inputs]
        return " ".join(paths + fixed)

    return parameters
