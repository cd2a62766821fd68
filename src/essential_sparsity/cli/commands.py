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

from ..catalog.sources import SourceError
from ..config.params import ParamsError, load_params
from ..records.io import ArtefactError, write_csv

EXPECTED = (ParamsError, SourceError, ArtefactError)
# The subcommands that compute on tensors: they import torch (and set its threads); the others
# (check, sources, tables, claims, figures, the report, compare) never do.
TENSOR_COMMANDS = {"split", "prune", "lth", "encode", "finetune", "pretrain-data", "pretrain",
                   "pretrain-tables", "vision-pretrain", "vision-tables", "corpus", "convert-lm",
                   "llm-prune", "prune-sharded", "similarity", "audit"}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="essential-sparsity", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="path to params.yaml")
    parser.add_argument("--profile", default=None, help="smoke | default | paper "
                        "(default: the file's `profile:`)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (the Snakemake rules pass the job's {threads})")
    parser.add_argument("--record-output", action="append", default=[], metavar="PATH",
                        help="on success, write a provenance record beside PATH (repeat it; the "
                        "Snakemake rules pass every output of the job)")
    parser.add_argument("--record-input", action="append", default=[], metavar="PATH",
                        help="an input the records name with its MD5 (repeat it)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("check", help="validate params.yaml and print the resolved settings")
    sub.add_parser("sources", help="list models and tasks and whether they are installed")

    p = sub.add_parser("split", help="write a task's train/validation/test splits")
    p.add_argument("--task", required=True)
    p.add_argument("--out-dir", required=True)

    p = sub.add_parser("prune", help="one-shot magnitude pruning of a pre-trained model")
    p.add_argument("--model", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--sparsity", type=float, required=True)
    p.add_argument("--out", required=True, help="mask .safetensors (report .json beside it)")
    p.add_argument("--location", default=None,
                   help="the checkpoint directory of a model pre-trained by the pipeline")

    p = sub.add_parser("lth", help="one lottery-ticket round: prune a fine-tuned run further")
    p.add_argument("--model", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--checkpoint", required=True, help="the previous round's fine-tuned weights")
    p.add_argument("--previous", required=True, help="the previous round's mask")
    p.add_argument("--out", required=True, help="mask .safetensors (report .json beside it)")

    p = sub.add_parser("encode", help="a text task's splits as one model's token ids, shared "
                       "by every fine-tuning run of the pair")
    p.add_argument("--model", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True, help="the encoded splits, .safetensors")
    p.add_argument("--location", default=None,
                   help="the checkpoint directory of a model pre-trained by the pipeline")

    p = sub.add_parser("finetune", help="sparse fine-tuning under a fixed mask")
    p.add_argument("--model", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--mask", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--location", default=None,
                   help="the checkpoint directory of a model pre-trained by the pipeline")
    p.add_argument("--encoded", default=None, help="a text task's encoded splits (encode)")

    p = sub.add_parser("pretrain-data", help="corpus, WordPiece vocabulary and packed "
                       "sequences for pre-training from scratch")
    p.add_argument("--out-dir", required=True)

    p = sub.add_parser("pretrain", help="masked-LM pre-training of one data fraction's BERT")
    p.add_argument("--model", required=True, help="scratch-<percent of the corpus>")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out-dir", required=True, help="checkpoints out-dir/step-K")

    p = sub.add_parser("pretrain-tables", help="Figure 8's tables from the pre-training runs")
    p.add_argument("--runs", nargs="+", required=True, help="the runs' directories")
    p.add_argument("--finetune", nargs="+", required=True, help="their fine-tuning metrics")
    for name in ("zero-weights", "onset", "losses", "drop-vs-sparsity"):
        p.add_argument(f"--{name}", required=True, help="output csv")

    p = sub.add_parser("vision-pretrain", help="pre-train one vision transformer (supervised "
                       "or DINO)")
    p.add_argument("--model", required=True, help="vit-sl or vit-ssl")
    p.add_argument("--out-dir", required=True, help="checkpoints out-dir/step-K")

    p = sub.add_parser("vision-tables", help="Figures 3, 6 and 7's tables")
    p.add_argument("--runs", nargs="*", default=[], help="the pre-training runs' directories")
    p.add_argument("--finetune", nargs="+", required=True, help="the fine-tuning metrics")
    for name in ("losses", "zero-weights", "weight-histograms", "drop-vs-sparsity",
                 "essential-sparsity"):
        p.add_argument(f"--{name}", required=True, help="output csv")

    p = sub.add_parser("corpus", help="plain text for causal LMs: train, held-out, questions")
    p.add_argument("--out-dir", required=True)

    p = sub.add_parser("convert-lm", help="dequantize a packaged GGUF causal LM once")
    p.add_argument("--model", required=True)
    p.add_argument("--out-dir", required=True)

    p = sub.add_parser("llm-prune", help="one-shot prune a causal LM and evaluate it zero-shot")
    p.add_argument("--model", required=True)
    p.add_argument("--location", required=True, help="converted directory or hub id")
    p.add_argument("--method", required=True)
    p.add_argument("--level", required=True, help="a sparsity, or nm-N-M")
    p.add_argument("--corpus-dir", required=True)
    p.add_argument("--metrics", required=True)
    p.add_argument("--mask", required=True, help="packed mask .safetensors (report beside it)")

    p = sub.add_parser("prune-sharded", help="global OMP over a sharded safetensors checkpoint, "
                       "one tensor in memory at a time (7B/13B on a small machine)")
    p.add_argument("--checkpoint", required=True,
                   help="a model directory: config.json and *.safetensors shards")
    p.add_argument("--sparsity", type=float, action="append", required=True)
    p.add_argument("--out-dir", required=True, help="one directory of mask shards per sparsity")

    p = sub.add_parser("llm-table", help="Figure 11's table from the causal-LM runs")
    p.add_argument("--out", required=True)
    p.add_argument("runs", nargs="+")

    p = sub.add_parser("tables", help="tidy tables and essential sparsity from metrics.json files")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--metrics-json", required=True)
    p.add_argument("runs", nargs="+")

    p = sub.add_parser("arithmetic-tables", help="Figure 4's tables from the arithmetic runs")
    for name in ("runs", "drop-vs-sparsity", "essential-sparsity"):
        p.add_argument(f"--{name}", required=True, dest=name.replace("-", "_"))
    p.add_argument("metrics", nargs="+")

    p = sub.add_parser("similarity", help="Figure 10's table: cosine similarity of masks")
    p.add_argument("--out", required=True)
    p.add_argument("lth_masks", nargs="+")

    p = sub.add_parser("claims", help="check the paper's claims against the result tables")
    p.add_argument("--claims", required=True, help="the claims file (workflow/claims.yaml)")
    p.add_argument("--tables", required=True, help="the directory of result tables")
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)

    p = sub.add_parser("report", help="the report page: figures, claims, provenance")
    p.add_argument("--out", required=True, help="the page (reports/index.html)")
    p.add_argument("--notebooks-dir", required=True, help="executed notebooks, <figure>.html")
    p.add_argument("--captions-dir", required=True, help="captions, <figure>.rst")
    p.add_argument("--essential", required=True, help="essential_sparsity.csv")
    p.add_argument("--claims", required=True, help="claims.csv")
    p.add_argument("figures", nargs="+", help="the figures' png files")

    p = sub.add_parser("mask-table", help="Figure 1's table from a mask's sparsity report")
    p.add_argument("--report", required=True)
    p.add_argument("--out", required=True)

    p = sub.add_parser("audit", help="check every artefact against what it claims: mask "
                       "sparsity, nesting and N:M, zeros kept by fine-tuning, tables vs metrics, "
                       "provenance vs the artefact, params.yaml, dvc.lock and the inputs")
    p.add_argument("--root", default=".", help="the project directory holding results/")

    p = sub.add_parser("compare", help="this build's tables, essential sparsities and claim "
                       "verdicts against another build's, within the claims' noise; exit 1 "
                       "when they differ")
    p.add_argument("other", help="another build's project directory, or a git revision whose "
                   "dvc.lock names the tables (fetched from the DVC cache or remote)")
    p.add_argument("--root", default=".", help="this build's project directory")
    p.add_argument("--tolerance", type=float, default=None, help="one absolute tolerance for "
                   "every number, in its column's units (default: 2 standard errors for "
                   "metrics, relative 1e-5 for other numbers)")
    p.add_argument("--show", type=int, default=10, help="differing cells listed per table "
                   "(0: all)")

    p = sub.add_parser("render", help="execute a figure notebook with papermill")
    p.add_argument("--notebook", required=True)
    p.add_argument("--html", required=True, help="executed notebook as HTML")
    p.add_argument("--out", action="append", default=[], metavar="NAME=PATH",
                   help="a file the notebook writes (renamed into place only on success)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="another notebook parameter (VALUE parsed as JSON when it can be)")
    return parser


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


def run(args: argparse.Namespace, params: dict) -> tuple[int, dict[str, float]]:
    """Run one subcommand with the validated params; its exit status (0 unless the subcommand
    says otherwise) and the stage's own timings (`*_time_s`), for the job's run record."""
    if args.command in TENSOR_COMMANDS:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
    else:
        from ..evaluation import tables
    record: dict = {}
    if args.command == "check":
        from ..catalog.entries import check
        check(params)
        print(json.dumps(params, indent=2))
    elif args.command == "sources":
        from ..catalog.entries import available
        from ..catalog.sources import available_sources
        from ..data.arithmetic import available_sources as arithmetic_sources
        for row in available_sources() + arithmetic_sources() + available(params):
            hub = row["source"].startswith("hub ")
            state = "from the hub (paper profile)" if hub else (
                "installed" if row["installed"] else f"MISSING: {row.get('fix', 'make setup')}")
            print(f"{row['kind']:10} {row['name']:18} {row['source']:32} {state}")
    elif args.command == "split":
        from ..stages.split import split_task
        split_task(params, args.task, args.out_dir)
    elif args.command == "prune":
        from ..stages.prune import prune
        report = prune(params, args.model, args.method, args.sparsity, args.out,
                              args.location)
        print(f"{args.out}: pruned {report['pruned']} of {report['weights']} "
              f"({report['sparsity']:.4f})")
    elif args.command == "lth":
        from ..stages.lth import lth_round
        report = lth_round(params, args.model, args.task, args.round, args.checkpoint,
                                  args.previous, args.out)
        print(f"{args.out}: round {args.round}, pruned {report['pruned']} of "
              f"{report['weights']} ({report['sparsity']:.4f})")
    elif args.command == "encode":
        from ..stages.encode import encode_task
        info = encode_task(params, args.model, args.task, args.data_dir, args.out,
                                  args.location)
        print(f"{args.out}: {info['examples']} examples at max_length {info['max_length']}")
    elif args.command == "finetune":
        from ..stages.finetune import finetune_run
        record = finetune_run(params, args.model, args.task, args.mask, args.seed,
                                     args.data_dir, args.metrics, args.checkpoint,
                                     args.location, args.encoded)
        print(f"{args.metrics}: {record['metric']} {record['value']:.2f} "
              f"in {record['wall_time_s']:.0f} s")
    elif args.command == "pretrain-data":
        from ..stages.pretrain import build_data
        print(json.dumps(build_data(params, args.out_dir)))
    elif args.command == "pretrain":
        from ..stages.pretrain import pretrain_run
        record = summary = pretrain_run(params, args.model, args.data_dir, args.out_dir)
        last = summary["history"][-1]
        print(f"{args.out_dir}: {summary['steps']} steps on {summary['sequences']} sequences, "
              f"held-out MLM loss {summary['history'][0]['heldout_loss']:.3f} -> "
              f"{last['heldout_loss']:.3f} in {summary['wall_time_s']:.0f} s")
    elif args.command == "pretrain-tables":
        from ..stages.pretrain import pretrain_tables
        out = {"zero_weights": args.zero_weights, "onset": args.onset, "losses": args.losses,
               "drop_vs_sparsity": args.drop_vs_sparsity}
        tables = pretrain_tables(params, args.runs, args.finetune, out)
        print(tables["onset"].to_string(index=False))
    elif args.command == "vision-pretrain":
        from ..stages.vision import vision_pretrain_run
        record = summary = vision_pretrain_run(params, args.model, args.out_dir)
        first, last = summary["history"][0], summary["history"][-1]
        print(f"{args.out_dir}: {summary['objective']}, {summary['steps']} steps on "
              f"{summary['images']} images, held-out loss {first['heldout_loss']:.3f} -> "
              f"{last['heldout_loss']:.3f} in {summary['wall_time_s']:.0f} s")
    elif args.command == "vision-tables":
        from ..stages.vision import vision_tables
        out = {"losses": args.losses, "zero_weights": args.zero_weights,
               "weight_histograms": args.weight_histograms,
               "drop_vs_sparsity": args.drop_vs_sparsity,
               "essential_sparsity": args.essential_sparsity}
        tables = vision_tables(params, args.runs, args.finetune, out)
        print(tables["essential_sparsity"].to_string(index=False))
    elif args.command == "corpus":
        from ..stages.llm import build_corpus
        print(json.dumps(build_corpus(params, args.out_dir)))
    elif args.command == "convert-lm":
        from ..catalog.sources import convert_gguf
        convert_gguf(args.model, args.out_dir)
    elif args.command == "llm-prune":
        from ..stages.llm import prune_and_evaluate
        record = prune_and_evaluate(params, args.model, args.location, args.method, args.level,
                                    args.corpus_dir, args.metrics, args.mask)
        print(f"{args.metrics}: sparsity {record['scope_sparsity']:.4f}, perplexity "
              f"{record['perplexity']:.2f}, accuracy {record['accuracy']:.1f}")
    elif args.command == "prune-sharded":
        from ..stages.llm import prune_sharded
        for sparsity, directory in prune_sharded(params, args.checkpoint, args.sparsity,
                                                 args.out_dir).items():
            print(f"{directory}: global OMP at {sparsity:g}")
    elif args.command == "llm-table":
        table = tables.zero_shot_table(args.runs)
        write_csv(args.out, table)
        print(table.to_string(index=False))
    elif args.command == "tables":
        print(tables.finetune_tables(params, args.runs, args.out_dir, args.metrics_json)
              .to_string(index=False))
    elif args.command == "arithmetic-tables":
        out = {"runs": args.runs, "drop_vs_sparsity": args.drop_vs_sparsity,
               "essential_sparsity": args.essential_sparsity}
        built = tables.arithmetic_tables(params, args.metrics, out)
        print(built["essential_sparsity"].to_string(index=False))
    elif args.command == "similarity":
        from ..stages.similarity import mask_similarity
        mask_similarity(params, args.lth_masks, args.out)
    elif args.command == "claims":
        table = tables.claims_report(params, args.claims, args.tables, args.out_csv, args.out_md)
        print(table[["id", "verdict", "ours"]].to_string(index=False))
    elif args.command == "report":
        from ..records.report import write_report
        write_report(args.out, args.figures, args.notebooks_dir, args.captions_dir,
                     args.essential, args.claims, args.params, params["profile"])
        print(f"the report: {args.out}")
    elif args.command == "mask-table":
        tables.mask_table(args.report, args.out)
    elif args.command == "audit":
        from ..records.audit import audit
        problems = audit(args.root)
        for line in problems:
            print(line)
        print(f"audit: {len(problems)} violations under {args.root}/results and reports",
              file=sys.stderr)
        return (1 if problems else 0), {}
    elif args.command == "compare":
        from ..evaluation.compare import compare
        status, lines = compare(args.root, args.other, args.tolerance, args.show)
        print("\n".join(lines))
        return status, {}
    elif args.command == "render":
        from ..records.render import render_notebook
        extra = {k: _json_or_text(v) for k, v in _pairs(args.param).items()}
        render_notebook(args.notebook, args.html, _pairs(args.out), extra)
    return 0, {k: v for k, v in record.items() if k.endswith("_time_s")}


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
