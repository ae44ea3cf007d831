"""A real archive: ``rag index`` two ways, each in its own process, then queries and answers at that size."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from evals.bench.query import query_stages
from evals.bench.timing import DEV_SET, percentile_of, questions_of
from rag.config import Config

# A whole `rag index` in a fresh process, so that its peak memory and its model loading are its own.
_BUILD_CHILD = """
import json, resource, sys, time
from rag.config import Config
from rag.models.embedding import Embedder
from rag.index.build import build_index
started = time.perf_counter()
report = build_index([sys.argv[1]], Config.from_env(index_dir=sys.argv[2], sentence_vectors=sys.argv[3]),
                     embedder=Embedder(batch_tokens=int(sys.argv[4])), progress=True)
print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "documents": report.documents,
                  "chunks": report.chunks, "sentences": report.embedded_sentences,
                  "identical_copies": report.identical_copies, "near_duplicate_groups": report.near_duplicate_groups,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


# How `rag index` built before the archive issue: every sentence embedded on its own, batches of 4,096 tokens.
BUILDS = {"today": ("pooled", 1024), "before": ("embedded", 4096)}


def _build_in_child(corpus: Path, index_dir: Path, how: str) -> dict:
    sentence_vectors, batch_tokens = BUILDS[how]
    done = subprocess.run([sys.executable, "-c", _BUILD_CHILD, str(corpus), str(index_dir), sentence_vectors,
                           str(batch_tokens)], stdout=subprocess.PIPE, text=True, check=True,
                          env={**os.environ, "RAG_PROGRESS_SECONDS": "30"})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    vectors = result["chunks"] + result["sentences"]
    generation = next(index_dir.glob("gen-*"))
    return {**result, "sentence_vectors": sentence_vectors, "batch_tokens": batch_tokens,
            "vectors_per_s": round(vectors / result["seconds"], 1),
            "documents_per_s": round(result["documents"] / result["seconds"], 1),
            "index_mb_on_disk": round(sum(f.stat().st_size for f in generation.rglob("*") if f.is_file()) / 2**20, 1)}


def _top_passages(index_dir: Path, questions: list[str], k: int = 5) -> list[list[tuple[str, int, int, float]]]:
    from rag.qa.retrieval import Retriever

    retriever = Retriever.open(Config(index_dir=index_dir))
    try:
        return [[(p.doc, p.chunk.start, p.chunk.end, round(p.score, 6)) for p in retriever.search(q, k)]
                for q in questions]
    finally:
        retriever.reader.close()


def _same_allowing_ties(a: list[tuple], b: list[tuple]) -> bool:
    """The same passages in the same order, except that passages with equal scores may trade places."""
    def by_score(rows: list[tuple]) -> dict[float, set]:
        groups: dict[float, set] = {}
        for row in rows:
            groups.setdefault(row[3], set()).add(row[:3])
        return groups

    return [row[3] for row in a] == [row[3] for row in b] and by_score(a) == by_score(b)


def _recall_at(index_dir: Path, items: list[dict], k: int = 5) -> dict:
    """Share of answerable questions whose gold quote lies in one of the top ``k`` passages, as `rag eval`
    counts it (``evals.metrics.retrieval_hits``)."""
    from evals.metrics import retrieval_hits
    from rag.qa.retrieval import Retriever

    retriever = Retriever.open(Config(index_dir=index_dir))
    reader = retriever.reader
    answerable = [item for item in items if item.get("supporting") and item.get("answer") is not None]
    try:
        hits = sum(retrieval_hits(item, [dict(p.to_dict(), doc_text=reader.document_text(p.doc))
                                         for p in retriever.search(item["question"], k)]) is not None
                   for item in answerable)
    finally:
        reader.close()
    return {"k": k, "hits": hits, "questions": len(answerable),
            "recall": round(hits / len(answerable), 3) if answerable else None}


