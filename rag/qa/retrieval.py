"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings fused, near-duplicates collapsed, and
several articles kept in view, so that when many sources report a fact several of them come back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from rag.config import Config
from rag.index.catalog import ChunkRecord, IndexReader
from rag.models.embedding import Embedder, model_id
from rag.qa.answers import SearchedPassage

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
        return cls(reader, embedder or Embedder.for_config(config), config)

    def search(self, query: str, k: int | None = None, query_vector: np.ndarray | None = None,
               collapse: bool = True, section: str | None = None) -> list[Passage]:
        """The ``k`` best passages. With ``collapse`` (the default) near-duplicate copies of one story count
        once; without it every copy stays, for readers that compare copies (conflict detection). ``section``
        (default ``config.section``) keeps only articles filed under it."""
        k = k or self.config.k
        return self.select(self.ranked(query, k, query_vector, section), k, collapse)

    def ranked(self, query: str, k: int, query_vector: np.ndarray | None = None,
               section: str | None = None) -> list[Passage]:
        """Every candidate passage (all copies), best fused rank first; only ``section``'s if one is given."""
        if query_vector is None:
            query_vector = self.embedder.embed_one(query)
        n = max(self.config.candidates, k)
        section = section or self.config.section
        # A section is applied inside both searches (the store's own filter), so a small section of a large
        # archive still gets n candidates of its own.
        within = self.reader.within(section) if section else None
        dense = self.reader.dense(query_vector, n, within)
        lexical = self.reader.lexical(query, n, within)
        fused = reciprocal_rank_fusion([[i for i, _ in dense], [i for i, _ in lexical]])
        dense_scores = dict(dense)
        ranked = sorted(fused, key=lambda i: (-fused[i], i))
        records = self.reader.chunks(ranked)
        # Lexical-only hits still get a dense score (their stored vectors, read together).
        lexical_only = self.reader.chunk_vectors(i for i in ranked if i not in dense_scores)
        dense_scores.update({i: float(np.dot(vector, query_vector)) for i, vector in lexical_only.items()})
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
        return spread_over_articles(passages, self.config.max_chunks_per_doc)[:k]


class FromArticle(Protocol):
    @property
    def doc(self) -> str: ...


Item = TypeVar("Item", bound=FromArticle)


def spread_over_articles(ranked: Sequence[Item], per_doc: int) -> list[Item]:
    """``ranked`` reordered: best first, at most ``per_doc`` items of one article until every article had its
    turn, then the rest in their order (used for passages here and for evidence sentences)."""
    counts: dict[str, int] = {}
    first: list[Item] = []
    rest: list[Item] = []
    for item in ranked:
        count = counts.get(item.doc, 0)
        (first if count < per_doc else rest).append(item)
        counts[item.doc] = count + 1
    return first + rest


def search(query: str, index_dir: str | Path | None = None, k: int | None = None, **options) -> list[Passage]:
    """Search an index folder once (default: ``$RAG_INDEX_DIR``, else ``index``); settings not given come from
    ``RAG_*`` variables, as on the command line. For many queries, keep a :class:`Retriever`."""
    config = Config.from_env(index_dir=index_dir, k=k, **options)
    return Retriever.open(config).search(query, config.k)


@dataclass(frozen=True)
class Relevance:
    """How relevant a passage is, said for a person: a 0–100 figure and what it rests on."""

    relevance: int  # 0–100: the mean of meaning (scaled cosine) and words (IDF-weighted share of the query's words)
    meaning: int  # 0–100
    matched: tuple[str, ...]  # the query's words found in the passage, as the user wrote them
    because: str


# MiniLM cosines between a question and a passage about something else sit near 0.1; a passage that restates
# the question reaches about 0.8. Mapped linearly onto 0–100 for display only: no decision reads it.
_COSINE_FLOOR, _COSINE_CEILING = 0.1, 0.8


def explain(query: str, passage: Passage | SearchedPassage, reader: IndexReader) -> Relevance:
    """Why ``passage`` was retrieved for ``query``: which of its words it shares (weighted by rarity, so
    "Yukos" counts for more than "said") and how close it is in meaning."""
    from rag.text import content_terms, stem, tokens

    title, similarity = ((passage.chunk.title, passage.dense_score) if isinstance(passage, Passage)
                         else (passage.title, passage.similarity))
    words = list(dict.fromkeys(w for w in tokens(query) if content_terms(w)))
    stems = {w: stem(w) for w in words}
    found = set(content_terms(f"{title} {passage.text}"))
    weights = reader.idf(set(stems.values())) if stems else {}
    total = sum(weights.get(s, 0.0) for s in set(stems.values()))
    matched = tuple(w for w in words if stems[w] in found)
    share = sum(weights.get(s, 0.0) for s in {stems[w] for w in matched}) / total if total > 0 else 0.0
    meaning = min(1.0, max(0.0, (similarity - _COSINE_FLOOR) / (_COSINE_CEILING - _COSINE_FLOOR)))
    because = f"matched {', '.join(matched)}" if matched else "no words in common"
    if meaning >= 0.5:
        because += "; close in meaning"
    return Relevance(round(50 * (meaning + share)), round(100 * meaning), matched, because)
