"""Where chunk vectors and the lexical index live: the one seam between the store and a search engine.

A :class:`ChunkIndex` answers the two searches retrieval fuses (dense inner product and BM25) and the
inverse document frequencies evidence selection weighs terms by. Two implementations:

- :class:`FaissChunkIndex`: FAISS + bm25s files inside an index generation (embedded; the default).
- :class:`rag.index.milvus_index.MilvusChunkIndex`: one Milvus collection per generation (Milvus Lite or a server).

Both are written from the same :class:`ChunkRow` list and analyse text with the same tokenizer
(:func:`analyze`: English stop words and the Snowball stemmer), so the two backends rank alike.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

DENSE = "dense.faiss"
LEXICAL = "bm25"
HNSW_M = 32
# FAISS' default of 40 leaves a graph whose recall@10 stops near 0.93 at 10^6 vectors however wide the
# search; a more careful build reaches 0.95 (`rag bench --sections scaling`), for a build time that is still
# small next to embedding that many chunks.
HNSW_EF_CONSTRUCTION = 128
# efSearch by index size. With efConstruction 128, `rag bench --sections scaling` measured recall@10 of 1.0
# against exact search up to 10^6 vectors already at efSearch 64; 128 leaves a margin. Past the sizes
# measured, the search is widened as a precaution (a bigger graph needs a wider search for the same recall).
HNSW_EF_SEARCH_BY_SIZE = ((2_000_000, 128),)
HNSW_EF_SEARCH_LARGEST = 256


def hnsw_ef_search(count: int) -> int:
    """The efSearch an HNSW index of ``count`` vectors is searched with."""
    return next((ef for limit, ef in HNSW_EF_SEARCH_BY_SIZE if count <= limit), HNSW_EF_SEARCH_LARGEST)

# bm25s' defaults; the Milvus backend is given the same so both score lexical matches alike.
BM25_K1 = 1.5
BM25_B = 0.75


class ChunkIndexDamaged(Exception):
    """The files or collection behind a chunk index cannot be read; the message names it."""


class ChunkStoreUnavailable(Exception):
    """The engine holding the chunk index cannot be reached or opened now (the index itself may be fine)."""


@dataclass(frozen=True)
class ChunkRow:
    """What a chunk index stores for one chunk: enough to return an exact span without the catalog."""

    id: int
    vector: np.ndarray = field(repr=False)
    # The headline and the chunk text: the headline is indexed with each chunk so that "the X report"
    # finds its article.
    lexical_text: str
    doc: str
    start: int
    end: int
    title: str
    date: str | None
    content_hash: str
    dup_group: str


class ChunkIndex(Protocol):
    kind: str  # "flat" or "hnsw": exact or approximate dense search

    @property
    def count(self) -> int: ...

    def dense(self, query_vector: np.ndarray, n: int) -> list[tuple[int, float]]: ...

    def lexical(self, query: str, n: int) -> list[tuple[int, float]]: ...

    def idf(self, terms: Iterable[str]) -> dict[str, float]: ...

    def close(self) -> None: ...


def analyze(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed tokens: the one lexical analyser of both backends."""
    import bm25s
    import Stemmer

    return bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False,
                          return_ids=False)


def document_frequencies(tokenized: Sequence[Sequence[str]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for tokens in tokenized:
        counts.update(set(tokens))
    return dict(counts)


def bm25_idf(chunks: int, document_frequency: int) -> float:
    """BM25's (Lucene) inverse document frequency; unseen terms weigh most."""
    return math.log(1 + (chunks - document_frequency + 0.5) / (document_frequency + 0.5))


def dense_kind(rows: int, hnsw_threshold: int) -> str:
    return "hnsw" if rows >= hnsw_threshold else "flat"


class FaissChunkIndex:
    """FAISS (exact below the HNSW threshold, HNSW above) and bm25s, as files in a generation folder."""

    def __init__(self, generation: Path) -> None:
        import faiss

        self.generation = generation
        try:
            self.dense_index = faiss.read_index(str(generation / DENSE))
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            raise ChunkIndexDamaged(f"{generation / DENSE}: damaged ({reason})") from exc
        inner = faiss.downcast_index(self.dense_index.index) if hasattr(self.dense_index, "index") else None
        self.kind = "hnsw" if inner is not None and hasattr(inner, "hnsw") else "flat"
        if self.kind == "hnsw":
            inner.hnsw.efSearch = hnsw_ef_search(self.dense_index.ntotal)
        self._lexical = None
        self._lexical_ids: list[int] = []
        if self.count:
            import bm25s

            try:
                self._lexical = bm25s.BM25.load(str(generation / LEXICAL))
                self._lexical_ids = json.loads((generation / LEXICAL / "chunk_ids.json").read_text())
            except (OSError, ValueError) as exc:
                raise ChunkIndexDamaged(f"{generation / LEXICAL}: damaged ({exc})") from exc

    @staticmethod
    def write(generation: Path, rows: Sequence[ChunkRow], dimension: int, hnsw_threshold: int) -> str:
        import faiss

        kind = dense_kind(len(rows), hnsw_threshold)
        base = (faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT) if kind == "hnsw"
                else faiss.IndexFlatIP(dimension))
        if kind == "hnsw":
            base.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
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


def _tokenize_with_ids(texts: list[str]):
    import bm25s
    import Stemmer

    return bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False)
