"""The ``rag`` command. Translates between people and the library; no logic of its own.

Imports of models and numeric libraries happen inside the commands, so ``rag --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

EXIT_BAD_INPUT = 1
EXIT_INDEX_PROBLEM = 2
EXIT_INTERRUPTED = 130  # the shell's code for a job stopped by Ctrl-C


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-dir", help="index folder (default: index, or $RAG_INDEX_DIR)")
    parser.add_argument("--store", choices=["faiss", "milvus"],
                        help="where chunk vectors live: faiss files in the index folder (default) or Milvus")
    parser.add_argument("--milvus-uri", metavar="URI",
                        help="Milvus Lite file (e.g. index/milvus.db) or http://host:19530 ($RAG_MILVUS_URI)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Answer questions from a collection of news articles, citing the exact sentences.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="index article files or folders (incremental)")
    index.add_argument("paths", nargs="+", metavar="PATH", help=".txt .md .html .htm .json .jsonl files or folders")
    _add_common(index)
    index.add_argument("--prune", action="store_true", help="remove indexed documents not among PATHs")
    index.add_argument("--rebuild", action="store_true", help="start from an empty index")
    index.add_argument("--chunk-chars", type=int, help="target chunk size in characters (default 700)")
    index.add_argument("--sentence-vectors", choices=["pooled", "embedded"],
                       help="pooled from each chunk's forward pass (default, half the time) or each sentence embedded "
                            "on its own; an existing index keeps its way unless --rebuild")
    index.add_argument("--engine", choices=["local", "ray"],
                       help="local (default) or a Ray Data pipeline (read, clean, chunk, embed in an actor pool)")
    index.add_argument("--ray-address", metavar="ADDR",
                       help="join this Ray cluster (or $RAY_ADDRESS); without it a local Ray is started")

    search = commands.add_parser("search", help="show the passages retrieved for a query")
    search.add_argument("query")
    _add_common(search)
    search.add_argument("--k", type=int, help="number of passages (default 8)")
    search.add_argument("--section", help="only articles in this section (e.g. sport; see `rag sections`)")
    search.add_argument("--json", action="store_true", help="print JSON")
    ask = commands.add_parser("ask", help="answer a question with verified citations")
    ask.add_argument("question", nargs="?", help="the question (or use --questions)")
    _add_common(ask)
    ask.add_argument("--questions", metavar="FILE.jsonl",
                     help="batch: JSON lines with 'question' (and optional 'id'); one JSON answer per line")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.add_argument("--mode", choices=["generative", "extractive"], help="default: generative")
    ask.add_argument("--model", help="qwen2.5-1.5b (default), smollm2-135m, or a path to a .gguf file")
    ask.add_argument("--k", type=int, help="passages to retrieve (default 8)")
    ask.add_argument("--section", help="only articles in this section (e.g. sport; see `rag sections`)")
    ask.add_argument("--judge", choices=["model", "lexical"],
                     help="model: the calibrated judge (default); lexical: the earlier word-overlap rules")

    sections = commands.add_parser("sections", help="list the index's sections and how many articles each holds")
    _add_common(sections)

    evaluate = commands.add_parser("eval", help="measure answers, citations and abstention on a question set")
    evaluate.add_argument("--dataset", default="evals/datasets/dev_qa.jsonl", help="JSON lines question set")
    _add_common(evaluate)
    evaluate.add_argument("--mode", choices=["generative", "extractive", "naive"], default="generative")
    evaluate.add_argument("--model", help="qwen2.5-1.5b (default), smollm2-135m, or a .gguf path")
    evaluate.add_argument("--out", help="report folder (default evals/reports/<dataset>-<mode>)")
    evaluate.add_argument("--corpus", default="data/articles",
                          help="folder of the original files, to check citations against (default data/articles)")
    evaluate.add_argument("--limit", type=int, help="only the first N questions")
    evaluate.add_argument("--compare", nargs=2, metavar=("A", "B"), help="print metric deltas between two reports")
    evaluate.add_argument("--benchmark", choices=["rgb", "squad2", "squad2-decision"],
                          help="a public benchmark instead of --dataset (squad2: 300 held-out questions end to end; "
                               "squad2-decision: 1,000 for the answerability decision alone)")
    evaluate.add_argument("--judge", choices=["model", "lexical"],
                          help="model: the calibrated judge (default); lexical: the earlier word-overlap rules")
    evaluate.add_argument("--benchmarks-dir", default="../shared/benchmarks", help="where the benchmark data is")

    serve = commands.add_parser("serve", help="start the chat UI (Gradio) on 127.0.0.1:7860")
    _add_common(serve)
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1, or $RAG_HOST or $GRADIO_SERVER_NAME; "
                                       "another than loopback needs RAG_AUTH)")
    serve.add_argument("--port", type=int, help="port (default 7860, or $RAG_PORT or $GRADIO_SERVER_PORT)")
    serve.add_argument("--mode", choices=["generative", "extractive"], help="default answering mode")
    serve.add_argument("--model", help="default model")

    bench = commands.add_parser("bench", help="measure start-up, indexing, query latency and search scaling")
    _add_common(bench)
    bench.add_argument("--out", default="evals/reports/bench.json", help="JSON output")
    bench.add_argument("--sizes", default="10000,100000",
                       help="vector counts for the scaling table (e.g. 10000,100000,1000000)")
    bench.add_argument("--generative-questions", type=int, default=5, help="questions answered with the default model")
    bench.add_argument("--benchmarks-dir", default="../shared/benchmarks", help="adds the ~2,000 benchmark passages")
    bench.add_argument("--sections", default="startup,indexing,embedding,engines,query,scaling,stores,archive",
                       help="what to measure (comma-separated; default all)")
    bench.add_argument("--archive-corpus", default="../shared/corpus/bbc",
                       help="the archive the 'archive' section indexes and queries (default ../shared/corpus/bbc)")
    bench.add_argument("--archive-questions", default="../shared/evals/bbc_dev_qa.jsonl",
                       help="its question set, for latency and recall@5")
    bench.add_argument("--store-sizes", default="10000,100000",
                       help="chunk counts for the FAISS vs Milvus Lite retrieval table")
    bench.add_argument("--compare-stores", default="faiss,milvus",
                       help="which stores the retrieval table measures (Milvus Lite is slow past 1e5 chunks)")

    calibrate = commands.add_parser(
        "calibrate", help="fit the judge on labelled SQuAD 2.0 and RGB decisions",
        description="Label decisions from SQuAD 2.0 (the fit half of its articles) and RGB (even ids), compute the "
                    "judge's features, fit it, report on the held-out half, and write rag/calibration/judge.json.")
    calibrate.add_argument("--benchmarks-dir", default="../shared/benchmarks", help="where the benchmark data is")
    calibrate.add_argument("--squad-fit", type=int, default=240, help="SQuAD questions to fit on (default 240)")
    calibrate.add_argument("--squad-held-out", type=int, default=160, help="SQuAD questions to report on (default 160)")
    calibrate.add_argument("--model", help="the model to calibrate (default qwen2.5-1.5b)")
    calibrate.add_argument("--out", help="calibration file (default rag/calibration/judge.json)")
    calibrate.add_argument("--near-miss-supports", action="store_true",
                           help="also fit support on SQuAD 2.0 near-miss claims (tried, not adopted: README)")

    models = commands.add_parser("models", help="list the installed language models")
    models.add_argument("--prepare", action="store_true",
                        help="assemble the default model into the user cache and verify its SHA-256")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rag.config import Config

    config = Config.from_env(
        index_dir=getattr(args, "index_dir", None), store=getattr(args, "store", None),
        milvus_uri=getattr(args, "milvus_uri", None), engine=getattr(args, "engine", None),
        ray_address=getattr(args, "ray_address", None),
    )
    handler = {"index": _index, "search": _search, "ask": _ask, "eval": _eval, "serve": _serve, "bench": _bench,
               "models": _models, "calibrate": _calibrate, "sections": _sections}[args.command]
    try:
        return handler(args, config)
    except KeyboardInterrupt:
        # Builds write a new generation beside the live one, so stopping leaves the index as it was.
        kept = "; the index is as it was before this command" if args.command == "index" else ""
        print(f"rag {args.command}: interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # one clear line for the problems users can fix, tracebacks for bugs
        from rag.index.store import IndexError_
        from rag.models.weights import ModelNotFound

        if isinstance(exc, IndexError_ | ValueError | ModelNotFound):
            print(f"rag {args.command}: {exc}", file=sys.stderr)
            return EXIT_INDEX_PROBLEM
        raise


def _index(args: argparse.Namespace, config) -> int:
    from rag.index.build import build_index

    config = config.replace(chunk_chars=args.chunk_chars, sentence_vectors=args.sentence_vectors)
    report = build_index(
        args.paths, config, prune=args.prune, rebuild=args.rebuild, progress=True,
        on_error=lambda line: print(f"error: {line}", file=sys.stderr),
    )
    print(report.summary())
    return EXIT_BAD_INPUT if report.errors else 0


def _search(args: argparse.Namespace, config) -> int:
    from rag.qa.retrieval import Retriever, explain

    config = config.replace(k=args.k, section=args.section)
    retriever = Retriever.open(config)
    passages = retriever.search(args.query, config.k)
    if args.json:
        print(json.dumps([p.to_dict() for p in passages], ensure_ascii=False, indent=2))
        return 0
    for rank, passage in enumerate(passages, start=1):
        c = passage.chunk
        why = explain(args.query, passage, retriever.reader)
        print(f"{rank}. {c.title}")
        print(f"   relevance {why.relevance}/100; {why.because}; {c.doc} [{c.start}:{c.end}]")
        print(f"   {' '.join(c.text.split())[:300]}")
        duplicates = c.same_text_as + c.near_duplicates
        if duplicates:
            print(f"   also in: {', '.join(duplicates)}")
    return 0


def _sections(args: argparse.Namespace, config) -> int:
    from rag.index.store import IndexReader

    reader = IndexReader(config.index_dir, store=config.store, milvus_uri=config.milvus_uri)
    found = reader.sections()
    for name, count in found.items():
        print(f"{name:20} {count:>6} articles")
    if not found:
        print("no sections: articles are filed by folder (sport/x.txt) or by name (sport_001.txt)")
    return 0


def _ask(args: argparse.Namespace, config) -> int:
    from rag.qa.assistant import Assistant, BadQuestion
    from rag.qa.question import read_questions

    if bool(args.question) == bool(args.questions):
        raise ValueError("give either a question or --questions FILE.jsonl")
    config = config.replace(mode=args.mode, model_path=args.model, k=args.k, judge=args.judge, section=args.section)
    assistant = Assistant(config)
    if args.question:
        result = assistant.ask(args.question)
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) if args.json else _render(result))
        return 0
    failed = 0
    for line_no, item in read_questions(args.questions):
        if isinstance(item, str):
            failed += 1
            print(json.dumps({"id": None, "error": f"{args.questions}: line {line_no}: {item}"}), flush=True)
            continue
        try:
            result = assistant.ask(item["question"], id=item.get("id"))
        except BadQuestion as exc:
            failed += 1
            print(json.dumps({"id": item.get("id"), "error": str(exc)}, ensure_ascii=False), flush=True)
            continue
        record = result.to_dict()
        print(json.dumps(record, ensure_ascii=False) if args.json else _render(result), flush=True)
    return EXIT_BAD_INPUT if failed else 0


def _render(result) -> str:
    lines = [result.answer, ""]
    for c in result.citations:
        lines.append(f"[{c.n}] {c.title} ({c.doc} [{c.start}:{c.end}])")
        lines.append(f"    “{' '.join(c.quote.split())}”")
    if result.abstained and result.searched:
        lines.append("Searched:")
        lines.extend(f"  - {p.title} ({p.doc} [{p.start}:{p.end}]): {' '.join(p.text.split())[:100]}…"
                     for p in result.searched[:5])
    t = result.timings
    model = f", model {result.model}" if result.model else ""
    judged = f"judge {t['judge_ms']:.0f} ms, " if "judge_ms" in t else ""
    lines.append(f"({result.mode}{model}; retrieve {t['retrieve_ms']:.0f} ms, {judged}generate {t['generate_ms']:.0f} "
                 f"ms, total {t['total_ms']:.0f} ms)")
    return "\n".join(lines)


def _eval(args: argparse.Namespace, config) -> int:
    from pathlib import Path

    from evals import runner

    if args.compare:
        print(runner.compare(*args.compare))
        return 0
    config = config.replace(model_path=args.model, judge=args.judge)
    if args.benchmark:
        from evals import benchmarks

        if args.mode == "naive":
            raise ValueError("the naive baseline runs on question sets (--dataset), not benchmarks")
        out = args.out or f"evals/reports/{args.benchmark}-{args.mode}"
        result = benchmarks.run(args.benchmark, config, args.mode, args.benchmarks_dir, out, limit=args.limit,
                                progress=True)
        print(f"{args.benchmark} ({args.mode}, {result['model'] or 'no model'}), {result['questions']} questions")
        from evals.metrics import format_rate

        for key, value in result["summary"].items():
            shown = format_rate(result["intervals"][key]) if key in result["intervals"] else value
            print(f"  {key:28} {shown}")
        print(f"report: {out}/report.md, {out}/report.json")
        return 0
    out = args.out or f"evals/reports/{Path(args.dataset).stem}-{args.mode}"
    report = runner.run(args.dataset, config, args.mode, out, corpus_dir=args.corpus, limit=args.limit,
                        progress=True)
    runner.print_summary(report)
    print(f"report: {out}/report.md, {out}/report.json, {out}/by_type.png")
    return 0


def _serve(args: argparse.Namespace, config) -> int:
    import os

    from rag.app.ui import serve

    auth = os.environ.get("RAG_AUTH")
    if auth and ":" not in auth:
        raise ValueError("RAG_AUTH must be user:password")
    config = config.replace(mode=args.mode, model_path=args.model, host=args.host, port=args.port)
    serve(config, host=config.host, port=config.port, auth=tuple(auth.split(":", 1)) if auth else None)
    return 0


def _bench(args: argparse.Namespace, config) -> int:
    from pathlib import Path

    from evals import bench

    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = set(sections) - set(bench.SECTIONS)
    if unknown:
        raise ValueError(f"unknown bench section(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(bench.SECTIONS)}")
    store_sizes = tuple(int(float(s)) for s in args.store_sizes.split(",") if s.strip())
    stores = tuple(s.strip() for s in args.compare_stores.split(",") if s.strip())
    if not stores or set(stores) - {"faiss", "milvus"}:
        raise ValueError(f"--compare-stores takes faiss and/or milvus, not {args.compare_stores!r}")
    report = bench.run(config, Path(args.out), sizes, Path(args.benchmarks_dir), args.generative_questions,
                       sections, store_sizes, stores, Path(args.archive_corpus), Path(args.archive_questions))
    print(bench.render(report))
    print(f"json: {args.out}")
    return 0


def _calibrate(args: argparse.Namespace, config) -> int:
    from pathlib import Path

    from evals import calibrate
    from rag.qa.judge import CALIBRATION_FILE

    result = calibrate.run(config.replace(model_path=args.model), args.benchmarks_dir, squad_fit=args.squad_fit,
                           squad_held_out=args.squad_held_out, out=Path(args.out) if args.out else CALIBRATION_FILE,
                           progress=True, near_miss_supports=args.near_miss_supports)
    print(calibrate.render(result))
    return 0


def _models(args: argparse.Namespace, config) -> int:
    from rag.models import weights

    if args.prepare:
        path = weights.qwen_path(verify=True)
        print(f"{weights.DEFAULT_MODEL}: {path} (SHA-256 verified)")
    for name in weights.installed():
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
