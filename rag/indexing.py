"""``rag index``: files → Documents → chunks and sentences → vectors → a new index generation."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rag import chunking, dedup, ingest
from rag.config import Config
from rag.embedding import DIMENSION, Embedder, distinct, model_id
from rag.store import BuildReport, IndexWriter, NewContent


def index_settings(config: Config) -> dict:
    """What an index is bound to: querying or extending it with other values is refused."""
    return {
        "embedding_model": model_id(),
        "dimension": DIMENSION,
        "chunk_chars": config.chunk_chars,
        "chunk_overlap_sentences": config.chunk_overlap_sentences,
        "store": config.store,
    }


def chunk_document(doc: ingest.Document, config: Config) -> tuple[list[chunking.Chunk], list[chunking.Sentence]]:
    blocks = chunking.split_sentences(doc.text, list(doc.blocks))
    chunks = chunking.make_chunks(blocks, config.chunk_chars, config.chunk_overlap_sentences)
    return chunks, [s for block in blocks for s in block]


def build_index(
    paths: Sequence[str | Path],
    config: Config,
    embedder: Embedder | None = None,
    prune: bool = False,
    rebuild: bool = False,
    progress: bool = False,
    on_error: Callable[[str], None] | None = None,
    id_base: Path | None = None,
) -> BuildReport:
    """Index ``paths`` into ``config.index_dir`` incrementally. Files that fail are reported and skipped;
    the rest are indexed, and the previous generation stays live until the new one is complete.

    ``config.engine`` chooses who reads, chunks and embeds: this process ("local", with ``embedder``) or a
    Ray Data pipeline ("ray", see :mod:`rag.ray_ingest`; ``embedder`` is not used). Either way this function
    decides what is new and writes it, so both engines build the same index."""
    started = time.perf_counter()
    report = BuildReport()
    files, errors = ingest.discover(paths, id_base)
    for error in errors:
        report.errors.append(str(error))
    engine = _engine(config, embedder, progress)
    # The writer first: an index that cannot be extended is refused before any engine starts.
    with IndexWriter(config.index_dir, index_settings(config), rebuild=rebuild,
                     milvus_uri=config.milvus_uri) as writer, engine:
        known = writer.document_hashes()
        seen: set[str] = set()
        pending: dict[str, ingest.Document] = {}
        for path, documents in engine.read(files):
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
        for content in engine.embed(list(pending.values())):
            writer.put_content(content)
            report.embedded_chunks += len(content.chunks)
        if prune:
            for doc_id in sorted(set(known) - seen):
                writer.remove_document(doc_id)
                report.removed.append(doc_id)
        writer.set_groups(dedup.group({h: m for h, m in writer.minhashes().items() if m is not None}))
        manifest = writer.commit(config.hnsw_threshold)
    report.chunks = manifest["chunks"]
    report.documents = manifest["documents"]
    report.dense_index = manifest["dense_index"]
    report.seconds = time.perf_counter() - started
    if on_error:
        for line in report.errors:
            on_error(line)
    return report


def _engine(config: Config, embedder: Embedder | None, progress: bool):
    if config.engine == "ray":
        from rag.ray_ingest import RayEngine

        return RayEngine(config, progress)
    if config.engine == "local":
        return LocalEngine(config, embedder or Embedder(), progress)
    raise ValueError(f"unknown indexing engine '{config.engine}' (choose local or ray)")


class LocalEngine:
    """Reads, chunks and embeds in this process. :class:`rag.ray_ingest.RayEngine` has the same surface."""

    def __init__(self, config: Config, embedder: Embedder, progress: bool = False) -> None:
        self.config = config
        self.embedder = embedder
        self.progress = progress

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def read(self, files: Sequence[tuple[Path, str]]) -> Iterator[tuple[Path, list[ingest.Document] | str]]:
        """Each file's documents, or the message of the BadInput that made it fail."""
        for path, doc_id in _progress(files, self.progress, "reading"):
            try:
                yield path, list(ingest.load_file(path, doc_id))
            except ingest.BadInput as exc:
                yield path, str(exc)

    def embed(self, docs: list[ingest.Document]) -> list[NewContent]:
        return _embed(docs, self.config, self.embedder, self.progress)


def _embed(docs: list[ingest.Document], config: Config, embedder: Embedder, progress: bool) -> list[NewContent]:
    if not docs:
        return []
    pieces = [chunk_document(doc, config) for doc in docs]
    texts = [doc.text[c.start : c.end] for doc, (chunks, _) in zip(docs, pieces, strict=True) for c in chunks]
    texts += [doc.text[s.start : s.end] for doc, (_, sentences) in zip(docs, pieces, strict=True) for s in sentences]
    vectors = _embed_batched(texts, embedder, progress)
    result = []
    cursor_chunks = 0
    cursor_sentences = sum(len(chunks) for chunks, _ in pieces)
    for doc, (chunks, sentences) in zip(docs, pieces, strict=True):
        chunk_vectors = vectors[cursor_chunks : cursor_chunks + len(chunks)]
        sentence_vectors = vectors[cursor_sentences : cursor_sentences + len(sentences)]
        cursor_chunks += len(chunks)
        cursor_sentences += len(sentences)
        result.append(NewContent(
            hash=doc.content_hash,
            text=doc.text,
            chunks=[(c.start, c.end) for c in chunks],
            chunk_vectors=chunk_vectors,
            sentences=[(s.start, s.end) for s in sentences],
            sentence_vectors=sentence_vectors,
            minhash=dedup.signature(doc.text, doc.blocks),
        ))
    return result


def _embed_batched(texts: list[str], embedder: Embedder, progress: bool, batch: int = 512):
    """Vectors for ``texts`` in input order, each distinct text embedded once (a one-sentence chunk is also
    its own sentence), in batches for the progress bar."""
    import numpy as np

    unique, rows = distinct(texts)
    parts = []
    bar = _progress(range(0, len(unique), batch), progress and len(unique) > batch, "embedding", unit="batch")
    for start in bar:
        parts.append(embedder.embed(unique[start : start + batch]))
    return np.vstack(parts)[rows]


def _progress(items, enabled: bool, label: str, unit: str = "file"):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=label, unit=unit, file=sys.stderr, leave=False)
