"""The catalog of an index generation: one SQLite file (``meta.sqlite``) with the documents, the texts, and
every chunk and sentence as a span of its text with its vector. Every SQL statement on it is in this module.

:class:`IndexReader` opens the live generation (its catalog and, through :mod:`rag.index.backends`, its chunk
index) and answers searches and look-ups; :class:`IndexWriter` builds the next generation (a copy of the live
catalog, changed, then the chunk index written from it) and hands it to :mod:`rag.index.generations` to go
live. A text stored under several document names is stored, chunked and embedded once.
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
from rag.index.backends.base import ChunkRow, Within
from rag.index.generations import IndexSettings

SQLITE = "meta.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL, date TEXT, url TEXT, source TEXT,
    content_hash TEXT NOT NULL, indexed_at REAL NOT NULL, section TEXT, date_key TEXT);
CREATE INDEX IF NOT EXISTS documents_by_content ON documents(content_hash);
CREATE TABLE IF NOT EXISTS contents (
    hash TEXT PRIMARY KEY, text TEXT NOT NULL, dup_group TEXT NOT NULL, minhash BLOB);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, content_hash TEXT NOT NULL, ord INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_content ON chunks(content_hash);
CREATE TABLE IF NOT EXISTS sentences (
    id INTEGER PRIMARY KEY, content_hash TEXT NOT NULL, ord INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS sentences_by_content ON sentences(content_hash, start);
"""
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
        try:
            self.db = sqlite3.connect(f"file:{gen / SQLITE}?mode=ro", uri=True, check_same_thread=False)
            # The catalog agrees with the manifest: its highest chunk id where the manifest records it (one look
            # in the table's b-tree), else its chunk count (a scan: 0.3 s at 10^5 chunks).
            last = self.manifest.get("last_chunk_id")
            if last is not None:
                found = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()[0]
                agrees = found == last
            else:
                found = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
                agrees = found == self.manifest.get("chunks")
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"{gen / SQLITE}: damaged ({exc}); rebuild with: rag index PATH --rebuild") from exc
        self.chunk_index = open_backend(store_of(self.manifest), gen, self.manifest, uri)
        if not agrees or self.chunk_index.count != self.manifest.get("chunks"):
            raise IndexCorrupt(
                f"{gen}: {self.chunk_index.count} vectors and a catalog up to chunk {found} do not match the "
                f"manifest's {self.manifest.get('chunks')} chunks; rebuild with: rag index PATH --rebuild"
            )
        self._texts: dict[str, str] = {}
        self._section_chunks: dict[str, frozenset[int]] = {}
        self._stored_sections = _has_section_column(self.db)

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
        rows = self.db.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.content_hash = c.content_hash WHERE d.id = ? "
            "ORDER BY c.start",
            (doc_id,),
        )
        return [r[0] for r in rows]

    def chunk_vector(self, chunk_id: int) -> np.ndarray:
        return self.chunk_vectors([chunk_id])[chunk_id]

    def chunk_vectors(self, chunk_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """The stored vectors of ``chunk_ids``, read in one query (a question asks for dozens)."""
        ids = list(dict.fromkeys(chunk_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", ids).fetchall()
        return {chunk_id: _vector(blob) for chunk_id, blob in rows}

    def text_of_content(self, content_hash: str) -> str:
        if content_hash not in self._texts:
            row = self.db.execute("SELECT text FROM contents WHERE hash = ?", (content_hash,)).fetchone()
            if row is None:
                raise KeyError(content_hash)
            self._texts[content_hash] = row[0]
        return self._texts[content_hash]

    def document(self, doc_id: str) -> DocumentRecord:
        row = self.db.execute(
            "SELECT id, path, title, date, url, source, content_hash FROM documents WHERE id = ?", (doc_id,)
        ).fetchone()
        if row is None:
            raise KeyError(doc_id)
        return DocumentRecord(*row)

    def document_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def documents(self) -> list[DocumentRecord]:
        rows = self.db.execute(
            "SELECT id, path, title, date, url, source, content_hash FROM documents ORDER BY id"
        ).fetchall()
        return [DocumentRecord(*row) for row in rows]

    def documents_titled(self, phrase: str) -> list[str]:
        """Ids of documents whose title contains ``phrase`` (case, accents and quote style aside)."""
        from rag.text import fold

        wanted = " ".join(fold(phrase).split())
        words = [w for w in wanted.split() if w.isascii() and w.isalnum()]
        pattern = "%" + "%".join(words) + "%" if words else "%"
        rows = self.db.execute("SELECT id, title FROM documents WHERE title LIKE ?", (pattern,))
        return [doc_id for doc_id, title in rows if wanted in " ".join(fold(title).split())]

    def sections(self) -> dict[str, int]:
        """Each section (see :func:`section_of`) and how many documents it holds, in name order."""
        if self._stored_sections:
            return dict(self.db.execute("SELECT section, COUNT(*) FROM documents WHERE section IS NOT NULL "
                                        "GROUP BY section ORDER BY section"))
        counts: dict[str, int] = {}
        for (doc_id,) in self.db.execute("SELECT id FROM documents"):
            section = section_of(doc_id)
            if section is not None:
                counts[section] = counts.get(section, 0) + 1
        return dict(sorted(counts.items()))

    def chunk_ids_in(self, section: str) -> frozenset[int]:
        """The chunks of documents in ``section`` (a text filed under several names counts where any is)."""
        if section not in self._section_chunks:
            if self._stored_sections:
                rows = self.db.execute(
                    "SELECT DISTINCT c.id FROM documents d JOIN chunks c ON c.content_hash = d.content_hash "
                    "WHERE d.section = ?", (section,))
                self._section_chunks[section] = frozenset(c for (c,) in rows)
            else:  # an index from before sections were stored (read-only here): every chunk's name is looked at
                rows = self.db.execute(
                    "SELECT c.id, d.id FROM chunks c JOIN documents d ON d.content_hash = c.content_hash")
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
        rows = self.db.execute(
            f'SELECT c.id, c.content_hash, c.start, c."end", t.dup_group FROM chunks c '
            f"JOIN contents t ON t.hash = c.content_hash WHERE c.id IN ({marks})",
            ids,
        ).fetchall()
        names, members = self._families({content for _, content, _, _, _ in rows},
                                        {group for _, _, _, _, group in rows})
        result = {}
        for chunk_id, content, start, end, group in rows:
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
                f"SELECT hash, dup_group FROM contents WHERE dup_group IN ({group_marks}) ORDER BY hash",
                list(groups)):
            members.setdefault(group, []).append(content)
        wanted = contents | {c for texts in members.values() for c in texts}
        content_marks = ",".join("?" * len(wanted))
        names: dict[str, list[str]] = {}
        for doc_id, content in self.db.execute(
                f"SELECT id, content_hash FROM documents WHERE content_hash IN ({content_marks}) ORDER BY id",
                list(wanted)):
            names.setdefault(content, []).append(doc_id)
        return names, members

    def sentences_in(self, chunk: ChunkRecord) -> list[SentenceRecord]:
        rows = self.db.execute(
            'SELECT id, start, "end", vector FROM sentences WHERE content_hash = ? AND start >= ? AND "end" <= ? '
            "ORDER BY start",
            (chunk.content_hash, chunk.start, chunk.end),
        ).fetchall()
        text = self.text_of_content(chunk.content_hash)
        return [SentenceRecord(i, chunk.doc, s, e, text[s:e], _vector(v)) for i, s, e, v in rows]

    def neighbours(self, sentence: SentenceRecord) -> tuple[SentenceRecord | None, SentenceRecord | None]:
        """The sentences just before and after ``sentence`` in its document."""
        content = self.document(sentence.doc).content_hash
        text = self.text_of_content(content)
        found = []
        for op, order in (("<", "DESC"), (">", "ASC")):
            row = self.db.execute(
                f'SELECT id, start, "end", vector FROM sentences WHERE content_hash = ? AND start {op} ? '
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
        rows = self.db.execute(
            'SELECT id, start, "end", vector FROM sentences WHERE content_hash = ? ORDER BY start', (content,)
        ).fetchall()
        return [SentenceRecord(i, doc_id, s, e, text[s:e], _vector(v)) for i, s, e, v in rows]

    def span_rows(self, kind: SpanKind) -> list[SpanRow]:
        """Every stored chunk (or sentence) row, by id: each text's spans once, whatever its names."""
        rows = self.db.execute(f'SELECT id, content_hash, start, "end", vector FROM {_TABLES[kind]} ORDER BY id')
        return [SpanRow(i, h, s, e, _vector(v)) for i, h, s, e, v in rows]

    def document_spans(self, kind: SpanKind) -> list[tuple[str, int, int]]:
        """(document id, start, end) of every chunk (or sentence) under every name of its text, by document and
        start."""
        rows = self.db.execute(
            f'SELECT d.id, t.start, t."end" FROM {_TABLES[kind]} t '
            "JOIN documents d ON d.content_hash = t.content_hash ORDER BY d.id, t.start"
        )
        return [(doc, start, end) for doc, start, end in rows]

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

    def __enter__(self) -> IndexWriter:
        self._lock.acquire()
        try:
            self._open()
        except BaseException:
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
        self.db = sqlite3.connect(str(self.generation / SQLITE))
        if previous is not None and not self.rebuild:
            source = sqlite3.connect(f"file:{previous / SQLITE}?mode=ro", uri=True)
            source.backup(self.db)
            source.close()
        self.db.executescript(_SCHEMA)
        if not _has_section_column(self.db):  # an index written before sections were stored: filled in once
            self.db.execute("ALTER TABLE documents ADD COLUMN section TEXT")
            self.db.execute("ALTER TABLE documents ADD COLUMN date_key TEXT")
            self.db.executemany("UPDATE documents SET section = ?, date_key = ? WHERE id = ?",
                                [(section_of(d), date_key(t), d)
                                 for d, t in self.db.execute("SELECT id, date FROM documents").fetchall()])
        self.db.executescript(_SECTION_INDEXES)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.db is not None:
                self.db.close()
            if exc_type is not None and self.generation is not None and self.generation.exists():
                shutil.rmtree(self.generation, ignore_errors=True)
                self._chunk_store.discard()
        finally:
            self._lock.release()

    # --- reading what is there -------------------------------------------------------------------------
    def document_hashes(self) -> dict[str, str]:
        assert self.db is not None
        return dict(self.db.execute("SELECT id, content_hash FROM documents"))

    def has_content(self, content_hash: str) -> bool:
        assert self.db is not None
        return self.db.execute("SELECT 1 FROM contents WHERE hash = ?", (content_hash,)).fetchone() is not None

    def minhashes(self) -> dict[str, bytes]:
        assert self.db is not None
        return dict(self.db.execute("SELECT hash, minhash FROM contents"))

    # --- changing it -----------------------------------------------------------------------------------
    def put_document(self, doc_id: str, path: str, title: str, date: str | None, url: str | None,
                     source: str | None, content_hash: str) -> None:
        assert self.db is not None
        self.db.execute(
            "INSERT OR REPLACE INTO documents (id, path, title, date, url, source, content_hash, indexed_at, section, "
            "date_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (doc_id, path, title, date, url, source, content_hash, time.time(), section_of(doc_id), date_key(date)),
        )

    def put_content(self, content: NewContent) -> None:
        assert self.db is not None
        self.db.execute(
            "INSERT OR REPLACE INTO contents (hash, text, dup_group, minhash) VALUES (?, ?, ?, ?)",
            (content.hash, content.text, content.hash, content.minhash),
        )
        self.db.executemany(
            'INSERT INTO chunks (content_hash, ord, start, "end", vector) VALUES (?, ?, ?, ?, ?)',
            [(content.hash, i, s, e, _blob(v))
             for i, ((s, e), v) in enumerate(zip(content.chunks, content.chunk_vectors, strict=True))],
        )
        self.db.executemany(
            'INSERT INTO sentences (content_hash, ord, start, "end", vector) VALUES (?, ?, ?, ?, ?)',
            [(content.hash, i, s, e, _blob(v))
             for i, ((s, e), v) in enumerate(zip(content.sentences, content.sentence_vectors, strict=True))],
        )

    def remove_document(self, doc_id: str) -> None:
        assert self.db is not None
        self.db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    def set_groups(self, groups: dict[str, str]) -> None:
        assert self.db is not None
        self.db.executemany("UPDATE contents SET dup_group = ? WHERE hash = ?", [(g, h) for h, g in groups.items()])

    def duplicate_counts(self) -> tuple[int, int]:
        """(documents beyond the first with the same text, duplicate groups holding more than one text)."""
        assert self.db is not None
        documents, texts = self.db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT content_hash) FROM documents").fetchone()
        groups = self.db.execute(
            "SELECT COUNT(*) FROM (SELECT t.dup_group FROM contents t JOIN documents d ON d.content_hash = t.hash "
            "GROUP BY t.dup_group HAVING COUNT(DISTINCT t.hash) > 1)").fetchone()[0]
        return documents - texts, groups

    def _drop_orphans(self) -> None:
        assert self.db is not None
        orphan = "NOT IN (SELECT content_hash FROM documents)"
        self.db.execute(f"DELETE FROM chunks WHERE content_hash {orphan}")
        self.db.execute(f"DELETE FROM sentences WHERE content_hash {orphan}")
        self.db.execute(f"DELETE FROM contents WHERE hash {orphan}")

    def _chunk_rows(self, after: int = 0) -> list[ChunkRow]:
        """The chunk store's rows of the chunks whose ids are above ``after`` (all of them by default)."""
        assert self.db is not None
        chunks = self.db.execute(
            'SELECT id, vector, start, "end", content_hash FROM chunks WHERE id > ? ORDER BY id', (after,)).fetchall()
        wanted = sorted({row[4] for row in chunks})
        names: dict[str, str] = {}
        sections: dict[str, set[str]] = {}
        contents: dict[str, tuple[str, str]] = {}
        for batch in (wanted[i:i + 500] for i in range(0, len(wanted), 500)):
            marks = ",".join("?" * len(batch))
            for doc_id, content in self.db.execute(
                    f"SELECT id, content_hash FROM documents WHERE content_hash IN ({marks}) ORDER BY id", batch):
                names.setdefault(content, doc_id)  # a text stored under several names is indexed under its first
                section = section_of(doc_id)
                if section is not None:
                    sections.setdefault(content, set()).add(section)
            contents.update((h, (t, g)) for h, t, g in self.db.execute(
                f"SELECT hash, text, dup_group FROM contents WHERE hash IN ({marks})", batch))
        documents = {row[0]: row for batch in (sorted(set(names.values()))[i:i + 500]
                                             for i in range(0, len(names), 500))
                     for row in self.db.execute(
                         f"SELECT id, title, date FROM documents WHERE id IN ({','.join('?' * len(batch))})", batch)}
        rows = []
        for chunk_id, vector, start, end, content in chunks:
            _, title, date = documents[names[content]]
            text, group = contents[content]
            rows.append(ChunkRow(chunk_id, _vector(vector), f"{title}\n{text[start:end]}", names[content], start,
                                 end, title, date, content, group, tuple(sorted(sections.get(content, ())))))
        return rows

    def _write_chunk_index(self, hnsw_threshold: int) -> tuple[dict, int, int]:
        """Write the chunk store's index of this generation: only the chunks added since the previous
        generation when every earlier chunk is kept and the store can append, else all of them. Returns what the
        store said about it, the number of chunks and the highest chunk id."""
        assert self.db is not None and self.generation is not None
        count, last = self.db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM chunks").fetchone()
        before = self._previous or {}
        previous_last = before.get("last_chunk_id")
        if self._previous_generation is not None and previous_last is not None:
            kept = self.db.execute("SELECT COUNT(*) FROM chunks WHERE id <= ?", (previous_last,)).fetchone()[0]
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
        where, chunks, last = self._write_chunk_index(hnsw_threshold)
        documents = self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        manifest = generations.new_manifest(self.settings, {**where, "last_chunk_id": last}, chunks, documents,
                                            extra)
        self.db.close()
        self.db = None
        generations.publish(self.index_dir, self.generation, manifest)
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
