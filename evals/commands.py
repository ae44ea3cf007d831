"""``rag eval``, ``rag bench`` and ``rag calibrate``: the measuring tools, added to the ``rag`` command through the
``rag.commands`` entry points in pyproject.toml (see ``rag.app.cli.Command``), so the library never imports them.

Importing this module is cheap: each command imports what it measures with only when it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evals.common import BENCHMARKS
from rag.config import JUDGES, LLAMA_CPUS, MODES, STORES, Config
from rag.errors import EXIT_OK, SettingsError


@dataclass(frozen=True)
class PluginCommand:
    """One subcommand, as ``rag.app.cli.Command`` expects it."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Config], int]
    description: str | None = None
    index_options: bool = True  # takes --index-dir, --store and --milvus-uri


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="evals/datasets/dev_qa.jsonl", help="JSON lines question set")
    parser.add_argument("--mode", choices=[*MODES, "naive"], default="generative")
    parser.add_argument("--model", help="qwen2.5-1.5b (default), smollm2-135m, or a .gguf path")
    parser.add_argument("--llama-cpu", choices=LLAMA_CPUS, help="llama.cpp build: avx2 (default), auto, avx512")
    parser.add_argument("--out", help="report folder (default evals/reports/<dataset>-<mode>)")
    parser.add_argument("--corpus", default="data/articles",
                        help="folder of the original files, to check citations against (default data/articles)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help="print metric deltas between two reports")
    parser.add_argument("--table", nargs="+", metavar="REPORT",
                        help="print a Markdown table of these report folders, each column with its command")
    parser.add_argument("--benchmark", choices=BENCHMARKS,
                        help="a public benchmark instead of --dataset (squad2: 300 held-out questions end to "
                             "end; squad2-decision: 1,000 for the answerability decision alone)")
    parser.add_argument("--judge", choices=JUDGES,
                        help="model: the calibrated judge (default); lexical: the earlier word-overlap rules")
    parser.add_argument("--benchmarks-dir", default="../shared/benchmarks", help="where the benchmark data is")


def _eval(args: argparse.Namespace, config: Config) -> int:
    from evals import runner

    if args.compare:
        print(runner.compare(*args.compare))
        return EXIT_OK
    if args.table:
        print(runner.table(args.table))
        return EXIT_OK
    config = config.replace(model_path=args.model, judge=args.judge, llama_cpu=args.llama_cpu)
    if args.benchmark:
        return _benchmark(args, config)
    out = args.out or f"evals/reports/{Path(args.dataset).stem}-{args.mode}"
    report = runner.run(args.dataset, config, args.mode, out, corpus_dir=args.corpus, limit=args.limit,
                        progress=True)
    runner.print_summary(report)
    print(f"report: {out}/report.md, {out}/report.json, {out}/by_type.png")
    return EXIT_OK


def _benchmark(args: argparse.Namespace, config: Config) -> int:
    from evals import benchmarks
    from evals.metrics import format_rate

    if args.mode == "naive":
        raise SettingsError("the naive baseline runs on question sets (--dataset), not benchmarks")
    out = args.out or f"evals/reports/{args.benchmark}-{args.mode}"
    result = benchmarks.run(args.benchmark, config, args.mode, args.benchmarks_dir, out, limit=args.limit,
                            progress=True)
    print(f"{args.benchmark} ({args.mode}, {result['model'] or 'no model'}), {result['questions']} questions")
    for key, value in result["summary"].items():
        shown = format_rate(result["intervals"][key]) if key in result["intervals"] else value
        print(f"  {key:28} {shown}")
    print(f"report: {out}/report.md, {out}/report.json")
    return EXIT_OK


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="evals/reports/bench.json", help="JSON output")
    parser.add_argument("--sizes", default="10000,100000",
                        help="vector counts for the scaling table (e.g. 10000,100000,1000000)")
    parser.add_argument("--generative-questions", type=int, default=5,
                        help="questions answered with the default model")
    parser.add_argument("--benchmarks-dir", default="../shared/benchmarks",
                        help="adds the ~2,000 benchmark passages")
    parser.add_argument("--sections", default="startup,indexing,embedding,engines,query,llm,scaling,stores,archive",
                        help="what to measure (comma-separated; default all but million and index_ratio)")
    parser.add_argument("--archive-corpus", default="../shared/corpus/bbc",
                        help="the archive the 'archive' section indexes and queries, and 'index_ratio' indexes "
                             "(default ../shared/corpus/bbc)")
    parser.add_argument("--archive-questions", default="../shared/evals/bbc_dev_qa.jsonl",
                        help="its question set, for latency and recall@5")
    parser.add_argument("--store-sizes", default="10000,100000",
                        help="chunk counts for the FAISS vs Milvus Lite retrieval table")
    parser.add_argument("--million-chunks", type=int, default=1_000_000,
                        help="size of the synthetic archive the 'million' section builds (about 30 minutes at 1e6)")
    parser.add_argument("--million-queries", type=int, default=100,
                        help="searches the 'million' section times before and after its add (default 100)")
    parser.add_argument("--compare-stores", default="faiss,milvus",
                        help="which stores the retrieval table measures (Milvus Lite is slow past 1e5 chunks)")


