# The README's two commands:
#   make figures   set up, then build every figure of the default profile: one Snakemake run over
#                  the whole DAG (both cores busy across stages), then `dvc commit` records every
#                  stage's hashes in dvc.lock (copying into DVC's cache: relinking would give the
#                  outputs new modification times, and Snakemake would find them newer than the
#                  jobs that read them); an overall progress line (jobs done of all, time left);
#                  the tensor jobs fork from one warm worker instead of each importing torch and
#                  transformers
#   make test      set up, then run the tests (unit, smoke profile end to end, lint)
# Both are idempotent: a second call only reports that everything is up to date.

VENV    := .venv
BIN     := $(abspath $(VENV))/bin
STAMP   := $(VENV)/.installed
SLURM_STAMP := $(VENV)/.slurm-plugin
PYTHON  ?= python3
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: figures test setup corpora browser slurm slurm-plugin lint smoke pull clean-results benchmarks \
	unlock-stale

figures: setup
	@$(MAKE) --no-print-directory unlock-stale
	python -m essential_sparsity.cli.worker python -m essential_sparsity.cli.progress snakemake --cores all
	dvc commit --force --no-relink --quiet
	@echo "figures: $$(ls reports/figures/*.png | tr '\n' ' ')"
	@echo "the report (every figure and the paper's claims): $(abspath reports/index.html)"

# A build killed mid-job leaves Snakemake's directory lock behind; with no Snakemake process
# working in this directory it is stale, and clearing it lets the rerun continue (the killed jobs
# rerun: see profiles/default/config.yaml). A Snakemake process is any working here with an
# argument `snakemake`, `.../snakemake` or `-msnakemake`, whatever the process is named:
# `snakemake`, `python .../bin/snakemake` and `python -m snakemake` alike.
unlock-stale:
	@for proc in /proc/[0-9]*; do \
		[ "$${proc#/proc/}" != "$$$$" ] && [ "$$(readlink $$proc/cwd 2>/dev/null)" = "$(CURDIR)" ] \
		&& tr '\0' '\n' < $$proc/cmdline 2>/dev/null \
		| grep -qxE '(.*/)?snakemake|-msnakemake' && exit 0; \
	done; snakemake --unlock --quiet >/dev/null 2>&1 || true

test: setup browser slurm
	pytest -q --durations=15

# Debian's Chromium: a test opens the report page in it, headless, and checks every image loaded.
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

# A one-node Slurm cluster on this machine (Debian's slurmctld, slurmd, slurm-client): a test runs
# the smoke profile through the Slurm profile on it. A cluster that already answers is used as is.
slurm: slurm-plugin
	@bash workflow/profiles/slurm/single-node.sh

# The Slurm profile's executor plugin (requirements-slurm.txt), kept out of the default setup.
slurm-plugin: $(SLURM_STAMP)

$(SLURM_STAMP): requirements-slurm.txt $(STAMP)
	$(BIN)/pip install -q -r requirements-slurm.txt
	touch $@

setup: $(STAMP) corpora

# Debian's WordNet: definitions for the language-model corpus and the zero-shot questions.
# Debian's Fashion-MNIST: the images the vision transformers are pre-trained and fine-tuned on.
corpora:
	@test -f /usr/share/wordnet/data.noun -a -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz || \
		{ $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
		--no-install-recommends wordnet-base dataset-fashion-mnist; }

$(STAMP): requirements.txt requirements-data.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -r requirements-data.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

lint: setup
	ruff check src tests benchmarks workflow
	snakemake --lint

smoke: setup
	snakemake --cores all --config profile=smoke

# Every benchmark script, each in its own process; the report is reports/benchmarks.md.
benchmarks: setup
	python -m benchmarks.run

# A reviewer's copy: fetch every artefact recorded in dvc.lock, then tell Snakemake the pulled
# files are current (DVC has checked their hashes; their timestamps are checkout order). Touching
# every job also records its parameters, so a later edit of params.yaml reruns what it should.
pull: setup
	dvc pull
	snakemake --cores 1 --touch --forceall --quiet all

clean-results:
	rm -rf results reports/figures reports/notebooks .snakemake logs
