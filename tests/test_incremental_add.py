"""Adding articles to an index writes only the new chunks, as a segment of their own: the earlier segments' files
are the same files on disk in the new generation, and searches over the segments rank as one index would. A
removed or changed article, or too many segments, writes the index whole again."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import write_files

from rag.config import Config
from rag.index import generations
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
    """Each file of the live generation's chunk index, by its path in the generation, with its inode."""
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
    assert all(path.startswith(manifest["segments"][1] + "/") for path in set(after) - set(before))
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
    assert generations.read_manifest(config.index_dir)["segments"] == [""]
    for n in range(faiss_store.MAX_SEGMENTS + 1):
        write_files(corpus, {f"sport/more{n}.txt": article(f"Match {n} report", f"Goal number {n} won it.")})
        build_index([corpus], config, embedder)
        segments = generations.read_manifest(config.index_dir)["segments"]
        assert len(segments) == (n + 2 if n < faiss_store.MAX_SEGMENTS else 1)
    assert IndexReader(config.index_dir).chunk_count == generations.read_manifest(config.index_dir)["chunks"]
    assert os.listdir(config.index_dir).count("CURRENT") == 1
