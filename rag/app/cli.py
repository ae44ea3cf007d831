"""The ``rag`` command. Translates between people and the library; no logic of its own.

Imports of models and numeric libraries happen inside the commands, so ``rag --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from typing import Protocol

from rag.config import ENGINES, JUDGES, LLAMA_CPUS, MODES, SENTENCE_VECTORS, STORES, Config
from rag.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, RagError, SettingsError
from rag.ingest.readers import SUPPORTED_SUFFIXES

PLUGIN_GROUP = "rag.commands"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-dir", help="index folder (default: index, or $RAG_INDEX_DIR)")
    parser.add_argument("--store", choices=STORES,
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
    index.add_argument("paths", nargs="+", metavar="PATH", help=f"{' '.join(SUPPORTED_SUFFIXES)} files or folders")
    _add_common(index)
    index.add_argument("--prune", action="store_true", help="remove indexed documents not among PATHs")
    index.add_argument("--rebuild", action="store_true", help="start from an empty index")
    index.add_argument("--chunk-chars", type=int, help="target chunk size in characters (default 700)")
    index.add_argument("--sentence-vectors", choices=SENTENCE_VECTORS,
                       help="pooled from each chunk's forward pass (default, half the time) or each sentence embedded "
                            "on its own; an existing index keeps its way unless --rebuild")
    index.add_argument("--engine", choices=ENGINES,
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
    ask.add_argument("--mode", choices=MODES, help="default: generative")
    ask.add_argument("--model", help="qwen2.5-1.5b (default), smollm2-135m, or a path to a .gguf file")
    ask.add_argument("--llama-cpu", choices=LLAMA_CPUS,
                     help="llama.cpp build: avx2 (default), auto (AVX-512 where installed and supported), avx512")
    ask.add_argument("--k", type=int, help="passages to retrieve (default 8)")
    ask.add_argument("--section", help="only articles in this section (e.g. sport; see `rag sections`)")
    ask.add_argument("--judge", choices=JUDGES,
                     help="model: the calibrated judge (default); lexical: the earlier word-overlap rules")

    sections = commands.add_parser(
        "sections", help="list the index's sections and how many articles each holds, or page through one")
    sections.add_argument("section", nargs="?", metavar="SECTION",
                          help="page through this section's articles (\"all\" for every article)")
    _add_common(sections)
    sections.add_argument("--by", choices=("headline", "date"), default="headline",
                          help="order of the pages: headline A-Z (default) or newest first")
    sections.add_argument("--page-size", type=int, default=20, help="articles per page (default 20)")
    sections.add_argument("--after", metavar="CURSOR", help="the page after this one (printed under each page)")

    serve = commands.add_parser("serve", help="start the chat UI (Gradio) on 127.0.0.1:7860")
    _add_common(serve)
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1, or $RAG_HOST or $GRADIO_SERVER_NAME; "
                                       "another than loopback needs RAG_AUTH)")
    serve.add_argument("--port", type=int, help="port (default 7860, or $RAG_PORT or $GRADIO_SERVER_PORT)")
    serve.add_argument("--mode", choices=MODES, help="default answering mode")
    serve.add_argument("--model", help="default model")
    serve.add_argument("--llama-cpu", choices=LLAMA_CPUS,
                       help="llama.cpp build: avx2 (default), auto (AVX-512 where installed and supported), avx512")

    models = commands.add_parser("models", help="list the installed language models")
    models.add_argument("--prepare", action="store_true",
                        help="assemble the default model into the user cache and verify its SHA-256")

    for name, command in sorted(_plugin_commands().items()):
        sub = commands.add_parser(name, help=command.help, description=command.description)
        if command.index_options:
            _add_common(sub)
        command.add_arguments(sub)
    return parser


class Command(Protocol):
    """A subcommand another installed package adds through the ``rag.commands`` entry-point group.

    This is how ``rag eval``, ``rag bench`` and ``rag calibrate`` come from the ``evals`` package without
    ``rag`` importing it: evals depends on rag, never the other way round."""

    help: str
    description: str | None
    index_options: bool  # takes --index-dir, --store and --milvus-uri

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, config: Config) -> int: ...


def _plugin_commands() -> dict[str, Command]:
    from importlib.metadata import entry_points

    return {point.name: point.load() for point in entry_points(group=PLUGIN_GROUP)}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"index": _index, "search": _search, "ask": _ask, "serve": _serve, "models": _models,
                "sections": _sections}
    handler = handlers.get(args.command) or _plugin_commands()[args.command].run
    try:
        config = Config.from_env(
            index_dir=getattr(args, "index_dir", None), store=getattr(args, "store", None),
            milvus_uri=getattr(args, "milvus_uri", None), engine=getattr(args, "engine", None),
            ray_address=getattr(args, "ray_address", None),
        )
        return handler(args, config)
    except KeyboardInterrupt:
        # Builds write a new generation beside the live one, so stopping leaves the index as it was.
        kept = "; the index is as it was before this command" if args.command == "index" else ""
        print(f"rag {args.command}: interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RagError as exc:  # one clear line for the problems users can fix; anything else is a bug: traceback
        print(f"rag {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code


def _index(args: argparse.Namespace, config) -> int:
    from rag.index.build import build_index

    config = config.replace(chunk_chars=args.chunk_chars, sentence_vectors=args.sentence_vectors)
    report = build_index(
        args.paths, config, prune=args.prune, rebuild=args.rebuild, progress=True,
        on_error=lambda problem: print(f"error: {problem}", file=sys.stderr),
    )
    print(report.summary())
    return EXIT_BAD_INPUT if report.errors else EXIT_OK


def _search(args: argparse.Namespace, config) -> int:
    from rag.qa.retrieval import Retriever, explain

    config = config.replace(k=args.k, section=args.section)
    retriever = Retriever.open(config)
    passages = retriever.search(args.query, config.k)
    if args.json:
        print(json.dumps([p.to_dict() for p in passages], ensure_ascii=False, indent=2))
        return EXIT_OK
    for rank, passage in enumerate(passages, start=1):
        c = passage.chunk
        why = explain(args.query, passage, retriever.reader)
        print(f"{rank}. {c.title}")
        print(f"   relevance {why.relevance}/100; {why.because}; {c.doc} [{c.start}:{c.end}]")
        print(f"   {' '.join(c.text.split())[:300]}")
        duplicates = c.same_text_as + c.near_duplicates
        if duplicates:
            print(f"   also in: {', '.join(duplicates)}")
    return EXIT_OK


def _sections(args: argparse.Namespace, config) -> int:
    from rag.index.catalog import IndexReader

    reader = IndexReader(config.index_dir, store=config.store, milvus_uri=config.milvus_uri)
    found = reader.sections()
    if args.section:
        return _section_page(args, reader, found)
    for name, count in found.items():
        print(f"{name:20} {count:>6} articles")
    if not found:
        print("no sections: articles are filed by folder (sport/x.txt) or by name (sport_001.txt)")
    return EXIT_OK


def _section_page(args: argparse.Namespace, reader, found: dict[str, int]) -> int:
    section = None if args.section == "all" else args.section
    if section is not None and section not in found:
        raise SettingsError(f"no section {section!r} in {reader.index_dir}; its sections: "
                            f"{', '.join(found) or 'none'}")
    if args.page_size < 1:
        raise SettingsError(f"--page-size must be at least 1, not {args.page_size}")
    try:
        records, cursor = reader.page(section, args.by, args.after, args.page_size)
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"--after {args.after!r} is not a cursor printed by rag sections") from exc
    for record in records:
        print(f"{record.date or '':10}  {record.title}  ({record.id})")
    if cursor is not None:
        print(f"next page: rag sections {shlex.quote(args.section)} --by {args.by} --page-size {args.page_size} "
              f"--after {shlex.quote(cursor)}")
    return EXIT_OK


def _ask(args: argparse.Namespace, config) -> int:
    from rag.errors import BadQuestion
    from rag.qa.assistant import Assistant
    from rag.qa.question import read_questions

    if bool(args.question) == bool(args.questions):
        raise SettingsError("give either a question or --questions FILE.jsonl")
    config = config.replace(mode=args.mode, model_path=args.model, k=args.k, judge=args.judge, section=args.section,
                            llama_cpu=args.llama_cpu)
    assistant = Assistant(config)
    if args.question:
        result = assistant.ask(args.question)
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) if args.json else _render(result))
        return EXIT_OK
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
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _render(result) -> str:
    text = result.answer
    lines = [text, ""]
    if not result.abstained and not result.verified:
        lines = [text, "(not verified: read the cited passages)", ""]
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


def _serve(args: argparse.Namespace, config) -> int:
    from rag.app.ui import serve

    serve(config.replace(mode=args.mode, model_path=args.model, host=args.host, port=args.port,
                         llama_cpu=args.llama_cpu))
    return EXIT_OK


def _models(args: argparse.Namespace, config) -> int:
    from rag.models import weights

    if args.prepare:
        path = weights.qwen_path(verify=True)
        print(f"{weights.DEFAULT_MODEL}: {path} (SHA-256 verified)")
    for name in weights.installed():
        print(name)
    from rag.models import llama_cpu

    builds = llama_cpu.installed(config.cache_dir)
    print(f"llama.cpp builds: {', '.join(builds)}; this process would run "
          f"{llama_cpu.choose(config.llama_cpu, config.cache_dir)} (llama_cpu={config.llama_cpu})")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
