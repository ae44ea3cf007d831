"""Who reads and embeds for ``rag index``: the engine interface, the local engine, and the chunking and
embedding both engines share.

:func:`rag.index.build.build_index` drives an :class:`IngestEngine` in two steps: *read* every file (its
documents, or a :class:`rag.errors.FileProblem`), then *embed* only the texts the index does not hold yet
(a :class:`rag.index.catalog.NewContent` each, in input order). :class:`LocalEngine` does both in this
process; :class:`rag.index.ray_engine.RayEngine` in Ray Data pipelines whose stages call :func:`chunk_text`
and :func:`embed_spans` of this module, so that both engines build the same index.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.config import Config
from rag.errors import BadInput, FileProblem
from rag.index.catalog import NewContent
from rag.ingest import chunking, dedup, readers
from rag.models.embedding import DIMENSION, Embedder

Span = tuple[int, int]


class IngestEngine(Protocol):
    """Reads files and embeds texts for a build. Used as a context manager around both steps."""

    def __enter__(self) -> IngestEngine: ...

    def __exit__(self, *exc: object) -> None: ...

    def read(self, files: Sequence[tuple[Path, str]]) -> Iterator[list[readers.Document] | FileProblem]:
        """For each ``(path, document id)``, in file order: the file's documents, or why it cannot be indexed."""
        ...

    def embed(self, docs: Sequence[readers.Document]) -> Iterator[NewContent]:
        """NewContent for each document (its text's chunks, sentences, vectors and MinHash), in input order, as
        they are ready (so progress can be told)."""
        ...


@dataclass(frozen=True)
class ChunkedText:
    """A text cut up for indexing: its chunk and sentence spans, and its MinHash signature."""

    chunks: tuple[Span, ...]
    sentences: tuple[Span, ...]
    minhash: bytes


def chunk_document(doc: readers.Document, config: Config) -> tuple[list[chunking.Chunk], list[chunking.Sentence]]:
    """The chunks and sentences of a document's indexed blocks."""
    blocks = chunking.split_sentences(doc.text, list(doc.blocks))
    chunks = chunking.make_chunks(blocks, config.chunk_chars, config.chunk_overlap_sentences)
    return chunks, [s for block in blocks for s in block]


def chunk_text(text: str, blocks: Sequence[Span], config: Config) -> ChunkedText:
    """:func:`chunk_document` as spans, with the text's MinHash: what a text needs before it is embedded."""
    doc = readers.Document(id="", path="", title="", date=None, text=text, content_hash="", blocks=tuple(blocks))
    chunks, sentences = chunk_document(doc, config)
    return ChunkedText(tuple((c.start, c.end) for c in chunks), tuple((s.start, s.end) for s in sentences),
                       dedup.signature(text, doc.blocks))


def embed_contents(docs: Sequence[readers.Document], config: Config, embedder: Embedder) -> list[NewContent]:
    """Documents in, NewContent out: each text chunked (:func:`chunk_text`), then all of them embedded together
    (:func:`embed_spans`)."""
    if not docs:
        return []
    pieces = [chunk_text(doc.text, doc.blocks, config) for doc in docs]
    vectors = embed_spans([doc.text for doc in docs], [(p.chunks, p.sentences) for p in pieces], embedder,
                          config.sentence_vectors)
    return [
        NewContent(hash=doc.content_hash, text=doc.text, chunks=p.chunks, chunk_vectors=chunk_vectors,
                   sentences=p.sentences, sentence_vectors=sentence_vectors, minhash=p.minhash)
        for doc, p, (chunk_vectors, sentence_vectors) in zip(docs, pieces, vectors, strict=True)
    ]


def embed_spans(texts: Sequence[str], spans: Sequence[tuple[Sequence[Span], Sequence[Span]]], embedder: Embedder,
                sentence_vectors: str = "pooled") -> list[tuple[np.ndarray, np.ndarray]]:
    """Chunk and sentence vectors for each text, given its (chunk spans, sentence spans). Both engines call this.

    ``sentence_vectors`` says where a sentence's vector comes from:

    - ``"pooled"`` (default): from the forward pass of the first chunk that holds it, by pooling its own token
      states (:meth:`Embedder.embed_with_spans`). Sentences cost no forward pass, which halves indexing time
      (README "Archive"); only a sentence the model truncated away is embedded on its own.
    - ``"embedded"``: every sentence is embedded on its own, as a separate text (the earlier design).

    Chunk vectors are the same either way, so retrieval is too."""
    chunk_texts: list[str] = []
    chunk_sentences: list[list[Span]] = []   # per chunk: the sentences it pools, relative to the chunk
    owners: list[list[tuple[int, int]]] = []  # per text, per sentence: (chunk row, place in that chunk's list)
    for text, (chunks, sentences) in zip(texts, spans, strict=True):
        first_row = len(chunk_texts)
        chunk_texts += [text[a:b] for a, b in chunks]
        chunk_sentences += [[] for _ in chunks]
        mine = []
        for a, b in sentences:
            holder = next((i for i, (ca, cb) in enumerate(chunks) if ca <= a and b <= cb), None)
            if sentence_vectors != "pooled" or holder is None:
                mine.append((-1, -1))
                continue
            row = first_row + holder
            chunk_sentences[row].append((a - chunks[holder][0], b - chunks[holder][0]))
            mine.append((row, len(chunk_sentences[row]) - 1))
        owners.append(mine)
    chunk_vectors, pooled = embedder.embed_with_spans(chunk_texts, chunk_sentences)
    # Sentences without a pooled vector are embedded on their own, each distinct text once.
    alone = [(t, k) for t, mine in enumerate(owners) for k, (row, place) in enumerate(mine)
             if row < 0 or pooled[row][place] is None]
    alone_texts = [texts[t][slice(*spans[t][1][k])] for t, k in alone]
    alone_vectors = dict(zip(alone, embedder.embed(alone_texts), strict=True)) if alone else {}
    result = []
    row = 0
    for t, ((chunks, sentences), mine) in enumerate(zip(spans, owners, strict=True)):
        vectors = np.empty((len(sentences), DIMENSION), dtype=np.float32)
        for k, (holder, place) in enumerate(mine):
            vectors[k] = alone_vectors[(t, k)] if (t, k) in alone_vectors else pooled[holder][place]
        result.append((chunk_vectors[row : row + len(chunks)], vectors))
        row += len(chunks)
    return result


class LocalEngine:
    """Reads, chunks and embeds in this process, with ``embedder``."""

    def __init__(self, config: Config, embedder: Embedder) -> None:
        self.config = config
        self.embedder = embedder

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self, files: Sequence[tuple[Path, str]]) -> Iterator[list[readers.Document] | FileProblem]:
        for path, doc_id in files:
            try:
                yield list(readers.load_file(path, doc_id))
            except BadInput as exc:
                yield FileProblem(str(path), str(exc))

    def embed(self, docs: Sequence[readers.Document], slice_docs: int = 32) -> Iterator[NewContent]:
        """A slice of documents at a time, so that progress can be told."""
        for start in range(0, len(docs), slice_docs):
            yield from embed_contents(docs[start : start + slice_docs], self.config, self.embedder)
