"""Adding articles to an index writes only the new chunks, as a segment of their own: the earlier segments' files
are the same files on disk in the new generation, and searches over the segments rank as one index would. A
removed or changed article, or too many segments, writes the index whole again."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import write_files

from rag.config import Config
from rag.index import catalog, generations
from rag.index.backends import faiss as faiss_store
from rag.index.build import build_index
from rag.index.catalog import IndexReader
from rag.models.embedding import Embedder


def article(headline: str, body: str) -> str:
    return f"{headline}\n\n{body} The council said more would follow.\n"


FIRST = {
    "sport/a.txt": article("Derby crossing closed", "Crowds gathered early at the stadium for the derby."),
    "sport/b.txt": article("Relay decided by the anchor leg", "The relay ended in a photo finish at the track."),
    "economy/c.txt": article("Harbour fees to rise", "Shipping firms objected to the harbour fees."),
    "economy/d.txt": article("Budget surplus surprises analysts", "Tax receipts rose faster than forecast."),
}
ADDED = {
    "sport/e.txt": article("Rowing crew wins on the river", "The rowing crew beat the champions by a length."),
    "economy/f.txt": article("Ferry operator reports a loss", "The ferry operator blamed harbour fees and fuel."),
}
QUERIES = ["harbour fees", "rowing crew river", "relay photo finish", "ferry loss fuel"]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.for_config(Config())


def grown(tmp_path: Path, embedder: Embedder) -> tuple[Config, Path]:
    """An index of FIRST, then the same index after ADDED were written beside them and indexed."""
    config = Config(index_dir=tmp_path / "index")
    corpus = write_files(tmp_path / "corpus", FIRST)
    build_index([corpus], config, embedder)
    write_files(corpus, ADDED)
    build_index([corpus], config, embedder)
    return config, corpus


def segment_files(index_dir: Path) -> dict[str, int]:
    """Each file of the live generation's chunk index and catalog parts (the documents' ``meta.sqlite``
    aside, which each generation copies), by its path in the generation, with its inode."""
    generation = generations.current_generation(index_dir)
    assert generation is not None
    return {str(f.relative_to(generation)): f.stat().st_ino for f in generation.rglob("*")
            if f.is_file() and f.name not in ("manifest.json", "meta.sqlite")}


def searches(reader: IndexReader, embedder: Embedder) -> list:
    """Dense and BM25 hits, unfiltered and within a section, as (article, offset, score); and idf weights."""
    sport = reader.within("sport")
    found: list = []
    for query in QUERIES:
        vector = embedder.embed_one(query)
        for hits in (reader.dense(vector, 5), reader.dense(vector, 3, sport), reader.lexical(query, 5),
                     reader.lexical(query, 3, sport)):
            chunks = reader.chunks(i for i, _ in hits)
            found.append([(chunks[i].doc, chunks[i].start, score) for i, score in hits])
        found.append(reader.idf(query.split()))
    return found


def test_added_articles_are_a_new_segment_and_earlier_files_are_not_rewritten(tmp_path, embedder):
    config = Config(index_dir=tmp_path / "index")
    corpus = write_files(tmp_path / "corpus", FIRST)
    build_index([corpus], config, embedder)
    before = segment_files(config.index_dir)
    write_files(corpus, ADDED)
    report = build_index([corpus], config, embedder)
    assert sorted(report.added) == sorted(ADDED)
    manifest = generations.read_manifest(config.index_dir)
    assert manifest["segments"][0] == "" and len(manifest["segments"]) == 2
    after = segment_files(config.index_dir)
    assert {path: after[path] for path in before} == before, "the earlier chunks' files are the same files"
    assert manifest[catalog.PARTS] == ["texts-1.sqlite", "texts-2.sqlite"], "the added texts are a new part"
    assert all(path.startswith(manifest["segments"][1] + "/") or path == "texts-2.sqlite"
               for path in set(after) - set(before))
    reader = IndexReader(config.index_dir)
    assert reader.chunk_count == manifest["chunks"] == len(reader.chunk_ids_in("sport")) + len(
        reader.chunk_ids_in("economy"))


def test_a_search_over_segments_finds_what_one_index_of_the_same_articles_finds(tmp_path, embedder):
    config, corpus = grown(tmp_path, embedder)
    whole = Config(index_dir=tmp_path / "whole")
    build_index([corpus], whole, embedder)
    assert generations.read_manifest(whole.index_dir)["segments"] == [""]
    one, two = IndexReader(whole.index_dir), IndexReader(config.index_dir)
    for n, (single, segmented) in enumerate(zip(searches(one, embedder), searches(two, embedder), strict=True)):
        if isinstance(single, dict):  # idf: the whole index's, exactly
            assert segmented == pytest.approx(single)
            continue
        # The same passages in the same order; dense scores are the same inner products, BM25's differ only by
        # each segment's own average chunk length.
        assert [hit[:2] for hit in segmented] == [hit[:2] for hit in single]
        dense = n % 5 < 2
        assert np.allclose([hit[2] for hit in segmented], [hit[2] for hit in single], rtol=1e-5 if dense else 0.1)


def test_a_changed_article_or_too_many_segments_writes_the_index_whole_again(tmp_path, embedder):
    config, corpus = grown(tmp_path, embedder)
    write_files(corpus, {"sport/a.txt": article("Derby crossing reopened", "The crossing reopened on Monday.")})
    report = build_index([corpus], config, embedder)
    assert report.updated == ["sport/a.txt"]
    manifest = generations.read_manifest(config.index_dir)
    assert manifest["segments"] == [""]
    assert len(manifest[catalog.PARTS]) == 1, "the replaced text's rows are not carried along"
    assert len(IndexReader(config.index_dir).span_rows("chunk")) == manifest["chunks"]
    parts = 1
    for n in range(max(faiss_store.MAX_SEGMENTS, catalog.MAX_PARTS) + 1):
        write_files(corpus, {f"sport/more{n}.txt": article(f"Match {n} report", f"Goal number {n} won it.")})
        build_index([corpus], config, embedder)
        manifest = generations.read_manifest(config.index_dir)
        assert len(manifest["segments"]) == (n + 2 if n < faiss_store.MAX_SEGMENTS else 1)
        parts = parts + 1 if parts < catalog.MAX_PARTS else 1
        assert len(manifest[catalog.PARTS]) == parts
    reader = IndexReader(config.index_dir)
    assert reader.chunk_count == manifest["chunks"] == len(reader.span_rows("chunk"))
    assert sorted(p.name for p in generations.current_generation(config.index_dir).glob("texts-*")) == sorted(
        manifest[catalog.PARTS]), "no part file is left behind"
    assert os.listdir(config.index_dir).count("CURRENT") == 1


def before_parts(index_dir: Path) -> None:
    """Rewrite the live generation as a catalog from before parts were written: one ``meta.sqlite`` holding the
    documents, texts, chunks and sentences, and a manifest that lists no parts."""
    generation = generations.current_generation(index_dir)
    assert generation is not None
    manifest = generations.read_manifest(index_dir)
    db = sqlite3.connect(generation / catalog.SQLITE)
    for i, name in enumerate(manifest.pop(catalog.PARTS)):
        db.execute(f"ATTACH DATABASE ? AS part{i}", (str(generation / name),))
    texts = " UNION ALL ".join(f"SELECT * FROM part{i}.texts" for i in range(len(db.execute(
        "PRAGMA database_list").fetchall()) - 1))
    db.executescript(f"""
        CREATE TABLE old_contents (hash TEXT PRIMARY KEY, text TEXT NOT NULL, dup_group TEXT NOT NULL,
                                   minhash BLOB);
        INSERT INTO old_contents SELECT t.hash, t.text, c.dup_group, t.minhash FROM ({texts}) t
            JOIN contents c ON c.hash = t.hash;
        DROP TABLE contents;
        ALTER TABLE old_contents RENAME TO contents;
        CREATE TABLE chunks AS SELECT * FROM part0.chunks;
        CREATE TABLE sentences AS SELECT * FROM part0.sentences;
    """)
    db.close()
    for name in generation.glob("texts-*.sqlite"):
        name.unlink()
    (generation / generations.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def test_an_index_from_before_parts_reads_alike_and_is_split_when_next_indexed(tmp_path, embedder):
    config = Config(index_dir=tmp_path / "index")
    corpus = write_files(tmp_path / "corpus", FIRST)
    build_index([corpus], config, embedder)
    reader = IndexReader(config.index_dir)
    expected = searches(reader, embedder), reader.span_rows("sentence"), reader.document_spans("chunk")
    reader.close()
    before_parts(config.index_dir)
    old = IndexReader(config.index_dir)
    assert (searches(old, embedder), old.span_rows("sentence"), old.document_spans("chunk")) == expected
    old.close()
    write_files(corpus, ADDED)
    build_index([corpus], config, embedder)
    manifest = generations.read_manifest(config.index_dir)
    assert manifest[catalog.PARTS] == ["texts-1.sqlite", "texts-2.sqlite"]
    grown_reader, whole = IndexReader(config.index_dir), Config(index_dir=tmp_path / "whole")
    build_index([corpus], whole, embedder)
    one = IndexReader(whole.index_dir)
    assert [r.id for r in grown_reader.span_rows("chunk")] == [r.id for r in one.span_rows("chunk")]
    assert grown_reader.document_spans("sentence") == one.document_spans("sentence")
    assert grown_reader.sections() == one.sections()


def words(first: int, last: int) -> str:
    return " ".join(f"word{n}" for n in range(first, last + 1)) + "."


def groups(reader: IndexReader) -> dict[str, str]:
    """Each document and its near-duplicate group, named by the group's first document."""
    by_content = dict(reader.db.execute("SELECT hash, dup_group FROM main.contents"))
    first = {}
    for doc in reader.documents():
        first.setdefault(by_content[doc.content_hash], doc.id)
    return {doc.id: first[by_content[doc.content_hash]] for doc in reader.documents()}


