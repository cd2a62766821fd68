# Load and validate params.yaml, and name every artefact path in one place.
import os
import sys
from pathlib import Path

from essential_sparsity.params import ParamsError, finetune_settings, format_sparsity, load_params



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
except ParamsError as exc:
    sys.exit(str(exc))

PROFILE = config["profile"]
# Passed to every job as params.cli, so the profile is part of each job's parameters.
CLI = f"essential-sparsity --params {PARAMS_FILE} --profile {PROFILE}"
ENV = "../envs/pipeline.yaml"

MODELS = config["sources"]["models"]
TASKS = config["sources"]["tasks"]
METHODS = config["prune"]["methods"]
SPARSITIES = [format_sparsity(s) for s in config["prune"]["sparsities"]]
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
RUN = "results/finetune/{model}/{task}/{method}/{sparsity}/seed-{seed}"
TABLES = "results/tables"


def code(*modules):
    """Library modules a job runs: editing one reruns its jobs (DVC lists the same deps)."""
    return [repo_path("src", "essential_sparsity", f"{m}.py") for m in modules]


def figure_outputs(name):
    """A figure's build target: the figure as png and pdf, and the executed notebook as html."""
    return {
        "png": f"reports/figures/{name}.png",
        "pdf": f"reports/figures/{name}.pdf",
        "html": f"reports/notebooks/{name}.html",
    }


def run_metrics(models=MODELS, tasks=TASKS, methods=METHODS):
    return expand(f"{RUN}/metrics.json", model=models, task=tasks, method=methods,
                  sparsity=SPARSITIES, seed=SEEDS)
