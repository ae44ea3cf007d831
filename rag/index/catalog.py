"""The catalog of an index generation, in SQLite: the documents, the texts, and every chunk and sentence as a
span of its text with its vector. Every SQL statement on it is in this module.

A generation's catalog is two kinds of file. ``meta.sqlite`` holds what changes from one generation to the next:
the documents (names, headlines, dates, sections) and which texts are live, with their near-duplicate groups. It
is small (one row per document) and each generation has its own copy. The texts themselves, with their chunk and
sentence rows and vectors, never change once written: they are in parts (``texts-<n>.sqlite``), each holding the
texts one build added. A build that adds articles writes one new part and hard-links the earlier ones into its
generation, so adding 1,000 articles to a million chunks writes the new articles' rows and copies the small
``meta.sqlite``, not every text and vector again. A build that removes or changes texts, or that would leave more
than ``MAX_PARTS`` parts, writes the live texts into one part again. A catalog from before parts (one
``meta.sqlite`` holding everything; its manifest lists no parts) is read as it is and split on its next build.

:class:`IndexReader` opens the live generation (its catalog and, through :mod:`rag.index.backends`, its chunk
index) and answers searches and look-ups; :class:`IndexWriter` builds the next generation (the live catalog's
documents copied and its parts linked, changed, then the chunk index written from it) and hands it to
:mod:`rag.index.generations` to go live. A text stored under several document names is stored, chunked and
embedded once.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.config import Store
from rag.errors import IndexCorrupt, IndexProblem
from rag.index import generations
from rag.index.backends import open_backend, store_of, write_backend
from rag.index.backends.base import ChunkRow, Within, link_file
from rag.index.generations import IndexSettings
from rag.ingest import dedup

SQLITE = "meta.sqlite"

PARTS = "catalog_parts"  # the manifest's list of the generation's part files (absent: everything in SQLITE)
PART_PREFIX = "texts-"
# Beyond it a build writes one part again. A build attaches at most MAX_PARTS + 2 files (the linked parts, its
# own, and the one they are compacted into): SQLite attaches at most 10 to a connection.
MAX_PARTS = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL, date TEXT, url TEXT, source TEXT,
    content_hash TEXT NOT NULL, indexed_at REAL NOT NULL, section TEXT, date_key TEXT);
CREATE INDEX IF NOT EXISTS documents_by_content ON documents(content_hash);
CREATE TABLE IF NOT EXISTS contents (hash TEXT PRIMARY KEY, dup_group TEXT NOT NULL);
"""
# One part file's tables (``{schema}``: the name it is attached under).
_PART_SCHEMA = """
CREATE TABLE IF NOT EXISTS {schema}.texts (
    id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, text TEXT NOT NULL, minhash BLOB);
CREATE TABLE IF NOT EXISTS {schema}.chunks (
    id INTEGER PRIMARY KEY, content_hash TEXT NOT NULL, ord INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS {schema}.chunks_by_content ON chunks(content_hash);
CREATE TABLE IF NOT EXISTS {schema}.sentences (
    id INTEGER PRIMARY KEY, content_hash TEXT NOT NULL, ord INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS {schema}.sentences_by_content ON sentences(content_hash, start);
CREATE TABLE IF NOT EXISTS {schema}.bands (key INTEGER NOT NULL, text INTEGER NOT NULL, PRIMARY KEY (key, text))
    WITHOUT ROWID;
"""
# ``bands``: each text's MinHash band keys (rag.ingest.dedup.band_keys) with the text's id in the part, so a new
# text finds the earlier texts it may be a near-copy of by looking its keys up, not by reading every text.
# Section membership and the pages of a section are read through these, never by scanning every row: an
# archive of 10^6 chunks opens, filters and pages as fast as one of 10^4. Made after the migration below (an
# index from before sections were stored gets its column first).
_SECTION_INDEXES = """
CREATE INDEX IF NOT EXISTS documents_by_section_title ON documents(section, title COLLATE NOCASE, id);
CREATE INDEX IF NOT EXISTS documents_by_section_date ON documents(section, IFNULL(date_key, ''), id);
CREATE INDEX IF NOT EXISTS documents_by_title ON documents(title COLLATE NOCASE, id);
CREATE INDEX IF NOT EXISTS documents_by_date ON documents(IFNULL(date_key, ''), id);
CREATE INDEX IF NOT EXISTS contents_by_group ON contents(dup_group);
"""
PageOrder = Literal["headline", "date"]
PAGE_ORDERS: tuple[PageOrder, ...] = ("headline", "date")


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    path: str
    title: str
    date: str | None
    url: str | None
    source: str | None
    content_hash: str

    @property
    def section(self) -> str | None:
        return section_of(self.id)


_SECTION_IN_NAME = re.compile(r"([A-Za-z]+)[_-]\d")


def section_of(doc_id: str) -> str | None:
    """The section an article is filed under: its first folder (``sport/199.txt``, ``uploads/x.txt``), else a
    word that starts a numbered file name (``sport_199.txt``, the common flat export of a categorized archive),
    else none."""
    folder, slash, name = doc_id.partition("/")
    if slash:
        return folder
    match = _SECTION_IN_NAME.match(doc_id)
    return match.group(1).lower() if match else None


@dataclass(frozen=True)
class SentenceRecord:
    id: int
    doc: str
    start: int
    end: int
    text: str
    vector: np.ndarray = field(repr=False, compare=False)


# A stored span is a chunk or a sentence.
SpanKind = Literal["chunk", "sentence"]
_TABLES: dict[str, str] = {"chunk": "chunks", "sentence": "sentences"}