def _gold_sentence_ranks(index_dir: Path, items: list[dict]) -> dict:
    """Sentence vectors alone, no words: for each gold quote, the rank of its sentence among its article's
    sentences by cosine with the question."""
    from rag.index.catalog import IndexReader
    from rag.models.embedding import Embedder

    reader = IndexReader(index_dir)
    embedder = Embedder()
    ranks = []
    try:
        for item in items:
            for gold in item.get("supporting", [])[:1]:
                at = reader.document_text(gold["doc"]).find(gold["quote"])
                sentences = reader.sentences_of(gold["doc"])
                golden = [i for i, s in enumerate(sentences) if s.start <= at < s.end]
                if at < 0 or not golden:
                    continue
                scores = np.vstack([s.vector for s in sentences]) @ embedder.embed_one(item["question"])
                ranks.append(int((scores > scores[golden[0]]).sum()) + 1)
    finally:
        reader.close()
    return {"quotes": len(ranks), "top1": round(sum(r == 1 for r in ranks) / len(ranks), 3) if ranks else None,
            "top3": round(sum(r <= 3 for r in ranks) / len(ranks), 3) if ranks else None}


def archive(corpus: Path, dataset: Path, config: Config, generative_questions: int) -> dict | None:
    """``rag index`` of a real archive two ways in one run (today's: sentence vectors pooled from each chunk's
    forward pass, in batches of 1,024 tokens; before the archive issue: every sentence embedded on its own, in
    batches of 4,096), then at that size: per-stage query latency, extractive and generative answers, and
    recall@5 of gold spans."""
    from rag.qa.assistant import Assistant

    if not corpus.is_dir() or not dataset.is_file():
        return None
    folders = {name: Path(tempfile.mkdtemp(prefix=f"rag-bench-archive-{name}-")) for name in BUILDS}
    try:
        builds = {name: _build_in_child(corpus, folder, name) for name, folder in folders.items()}
        items = questions_of(dataset)
        seed = questions_of(DEV_SET)
        seed_folders = {name: Path(tempfile.mkdtemp(prefix=f"rag-bench-seed-{name}-")) for name in folders}
        for name, folder in seed_folders.items():
            _build_in_child(Path("data/articles"), folder, name)
        same = {}
        for label, questions, where in (("archive_dev", [i["question"] for i in items], folders),
                                        ("seed_dev", [i["question"] for i in seed], seed_folders)):
            tops = {name: _top_passages(folder, questions) for name, folder in where.items()}
            same[label] = {"questions": len(questions), "same_top5_allowing_ties": sum(
                _same_allowing_ties(a, b) for a, b in zip(tops["today"], tops["before"], strict=True))}
        for folder in seed_folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        index_dir = folders["today"]
        result: dict[str, Any] = {
            "corpus": str(corpus), "builds": builds,
            "speedup": round(builds["before"]["seconds"] / builds["today"]["seconds"], 2),
            "same_top5": same, "recall_at_5": _recall_at(index_dir, items),
            "gold_sentence_rank": {name: _gold_sentence_ranks(folder, items) for name, folder in folders.items()},
            "query": query_stages(config.replace(index_dir=index_dir), 0, [i["question"] for i in items]),
        }
        assistant = Assistant(config.replace(index_dir=index_dir, mode="extractive"))
        assistant.ask("warm-up")
        extractive = [assistant.ask(i["question"]).timings["total_ms"] for i in items]
        result["extractive_answer_ms"] = {"p50": percentile_of(extractive, 50), "p95": percentile_of(extractive, 95)}
        if generative_questions:
            assistant.generator()
            answers = [assistant.ask(i["question"], mode="generative").timings["total_ms"]
                       for i in items[:generative_questions]]
            result["generative_answer_ms"] = {"p50": percentile_of(answers, 50), "p95": percentile_of(answers, 95),
                                              "questions": len(answers)}
        return result
    finally:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
