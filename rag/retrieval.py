"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings fused, near-duplicates collapsed, and
several articles kept in view, so that when many sources report a fact several of them come back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.config import Config
from rag.embedding import Embedder, model_id
from rag.store import ChunkRecord, IndexReader

RRF_K = 60


@dataclass(frozen=True)
class Passage:
    chunk: ChunkRecord
    score: float
    dense_score: float

    @property
    def doc(self) -> str:
        return self.chunk.doc

    @property
    def text(self) -> str:
        return self.chunk.text

    def to_dict(self) -> dict:
        return {
            "doc": self.chunk.doc,
            "title": self.chunk.title,
            "start": self.chunk.start,
            "end": self.chunk.end,
            "text": self.chunk.text,
            "score": round(self.score, 4),
            "duplicates": list(self.chunk.same_text_as + self.chunk.near_duplicates),
        }


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Sum of 1/(k + rank) over the rankings an item appears in (Cormack et al., 2009)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


class Retriever:
    def __init__(self, reader: IndexReader, embedder: Embedder, config: Config) -> None:
        self.reader = reader
        self.embedder = embedder
        self.config = config

    @classmethod
    def open(cls, config: Config, embedder: Embedder | None = None) -> Retriever:
        reader = IndexReader(config.index_dir, expected_model=model_id(), store=config.store,
                             milvus_uri=config.milvus_uri)
        return cls(reader, embedder or Embedder(), config)

    def search(self, query: str, k: int | None = None, query_vector: np.ndarray | None = None,
               collapse: bool = True) -> list[Passage]:
        """The ``k`` best passages. With ``collapse`` (the default) near-duplicate copies of one story count
        once; without it every copy stays, for readers that compare copies (conflict detection)."""
        k = k or self.config.k
        return self.select(self.ranked(query, k, query_vector), k, collapse)

    def ranked(self, query: str, k: int, query_vector: np.ndarray | None = None) -> list[Passage]:
        """Every candidate passage (all copies), best fused rank first."""
        if query_vector is None:
            query_vector = self.embedder.embed_one(query)
        n = max(self.config.candidates, k)
        dense = self.reader.dense(query_vector, n)
        lexical = self.reader.lexical(query, n)
        fused = reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in lexical]])
        dense_scores = dict(dense)
        ranked = sorted(fused, key=lambda i: (-fused[i], i))
        records = self.reader.chunks(ranked)
        for chunk_id in ranked:
            if chunk_id not in dense_scores:  # lexical-only hits still get a dense score
                dense_scores[chunk_id] = float(np.dot(self.reader.chunk_vector(chunk_id), query_vector))
        return [Passage(records[i], fused[i], dense_scores[i]) for i in ranked if i in records]

    def select(self, ranked: list[Passage], k: int, collapse: bool = True) -> list[Passage]:
        """The ``k`` passages shown: near-duplicates collapsed (unless ``collapse`` is off), articles diversified."""
        return self._diversify(self._collapse_duplicates(ranked) if collapse else ranked, k)

    @staticmethod
    def _collapse_duplicates(passages: list[Passage]) -> list[Passage]:
        """Within a near-duplicate group keep only the best-ranked copy's chunks."""
        chosen_copy: dict[str, str] = {}
        kept = []
        for passage in passages:
            copy = chosen_copy.setdefault(passage.chunk.dup_group, passage.chunk.content_hash)
            if copy == passage.chunk.content_hash:
                kept.append(passage)
        return kept

    def _diversify(self, passages: list[Passage], k: int) -> list[Passage]:
        """Best first, at most ``max_chunks_per_doc`` per article until every article had its turn."""
        per_doc: dict[str, int] = {}
        first, rest = [], []
        for passage in passages:
            count = per_doc.get(passage.doc, 0)
            (first if count < self.config.max_chunks_per_doc else rest).append(passage)
            per_doc[passage.doc] = count + 1
        return (first + rest)[:k]


def search(query: str, index_dir: str | Path = "index", k: int = 8, **options) -> list[Passage]:
    """Search an index folder once. For many queries, keep a :class:`Retriever`."""
    config = Config.from_env(index_dir=index_dir, k=k, **options)
    return Retriever.open(config).search(query, k)
