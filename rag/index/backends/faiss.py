"""The embedded chunk store (the default): FAISS and bm25s files inside each index generation.

The dense index is exact (``IndexFlatIP``) below the HNSW threshold and HNSW above it; the lexical index is a
bm25s index of the analysed headline and chunk text, with the chunk ids in ``bm25/chunk_ids.json``. Everything
lives in the generation folder, so nothing outside it is ever left behind or dropped.

An index grows in segments. A full build writes one segment at the generation's root. Adding articles to an
index whose chunks were all kept writes only the new chunks, as a segment of their own (``seg-<first id>/``),
and hard-links the earlier segments' files into the new generation, so no earlier chunk is rewritten
(``FaissWriter.append``). A search runs on every segment and merges: dense scores are the same inner products;
BM25 scores are computed with the idf of the whole index, so a chunk scores as one index would score it but for
BM25's length normalisation, which each segment takes from its own average chunk length. Past
``MAX_SEGMENTS``, or when any chunk was removed, the next build writes one segment again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.index.backends.base import (
    BM25_B,
    BM25_K1,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    ChunkRow,
    Within,
    analyze,
    bm25_idf,
    damaged,
    dense_kind,
    link_file,
)
from rag.text import english_stemmer

DENSE = "dense.faiss"
LEXICAL = "bm25"
# efSearch by index size. With efConstruction 128, `rag bench --sections scaling` measured recall@10 of 1.0
# against exact search up to 10^6 vectors already at efSearch 64; 128 leaves a margin. Past the sizes
# measured, the search is widened as a precaution (a bigger graph needs a wider search for the same recall).
HNSW_EF_SEARCH_BY_SIZE = ((2_000_000, 128),)
HNSW_EF_SEARCH_LARGEST = 256
# A section of at most this many chunks is searched exactly, over its own vectors: a graph search that may
# visit only the section's nodes finds too few of them when they are a small share of the graph.
EXACT_WITHIN = 50_000
# Segments beyond the first before a build writes the index as one segment again: each adds a search per query.
MAX_SEGMENTS = 8
ROOT_SEGMENT = ""  # the segment a full build writes, at the generation's root


def hnsw_ef_search(count: int) -> int:
    """The efSearch an HNSW index of ``count`` vectors is searched with."""
    return next((ef for limit, ef in HNSW_EF_SEARCH_BY_SIZE if count <= limit), HNSW_EF_SEARCH_LARGEST)


class FaissSegment:
    """One segment: FAISS (exact below the HNSW threshold, HNSW above) and bm25s, as files in a folder."""

    def __init__(self, generation: Path) -> None:
        import faiss

        self.generation = generation
        try:
            # Memory-mapped: opening reads no vector, and the vectors live in the page cache, shared by every
            # process that has this generation open (4.98 s and 4.9 GB beyond the vectors at 10^6 chunks when
            # read whole, `rag bench --sections million`).
            self.dense_index = faiss.read_index(str(generation / DENSE), faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            raise damaged(f"{generation / DENSE}: damaged ({reason})") from exc
        inner = faiss.downcast_index(self.dense_index.index) if hasattr(self.dense_index, "index") else None
        graph = getattr(inner, "hnsw", None)
        self.kind = "hnsw" if graph is not None else "flat"
        if graph is not None:
            graph.efSearch = hnsw_ef_search(self.dense_index.ntotal)
        self._lexical = None
        # The chunk id of each lexical document, and (made when first needed) the order that sorts them.
        self._lexical_ids = np.empty(0, dtype=np.int64)
        self._lexical_sorter: np.ndarray | None = None
        self.exact_within = EXACT_WITHIN
        if self.count:
            import bm25s

            try:
                # Memory-mapped too: its postings are read where a query's terms point, not all at open.
                self._lexical = bm25s.BM25.load(str(generation / LEXICAL), mmap=True)
                self._lexical_ids = np.asarray(json.loads((generation / LEXICAL / "chunk_ids.json").read_text()),
                                               dtype=np.int64)
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

    def dense(self, query_vector: np.ndarray, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        with _one_thread():
            return self._dense(query_vector, n, within)

    def _dense(self, query_vector: np.ndarray, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        if self.count == 0 or (within is not None and within.size == 0):
            return []
        query = query_vector.reshape(1, -1).astype(np.float32)
        if within is None:
            scores, ids = self.dense_index.search(query, min(n, self.count))
            return _hits(ids[0], scores[0])
        import faiss

        wanted = min(n, within.size)
        if self.kind == "flat" or within.size <= self.exact_within:
            return self._exact_within(query[0], wanted, within)
        # A large section: the graph search itself skips other chunks (FAISS' ID selector), searched wider the
        # smaller the section's share (twice the usual breadth over the share: recall@10 0.955 on a 30% section
        # where the unfiltered breadth alone gave 0.79, tests/test_filtered_search.py); should it still find
        # fewer than asked, the section is searched exactly.
        share = within.size / self.count
        breadth = hnsw_ef_search(self.count)
        # (faiss' type stubs lag its SWIG module: the selector parameters exist since 1.7.3)
        params = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
            sel=faiss.IDSelectorBatch(within.chunk_ids),
            efSearch=min(self.count, max(breadth, wanted, int(2 * breadth / share))))
        scores, ids = self.dense_index.search(query, wanted, params=params)
        found = _hits(ids[0], scores[0])
        return found if len(found) == wanted else self._exact_within(query[0], wanted, within)

    def _exact_within(self, query: np.ndarray, n: int, within: Within) -> list[tuple[int, float]]:
        """The ``n`` best of ``within``'s chunks by an exact inner product with their stored vectors."""
        if self.kind == "flat":
            import faiss

            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(within.chunk_ids))  # type: ignore[call-arg]
            scores, ids = self.dense_index.search(query.reshape(1, -1), n, params=params)
            return _hits(ids[0], scores[0])
        vectors = self.dense_index.reconstruct_batch(within.chunk_ids)
        scores = vectors @ query
        best = np.argpartition(-scores, n - 1)[:n] if n < scores.size else np.arange(scores.size)
        best = best[np.lexsort((within.chunk_ids[best], -scores[best]))]
        return [(int(within.chunk_ids[i]), float(scores[i])) for i in best]

    def lexical(self, query: str, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        if self._lexical is None or (within is not None and within.size == 0):
            return []
        tokens = _tokenize_with_ids([query])
        if not tokens.ids or not tokens.ids[0]:
            return []
        if within is not None:
            return self._lexical_within(tokens, n, within)
        docs, scores = self._lexical.retrieve(tokens, k=min(n, len(self._lexical_ids)), show_progress=False,
                                              n_threads=1)
        return [(int(self._lexical_ids[int(d)]), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def _lexical_within(self, tokens, n: int, within: Within) -> list[tuple[int, float]]:
        """BM25 scores of the section's chunks only (each its score in the whole index), the ``n`` best. The
        scores come from the postings of the query's terms, as an unfiltered search computes them; the best are
        then chosen among the section's positions alone. (bm25s' own weight mask gives the same results but
        took 8 times as long at 10^5 chunks: its top-k selection over mostly zero scores.)"""
        assert self._lexical is not None
        words = {index: word for word, index in tokens.vocab.items()}
        scores = self._lexical.get_scores([words[i] for i in tokens.ids[0]])
        return self._best_scored(scores, n, self._positions(within.chunk_ids))

    def _best_scored(self, scores: np.ndarray, n: int, positions: np.ndarray | None) -> list[tuple[int, float]]:
        """The ``n`` best positive ``scores`` (one per lexical document; only ``positions`` where given) as
        (chunk id, score), best first, ties by chunk id."""
        mine = scores[positions] if positions is not None else scores
        count = min(n, mine.size)
        if count == 0:
            return []
        best = (np.argpartition(mine, mine.size - count)[mine.size - count:] if count < mine.size
                else np.arange(mine.size))
        ids = self._lexical_ids[positions[best] if positions is not None else best]
        order = np.lexsort((ids, -mine[best]))
        return [(int(ids[i]), float(mine[best][i])) for i in order if mine[best][i] > 0]

    def _positions(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Where the given chunks are in the lexical index (its documents are in chunk id order)."""
        if self._lexical_sorter is None:
            self._lexical_sorter = np.argsort(self._lexical_ids, kind="stable")
        ids, order = self._lexical_ids, self._lexical_sorter
        places = np.searchsorted(ids, chunk_ids, sorter=order)
        places = np.clip(places, 0, max(len(ids) - 1, 0))
        positions = order[places]
        return positions[ids[positions] == chunk_ids]

    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        return {term: bm25_idf(max(self.count, 1), self.document_frequency(term)) for term in terms}

    def close(self) -> None:
        pass

    # --- what a multi-segment index reads of each segment ----------------------------------------------
    def own(self, within: Within) -> Within:
        """``within`` restricted to this segment's chunks."""
        if self._lexical_ids.size == 0:
            return Within(within.section, np.empty(0, dtype=np.int64))
        positions = self._positions(within.chunk_ids)
        return Within(within.section, np.sort(self._lexical_ids[positions]))

    def document_frequency(self, word: str) -> int:
        if self._lexical is None or (index := self._lexical.vocab_dict.get(word)) is None:
            return 0
        pointers = self._lexical.scores["indptr"]
        return int(pointers[index + 1] - pointers[index])

    def weighted_lexical(self, words: Sequence[str], idf: Mapping[str, float], n: int,
                         within: Within | None) -> list[tuple[int, float]]:
        """The ``n`` best BM25 matches of ``words`` (only ``within``'s chunks), each term weighed by ``idf``, the
        whole index's, in place of this segment's own: bm25s stores idf × the term-frequency part per posting, and
        Lucene's BM25 idf depends only on the term, so rescaling a term's postings gives the whole index's score."""
        if self._lexical is None:
            return []
        matrix = self._lexical.scores
        scores = np.zeros(len(self._lexical_ids), dtype=np.float32)
        for word in words:
            index = self._lexical.vocab_dict.get(word)
            if index is None:
                continue
            start, end = int(matrix["indptr"][index]), int(matrix["indptr"][index + 1])
            own = bm25_idf(len(self._lexical_ids), end - start)
            # (np.add.at: 2.7 times as fast as ``scores[indices] += ...`` since numpy 2)
            np.add.at(scores, matrix["indices"][start:end], matrix["data"][start:end] * np.float32(idf[word] / own))
        return self._best_scored(scores, n, self._positions(within.chunk_ids) if within is not None else None)


class FaissChunkIndex:
    """A generation's chunk index: one segment, or several searched together (see the module's doc)."""

    def __init__(self, generation: Path, segments: Sequence[str] = (ROOT_SEGMENT,)) -> None:
        self.generation = generation
        self.segments = [FaissSegment(generation / path if path else generation) for path in segments]
        self.kind = "hnsw" if any(s.kind == "hnsw" for s in self.segments) else "flat"

    @property
    def dense_index(self):
        """The first segment's FAISS index (the one a full build wrote)."""
        return self.segments[0].dense_index

    @property
    def exact_within(self) -> int:
        return self.segments[0].exact_within

    @exact_within.setter
    def exact_within(self, chunks: int) -> None:
        for segment in self.segments:
            segment.exact_within = chunks

    @property
    def count(self) -> int:
        return sum(s.count for s in self.segments)

    def dense(self, query_vector: np.ndarray, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        if len(self.segments) == 1:
            return self.segments[0].dense(query_vector, n, within)
        found = [hit for s in self.segments
                 for hit in s.dense(query_vector, n, s.own(within) if within is not None else None)]
        return _best(found, n)

    def lexical(self, query: str, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        if len(self.segments) == 1:
            return self.segments[0].lexical(query, n, within)
        words = analyze([query])[0]
        idf = self.idf(words)
        return _best([hit for s in self.segments for hit in s.weighted_lexical(words, idf, n, within)], n)

    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        if len(self.segments) == 1:
            return self.segments[0].idf(terms)
        return {term: bm25_idf(max(self.count, 1), sum(s.document_frequency(term) for s in self.segments))
                for term in terms}

    def close(self) -> None:
        for segment in self.segments:
            segment.close()


class FaissWriter:
    """:class:`rag.index.backends.base.ChunkIndexWriter` for FAISS files: all of them are inside the generation
    folder, which the index folder's own clean-up removes, so there is nothing else to discard or drop."""

    def write(self, generation: Path, rows: Sequence[ChunkRow], dimension: int,
              hnsw_threshold: int) -> dict[str, Any]:
        return {"dense_index": FaissSegment.write(generation, rows, dimension, hnsw_threshold),
                "segments": [ROOT_SEGMENT]}

    def append(self, generation: Path, previous: Path, previous_manifest: Mapping[str, Any],
               rows: Sequence[ChunkRow], dimension: int, hnsw_threshold: int) -> dict[str, Any] | None:
        """The previous generation's segments, linked into ``generation`` unchanged, and ``rows`` (the chunks
        added since) as a new segment; None when the index should be written whole instead (too many segments,
        an addition as large as what is there, or a dense index of another kind than its size now calls for)."""
        segments = list(previous_manifest.get("segments", [ROOT_SEGMENT]))
        before = int(previous_manifest.get("chunks", 0))
        if dense_kind(before + len(rows), hnsw_threshold) != previous_manifest.get("dense_index"):
            return None  # grown past the HNSW threshold, or built with another
        if rows and (len(segments) - 1 >= MAX_SEGMENTS or len(rows) >= before):
            return None
        for path in segments:
            _link_segment(previous, generation, path)
        kinds = [previous_manifest.get("dense_index", "flat")]
        if rows:
            path = f"seg-{rows[0].id}"
            (generation / path).mkdir()
            kinds.append(FaissSegment.write(generation / path, rows, dimension, hnsw_threshold))
            segments.append(path)
        return {"dense_index": "hnsw" if "hnsw" in kinds else "flat", "segments": segments}

    def discard(self) -> None:
        pass

    def drop_stale(self, keep: Iterable[Mapping[str, Any]]) -> None:
        pass


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One query is searched on the calling thread alone. FAISS would spread an exact search over OpenMP
    threads, and on two busy cores their waiting made a search over 4,000 vectors take 2 ms instead of 0.2 ms.
    OpenMP's thread count belongs to the calling thread, so other threads' searches and builds keep theirs."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _best(hits: list[tuple[int, float]], n: int) -> list[tuple[int, float]]:
    """The ``n`` highest-scoring of hits from several segments (ties by chunk id)."""
    return sorted(hits, key=lambda hit: (-hit[1], hit[0]))[:n]


def _link_segment(previous: Path, generation: Path, path: str) -> None:
    """Hard-link (copy where links cannot be made) the files of segment ``path`` from one generation into the
    next: the same bytes on disk, so nothing of it is rewritten."""
    if path == ROOT_SEGMENT:
        pairs = [(previous / DENSE, generation / DENSE)]
        pairs += [(f, generation / LEXICAL / f.name) for f in (previous / LEXICAL).glob("*")]
    else:
        pairs = [(f, generation / path / f.relative_to(previous / path))
                 for f in (previous / path).rglob("*") if f.is_file()]
    for source, target in pairs:
        link_file(source, target)


def _hits(ids: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]


def _tokenize_with_ids(texts: list[str]):
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=english_stemmer(), show_progress=False)
