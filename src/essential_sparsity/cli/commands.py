"""`essential-sparsity`: the command line the Snakemake rules call, one subcommand per stage.

Every subcommand validates params.yaml first, so a bad value stops the job before it writes
anything, with one line naming the key, the value and what is allowed. Each subcommand imports
what it needs when it runs: `--help`, `check`, the tables, claims, figures and the report start
without torch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

from ..catalog.sources import Model, SourceError
from ..config.levels import (
    lth_round_settings,
    pretrain_run_settings,
    pretrain_tables_settings,
    vision_pretrain_settings,
)
from ..config.params import (
    ParamsError,
    arithmetic_tables_settings,
    corpus_settings,
    encode_settings,
    finetune_settings,
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
from ..records.io import ArtefactError, write_csv

EXPECTED = (ParamsError, SourceError, ArtefactError)
# What a subcommand returns: its exit status and the stage's record, whose timings (`*_time_s`)
# go to the job's run record.
Outcome = tuple[int, dict]
DONE: Outcome = (0, {})


def _required(flag: str, **options) -> tuple[str, dict]:
    return flag, {"required": True, **options}


def _csv_outputs(*names: str) -> list[tuple[str, dict]]:
    return [_required(f"--{name}", help="output csv") for name in names]


# Options several subcommands share.
MODEL = _required("--model")
TASK = _required("--task")
DATA_DIR = _required("--data-dir")
OUT_DIR = _required("--out-dir")
MASK_OUT = _required("--out", help="mask .safetensors (report .json beside it)")
LOCATION = ("--location", {"default": None, "help": "the checkpoint directory of a model "
                                                    "pre-trained by the pipeline"})


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ParamsError(f"expected NAME=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


def _json_or_text(value: str):
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _check(args: argparse.Namespace, params: dict) -> Outcome:
    from ..catalog.check import check_catalog
    check_catalog(params)
    print(json.dumps(params, indent=2))
    return DONE


def _sources(args: argparse.Namespace, params: dict) -> Outcome:
    from ..catalog.entries import available
    from ..catalog.sources import available_sources
    from ..data.arithmetic import available_sources as arithmetic_sources
    for row in available_sources() + arithmetic_sources() + available(params):
        hub = row["source"].startswith("hub ")
        state = "from the hub (paper profile)" if hub else (
            "installed" if row["installed"] else f"MISSING: {row.get('fix', 'make setup')}")
        print(f"{row['kind']:10} {row['name']:18} {row['source']:32} {state}")
    return DONE


def _model(args: argparse.Namespace) -> Model:
    """The model a job's --model and --location name."""
    return Model(args.model, args.location)