def _bench(args: argparse.Namespace, config: Config) -> int:
    from evals import bench

    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = set(sections) - set(bench.SECTIONS)
    if unknown:
        raise SettingsError(f"unknown bench section(s) {', '.join(sorted(unknown))}; "
                            f"choose from {', '.join(bench.SECTIONS)}")
    store_sizes = tuple(int(float(s)) for s in args.store_sizes.split(",") if s.strip())
    stores = tuple(s.strip() for s in args.compare_stores.split(",") if s.strip())
    if not stores or set(stores) - set(STORES):
        raise SettingsError(f"--compare-stores takes {' and/or '.join(STORES)}, not {args.compare_stores!r}")
    report = bench.run(config, Path(args.out), sizes, Path(args.benchmarks_dir), args.generative_questions,
                       sections, store_sizes, stores, Path(args.archive_corpus), Path(args.archive_questions),
                       args.million_chunks, args.million_queries)
    print(bench.render(report))
    print(f"json: {args.out}")
    return EXIT_OK


def _calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmarks-dir", default="../shared/benchmarks", help="where the benchmark data is")
    parser.add_argument("--squad-fit", type=int, default=240, help="SQuAD questions to fit on (default 240)")
    parser.add_argument("--squad-held-out", type=int, default=160,
                        help="SQuAD questions to report on (default 160)")
    parser.add_argument("--model", help="the model to calibrate (default qwen2.5-1.5b)")
    parser.add_argument("--out", help="calibration file (default rag/qa/calibration/judge.json)")
    parser.add_argument("--near-miss-supports", action="store_true",
                        help="also fit support on SQuAD 2.0 near-miss claims (tried, not adopted: README)")
    parser.add_argument("--decision", action="store_true",
                        help="fit the one decision to answer on the news fit set (instead of the judge)")
    parser.add_argument("--decision-dataset", default="../shared/evals/bbc_fit_qa.jsonl",
                        help="the fit set for --decision (never a set that is reported)")
    parser.add_argument("--decision-corpus", default="../shared/corpus/bbc",
                        help="the articles the fit set asks about (indexed into --decision-index if needed)")
    parser.add_argument("--decision-index", default="evals/cache/bbc-index", help="the index of those articles")
    parser.add_argument("--refit", action="store_true",
                        help="with --decision: refit from the signals collected last time")
    parser.add_argument("--kind", choices=["decision", "decision_no_model"],
                        help="with --decision: fit only this one (default: both)")


def _calibrate(args: argparse.Namespace, config: Config) -> int:
    from evals import calibrate
    from rag.qa.judge import CALIBRATION_FILE, DECISION_KINDS

    out = Path(args.out) if args.out else CALIBRATION_FILE
    if args.decision:
        from evals import decision_fit
        from rag.index.build import build_index

        decision_config = config.replace(model_path=args.model, index_dir=Path(args.decision_index))
        if not args.refit:
            build_index([Path(args.decision_corpus)], decision_config, progress=True)
        fitted = decision_fit.run(decision_config, args.decision_dataset, out=out, refit=args.refit,
                                  kinds=(args.kind,) if args.kind else DECISION_KINDS)
        print(decision_fit.render(fitted))
        return EXIT_OK
    result = calibrate.run(config.replace(model_path=args.model), args.benchmarks_dir, squad_fit=args.squad_fit,
                           squad_held_out=args.squad_held_out,
                           out=out,
                           progress=True, near_miss_supports=args.near_miss_supports)
    print(calibrate.render(result))
    return EXIT_OK


EVAL = PluginCommand("measure answers, citations and abstention on a question set", _eval_arguments, _eval)
BENCH = PluginCommand("measure start-up, indexing, query latency and search scaling", _bench_arguments, _bench)
CALIBRATE = PluginCommand(
    "fit the judge on labelled SQuAD 2.0 and RGB decisions", _calibrate_arguments, _calibrate,
    description="Label decisions from SQuAD 2.0 (the fit half of its articles) and RGB (even ids), compute the "
                "judge's features, fit it, report on the held-out half, and write rag/qa/calibration/judge.json.",
    index_options=False)