@dataclass(frozen=True)
class SpanRow:
    """One stored chunk or sentence row: its id, the text (by content hash) it is a span of, and its vector."""

    id: int
    content_hash: str
    start: int
    end: int
    vector: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class ChunkRecord:
    id: int
    doc: str
    title: str
    start: int
    end: int
    text: str
    content_hash: str
    # Other names of the same text, and near-duplicate (syndicated) copies of it.
    same_text_as: tuple[str, ...]
    near_duplicates: tuple[str, ...]
    dup_group: str


@dataclass(frozen=True)
class NewContent:
    """What a writer stores for a text it has not seen: chunk and sentence spans with their vectors."""

    hash: str
    text: str
    chunks: Sequence[tuple[int, int]]
    chunk_vectors: np.ndarray
    sentences: Sequence[tuple[int, int]]
    sentence_vectors: np.ndarray
    minhash: bytes


@dataclass(frozen=True)
class _Part:
    """One file of texts with their chunk and sentence rows, as attached to a connection: ``schema`` is the name
    it is attached under, ``texts`` its table of texts (``contents`` in a catalog from before parts)."""

    schema: str
    texts_table: str = "texts"

    @property
    def texts(self) -> str:
        return f"{self.schema}.{self.texts_table}"

    @property
    def chunks(self) -> str:
        return f"{self.schema}.chunks"

    @property
    def sentences(self) -> str:
        return f"{self.schema}.sentences"


_BEFORE_PARTS = _Part("main", "contents")


def _uri(path: Path, mode: str) -> str:
    return f"{path.resolve().as_uri()}?mode={mode}"


def _attach(db: sqlite3.Connection, path: Path, schema: str, mode: str = "ro") -> _Part:
    db.execute(f"ATTACH DATABASE ? AS {schema}", (_uri(path, mode),))
    return _Part(schema)


def _part_number(name: str) -> int:
    return int(name.removeprefix(PART_PREFIX).removesuffix(".sqlite"))


def _blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