def _split(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.split import split_task
    split_task(args.settings, args.task, args.out_dir)
    return DONE


def _prune(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.prune import prune
    report = prune(args.settings, _model(args), args.method, args.sparsity, args.out)
    print(f"{args.out}: pruned {report['pruned']} of {report['weights']} "
          f"({report['sparsity']:.4f})")
    return DONE


def _lth(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.lth import lth_round
    report = lth_round(args.settings, args.model, args.task, args.round, args.checkpoint,
                       args.previous, args.out)
    print(f"{args.out}: round {args.round}, pruned {report['pruned']} of "
          f"{report['weights']} ({report['sparsity']:.4f})")
    return DONE


def _encode(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.encode import encode_task
    info = encode_task(args.settings, _model(args), args.task, args.data_dir, args.out)
    print(f"{args.out}: {info['examples']} examples at max_length {info['max_length']}")
    return DONE


def _finetune(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.finetune import finetune_run
    record = finetune_run(args.settings, params["resources"]["device"], _model(args), args.task,
                          args.mask, args.seed, args.data_dir, args.metrics, args.checkpoint,
                          args.encoded, args.predictions)
    print(f"{args.metrics}: {record['metric']} {record['value']:.2f} "
          f"in {record['wall_time_s']:.0f} s")
    return 0, record


def _pretrain_data(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.pretrain import build_data
    print(json.dumps(build_data(args.settings, args.out_dir)))
    return DONE


def _pretrain(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.pretrain import pretrain_run
    summary = pretrain_run(args.settings, params["resources"]["device"], args.model,
                           args.data_dir, args.out_dir)
    last = summary["history"][-1]
    print(f"{args.out_dir}: {summary['steps']} steps on {summary['sequences']} sequences, "
          f"held-out MLM loss {summary['history'][0]['heldout_loss']:.3f} -> "
          f"{last['heldout_loss']:.3f} in {summary['wall_time_s']:.0f} s")
    return 0, summary


def _pretrain_tables(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.pretrain_tables import pretrain_tables
    out = {"zero_weights": args.zero_weights, "onset": args.onset, "losses": args.losses,
           "drop_vs_sparsity": args.drop_vs_sparsity}
    tables = pretrain_tables(args.settings, args.runs, args.finetune, out)
    print(tables["onset"].to_string(index=False))
    return DONE


def _vision_pretrain(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.vision import vision_pretrain_run
    summary = vision_pretrain_run(args.settings, params["resources"]["device"], args.model,
                                  args.out_dir)
    first, last = summary["history"][0], summary["history"][-1]
    print(f"{args.out_dir}: {summary['objective']}, {summary['steps']} steps on "
          f"{summary['images']} images, held-out loss {first['heldout_loss']:.3f} -> "
          f"{last['heldout_loss']:.3f} in {summary['wall_time_s']:.0f} s")
    return 0, summary


def _vision_tables(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.vision_tables import vision_tables
    out = {"losses": args.losses, "zero_weights": args.zero_weights,
           "weight_histograms": args.weight_histograms,
           "drop_vs_sparsity": args.drop_vs_sparsity,
           "essential_sparsity": args.essential_sparsity}
    tables = vision_tables(args.settings, args.runs, args.finetune, out)
    print(tables["essential_sparsity"].to_string(index=False))
    return DONE


def _corpus(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.llm import build_corpus
    print(json.dumps(build_corpus(args.settings, args.out_dir)))
    return DONE


def _convert_lm(args: argparse.Namespace, params: dict) -> Outcome:
    from ..catalog.sources import convert_gguf
    convert_gguf(args.model, args.out_dir)
    return DONE


def _llm_prune(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.llm import prune_and_evaluate
    record = prune_and_evaluate(args.settings, params["resources"]["device"], args.model,
                                args.location, args.method, args.level, args.corpus_dir,
                                args.metrics, args.mask, args.predictions, args.windows)
    print(f"{args.metrics}: sparsity {record['scope_sparsity']:.4f}, perplexity "
          f"{record['perplexity']:.2f}, accuracy {record['accuracy']:.1f}")
    return 0, record


def _prune_sharded(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.llm import prune_sharded
    for sparsity, directory in prune_sharded(params, args.checkpoint, args.sparsity,
                                             args.out_dir).items():
        print(f"{directory}: global OMP at {sparsity:g}")
    return DONE


def _llm_table(args: argparse.Namespace, params: dict) -> Outcome:
    from ..evaluation.tables import zero_shot_table
    table = zero_shot_table(args.settings, args.runs)
    write_csv(args.out, table)
    print(table.to_string(index=False))
    return DONE


def _tables(args: argparse.Namespace, params: dict) -> Outcome:
    from ..evaluation.tables import finetune_tables
    print(finetune_tables(args.settings, args.runs, args.out_dir, args.metrics_json)
          .to_string(index=False))
    return DONE


def _arithmetic_tables(args: argparse.Namespace, params: dict) -> Outcome:
    from ..evaluation.tables import arithmetic_tables
    out = {"runs": args.runs, "drop_vs_sparsity": args.drop_vs_sparsity,
           "essential_sparsity": args.essential_sparsity}
    built = arithmetic_tables(args.settings, args.metrics, out)
    print(built["essential_sparsity"].to_string(index=False))
    return DONE


def _similarity(args: argparse.Namespace, params: dict) -> Outcome:
    from ..stages.similarity import mask_similarity
    mask_similarity(args.settings, args.lth_masks, args.out)
    return DONE


def _claims(args: argparse.Namespace, params: dict) -> Outcome:
    from ..evaluation.tables import claims_report
    table = claims_report(args.settings, args.claims, args.tables, args.out_csv, args.out_md)
    print(table[["id", "verdict", "ours"]].to_string(index=False))
    return DONE


def _report(args: argparse.Namespace, params: dict) -> Outcome:
    from ..records.report import write_report
    write_report(args.out, args.figures, args.notebooks_dir, args.captions_dir, args.essential,
                 args.claims, args.params, args.settings["profile"], args.settings["level"])
    print(f"the report: {args.out}")
    return DONE


def _mask_table(args: argparse.Namespace, params: dict) -> Outcome:
    from ..evaluation.tables import mask_table
    mask_table(args.report, args.out)
    return DONE


def _audit(args: argparse.Namespace, params: dict) -> Outcome:
    from ..records.audit import audit
    problems = audit(args.root)
    for line in problems:
        print(line)
    print(f"audit: {len(problems)} violations under {args.root}/results and reports",
          file=sys.stderr)
    return (1 if problems else 0), {}


def _compare(args: argparse.Namespace, params: dict) -> Outcome:
    from ..evaluation.compare import compare
    status, lines = compare(args.root, args.other, args.tolerance, args.show)
    print("\n".join(lines))
    return status, {}


def _render(args: argparse.Namespace, params: dict) -> Outcome:
    from ..records.render import render_notebook
    extra = {k: _json_or_text(v) for k, v in _pairs(args.param).items()}
    render_notebook(args.notebook, args.html, _pairs(args.out), extra)
    return DONE


class Subcommand(NamedTuple):
    help: str
    options: list[tuple[str, dict]]
    run: Callable[[argparse.Namespace, dict], Outcome]
    tensor: bool = False  # computes on tensors: imports torch and sets its threads
    # The settings its rule tracks and hands it (--settings), computed from params.yaml the same
    # way when the job runs by hand; the job runs on these alone.
    settings: Callable[[dict, argparse.Namespace], dict] | None = None


# Every subcommand: what it does, its options, the function that runs it. The ones that do not
# compute on tensors (check, sources, the tables, claims, figures, the report, compare) never
# import torch.
SUBCOMMANDS: dict[str, Subcommand] = {
    "check": Subcommand("validate params.yaml and print the resolved settings", [], _check),
    "sources": Subcommand("list models and tasks and whether they are installed", [],
                          _sources),
    "split": Subcommand("write a task's train/validation/test splits", [TASK, OUT_DIR], _split,
                        tensor=True,
                        settings=lambda params, args: split_settings(params, args.task)),
    "prune": Subcommand("one-shot magnitude pruning of a pre-trained model",
                        [MODEL, _required("--method"), _required("--sparsity", type=float),
                         MASK_OUT, LOCATION], _prune, tensor=True,
                        settings=lambda params, args: prune_settings(params)),
    "lth": Subcommand("one lottery-ticket round: prune a fine-tuned run further",
                      [MODEL, TASK, _required("--round", type=int),
                       _required("--checkpoint", help="the previous round's fine-tuned weights"),
                       _required("--previous", help="the previous round's mask"), MASK_OUT],
                      _lth, tensor=True,
                      settings=lambda params, args: lth_round_settings(params, args.round)),
    "encode": Subcommand("a text task's splits as one model's token ids, shared by every "
                         "fine-tuning run of the pair",
                         [MODEL, TASK, DATA_DIR,
                          _required("--out", help="the encoded splits, .safetensors"), LOCATION],
                         _encode, tensor=True,
                         settings=lambda params, args: encode_settings(params, args.task,
                                                                       args.model)),
    "finetune": Subcommand("sparse fine-tuning under a fixed mask",
                           [MODEL, TASK, _required("--mask"), _required("--seed", type=int),
                            DATA_DIR, _required("--metrics"), ("--checkpoint", {"default": None}),
                            LOCATION, ("--encoded", {"default": None, "help": "a text task's "
                                                     "encoded splits (encode)"}),
                            ("--predictions", {"default": None, "help": "each test example's "
                                               "result, csv"})],
                           _finetune, tensor=True,
                           settings=lambda params, args: finetune_settings(params, args.task,
                                                                           args.model)),
    "pretrain-data": Subcommand("corpus, WordPiece vocabulary and packed sequences for "
                                "pre-training from scratch", [OUT_DIR], _pretrain_data,
                                tensor=True,
                                settings=lambda params, args: pretrain_data_settings(params)),
    "pretrain": Subcommand("masked-LM pre-training of one data fraction's BERT",
                           [_required("--model", help="scratch-<percent of the corpus>"),
                            DATA_DIR, _required("--out-dir", help="checkpoints out-dir/step-K")],
                           _pretrain, tensor=True,
                           settings=lambda params, args: pretrain_run_settings(params,
                                                                               args.model)),
    "pretrain-tables": Subcommand("Figure 8's tables from the pre-training runs",
                                  [_required("--runs", nargs="+", help="the runs' directories"),
                                   _required("--finetune", nargs="+",
                                             help="their fine-tuning metrics"),
                                   *_csv_outputs("zero-weights", "onset", "losses",
                                                 "drop-vs-sparsity")],
                                  _pretrain_tables, tensor=True,
                                  settings=lambda params, args: pretrain_tables_settings(
                                      params)),
    "vision-pretrain": Subcommand("pre-train one vision transformer (supervised or DINO)",
                                  [_required("--model", help="vit-sl or vit-ssl"),
                                   _required("--out-dir", help="checkpoints out-dir/step-K")],
                                  _vision_pretrain, tensor=True,
                                  settings=lambda params, args: vision_pretrain_settings(
                                      params, args.model)),
    "vision-tables": Subcommand("Figures 3, 6 and 7's tables",
                                [("--runs", {"nargs": "*", "default": [],
                                             "help": "the pre-training runs' directories"}),
                                 _required("--finetune", nargs="+",
                                           help="the fine-tuning metrics"),
                                 *_csv_outputs("losses", "zero-weights", "weight-histograms",
                                               "drop-vs-sparsity", "essential-sparsity")],
                                _vision_tables, tensor=True,
                                settings=lambda params, args: vision_tables_settings(params)),
    "corpus": Subcommand("plain text for causal LMs: train, held-out, questions", [OUT_DIR],
                         _corpus, tensor=True,
                         settings=lambda params, args: corpus_settings(params)),
    "convert-lm": Subcommand("dequantize a packaged GGUF causal LM once", [MODEL, OUT_DIR],
                             _convert_lm, tensor=True),
    "llm-prune": Subcommand("one-shot prune a causal LM and evaluate it zero-shot",
                            [MODEL, _required("--location", help="converted directory or hub id"),
                             _required("--method"),
                             _required("--level", help="a sparsity, or nm-N-M"),
                             _required("--corpus-dir"), _required("--metrics"),
                             _required("--mask", help="packed mask .safetensors (report beside "
                                                      "it)"),
                             ("--predictions", {"default": None, "help": "each question's "
                                                "result, csv"}),
                             ("--windows", {"default": None, "help": "each held-out window's "
                                            "loss, csv"})],
                            _llm_prune, tensor=True,
                            settings=lambda params, args: params["llm"]),
    "prune-sharded": Subcommand("global OMP over a sharded safetensors checkpoint, one tensor in "
                                "memory at a time (7B/13B on a small machine)",
                                [_required("--checkpoint", help="a model directory: config.json "
                                                                "and *.safetensors shards"),
                                 _required("--sparsity", type=float, action="append"),
                                 _required("--out-dir", help="one directory of mask shards per "
                                                             "sparsity")],
                                _prune_sharded, tensor=True),
    "llm-table": Subcommand("Figure 11's table from the causal-LM runs",
                            [_required("--out"), ("runs", {"nargs": "+"})], _llm_table,
                            settings=lambda params, args: llm_table_settings(params)),
    "tables": Subcommand("tidy tables and essential sparsity from metrics.json files",
                         [OUT_DIR, _required("--metrics-json"), ("runs", {"nargs": "+"})],
                         _tables, settings=lambda params, args: tables_settings(params)),
    "arithmetic-tables": Subcommand("Figure 4's tables from the arithmetic runs",
                                    [_required("--runs"), _required("--drop-vs-sparsity"),
                                     _required("--essential-sparsity"),
                                     ("metrics", {"nargs": "+"})], _arithmetic_tables,
                                    settings=lambda params, args: arithmetic_tables_settings(
                                        params)),
    "similarity": Subcommand("Figure 10's table: cosine similarity of masks",
                             [_required("--out"), ("lth_masks", {"nargs": "+"})], _similarity,
                             tensor=True,
                             settings=lambda params, args: similarity_settings(params)),
    "claims": Subcommand("check the paper's claims against the result tables",
                         [_required("--claims", help="the claims file (workflow/claims.yaml)"),
                          _required("--tables", help="the directory of result tables"),
                          _required("--out-csv"), _required("--out-md")], _claims,
                         settings=lambda params, args: report_settings(params)),
    "report": Subcommand("the report page: figures, claims, provenance",
                         [_required("--out", help="the page (reports/index.html)"),
                          _required("--notebooks-dir", help="executed notebooks, <figure>.html"),
                          _required("--captions-dir", help="captions, <figure>.rst"),
                          _required("--essential", help="essential_sparsity.csv"),
                          _required("--claims", help="claims.csv"),
                          ("figures", {"nargs": "+", "help": "the figures' png files"})],
                         _report, settings=lambda params, args: report_settings(params)),
    "mask-table": Subcommand("Figure 1's table from a mask's sparsity report",
                             [_required("--report"), _required("--out")], _mask_table),
    "audit": Subcommand("check every artefact against what it claims: mask sparsity, nesting "
                        "and N:M, zeros kept by fine-tuning, tables vs metrics, provenance vs "
                        "the artefact, params.yaml, dvc.lock and the inputs",
                        [("--root", {"default": ".",
                                     "help": "the project directory holding results/"})],
                        _audit, tensor=True),
    "compare": Subcommand("this build's tables, essential sparsities and claim verdicts against "
                          "another build's, within the claims' noise; exit 1 when they differ",
                          [("other", {"help": "another build's project directory, or a git "
                                      "revision whose dvc.lock names the tables (fetched from "
                                      "the DVC cache or remote)"}),
                           ("--root", {"default": ".", "help": "this build's project directory"}),
                           ("--tolerance", {"type": float, "default": None,
                                            "help": "one absolute tolerance for every number, "
                                            "in its column's units (default: 2 standard errors "
                                            "for metrics, relative 1e-5 for other numbers)"}),
                           ("--show", {"type": int, "default": 10,
                                       "help": "differing cells listed per table (0: all)"})],
                          _compare),
    "render": Subcommand("execute a figure notebook with papermill",
                         [_required("--notebook"),
                          _required("--html", help="executed notebook as HTML"),
                          ("--out", {"action": "append", "default": [], "metavar": "NAME=PATH",
                                     "help": "a file the notebook writes (renamed into place "
                                     "only on success)"}),
                          ("--param", {"action": "append", "default": [],
                                       "metavar": "NAME=VALUE",
                                       "help": "another notebook parameter (VALUE parsed as "
                                       "JSON when it can be)"})],
                         _render),
}
TENSOR_COMMANDS = {name for name, subcommand in SUBCOMMANDS.items() if subcommand.tensor}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="essential-sparsity", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="path to params.yaml")
    parser.add_argument("--profile", default=None, help="smoke | default | paper "
                        "(default: the file's `profile:`)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (the Snakemake rules pass the job's {threads})")
    parser.add_argument("--settings", type=_settings_json, default=None, metavar="JSON",
                        help="the settings the job's rule tracks, which it runs on (the rules "
                        "pass them; without it a job takes them from params.yaml)")
    parser.add_argument("--record-output", action="append", default=[], metavar="PATH",
                        help="on success, write a provenance record beside PATH (repeat it; the "
                        "Snakemake rules pass every output of the job)")
    parser.add_argument("--record-input", action="append", default=[], metavar="PATH",
                        help="an input the records name with its MD5 (repeat it)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, subcommand in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=subcommand.help)
        for flag, options in subcommand.options:
            p.add_argument(flag, **options)
    return parser


def _settings_json(text: str) -> dict:
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc})") from exc
    if not isinstance(settings, dict):
        raise argparse.ArgumentTypeError("not a JSON object")
    return settings


def run(args: argparse.Namespace, params: dict) -> Outcome:
    """Run one subcommand with the validated params and its settings (handed by its rule, or
    else computed as the rule computes them); its exit status and the stage's own timings
    (`*_time_s`), for the job's run record."""
    subcommand = SUBCOMMANDS[args.command]
    if args.settings is not None and subcommand.settings is None:
        raise ParamsError(f"--settings: {args.command} takes none; its settings are params.yaml")
    if subcommand.settings is not None and args.settings is None:
        args.settings = subcommand.settings(params, args)
    if subcommand.tensor:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
    status, record = subcommand.run(args, params)
    return status, {k: v for k, v in record.items() if k.endswith("_time_s")}


def _record(args: argparse.Namespace, params: dict, started: float,
            timings: dict[str, float], warm_worker: bool) -> None:
    """Provenance beside each of the job's outputs, once they are all written."""
    from ..records.provenance import job_context, write_records

    seeds = {k: v for k, v in vars(args).items() if "seed" in k and v is not None}
    device, precisions = "cpu", []
    if args.command in TENSOR_COMMANDS:
        from ..training.device import chosen_precisions, device_name, job_device

        # The job's GPU if it may use one (`cuda` counts as `auto`: a job with no GPU work, such
        # as a mask similarity table, runs without one and still gets its record), else the CPU.
        setting = "cpu" if params["resources"]["device"] == "cpu" else "auto"
        device, precisions = device_name(job_device(setting)), chosen_precisions()
    context = job_context(params, args.command, seeds, device, precisions)
    write_records(args.record_output, args.record_input, context, started, timings, warm_worker)


def main(argv: list[str] | None = None, delegated: bool = False) -> int:
    """The CLI; a tensor job runs in the build's warm worker when one serves it (`worker`)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.command in TENSOR_COMMANDS and not delegated:
        from .worker import delegate

        status = delegate(argv)
        if status is not None:
            return status
    started = time.time()
    try:
        params = load_params(args.params, args.profile)
        status, timings = run(args, params)
        if status == 0 and args.record_output:
            _record(args, params, started, timings, delegated)
        return status
    except EXPECTED as exc:
        print(f"essential-sparsity {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
