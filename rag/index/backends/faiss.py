"""The embedded chunk store (the default): FAISS and bm25s files inside each index generation.

The dense index is exact (``IndexFlatIP``) below the HNSW threshold and HNSW above it; the lexical index is a
bm25s index of the analysed headline and chunk text, with the chunk ids in ``bm25/chunk_ids.json``. Everything
lives in the generation folder, so nothing outside it is ever left behind or dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.index.backends.base import (
    BM25_B,
    BM25_K1,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    ChunkRow,
    bm25_idf,
    damaged,
    dense_kind,
)
from rag.text import english_stemmer

DENSE = "dense.faiss"
LEXICAL = "bm25"
# efSearch by index size. With efConstruction 128, `rag bench --sections scaling` measured recall@10 of 1.0
# against exact search up to 10^6 vectors already at efSearch 64; 128 leaves a margin. Past the sizes
# measured, the search is widened as a precaution (a bigger graph needs a wider search for the same recall).
HNSW_EF_SEARCH_BY_SIZE = ((2_000_000, 128),)
HNSW_EF_SEARCH_LARGEST = 256


def hnsw_ef_search(count: int) -> int:
    """The efSearch an HNSW index of ``count`` vectors is searched with."""
    return next((ef for limit, ef in HNSW_EF_SEARCH_BY_SIZE if count <= limit), HNSW_EF_SEARCH_LARGEST)


class FaissChunkIndex:
    """FAISS (exact below the HNSW threshold, HNSW above) and bm25s, as files in a generation folder."""

    def __init__(self, generation: Path) -> None:
        import faiss

        self.generation = generation
        try:
            self.dense_index = faiss.read_index(str(generation / DENSE))
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            raise damaged(f"{generation / DENSE}: damaged ({reason})") from exc
        inner = faiss.downcast_index(self.dense_index.index) if hasattr(self.dense_index, "index") else None
        graph = getattr(inner, "hnsw", None)
        self.kind = "hnsw" if graph is not None else "flat"
        if graph is not None:
            graph.efSearch = hnsw_ef_search(self.dense_index.ntotal)
        self._lexical = None
        self._lexical_ids: list[int] = []
        if self.count:
            import bm25s

            try:
                self._lexical = bm25s.BM25.load(str(generation / LEXICAL))
                self._lexical_ids = json.loads((generation / LEXICAL / "chunk_ids.json").read_text())
            except (OSError, ValueError) as exc:
                raise damaged(f"{generation / LEXICAL}: damaged ({exc})") from exc

    @staticmethod
    def write(generation: Path, rows: Sequence[ChunkRow], dimension: int, hnsw_threshold: int) -> str:
        """Write the files of ``rows`` into ``generation``; returns the dense index kind ("flat" or "hnsw")."""
        import faiss

        kind = dense_kind(len(rows), hnsw_threshold)
        base: faiss.Index
        if kind == "hnsw":
            base = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        else:
            base = faiss.IndexFlatIP(dimension)
        dense = faiss.IndexIDMap2(base)
        if rows:
            dense.add_with_ids(np.vstack([r.vector for r in rows]).astype(np.float32),
                               np.array([r.id for r in rows], dtype=np.int64))
        faiss.write_index(dense, str(generation / DENSE))
        if rows:
            import bm25s

            lexical = bm25s.BM25(k1=BM25_K1, b=BM25_B)
            lexical.index(_tokenize_with_ids([r.lexical_text for r in rows]), show_progress=False)
            lexical.save(str(generation / LEXICAL))
            (generation / LEXICAL / "chunk_ids.json").write_text(json.dumps([r.id for r in rows]))
        return kind

    @property
    def count(self) -> int:
        return int(self.dense_index.ntotal)

    def dense(self, query_vector: np.ndarray, n: int) -> list[tuple[int, float]]:
        if self.count == 0:
            return []
        scores, ids = self.dense_index.search(query_vector.reshape(1, -1).astype(np.float32), min(n, self.count))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def lexical(self, query: str, n: int) -> list[tuple[int, float]]:
        if self._lexical is None:
            return []
        tokens = _tokenize_with_ids([query])
        if not tokens.ids or not tokens.ids[0]:
            return []
        docs, scores = self._lexical.retrieve(tokens, k=min(n, len(self._lexical_ids)), show_progress=False,
                                              n_threads=1)
        return [(self._lexical_ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        vocab = self._lexical.vocab_dict if self._lexical is not None else {}
        pointers = self._lexical.scores["indptr"] if self._lexical is not None else None
        weights = {}
        for term in terms:
            index = vocab.get(term)
            df = 0 if index is None or pointers is None else int(pointers[index + 1] - pointers[index])
            weights[term] = bm25_idf(max(self.count, 1), df)
        return weights

    def close(self) -> None:
        pass


class FaissWriter:
    """:class:`rag.index.backends.base.ChunkIndexWriter` for FAISS files: all of them are inside the generation
    folder, which the index folder's own clean-up removes, so there is nothing else to discard or drop."""

    def write(self, generation: Path, rows: Sequence[ChunkRow], dimension: int,
              hnsw_threshold: int) -> dict[str, Any]:
        return {"dense_index": FaissChunkIndex.write(generation, rows, dimension, hnsw_threshold)}

    def discard(self) -> None:
        pass

    def drop_stale(self, keep: Iterable[Mapping[str, Any]]) -> None:
        pass


def _tokenize_with_ids(texts: list[str]):
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=english_stemmer(), show_progress=False)
