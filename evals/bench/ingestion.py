"""Indexing throughput, and ``rag index`` with the local engine against the Ray engine."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Config


def indexing(corpora: dict[str, list[Path]], config: Config) -> dict:
    from rag.index.build import build_index
    from rag.models.embedding import Embedder

    embedder = Embedder()
    embedder.embed(["warm-up"])
    result = {}
    for name, paths in corpora.items():
        folder = Path(tempfile.mkdtemp(prefix="rag-bench-"))
        try:
            started = time.perf_counter()
            report = build_index(paths, config.replace(index_dir=folder), embedder=embedder)
            seconds = time.perf_counter() - started
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        result[name] = {"documents": report.documents, "chunks": report.chunks, "seconds": round(seconds, 2),
                        "documents_per_s": round(report.documents / seconds, 1),
                        "chunks_per_s": round(report.chunks / seconds, 1)}
    return result


def ingestion_engines(paths: list[Path], config: Config) -> dict:
    """``rag index`` with the local engine, then with the Ray engine, on the same corpus into fresh indexes.

    Each time covers a whole build including loading the model (in this process, or once per Ray actor);
    starting the private local Ray is timed apart. Also checks that both engines built the same index."""
    from rag.index import ray_engine
    from rag.index.build import build_index
    from rag.models.embedding import Embedder

    folders = {name: Path(tempfile.mkdtemp(prefix=f"rag-bench-{name}-")) for name in ("local", "ray")}
    result: dict = {}
    try:
        started = time.perf_counter()
        local = build_index(paths, config.replace(index_dir=folders["local"], engine="local"), embedder=Embedder())
        result["local"] = _throughput(local, time.perf_counter() - started)
        ours = not ray_engine.is_running()
        started = time.perf_counter()
        if ours:
            ray_engine.start(config.ray_address)
        startup_s = time.perf_counter() - started
        try:
            started = time.perf_counter()
            remote = build_index(paths, config.replace(index_dir=folders["ray"], engine="ray"))
            result["ray"] = dict(_throughput(remote, time.perf_counter() - started), startup_s=round(startup_s, 2))
        finally:
            if ours:
                import ray

                ray.shutdown()
        result.update(_compare_indexes(folders["local"], folders["ray"]))
    finally:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
    result["ray_speedup"] = round(result["local"]["seconds"] / result["ray"]["seconds"], 2)
    return result


def _throughput(report, seconds: float) -> dict:
    return {"documents": report.documents, "chunks": report.chunks, "errors": len(report.errors),
            "seconds": round(seconds, 2), "documents_per_s": round(report.documents / seconds, 1),
            "chunks_per_s": round(report.chunks / seconds, 1)}


def _compare_indexes(a: Path, b: Path) -> dict:
    """Whether two indexes hold the same documents and chunk and sentence rows, and how far their vectors are."""
    from rag.index.catalog import IndexReader

    readers = [IndexReader(a), IndexReader(b)]
    try:
        spans, vectors = [], []
        for reader in readers:
            rows = {kind: reader.span_rows(kind) for kind in ("chunk", "sentence")}
            spans.append((reader.documents(), {kind: [(r.id, r.content_hash, r.start, r.end) for r in found]
                                               for kind, found in rows.items()}))
            vectors.append(np.vstack([r.vector for found in rows.values() for r in found]))
        same = spans[0] == spans[1] and vectors[0].shape == vectors[1].shape
        difference = float(np.abs(vectors[0] - vectors[1]).max()) if same else None
        return {"same_documents_and_spans": same, "max_vector_difference": difference}
    finally:
        for reader in readers:
            reader.close()


def index_time_ratio(paths: list[Path], config: Config, rounds: int = 2) -> dict:
    """``rag index`` of ``paths`` into a fresh index against a plain ``SentenceTransformer.encode`` of the same
    chunk texts, taking turns (a busy spell hits both alike); the best round of each, and their ratio. The ratio
    is what compares versions: the encode is the work no version can skip, so a change in how the index is
    written shows as a change in the ratio, whatever the machine's speed that hour."""
    from sentence_transformers import SentenceTransformer

    from evals.bench.embedding import _alternating_rounds
    from rag.index.build import build_index
    from rag.index.engines import chunk_document
    from rag.ingest import readers
    from rag.models.embedding import Embedder, _model_path

    files, _ = readers.discover(paths)
    texts = [doc.text[c.start : c.end] for path, doc_id in files for doc in readers.load_file(path, doc_id)
             for c in chunk_document(doc, config)[0]]
    plain = SentenceTransformer(str(_model_path()), device="cpu")
    embedder = Embedder()
    plain.encode(["warm-up"])
    embedder.embed(["warm-up"])

    def index() -> Any:
        folder = Path(tempfile.mkdtemp(prefix="rag-bench-index-"))
        try:
            return build_index(paths, config.replace(index_dir=folder), embedder=embedder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    seconds, last = _alternating_rounds({"rag_index": index, "sentence_transformers_encode": lambda: plain.encode(
        texts, normalize_embeddings=True, convert_to_numpy=True)}, rounds)
    best = {name: round(min(times), 1) for name, times in seconds.items()}
    return {"documents": last["rag_index"].documents, "chunks": len(texts), "rounds_s": seconds, **best,
            "index_to_encode": round(best["rag_index"] / best["sentence_transformers_encode"], 2)}
