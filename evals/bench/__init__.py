"""``rag bench``: the numbers behind the README's performance section, measured on this machine.

Start-up, indexing throughput, per-stage query latency, generation speed, peak memory, and dense-search
scaling (exact vs approximate) on synthetic vectors. Prints a table and writes JSON.

One module per section (``launch``, ``ingestion``, ``embedding``, ``query``, ``llm``, ``scaling``,
``real_archive``), the table in ``report``, and what they share in ``timing``; ``run`` measures the chosen sections.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
from pathlib import Path

from evals.bench.embedding import embedding_throughput
from evals.bench.ingestion import index_time_ratio, indexing, ingestion_engines
from evals.bench.launch import STARTUP_QUESTION, first_ui_answer, startup
from evals.bench.llm import llm_variants
from evals.bench.million import million
from evals.bench.query import llama_speed, query_stages
from evals.bench.real_archive import BUILDS, archive
from evals.bench.report import render
from evals.bench.scaling import dense_scaling, store_latency
from evals.bench.timing import DEV_SET, dev_questions, machine_speed
from rag.config import Config

# The name before the split, for callers that reached for it.
_llama_speed = llama_speed

__all__ = ["BUILDS", "DEV_SET", "SECTIONS", "STARTUP_QUESTION", "archive", "dense_scaling", "embedding_throughput",
           "first_ui_answer", "index_time_ratio", "indexing", "ingestion_engines", "llm_variants", "machine_speed",
           "million", "query_stages", "render", "run", "startup", "store_latency"]


SECTIONS = ("startup", "indexing", "embedding", "engines", "query", "llm", "scaling", "stores", "archive", "million",
            "index_ratio")


def run(config: Config, out: Path, sizes: list[int], benchmarks_dir: Path | None, generative_questions: int,
        sections: tuple[str, ...] = SECTIONS, store_sizes: tuple[int, ...] = (10_000, 100_000),
        stores: tuple[str, ...] = ("faiss", "milvus"), archive_corpus: Path | None = None,
        archive_questions: Path | None = None, million_chunks: int = 1_000_000, million_queries: int = 100) -> dict:
    """Measure the chosen ``sections`` and write them as JSON to ``out``."""
    corpora = {"bundled": [Path("data/articles")]}
    if benchmarks_dir is not None and benchmarks_dir.is_dir() and {"indexing", "embedding", "engines"} & set(sections):
        from evals.benchmarks import corpus_of

        cache = Path(tempfile.mkdtemp(prefix="rag-bench-corpus-"))
        for name in ("rgb", "squad2"):
            corpus_of(name, benchmarks_dir, cache)
        corpora["benchmark_passages"] = [cache]  # ids relative to it stay distinct: rgb-corpus/..., squad2-corpus/...
    measure = {
        "startup": lambda: startup(config.index_dir),
        "indexing": lambda: indexing(corpora, config),
        "embedding_throughput": lambda: (embedding_throughput(corpora["benchmark_passages"], config)
                                         if "benchmark_passages" in corpora else None),
        "ingestion_engines": lambda: (ingestion_engines(corpora["benchmark_passages"], config)
                                      if "benchmark_passages" in corpora else None),
        "query": lambda: query_stages(config, generative_questions),
        "llm": lambda: llm_variants(config, questions=dev_questions()),
        "dense_scaling": lambda: dense_scaling(sizes),
        "stores": lambda: store_latency(list(store_sizes), config, stores=stores),
        "million": lambda: million(config, million_chunks, million_queries),
        "index_time_ratio": lambda: index_time_ratio([archive_corpus], config) if archive_corpus else None,
        "archive": lambda: (archive(archive_corpus, archive_questions, config, generative_questions)
                            if archive_corpus and archive_questions else None),
    }
    chosen = {"embedding": "embedding_throughput", "engines": "ingestion_engines", "scaling": "dense_scaling",
              "index_ratio": "index_time_ratio"}
    report: dict = {"machine": {"cpus": __import__("os").cpu_count(), "python": sys.version.split()[0],
                                **machine_speed()}}
    for section in sections:
        key = chosen.get(section, section)
        print(f"rag bench: measuring {section}", file=sys.stderr, flush=True)
        report[key] = measure[key]()
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report