class IndexReader:
    """A loaded generation: answers dense and lexical searches and metadata look-ups.

    Everything is loaded at open, so a writer replacing the generation later cannot pull files from
    under a reader; call :meth:`is_stale` to learn that a newer generation exists.
    """

    def __init__(self, index_dir: str | Path, expected_model: str | None = None, store: Store | None = None,
                 milvus_uri: str | None = None) -> None:
        """``store``: refuse an index whose chunks live elsewhere (None: wherever its manifest says).
        ``milvus_uri``: where the store's server or file is now, if not where the manifest recorded it."""
        self.index_dir = Path(index_dir)
        self.generation, self.manifest = generations.live(self.index_dir)
        generations.check_readable(self.index_dir, self.generation, self.manifest, expected_model, store)
        self._load(milvus_uri)

    def _load(self, uri: str | None) -> None:
        gen = self.generation
        names = self.manifest.get(PARTS)
        files = [gen / SQLITE, *(gen / name for name in names or ())]
        for path in files:
            if not path.is_file():
                raise IndexCorrupt(f"{path}: missing; rebuild with: rag index PATH --rebuild")
        checking = files[0]
        self.db = sqlite3.connect(_uri(gen / SQLITE, "ro"), uri=True, check_same_thread=False)
        try:
            self.db.execute("SELECT COUNT(*) FROM main.documents").fetchone()
            # The catalog agrees with the manifest: its highest chunk id where the manifest records it (one look
            # in each part's b-tree), else its chunk count (a scan: 0.3 s at 10^5 chunks).
            last = self.manifest.get("last_chunk_id")
            counted = "COALESCE(MAX(id), 0)" if last is not None else "COUNT(*)"
            self._parts, per_part = [], []
            for i, path in enumerate(files[1:] if names is not None else files):
                checking = path
                self._parts.append(_attach(self.db, path, f"part{i}") if names is not None else _BEFORE_PARTS)
                per_part.append(self.db.execute(f"SELECT {counted} FROM {self._parts[-1].chunks}").fetchone()[0])
            found = max(per_part, default=0) if last is not None else sum(per_part)
            agrees = found == (last if last is not None else self.manifest.get("chunks"))
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise IndexCorrupt(f"{checking}: damaged ({exc}); rebuild with: rag index PATH --rebuild") from exc
        self.chunk_index = open_backend(store_of(self.manifest), gen, self.manifest, uri)
        if not agrees or self.chunk_index.count != self.manifest.get("chunks"):
            raise IndexCorrupt(
                f"{gen}: {self.chunk_index.count} vectors and a catalog up to chunk {found} do not match the "
                f"manifest's {self.manifest.get('chunks')} chunks; rebuild with: rag index PATH --rebuild"
            )
        self._texts: dict[str, str] = {}
        self._part_of: dict[str, _Part] = {}
        self._section_chunks: dict[str, frozenset[int]] = {}
        self._stored_sections = _has_section_column(self.db)

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        """The rows of ``sql`` from every part, one part after another (``{chunks}``, ``{sentences}`` and
        ``{texts}`` in ``sql`` name the part's tables)."""
        return [row for p in self._parts
                for row in self.db.execute(sql.format(chunks=p.chunks, sentences=p.sentences, texts=p.texts), args)]

    def _part_holding(self, content_hash: str) -> _Part:
        """The part that holds a text (each text is in one)."""
        if content_hash not in self._part_of:
            for part in self._parts:
                if self.db.execute(f"SELECT 1 FROM {part.texts} WHERE hash = ?", (content_hash,)).fetchone():
                    self._part_of[content_hash] = part
                    break
            else:
                raise KeyError(content_hash)
        return self._part_of[content_hash]

    def is_stale(self) -> bool:
        try:
            return generations.current_generation(self.index_dir) != self.generation
        except IndexProblem:
            return False

    @property
    def chunk_count(self) -> int:
        return self.chunk_index.count

    def dense(self, query_vector: np.ndarray, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        """Chunk ids and inner products of the ``n`` chunks nearest ``query_vector`` (only ``within``'s)."""
        return self.chunk_index.dense(query_vector, n, within) if self.chunk_count else []

    def lexical(self, query: str, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        """Chunk ids and BM25 scores of the ``n`` best lexical matches (only chunks sharing a term; only
        ``within``'s)."""
        return self.chunk_index.lexical(query, n, within) if self.chunk_count else []

    def within(self, section: str) -> Within:
        """The filter that keeps a search to ``section``'s chunks."""
        return Within(section, np.fromiter(sorted(self.chunk_ids_in(section)), dtype=np.int64))

    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        """BM25 inverse document frequency over chunks of stemmed ``terms`` (unseen terms weigh most)."""
        return self.chunk_index.idf(terms)

    def chunk_ids_of(self, doc_id: str) -> list[int]:
        rows = self._rows("SELECT c.start, c.id FROM {chunks} c JOIN main.documents d ON d.content_hash = "
                          "c.content_hash WHERE d.id = ?", (doc_id,))
        return [chunk_id for _, chunk_id in sorted(rows)]

    def chunk_vector(self, chunk_id: int) -> np.ndarray:
        return self.chunk_vectors([chunk_id])[chunk_id]

    def chunk_vectors(self, chunk_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """The stored vectors of ``chunk_ids``, read in one query per part (a question asks for dozens)."""
        ids = list(dict.fromkeys(chunk_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return {chunk_id: _vector(blob)
                for chunk_id, blob in self._rows(f"SELECT id, vector FROM {{chunks}} WHERE id IN ({marks})", ids)}

    def text_of_content(self, content_hash: str) -> str:
        if content_hash not in self._texts:
            part = self._part_holding(content_hash)
            row = self.db.execute(f"SELECT text FROM {part.texts} WHERE hash = ?", (content_hash,)).fetchone()
            self._texts[content_hash] = row[0]
        return self._texts[content_hash]

    def document(self, doc_id: str) -> DocumentRecord:
        row = self.db.execute(
            "SELECT id, path, title, date, url, source, content_hash FROM main.documents WHERE id = ?", (doc_id,)
        ).fetchone()
        if row is None:
            raise KeyError(doc_id)
        return DocumentRecord(*row)

    def document_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM main.documents").fetchone()[0])

    def documents(self) -> list[DocumentRecord]:
        rows = self.db.execute(
            "SELECT id, path, title, date, url, source, content_hash FROM main.documents ORDER BY id"
        ).fetchall()
        return [DocumentRecord(*row) for row in rows]

    def documents_titled(self, phrase: str) -> list[str]:
        """Ids of documents whose title contains ``phrase`` (case, accents and quote style aside)."""
        from rag.text import fold

        wanted = " ".join(fold(phrase).split())
        words = [w for w in wanted.split() if w.isascii() and w.isalnum()]
        pattern = "%" + "%".join(words) + "%" if words else "%"
        rows = self.db.execute("SELECT id, title FROM main.documents WHERE title LIKE ?", (pattern,))
        return [doc_id for doc_id, title in rows if wanted in " ".join(fold(title).split())]

    def sections(self) -> dict[str, int]:
        """Each section (see :func:`section_of`) and how many documents it holds, in name order."""
        if self._stored_sections:
            return dict(self.db.execute("SELECT section, COUNT(*) FROM main.documents WHERE section IS NOT NULL "
                                        "GROUP BY section ORDER BY section"))
        counts: dict[str, int] = {}
        for (doc_id,) in self.db.execute("SELECT id FROM main.documents"):
            section = section_of(doc_id)
            if section is not None:
                counts[section] = counts.get(section, 0) + 1
        return dict(sorted(counts.items()))

    def chunk_ids_in(self, section: str) -> frozenset[int]:
        """The chunks of documents in ``section`` (a text filed under several names counts where any is)."""
        if section not in self._section_chunks:
            if self._stored_sections:
                rows = self._rows("SELECT DISTINCT c.id FROM main.documents d JOIN {chunks} c "
                                  "ON c.content_hash = d.content_hash WHERE d.section = ?", (section,))
                self._section_chunks[section] = frozenset(c for (c,) in rows)
            else:  # an index from before sections were stored (read-only here): every chunk's name is looked at
                rows = self._rows("SELECT c.id, d.id FROM {chunks} c JOIN main.documents d "
                                  "ON d.content_hash = c.content_hash")
                self._section_chunks[section] = frozenset(c for c, d in rows if section_of(d) == section)
        return self._section_chunks[section]

    def page(self, section: str | None = None, order: PageOrder = "headline", after: str | None = None,
             limit: int = 50) -> tuple[list[DocumentRecord], str | None]:
        """One page of a section's articles (every article's with no section), by headline A-Z or newest date
        first, and the cursor of the next page (None after the last). Keyset paging: a page is read through an
        index from where the last one ended, so page 1,000 costs what page 1 does, and a page stays the same
        when articles are added elsewhere in the order."""
        if order not in PAGE_ORDERS:
            raise ValueError(f"order must be one of {', '.join(PAGE_ORDERS)}, not {order!r}")
        if not self._stored_sections:
            return self._page_by_scanning(section, order, after, limit)
        where, values = (["section = ?"], [section]) if section is not None else ([], [])
        key = "title COLLATE NOCASE" if order == "headline" else "IFNULL(date_key, '')"
        if after is not None:
            last_key, last_id = json.loads(after)
            # Headlines ascend; dates descend (newest first); the id breaks ties, ascending, in both.
            beyond = ">" if order == "headline" else "<"
            where.append(f"({key} {beyond} ? OR ({key} = ? AND id > ?))")
            values += [last_key, last_key, last_id]
        direction = "" if order == "headline" else " DESC"
        rows = self.db.execute(
            f"SELECT id, path, title, date, url, source, content_hash FROM documents "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {key}{direction}, id LIMIT ?",
            (*values, limit + 1)).fetchall()
        records = [DocumentRecord(*row) for row in rows[:limit]]
        if len(rows) <= limit:
            return records, None
        last = records[-1]
        return records, json.dumps([last.title if order == "headline" else (date_key(last.date) or ""), last.id])

    def _page_by_scanning(self, section: str | None, order: PageOrder, after: str | None, limit: int
                          ) -> tuple[list[DocumentRecord], str | None]:
        """:meth:`page` on an index from before sections were stored: the same pages, from every row."""
        def key(d: DocumentRecord) -> tuple:
            return ((d.title.casefold(), d.id) if order == "headline"
                    else (_descending(date_key(d.date) or ""), d.id))

        ordered = sorted((d for d in self.documents() if section is None or d.section == section), key=key)
        if after is not None:
            last_key, last_id = json.loads(after)
            last = ((last_key.casefold(), last_id) if order == "headline" else (_descending(last_key), last_id))
            ordered = [d for d in ordered if key(d) > last]
        records = ordered[:limit]
        if len(ordered) <= limit:
            return records, None
        final = records[-1]
        return records, json.dumps([final.title if order == "headline" else (date_key(final.date) or ""),
                                    final.id])

    def document_text(self, doc_id: str) -> str:
        """The text every offset of ``doc_id`` points into."""
        return self.text_of_content(self.document(doc_id).content_hash)

    def chunks(self, chunk_ids: Iterable[int]) -> dict[int, ChunkRecord]:
        ids = list(dict.fromkeys(chunk_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        spans = self._rows(f'SELECT id, content_hash, start, "end" FROM {{chunks}} WHERE id IN ({marks})', ids)
        hashes = sorted({content for _, content, _, _ in spans})
        groups = dict(self.db.execute(
            f"SELECT hash, dup_group FROM main.contents WHERE hash IN ({','.join('?' * len(hashes))})", hashes))
        names, members = self._families(set(hashes), set(groups.values()))
        result = {}
        for chunk_id, content, start, end in spans:
            group = groups[content]
            own = names.get(content, [])
            relatives = sorted(name for other in members.get(group, ()) if other != content
                               for name in names.get(other, ()))
            doc = self.document(own[0])
            result[chunk_id] = ChunkRecord(
                chunk_id, doc.id, doc.title, start, end, self.text_of_content(content)[start:end],
                content, tuple(own[1:]), tuple(relatives), group,
            )
        return result

    def _families(self, contents: set[str], groups: set[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """The names of each text (in id order) and the texts of each near-duplicate group, for these contents
        and groups only: two indexed queries per search, whatever the archive's size (the whole table was read
        into memory once before, one row per document)."""
        group_marks = ",".join("?" * len(groups))
        members: dict[str, list[str]] = {}
        for content, group in self.db.execute(
                f"SELECT hash, dup_group FROM main.contents WHERE dup_group IN ({group_marks}) ORDER BY hash",
                list(groups)):
            members.setdefault(group, []).append(content)
        wanted = contents | {c for texts in members.values() for c in texts}
        content_marks = ",".join("?" * len(wanted))
        names: dict[str, list[str]] = {}
        for doc_id, content in self.db.execute(
                f"SELECT id, content_hash FROM main.documents WHERE content_hash IN ({content_marks}) ORDER BY id",
                list(wanted)):
            names.setdefault(content, []).append(doc_id)
        return names, members

    def sentences_in(self, chunk: ChunkRecord) -> list[SentenceRecord]:
        part = self._part_holding(chunk.content_hash)
        rows = self.db.execute(
            f'SELECT id, start, "end", vector FROM {part.sentences} WHERE content_hash = ? AND start >= ? '
            f'AND "end" <= ? ORDER BY start',
            (chunk.content_hash, chunk.start, chunk.end),
        ).fetchall()
        text = self.text_of_content(chunk.content_hash)
        return [SentenceRecord(i, chunk.doc, s, e, text[s:e], _vector(v)) for i, s, e, v in rows]

    def neighbours(self, sentence: SentenceRecord) -> tuple[SentenceRecord | None, SentenceRecord | None]:
        """The sentences just before and after ``sentence`` in its document."""
        content = self.document(sentence.doc).content_hash
        text = self.text_of_content(content)
        part = self._part_holding(content)
        found = []
        for op, order in (("<", "DESC"), (">", "ASC")):
            row = self.db.execute(
                f'SELECT id, start, "end", vector FROM {part.sentences} WHERE content_hash = ? AND start {op} ? '
                f"ORDER BY start {order} LIMIT 1",
                (content, sentence.start),
            ).fetchone()
            found.append(SentenceRecord(row[0], sentence.doc, row[1], row[2], text[row[1] : row[2]], _vector(row[3]))
                         if row else None)
        return found[0], found[1]

    def sentences_of(self, doc_id: str) -> list[SentenceRecord]:
        """Every sentence of a document, in text order."""
        content = self.document(doc_id).content_hash
        text = self.text_of_content(content)
        part = self._part_holding(content)
        rows = self.db.execute(
            f'SELECT id, start, "end", vector FROM {part.sentences} WHERE content_hash = ? ORDER BY start',
            (content,)).fetchall()
        return [SentenceRecord(i, doc_id, s, e, text[s:e], _vector(v)) for i, s, e, v in rows]

    def span_rows(self, kind: SpanKind) -> list[SpanRow]:
        """Every stored chunk (or sentence) row, by id: each text's spans once, whatever its names."""
        table = "{chunks}" if kind == "chunk" else "{sentences}"
        rows = sorted(self._rows(f'SELECT id, content_hash, start, "end", vector FROM {table}'))
        return [SpanRow(i, h, s, e, _vector(v)) for i, h, s, e, v in rows]

    def document_spans(self, kind: SpanKind) -> list[tuple[str, int, int]]:
        """(document id, start, end) of every chunk (or sentence) under every name of its text, by document and
        start."""
        table = "{chunks}" if kind == "chunk" else "{sentences}"
        return sorted(self._rows(f'SELECT d.id, t.start, t."end" FROM {table} t '
                                 "JOIN main.documents d ON d.content_hash = t.content_hash"))

    def close(self) -> None:
        self.db.close()
        self.chunk_index.close()


class IndexWriter:
    """Builds the next generation of an index folder. Use as a context manager; :meth:`commit` makes
    it live, leaving without commit discards it."""

    def __init__(self, index_dir: str | Path, settings: IndexSettings, rebuild: bool = False,
                 milvus_uri: str | None = None) -> None:
        """``settings`` (see ``rag.index.build.index_settings``) bind the index; ``settings.store`` says where its
        chunks go, and ``milvus_uri`` where that store's server or file is (default: the store's own default
        for this index folder, e.g. a Milvus Lite file in it)."""
        self.index_dir = Path(index_dir)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.rebuild = rebuild
        self._chunk_store = write_backend(settings.store, self.index_dir, milvus_uri)
        # The live generation's manifest when this build started: its chunk data stays one generation longer.
        self._previous: dict[str, Any] | None = None
        self._previous_generation: Path | None = None
        self._lock = generations.lock(self.index_dir)
        self.generation: Path | None = None
        self.db: sqlite3.Connection | None = None
        # The parts linked from the previous generation (read-only), by file name, and the one this build writes.
        self._parts: dict[str, _Part] = {}
        self._fresh: tuple[str, _Part] | None = None
        self._next_ids = {"chunks": 1, "sentences": 1}
        self._published = False

    def __enter__(self) -> IndexWriter:
        self._lock.acquire()
        try:
            self._open()
        except BaseException:
            if self.db is not None:
                self.db.close()
            if self.generation is not None:
                shutil.rmtree(self.generation, ignore_errors=True)
            self._lock.release()
            raise
        return self

    def _open(self) -> None:
        try:
            previous = generations.current_generation(self.index_dir)
        except IndexCorrupt:
            if not self.rebuild:
                raise
            previous = None  # a broken CURRENT pointer: --rebuild starts from an empty index, as advised
        generations.remove_stale(self.index_dir, keep=previous)
        if previous is not None:
            try:
                self._previous = generations.read_manifest(self.index_dir)
            except IndexProblem:
                if not self.rebuild:
                    raise
        if self._previous is not None and not self.rebuild:
            generations.check_extendable(self.index_dir, self._previous, self.settings)
            self._previous_generation = previous
        self.generation = generations.new_generation(self.index_dir)
        extending = self._previous_generation is not None
        names = (self._previous or {}).get(PARTS) if extending else None
        if extending and names is not None:
            assert previous is not None
            # The documents are copied (a file copy: this generation changes them); the parts are linked.
            shutil.copyfile(previous / SQLITE, self.generation / SQLITE)
            for name in names:
                link_file(previous / name, self.generation / name)
        self.db = sqlite3.connect(_uri(self.generation / SQLITE, "rwc"), uri=True)
        if extending and names is None:
            assert previous is not None
            self._split(previous / SQLITE)  # a catalog from before parts: split once into documents and a part
        else:
            for i, name in enumerate(names or ()):
                self._parts[name] = _attach(self.db, self.generation / name, f"part{i}")
            self.db.executescript(_SCHEMA)
            if not _has_section_column(self.db):  # written before sections were stored: filled in once
                self.db.execute("ALTER TABLE main.documents ADD COLUMN section TEXT")
                self.db.execute("ALTER TABLE main.documents ADD COLUMN date_key TEXT")
                self._fill_sections()
        self.db.executescript(_SECTION_INDEXES)
        # This build's new texts go into a part of their own (attached now: SQLite attaches outside transactions).
        self._fresh = self._new_part("fresh")
        for table in self._next_ids:
            self._next_ids[table] = 1 + max((self.db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {p.schema}.{table}")
                                             .fetchone()[0] for p in self._parts.values()), default=0)

    def _split(self, old: Path) -> None:
        """Read a catalog from before parts (``old``: its documents, texts, chunks and sentences in one file) into
        this generation's documents and one part."""
        assert self.db is not None and self.generation is not None
        self.db.executescript(_SCHEMA)
        self.db.execute("ATTACH DATABASE ? AS old", (_uri(old, "ro"),))
        name, part = self._new_part("part0")
        columns = "id, path, title, date, url, source, content_hash, indexed_at"
        sections = any(row[1] == "section" for row in self.db.execute("PRAGMA old.table_info(documents)"))
        if sections:
            columns += ", section, date_key"
        self.db.execute(f"INSERT INTO main.documents ({columns}) SELECT {columns} FROM old.documents")
        if not sections:  # an index written before sections were stored: filled in once
            self._fill_sections()
        self.db.execute("INSERT INTO main.contents (hash, dup_group) SELECT hash, dup_group FROM old.contents")
        self.db.execute(f"INSERT INTO {part.texts} (hash, text, minhash) SELECT hash, text, minhash FROM old.contents")
        self.db.executemany(f"INSERT OR IGNORE INTO {part.schema}.bands (key, text) VALUES (?, ?)",
                            [(key, row) for row, minhash in self.db.execute(f"SELECT rowid, minhash FROM {part.texts}")
                             for key in dedup.band_keys(minhash or b"")])
        for table in ("chunks", "sentences"):
            self.db.execute(f'INSERT INTO {part.schema}.{table} (id, content_hash, ord, start, "end", vector) '
                            f'SELECT id, content_hash, ord, start, "end", vector FROM old.{table} ORDER BY id')
        self.db.commit()
        self.db.execute("DETACH DATABASE old")
        self._parts[name] = part

    def _fill_sections(self) -> None:
        assert self.db is not None
        self.db.executemany("UPDATE main.documents SET section = ?, date_key = ? WHERE id = ?",
                            [(section_of(d), date_key(t), d)
                             for d, t in self.db.execute("SELECT id, date FROM main.documents").fetchall()])

    def _new_part(self, schema: str) -> tuple[str, _Part]:
        """A new, empty part file in this generation, attached for writing as ``schema``."""
        assert self.db is not None and self.generation is not None
        taken = [_part_number(p.name) for p in self.generation.glob(f"{PART_PREFIX}*.sqlite")]
        name = f"{PART_PREFIX}{1 + max(taken, default=0)}.sqlite"
        part = _attach(self.db, self.generation / name, schema, "rwc")
        self.db.executescript(_PART_SCHEMA.format(schema=schema))
        return name, part

    def _all_parts(self) -> list[_Part]:
        return [*self._parts.values(), *([self._fresh[1]] if self._fresh else [])]

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.db is not None:
                self.db.close()
            if (exc_type is not None and not self._published and self.generation is not None
                    and self.generation.exists()):
                shutil.rmtree(self.generation, ignore_errors=True)
                self._chunk_store.discard()
        finally:
            self._lock.release()

    # --- reading what is there -------------------------------------------------------------------------
    def document_hashes(self) -> dict[str, str]:
        assert self.db is not None
        return dict(self.db.execute("SELECT id, content_hash FROM main.documents"))

    def has_content(self, content_hash: str) -> bool:
        assert self.db is not None
        return self.db.execute("SELECT 1 FROM main.contents WHERE hash = ?", (content_hash,)).fetchone() is not None

    def minhashes(self) -> dict[str, bytes]:
        assert self.db is not None
        return dict(row for p in self._all_parts() for row in self.db.execute(
            f"SELECT t.hash, t.minhash FROM {p.texts} t JOIN main.contents c ON c.hash = t.hash"))

    # --- changing it -----------------------------------------------------------------------------------
    def put_document(self, doc_id: str, path: str, title: str, date: str | None, url: str | None,
                     source: str | None, content_hash: str) -> None:
        assert self.db is not None
        self.db.execute(
            "INSERT OR REPLACE INTO main.documents (id, path, title, date, url, source, content_hash, indexed_at, "
            "section, date_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc_id, path, title, date, url, source, content_hash, time.time(), section_of(doc_id), date_key(date)),
        )

    def put_content(self, content: NewContent) -> None:
        """Store a text this index does not hold (see :meth:`has_content`) with its chunks and sentences."""
        assert self.db is not None and self._fresh is not None
        part = self._fresh[1]
        self.db.execute("INSERT OR REPLACE INTO main.contents (hash, dup_group) VALUES (?, ?)",
                        (content.hash, content.hash))
        row = self.db.execute(f"INSERT INTO {part.texts} (hash, text, minhash) VALUES (?, ?, ?)",
                              (content.hash, content.text, content.minhash)).lastrowid
        self.db.executemany(f"INSERT OR IGNORE INTO {part.schema}.bands (key, text) VALUES (?, ?)",
                            [(key, row) for key in dedup.band_keys(content.minhash or b"")])
        for table, spans, vectors in (("chunks", content.chunks, content.chunk_vectors),
                                      ("sentences", content.sentences, content.sentence_vectors)):
            first = self._next_ids[table]
            self.db.executemany(
                f'INSERT INTO {part.schema}.{table} (id, content_hash, ord, start, "end", vector) '
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(first + i, content.hash, i, s, e, _blob(v))
                 for i, ((s, e), v) in enumerate(zip(spans, vectors, strict=True))])
            self._next_ids[table] = first + len(spans)

    def remove_document(self, doc_id: str) -> None:
        assert self.db is not None
        self.db.execute("DELETE FROM main.documents WHERE id = ?", (doc_id,))

    def set_groups(self, groups: dict[str, str]) -> None:
        assert self.db is not None
        self.db.executemany("UPDATE main.contents SET dup_group = ? WHERE hash = ?",
                            [(g, h) for h, g in groups.items()])

    def group_near_copies(self) -> None:
        """Put each text in its near-duplicate group (:func:`rag.ingest.dedup.group`). A build that only added
        texts links each new one to the texts sharing one of its band keys, looked up in the parts, and merges
        their groups; the groups come out as grouping every text again would make them, and no earlier text's
        signature is read but those of the texts it links to. A build that removed or replaced a text (a group
        may fall apart) groups every text again."""
        assert self.db is not None and self._fresh is not None
        orphaned = self.db.execute("SELECT 1 FROM main.contents WHERE hash NOT IN "
                                   "(SELECT content_hash FROM main.documents) LIMIT 1").fetchone()
        if orphaned:  # grouped without the texts no document names any more (one may have joined two groups)
            named = {h for (h,) in self.db.execute("SELECT DISTINCT content_hash FROM main.documents")}
            self.set_groups(dedup.group({h: m for h, m in self.minhashes().items() if m and h in named}))
            return
        fresh = self._fresh[1]
        new = dict(self.db.execute(f"SELECT hash, minhash FROM {fresh.texts}"))
        links: list[tuple[str, str]] = []
        for part in self._all_parts():
            for mine, other, minhash in self.db.execute(
                    f"SELECT DISTINCT n.hash, o.hash, o.minhash FROM {fresh.schema}.bands nb "
                    f"JOIN {fresh.texts} n ON n.rowid = nb.text JOIN {part.schema}.bands ob ON ob.key = nb.key "
                    f"JOIN {part.texts} o ON o.rowid = ob.text WHERE o.hash != n.hash"):
                if dedup.similar(new[mine], minhash):
                    links.append((mine, other))
        if not links:
            return
        others = sorted({other for _, other in links if other not in new})
        group_of = {h: h for h in new}
        for batch in (others[i:i + 500] for i in range(0, len(others), 500)):
            group_of.update(self.db.execute(
                f"SELECT hash, dup_group FROM main.contents WHERE hash IN ({','.join('?' * len(batch))})", batch))
        # Union of groups: each earlier group stands for all its texts (its key is its smallest), so a merged
        # group's key is the smallest of the keys and new texts it joins.
        parent = {g: g for g in group_of.values()}
        for mine, other in links:
            dedup.join(parent, group_of[mine], group_of[other])
        self.set_groups({h: dedup.root(parent, h) for h in new if dedup.root(parent, h) != h})
        self.db.executemany("UPDATE main.contents SET dup_group = ? WHERE dup_group = ?",
                            [(dedup.root(parent, g), g) for g in {group_of[o] for o in others}
                             if dedup.root(parent, g) != g])

    def duplicate_counts(self) -> tuple[int, int]:
        """(documents beyond the first with the same text, duplicate groups holding more than one text)."""
        assert self.db is not None
        documents, texts = self.db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT content_hash) FROM main.documents").fetchone()
        groups = self.db.execute(
            "SELECT COUNT(*) FROM (SELECT t.dup_group FROM main.contents t JOIN main.documents d "
            "ON d.content_hash = t.hash GROUP BY t.dup_group HAVING COUNT(DISTINCT t.hash) > 1)").fetchone()[0]
        return documents - texts, groups

    def _drop_orphans(self) -> None:
        """Forget the texts no document names any more. Their rows stay in the parts linked from earlier
        generations (those files are shared) until :meth:`_compact` writes the live texts into one part."""
        assert self.db is not None
        self.db.execute("DELETE FROM main.contents WHERE hash NOT IN (SELECT content_hash FROM main.documents)")
        if self._fresh is not None:
            live = "IN (SELECT hash FROM main.contents)"
            part = self._fresh[1]
            for table in ("chunks", "sentences"):
                self.db.execute(f"DELETE FROM {part.schema}.{table} WHERE content_hash NOT {live}")
            self.db.execute(f"DELETE FROM {part.schema}.bands WHERE text IN "
                            f"(SELECT id FROM {part.texts} WHERE hash NOT {live})")
            self.db.execute(f"DELETE FROM {part.texts} WHERE hash NOT {live}")

    def _parts_hold_only_live_texts(self) -> bool:
        assert self.db is not None
        held = sum(self.db.execute(f"SELECT COUNT(*) FROM {p.texts}").fetchone()[0] for p in self._all_parts())
        return held == self.db.execute("SELECT COUNT(*) FROM main.contents").fetchone()[0]

    def _compact(self) -> None:
        """Write the live texts, with their chunks and sentences (ids kept), into one new part, and drop the
        others from this generation."""
        assert self.db is not None and self.generation is not None
        old = [(name, part) for name, part in self._parts.items()] + ([self._fresh] if self._fresh else [])
        name, target = self._new_part("compacted")
        live = "IN (SELECT hash FROM main.contents)"
        for _, part in old:
            self.db.execute(f"INSERT INTO {target.texts} (hash, text, minhash) "
                            f"SELECT hash, text, minhash FROM {part.texts} WHERE hash {live}")
            self.db.execute(f"INSERT OR IGNORE INTO {target.schema}.bands (key, text) SELECT b.key, n.rowid "
                            f"FROM {part.schema}.bands b JOIN {part.texts} t ON t.rowid = b.text "
                            f"JOIN {target.texts} n ON n.hash = t.hash")
            for table in ("chunks", "sentences"):
                self.db.execute(f'INSERT INTO {target.schema}.{table} (id, content_hash, ord, start, "end", vector) '
                                f'SELECT id, content_hash, ord, start, "end", vector FROM {part.schema}.{table} '
                                f"WHERE content_hash {live} ORDER BY id")
        self.db.commit()
        for old_name, part in old:
            self.db.execute(f"DETACH DATABASE {part.schema}")
            (self.generation / old_name).unlink()
        self._parts, self._fresh = {name: target}, None
        if not self.db.execute(f"SELECT 1 FROM {target.texts} LIMIT 1").fetchone():  # every text was removed
            self.db.execute(f"DETACH DATABASE {target.schema}")
            (self.generation / name).unlink()
            self._parts = {}

    def _chunk_rows(self, after: int = 0) -> list[ChunkRow]:
        """The chunk store's rows of the chunks whose ids are above ``after`` (all of them by default)."""
        assert self.db is not None
        parts = self._all_parts()
        chunks = sorted(row for p in parts for row in self.db.execute(
            f'SELECT id, vector, start, "end", content_hash FROM {p.chunks} WHERE id > ?', (after,)))
        wanted = sorted({row[4] for row in chunks})
        names: dict[str, str] = {}
        sections: dict[str, set[str]] = {}
        contents: dict[str, tuple[str, str]] = {}
        for batch in (wanted[i:i + 500] for i in range(0, len(wanted), 500)):
            marks = ",".join("?" * len(batch))
            for doc_id, content in self.db.execute(
                    f"SELECT id, content_hash FROM main.documents WHERE content_hash IN ({marks}) ORDER BY id", batch):
                names.setdefault(content, doc_id)  # a text stored under several names is indexed under its first
                section = section_of(doc_id)
                if section is not None:
                    sections.setdefault(content, set()).add(section)
            groups = dict(self.db.execute(f"SELECT hash, dup_group FROM main.contents WHERE hash IN ({marks})", batch))
            for p in parts:
                contents.update((h, (t, groups[h])) for h, t in self.db.execute(
                    f"SELECT hash, text FROM {p.texts} WHERE hash IN ({marks})", batch))
        documents = {row[0]: row for batch in (sorted(set(names.values()))[i:i + 500]
                                             for i in range(0, len(names), 500))
                     for row in self.db.execute(
                         f"SELECT id, title, date FROM main.documents WHERE id IN ({','.join('?' * len(batch))})",
                         batch)}
        rows = []
        for chunk_id, vector, start, end, content in chunks:
            _, title, date = documents[names[content]]
            text, group = contents[content]
            rows.append(ChunkRow(chunk_id, _vector(vector), f"{title}\n{text[start:end]}", names[content], start,
                                 end, title, date, content, group, tuple(sorted(sections.get(content, ())))))
        return rows

    def _chunk_totals(self, up_to: int | None = None) -> tuple[int, int]:
        """(how many chunks, the highest chunk id), counting only ids up to ``up_to`` where given."""
        assert self.db is not None
        where = f"WHERE id <= {int(up_to)}" if up_to is not None else ""
        totals = [self.db.execute(f"SELECT COUNT(*), COALESCE(MAX(id), 0) FROM {p.chunks} {where}").fetchone()
                  for p in self._all_parts()]
        return sum(count for count, _ in totals), max((last for _, last in totals), default=0)

    def _write_chunk_index(self, hnsw_threshold: int) -> tuple[dict, int, int]:
        """Write the chunk store's index of this generation: only the chunks added since the previous
        generation when every earlier chunk is kept and the store can append, else all of them. Returns what the
        store said about it, the number of chunks and the highest chunk id."""
        assert self.db is not None and self.generation is not None
        count, last = self._chunk_totals()
        before = self._previous or {}
        previous_last = before.get("last_chunk_id")
        if self._previous_generation is not None and previous_last is not None:
            kept, _ = self._chunk_totals(up_to=previous_last)
            if kept == before.get("chunks"):
                where = self._chunk_store.append(self.generation, self._previous_generation, before,
                                                 self._chunk_rows(after=previous_last),
                                                 int(self.settings.dimension), hnsw_threshold)
                if where is not None:
                    return where, count, last
        rows = self._chunk_rows()
        return self._chunk_store.write(self.generation, rows, int(self.settings.dimension), hnsw_threshold), count, last

    def commit(self, hnsw_threshold: int, extra: dict | None = None) -> dict:
        """Write the chunk index (vectors and lexical) and the manifest, then make this generation live."""
        assert self.db is not None and self.generation is not None
        self._drop_orphans()
        self.db.commit()
        if self._fresh is not None and not self.db.execute(f"SELECT 1 FROM {self._fresh[1].texts}").fetchone():
            self.db.execute("DETACH DATABASE fresh")  # nothing new to hold
            (self.generation / self._fresh[0]).unlink()
            self._fresh = None
        if len(self._all_parts()) > MAX_PARTS or not self._parts_hold_only_live_texts():
            self._compact()
        where, chunks, last = self._write_chunk_index(hnsw_threshold)
        documents = self.db.execute("SELECT COUNT(*) FROM main.documents").fetchone()[0]
        parts = sorted([*self._parts, *([self._fresh[0]] if self._fresh else [])], key=_part_number)
        manifest = generations.new_manifest(self.settings, {**where, "last_chunk_id": last, PARTS: parts}, chunks,
                                            documents, extra)
        self.db.close()
        self.db = None
        generations.publish(self.index_dir, self.generation, manifest)
        self._published = True  # live now: nothing after this may remove it
        # The previous generation's chunk data stays one generation longer: readers in other processes may still
        # be on it.
        self._chunk_store.drop_stale(keep=[manifest, self._previous or {}])
        return manifest


_DATE_FORMATS = ("%Y-%m-%d", "%d %B %Y", "%B %d, %Y", "%d %b %Y", "%b %d, %Y", "%B %d %Y", "%Y-%m-%dT%H:%M:%S",
                 "%A, %d %B %Y", "%A, %B %d, %Y", "%Y/%m/%d")


def date_key(date: str | None) -> str | None:
    """An article's date as YYYY-MM-DD, for ordering by date (None where it cannot be read as a day)."""
    if not date:
        return None
    text = " ".join(date.replace("Published:", "").split()).rstrip(".")
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(text, form).strftime("%Y-%m-%d")
        except ValueError:
            continue
    return None


def _descending(text: str) -> tuple[int, ...]:
    """A sort key under which ``text`` orders in reverse (dates newest first beside ids ascending)."""
    return tuple(-ord(ch) for ch in text) + (1,)


def _has_section_column(db: sqlite3.Connection) -> bool:
    return any(row[1] == "section" for row in db.execute("PRAGMA table_info(documents)"))
