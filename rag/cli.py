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


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index-dir", help="index folder (default: index, or $RAG_INDEX_DIR)")


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

    search = commands.add_parser("search", help="show the passages retrieved for a query")
    search.add_argument("query")
    _add_common(search)
    search.add_argument("--k", type=int, default=8, help="number of passages (default 8)")
    search.add_argument("--json", action="store_true", help="print JSON")
    models = commands.add_parser("models", help="list the installed language models")
    models.add_argument("--prepare", action="store_true",
                        help="assemble the default model into the user cache and verify its SHA-256")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rag.config import Config

    config = Config.from_env(index_dir=getattr(args, "index_dir", None))
    handler = {"index": _index, "search": _search, "models": _models}[args.command]
    try:
        return handler(args, config)
    except Exception as exc:  # one clear line for the problems users can fix, tracebacks for bugs
        from rag.store import IndexError_

        from rag.models import ModelNotFound

        if isinstance(exc, IndexError_ | ValueError | ModelNotFound):
            print(f"rag {args.command}: {exc}", file=sys.stderr)
            return EXIT_INDEX_PROBLEM
        raise


def _index(args: argparse.Namespace, config) -> int:
    from rag.indexing import build_index

    config = config.replace(chunk_chars=args.chunk_chars)
    report = build_index(
        args.paths, config, prune=args.prune, rebuild=args.rebuild, progress=sys.stderr.isatty(),
        on_error=lambda line: print(f"error: {line}", file=sys.stderr),
    )
    print(report.summary())
    return EXIT_BAD_INPUT if report.errors else 0


def _search(args: argparse.Namespace, config) -> int:
    from rag.retrieval import Retriever

    passages = Retriever.open(config).search(args.query, args.k)
    if args.json:
        print(json.dumps([p.to_dict() for p in passages], ensure_ascii=False, indent=2))
        return 0
    for rank, passage in enumerate(passages, start=1):
        c = passage.chunk
        print(f"{rank}. {c.doc} [{c.start}:{c.end}] score {passage.score:.4f}  {c.title}")
        print(f"   {' '.join(c.text.split())[:300]}")
        duplicates = c.same_text_as + c.near_duplicates
        if duplicates:
            print(f"   also in: {', '.join(duplicates)}")
    return 0


def _models(args: argparse.Namespace, config) -> int:
    from rag import models

    if args.prepare:
        path = models.qwen_path(verify=True)
        print(f"{models.DEFAULT_MODEL}: {path} (SHA-256 verified)")
    for name in models.installed():
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
