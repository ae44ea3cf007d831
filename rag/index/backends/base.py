"""What a chunk store is: the one seam between the catalog and a search engine.

A backend keeps, per index generation, the chunk vectors and a lexical index. Reading, it answers the two
searches retrieval fuses (dense inner product and BM25) and the inverse document frequencies evidence
selection weighs terms by (:class:`ChunkIndex`). Writing, it stores a generation's :class:`ChunkRow` list,
removes what a failed build left, and drops data of generations that are no longer live
(:class:`ChunkIndexWriter`). :mod:`rag.index.backends` picks a backend by its store name.

Both backends build their indexes with the same parameters and analyse text with the same tokenizer
(:func:`analyze`: English stop words and the Snowball stemmer), so they rank alike.
"""

from __future__ import annotations

import math
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import IndexCorrupt
from rag.text import english_stemmer

HNSW_M = 32
# FAISS' default of 40 leaves a graph whose recall@10 stops near 0.93 at 10^6 vectors however wide the
# search; a more careful build reaches 0.95 (`rag bench --sections scaling`), for a build time that is still
# small next to embedding that many chunks.
HNSW_EF_CONSTRUCTION = 128
# bm25s' defaults; the Milvus backend is given the same so both score lexical matches alike.
BM25_K1 = 1.5
BM25_B = 0.75


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
    # Every section the chunk's text is filed under (a text stored under several names is in each one's).
    sections: tuple[str, ...] = ()


@dataclass(frozen=True)
class Within:
    """A filter applied inside a search: only the chunks of ``section``, whose ids (sorted) are ``chunk_ids``.
    A store that keeps sections with its chunks filters by name; one that does not, by the ids."""

    section: str
    chunk_ids: np.ndarray = field(repr=False)  # int64, ascending

    @property
    def size(self) -> int:
        return int(self.chunk_ids.size)


class ChunkIndex(Protocol):
    """One generation's chunk index, opened for reading."""

    kind: str  # "flat" or "hnsw": exact or approximate dense search

    @property
    def count(self) -> int: ...

    def dense(self, query_vector: np.ndarray, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        """The ``n`` nearest chunks by inner product, only among ``within``'s when given (as many as it holds,
        up to ``n``)."""
        ...

    def lexical(self, query: str, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        """The ``n`` best BM25 matches, only among ``within``'s chunks when given."""
        ...

    def idf(self, terms: Iterable[str]) -> dict[str, float]: ...

    def close(self) -> None: ...


class ChunkIndexWriter(Protocol):
    """Writes the chunk index of new generations of one index folder (one writer per build)."""

    def write(self, generation: Path, rows: Sequence[ChunkRow], dimension: int,
              hnsw_threshold: int) -> dict[str, Any]:
        """Store ``rows`` as the chunk index of ``generation``; returns what its manifest records about it
        (at least ``dense_index``: "flat" or "hnsw"), which is what :func:`rag.index.backends.open_backend`
        is given back to open it."""
        ...

    def append(self, generation: Path, previous: Path, previous_manifest: Mapping[str, Any],
               rows: Sequence[ChunkRow], dimension: int, hnsw_threshold: int) -> dict[str, Any] | None:
        """Store the chunk index of ``generation`` as the ``previous`` generation's (every chunk of which is kept)
        plus ``rows``, the chunks added since, without rewriting the earlier ones; returns what :meth:`write`
        returns, or None when this store cannot, or should not, and the index is to be written whole."""
        ...

    def discard(self) -> None:
        """Best effort: remove what :meth:`write` put outside the generation folder, for a generation that will
        never go live."""
        ...

    def drop_stale(self, keep: Iterable[Mapping[str, Any]]) -> None:
        """After a generation went live: remove this index folder's chunk data that lives outside generation
        folders, except what the manifests in ``keep`` point at."""
        ...


def damaged(what: str) -> IndexCorrupt:
    """The error for chunk-index files or a collection that cannot be read; ``what`` names it and the cause."""
    return IndexCorrupt(f"{what}; rebuild with: rag index PATH --rebuild")


def analyze(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed tokens: the one lexical analyser of both backends."""
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=english_stemmer(), show_progress=False, return_ids=False)


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


def link_file(source: Path, target: Path) -> None:
    """Hard-link ``source`` as ``target`` (copy it where links cannot be made): a file one generation shares
    with the next, the same bytes on disk."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