def test_a_text_added_later_joins_the_groups_it_is_a_near_copy_of_as_one_build_of_every_text_groups_them(
        tmp_path, embedder):
    # A and B share too little to be one group (5-word shingles: Jaccard 0.66); C shares 0.86 with A and 0.79 with B.
    config = Config(index_dir=tmp_path / "index")
    corpus = write_files(tmp_path / "corpus", {**FIRST, "wire/a.txt": f"Wire story\n\n{words(1, 100)}\n",
                                               "wire/b.txt": f"Wire story\n\n{words(22, 121)}\n"})
    build_index([corpus], config, embedder)
    reader = IndexReader(config.index_dir)
    assert groups(reader)["wire/a.txt"] != groups(reader)["wire/b.txt"]
    reader.close()
    write_files(corpus, {"wire/c.txt": f"Wire story\n\n{words(8, 107)}\n", **ADDED})
    build_index([corpus], config, embedder)
    grown_groups = groups(IndexReader(config.index_dir))
    assert grown_groups["wire/a.txt"] == grown_groups["wire/b.txt"] == grown_groups["wire/c.txt"]
    whole = Config(index_dir=tmp_path / "whole")
    build_index([corpus], whole, embedder)
    assert grown_groups == groups(IndexReader(whole.index_dir))
    # Removing the text that joined them splits the group again.
    (corpus / "wire" / "c.txt").unlink()
    build_index([corpus], config, embedder, prune=True)
    after = groups(IndexReader(config.index_dir))
    assert after["wire/a.txt"] != after["wire/b.txt"]


def test_removing_every_article_leaves_no_part_of_texts(tmp_path, embedder):
    config, corpus = grown(tmp_path, embedder)
    for path in list(corpus.rglob("*.txt")):
        path.unlink()
    build_index([corpus], config, embedder, prune=True)
    manifest = generations.read_manifest(config.index_dir)
    assert manifest[catalog.PARTS] == [] and manifest["chunks"] == 0
    assert not list(generations.current_generation(config.index_dir).glob("texts-*"))
    reader = IndexReader(config.index_dir)
    assert reader.chunk_count == 0 and reader.documents() == [] and reader.span_rows("sentence") == []
