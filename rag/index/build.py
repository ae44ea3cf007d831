"""``rag index``: files → Documents → chunks and sentences → vectors → a new index generation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import Config
from rag.errors import BadInput
from rag.index.store import BuildReport, IndexError_, IndexWriter, NewContent, read_manifest
from rag.ingest import chunking, dedup, readers
from rag.models.embedding import DIMENSION, Embedder, model_id
from rag.progress import Reporter

if TYPE_CHECKING:
    import numpy as np


def index_settings(config: Config) -> dict:
    """What an index is bound to: querying or extending it with other values is refused."""
    return {
        "embedding_model": model_id(),
        "dimension": DIMENSION,
        "chunk_chars": config.chunk_chars,
        "chunk_overlap_sentences": config.chunk_overlap_sentences,
        "store": config.store,
    }


def _sentence_vectors_of(config: Config, rebuild: bool) -> str:
    """How an existing index made its sentence vectors, which extending it keeps (older manifests do not say:
    they embedded every sentence); a new or rebuilt index uses ``config.sentence_vectors``."""
    if rebuild:
        return config.sentence_vectors
    try:
        manifest = read_manifest(config.index_dir)
    except IndexError_:
        return config.sentence_vectors
    return manifest.get("sentence_vectors", "embedded")


def chunk_document(doc: readers.Document, config: Config) -> tuple[list[chunking.Chunk], list[chunking.Sentence]]:
    blocks = chunking.split_sentences(doc.text, list(doc.blocks))
    chunks = chunking.make_chunks(blocks, config.chunk_chars, config.chunk_overlap_sentences)
    return chunks, [s for block in blocks for s in block]


def build_index(
    paths: Sequence[str | Path],
    config: Config,
    embedder: Embedder | None = None,
    prune: bool = False,
    rebuild: bool = False,
    progress: bool | Reporter = False,
    on_error: Callable[[str], None] | None = None,
    id_base: Path | None = None,
) -> BuildReport:
    """Index ``paths`` into ``config.index_dir`` incrementally. Files that fail are reported and skipped;
    the rest are indexed, and the previous generation stays live until the new one is complete.

    ``config.engine`` chooses who reads, chunks and embeds: this process ("local", with ``embedder``) or a
    Ray Data pipeline ("ray", see :mod:`rag.index.ray_engine`; ``embedder`` is not used). Either way this function
    decides what is new and writes it, so both engines build the same index.

    ``progress``: ``True`` reports files read and articles embedded on stderr (a bar on a terminal, a line
    every few seconds elsewhere); or a :class:`rag.progress.Reporter` of the caller's."""
    started = time.perf_counter()
    report = BuildReport()
    reporter = Reporter.of(progress, prefix="rag index")
    config = config.replace(sentence_vectors=_sentence_vectors_of(config, rebuild))
    files, errors = readers.discover(paths, id_base)
    for error in errors:
        report.errors.append(str(error))
    engine = _engine(config, embedder)
    # The writer first: an index that cannot be extended is refused before any engine starts.
    with IndexWriter(config.index_dir, index_settings(config), rebuild=rebuild,
                     milvus_uri=config.milvus_uri) as writer, engine:
        known = writer.document_hashes()
        seen: set[str] = set()
        pending: dict[str, readers.Document] = {}
        for path, documents in reporter.iterate(engine.read(files), "reading", total=len(files), unit="file"):
            if isinstance(documents, str):
                report.errors.append(f"{path}: {documents}")
                continue
            for doc in documents:
                seen.add(doc.id)
                previous = known.get(doc.id)
                if previous == doc.content_hash:
                    report.unchanged.append(doc.id)
                    continue
                (report.updated if previous else report.added).append(doc.id)
                writer.put_document(doc.id, doc.path, doc.title, doc.date, doc.url, doc.source, doc.content_hash)
                if not writer.has_content(doc.content_hash):
                    pending.setdefault(doc.content_hash, doc)
        with reporter.task("embedding", len(pending), unit="article") as task:
            for content in engine.embed(list(pending.values())):
                writer.put_content(content)
                report.embedded_chunks += len(content.chunks)
                report.embedded_sentences += len(content.sentences)
                task.advance()
        if prune:
            for doc_id in sorted(set(known) - seen):
                writer.remove_document(doc_id)
                report.removed.append(doc_id)
        writer.set_groups(dedup.group({h: m for h, m in writer.minhashes().items() if m is not None}))
        report.identical_copies, report.near_duplicate_groups = writer.duplicate_counts()
        if reporter.style != "off":
            reporter.say("writing the vector and keyword indexes")
        manifest = writer.commit(config.hnsw_threshold, extra={"sentence_vectors": config.sentence_vectors})
    report.chunks = manifest["chunks"]
    report.documents = manifest["documents"]
    report.dense_index = manifest["dense_index"]
    report.seconds = time.perf_counter() - started
    if on_error:
        for line in report.errors:
            on_error(line)
    return report


