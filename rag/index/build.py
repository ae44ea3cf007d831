"""``rag index``: files → Documents → chunks and sentences → vectors → a new index generation."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.config import Config
from rag.errors import FileProblem, IndexProblem
from rag.index.catalog import IndexWriter
from rag.index.engines import IngestEngine, LocalEngine
from rag.index.generations import IndexSettings, read_manifest
from rag.ingest import readers
from rag.models.embedding import DIMENSION, Embedder, model_id
from rag.progress import Reporter


@dataclass
class BuildReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[FileProblem] = field(default_factory=list)
    embedded_chunks: int = 0
    embedded_sentences: int = 0
    # Documents whose text another document already has (stored and embedded once), and groups of
    # near-duplicate texts (syndicated or re-edited copies), after this build.
    identical_copies: int = 0
    near_duplicate_groups: int = 0
    chunks: int = 0
    documents: int = 0
    dense_index: str = "flat"
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"documents: {len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.errors)} failed; {self.documents} in index, "
            f"{self.chunks} chunks ({self.embedded_chunks} embedded, {self.dense_index} index); "
            f"{self.identical_copies} identical copies stored once, {self.near_duplicate_groups} near-duplicate "
            f"groups; in {self.seconds:.1f} s"
        )


def index_settings(config: Config) -> IndexSettings:
    """What an index is bound to: querying or extending it with other values is refused."""
    return IndexSettings(
        embedding_model=model_id(),
        dimension=DIMENSION,
        chunk_chars=config.chunk_chars,
        chunk_overlap_sentences=config.chunk_overlap_sentences,
        store=config.store,
    )


def _sentence_vectors_of(config: Config, rebuild: bool) -> str:
    """How an existing index made its sentence vectors, which extending it keeps (older manifests do not say:
    they embedded every sentence); a new or rebuilt index uses ``config.sentence_vectors``."""
    if rebuild:
        return config.sentence_vectors
    try:
        manifest = read_manifest(config.index_dir)
    except IndexProblem:
        return config.sentence_vectors
    return manifest.get("sentence_vectors", "embedded")


def build_index(
    paths: Sequence[str | Path],
    config: Config,
    embedder: Embedder | None = None,
    prune: bool = False,
    rebuild: bool = False,
    progress: bool | Reporter = False,
    on_error: Callable[[FileProblem], None] | None = None,
    id_base: Path | None = None,
) -> BuildReport:
    """Index ``paths`` into ``config.index_dir`` incrementally. Files that fail are reported and skipped;
    the rest are indexed, and the previous generation stays live until the new one is complete.

    ``config.engine`` chooses who reads, chunks and embeds (:func:`open_engine`). Either way this function
    decides what is new and writes it, so both engines build the same index.

    ``progress``: ``True`` reports files read and articles embedded on stderr (a bar on a terminal, a line
    every few seconds elsewhere); or a :class:`rag.progress.Reporter` of the caller's."""
    started = time.perf_counter()
    report = BuildReport()
    reporter = Reporter.of(progress, prefix="rag index")
    config = config.replace(sentence_vectors=_sentence_vectors_of(config, rebuild))
    files, problems = readers.discover(paths, id_base)
    report.errors += problems
    engine = open_engine(config, embedder)
    # The writer first: an index that cannot be extended is refused before any engine starts.
    with IndexWriter(config.index_dir, index_settings(config), rebuild=rebuild,
                     milvus_uri=config.milvus_uri) as writer, engine:
        known = writer.document_hashes()
        seen: set[str] = set()
        pending: dict[str, readers.Document] = {}
        for documents in reporter.iterate(engine.read(files), "reading", total=len(files), unit="file"):
            if isinstance(documents, FileProblem):
                report.errors.append(documents)
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
        writer.group_near_copies()
        report.identical_copies, report.near_duplicate_groups = writer.duplicate_counts()
        if reporter.style != "off":
            reporter.say("writing the vector and keyword indexes")
        manifest = writer.commit(config.hnsw_threshold, extra={"sentence_vectors": config.sentence_vectors})
    report.chunks = manifest["chunks"]
    report.documents = manifest["documents"]
    report.dense_index = manifest["dense_index"]
    report.seconds = time.perf_counter() - started
    if on_error:
        for problem in report.errors:
            on_error(problem)
    return report


def open_engine(config: Config, embedder: Embedder | None = None) -> IngestEngine:
    """The engine ``config.engine`` names: this process ("local", with ``embedder`` or a new Embedder), or a
    Ray Data pipeline ("ray", see :mod:`rag.index.ray_engine`; ``embedder`` is not used). Only choosing "ray"
    imports the Ray engine, and with it ray."""
    if config.engine == "ray":
        from rag.index.ray_engine import RayEngine

        return RayEngine(config)
    return LocalEngine(config, embedder or Embedder.for_config(config))
