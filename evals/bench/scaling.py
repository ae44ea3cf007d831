"""Dense-search scaling (exact against approximate) on synthetic vectors, and retrieval from each store."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from evals.bench.timing import percentile_of
from rag.config import Config


def _clustered_unit_vectors(rng: np.random.Generator, size: int, spread: float = 0.6) -> np.ndarray:
    """Synthetic stand-ins for sentence embeddings: unit vectors around many topic centres (uniformly random
    vectors have no neighbourhood structure at all, which no real corpus looks like)."""
    centres = rng.standard_normal((max(size // 100, 10), 384), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((size, 384), dtype=np.float32)
    noise *= spread / np.linalg.norm(noise, axis=1, keepdims=True)
    data = centres[rng.integers(0, len(centres), size)] + noise
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def dense_scaling(sizes: list[int], queries: int = 100, k: int = 10, seed: int = 0,
                  ef_values: tuple[int, ...] = (64, 128, 256, 512, 1024)) -> list[dict]:
    """Exact (flat) vs approximate (HNSW built as ``rag index`` builds it) inner-product search on clustered
    unit vectors, the graph searched at each of ``ef_values`` and at the efSearch ``rag`` uses for that size;
    queries are perturbed copies of stored vectors. Recall is against the exact top ``k``."""
    import faiss

    from rag.index.backends.base import HNSW_EF_CONSTRUCTION, HNSW_M
    from rag.index.backends.faiss import hnsw_ef_search

    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        data = _clustered_unit_vectors(rng, size)
        noise = rng.standard_normal((queries, 384), dtype=np.float32)
        noise *= 0.3 / np.linalg.norm(noise, axis=1, keepdims=True)
        query = data[rng.choice(size, queries, replace=False)] + noise
        query /= np.linalg.norm(query, axis=1, keepdims=True)
        flat = faiss.IndexFlatIP(384)
        flat.add(data)
        started = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(384, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.add(data)
        build_s = time.perf_counter() - started
        exact, flat_ms = _timed_searches(flat, query, k)
        row: dict = {"vectors": size, "flat_ms_p50": percentile_of(flat_ms, 50),
                     "flat_ms_p95": percentile_of(flat_ms, 95), "hnsw_build_s": round(build_s, 1),
                     "rag_ef_search": hnsw_ef_search(size), "hnsw": []}
        for ef in sorted({*ef_values, hnsw_ef_search(size)}):
            hnsw.hnsw.efSearch = ef
            found, times = _timed_searches(hnsw, query, k)
            recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(exact, found, strict=True)]))
            row["hnsw"].append({"ef_search": ef, "ms_p50": percentile_of(times, 50), "ms_p95": percentile_of(times, 95),
                                f"recall@{k}": round(recall, 3)})
        rows.append(row)
        del flat, hnsw, data
    return rows


def _timed_searches(index, queries: np.ndarray, k: int) -> tuple[list[np.ndarray], list[float]]:
    """Each query searched on its own, as a user's question is: the ids found and milliseconds taken."""
    found, times = [], []
    for row in queries:
        started = time.perf_counter()
        _, ids = index.search(row.reshape(1, -1), k)
        times.append((time.perf_counter() - started) * 1000)
        found.append(ids[0])
    return found, times


def _synthetic_rows(rng: np.random.Generator, size: int, words: int = 80) -> list:
    """Chunk rows with clustered vectors and Zipf-distributed words, for the store comparison."""
    from rag.index.backends.base import ChunkRow

    vocabulary = np.array([f"w{n}" for n in range(20_000)])
    vectors = _clustered_unit_vectors(rng, size)
    ranks = np.minimum(rng.zipf(1.2, (size, words)), len(vocabulary)) - 1
    return [ChunkRow(i + 1, vectors[i], " ".join(vocabulary[ranks[i]]), f"doc{i // 4}", 0, 100, "", None, "h", "g")
            for i in range(size)]


def store_latency(sizes: list[int], config: Config, queries: int = 100, seed: int = 1,
                  stores: tuple[str, ...] = ("faiss", "milvus")) -> list[dict]:
    """Retrieval (dense + BM25 + fusion) latency from the FAISS store and from Milvus Lite on the same rows.
    Both use the index kind ``rag index`` would choose at that size (exact below ``hnsw_threshold``)."""
    from rag.index.backends.faiss import FaissChunkIndex, FaissSegment
    from rag.qa.retrieval import reciprocal_rank_fusion

    rng = np.random.default_rng(seed)
    results = []
    for size in sizes:
        rows = _synthetic_rows(rng, size)
        folder = Path(tempfile.mkdtemp(prefix="rag-bench-stores-"))
        try:
            opened: dict[str, Any] = {}
            for name in stores:
                generation = folder / name
                generation.mkdir()
                started = time.perf_counter()
                if name == "faiss":
                    FaissSegment.write(generation, rows, 384, config.hnsw_threshold)
                    opened[name] = FaissChunkIndex(generation)
                else:
                    from rag.index.backends.milvus import MilvusChunkIndex

                    uri = str(folder / "milvus.db")
                    MilvusChunkIndex.write(uri, "bench", rows, 384, config.hnsw_threshold, generation)
                    opened[name] = MilvusChunkIndex(uri, "bench", generation)
                write_s = time.perf_counter() - started
                picks = rng.choice(size, queries, replace=False)
                times = []
                for i in picks:
                    vector, text = rows[i].vector, " ".join(rows[i].lexical_text.split()[:6])
                    started = time.perf_counter()
                    dense = opened[name].dense(vector, config.candidates)
                    lexical = opened[name].lexical(text, config.candidates)
                    reciprocal_rank_fusion([[c for c, _ in dense], [c for c, _ in lexical]])
                    times.append((time.perf_counter() - started) * 1000)
                results.append({"store": name, "chunks": size, "index": opened[name].kind,
                                "write_s": round(write_s, 1), "retrieval_ms_p50": percentile_of(times, 50),
                                "retrieval_ms_p95": percentile_of(times, 95)})
            if "milvus" in opened:
                from rag.index.backends.milvus import close_client

                opened["milvus"].client.drop_collection("bench")
                close_client(opened["milvus"].uri)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results