def _engine(config: Config, embedder: Embedder | None):
    if config.engine == "ray":
        from rag.index.ray_engine import RayEngine

        return RayEngine(config)
    if config.engine == "local":
        return LocalEngine(config, embedder or Embedder())
    raise ValueError(f"unknown indexing engine '{config.engine}' (choose local or ray)")


class LocalEngine:
    """Reads, chunks and embeds in this process. :class:`rag.index.ray_engine.RayEngine` has the same surface."""

    def __init__(self, config: Config, embedder: Embedder) -> None:
        self.config = config
        self.embedder = embedder

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def read(self, files: Sequence[tuple[Path, str]]) -> Iterator[tuple[Path, list[readers.Document] | str]]:
        """Each file's documents, or the message of the BadInput that made it fail."""
        for path, doc_id in files:
            try:
                yield path, list(readers.load_file(path, doc_id))
            except BadInput as exc:
                yield path, str(exc)

    def embed(self, docs: list[readers.Document], slice_docs: int = 32) -> Iterator[NewContent]:
        """NewContent per document in input order, a slice of documents at a time (so progress can be told)."""
        for start in range(0, len(docs), slice_docs):
            yield from _embed(docs[start : start + slice_docs], self.config, self.embedder)


def _embed(docs: list[readers.Document], config: Config, embedder: Embedder) -> list[NewContent]:
    if not docs:
        return []
    pieces = [chunk_document(doc, config) for doc in docs]
    spans = [([(c.start, c.end) for c in chunks], [(s.start, s.end) for s in sentences])
             for chunks, sentences in pieces]
    vectors = embed_spans([doc.text for doc in docs], spans, embedder, config.sentence_vectors)
    return [
        NewContent(hash=doc.content_hash, text=doc.text, chunks=chunk_spans, chunk_vectors=chunk_vectors,
                   sentences=sentence_spans, sentence_vectors=sentence_vectors,
                   minhash=dedup.signature(doc.text, doc.blocks))
        for doc, (chunk_spans, sentence_spans), (chunk_vectors, sentence_vectors)
        in zip(docs, spans, vectors, strict=True)
    ]


Span = tuple[int, int]


def embed_spans(texts: Sequence[str], spans: Sequence[tuple[Sequence[Span], Sequence[Span]]], embedder: Embedder,
                sentence_vectors: str = "pooled") -> list[tuple[np.ndarray, np.ndarray]]:
    """Chunk and sentence vectors for each text, given its (chunk spans, sentence spans). Both engines call this.

    ``sentence_vectors`` says where a sentence's vector comes from:

    - ``"pooled"`` (default): from the forward pass of the first chunk that holds it, by pooling its own token
      states (:meth:`Embedder.embed_with_spans`). Sentences cost no forward pass, which halves indexing time
      (README "Archive"); only a sentence the model truncated away is embedded on its own.
    - ``"embedded"``: every sentence is embedded on its own, as a separate text (the earlier design).

    Chunk vectors are the same either way, so retrieval is too."""
    import numpy as np

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
