"""Incremental indexing, exact duplicates and near-duplicate (syndicated) copies."""

from __future__ import annotations

import re
import shutil
import sqlite3

import numpy as np
import pytest
from store_helpers import store_config

from rag.config import Config
from rag.errors import IndexMismatch
from rag.index import catalog, generations
from rag.index.build import build_index
from rag.index.catalog import IndexReader
from rag.models.embedding import model_id
from rag.qa.retrieval import Retriever

NEW_PARAGRAPH = ("A late frost in April damaged blossom in the highest orchards, and insurers have already "
                 "received claims from eleven farms near the reservoir.")


def table_count(config: Config, sql: str, *args) -> int:
    generation = generations.current_generation(config.index_dir)
    db = sqlite3.connect(f"file:{generation / catalog.SQLITE}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchone()[0]
    finally:
        db.close()


def stored_chunks(config: Config) -> int:
    """The chunk rows of the live generation's catalog (every part of it)."""
    reader = IndexReader(config.index_dir)
    try:
        return len(reader.span_rows("chunk"))
    finally:
        reader.close()


def open_retriever(config: Config, embedder) -> Retriever:
    return Retriever(IndexReader(config.index_dir, expected_model=model_id()), embedder, config)


@pytest.fixture
def corpus(make_corpus):
    return make_corpus()


@pytest.fixture
def config(tmp_path, store_name) -> Config:
    """An empty index folder, once with chunks in FAISS and once in Milvus (Lite)."""
    return store_config(store_name, tmp_path / "index")


def test_the_first_build_adds_and_embeds_every_document(corpus, config, embedder, sample_articles):
    report = build_index([corpus], config, embedder=embedder)
    assert sorted(report.added) == sorted(sample_articles)
    assert report.updated == report.unchanged == report.removed == report.errors == []
    assert report.documents == 3 and report.chunks > 0
    assert report.embedded_chunks == report.chunks == stored_chunks(config)
    assert "3 added" in report.summary()


def test_build_an_unchanged_folder_again_embeds_nothing(
        corpus, config, embedder, sample_articles, read_spans):
    first = build_index([corpus], config, embedder=embedder)
    spans_before = read_spans(config.index_dir)
    second = build_index([corpus], config, embedder=embedder)
    assert second.embedded_chunks == 0
    assert sorted(second.unchanged) == sorted(sample_articles)
    assert second.added == second.updated == second.removed == []
    assert second.chunks == first.chunks and second.documents == first.documents
    assert read_spans(config.index_dir) == spans_before


def test_a_changed_file_is_re_embedded_and_its_old_chunks_are_dropped(corpus, config, embedder, read_spans):
    build_index([corpus], config, embedder=embedder)
    orchard = corpus / "orchard.txt"
    orchard.write_text(orchard.read_text(encoding="utf-8") + "\n" + NEW_PARAGRAPH + "\n", encoding="utf-8")

    report = build_index([corpus], config, embedder=embedder)
    assert report.updated == ["orchard.txt"]
    assert sorted(report.unchanged) == ["harbour.txt", "observatory.txt"]
    orchard_chunks = [s for s in read_spans(config.index_dir) if s.doc == "orchard.txt" and s.kind == "chunk"]
    assert report.embedded_chunks == len(orchard_chunks) > 0
    assert table_count(config, "SELECT COUNT(*) FROM contents") == 3
    assert report.chunks == stored_chunks(config)

    [top, *_] = open_retriever(config, embedder).search(NEW_PARAGRAPH, k=3)
    assert top.doc == "orchard.txt" and NEW_PARAGRAPH in top.text


def test_deleted_files_stay_in_the_index_until_prune(corpus, config, embedder, read_spans):
    build_index([corpus], config, embedder=embedder)
    (corpus / "observatory.txt").unlink()

    kept = build_index([corpus], config, embedder=embedder)
    assert kept.removed == [] and kept.documents == 3
    assert any(s.doc == "observatory.txt" for s in read_spans(config.index_dir))

    pruned = build_index([corpus], config, embedder=embedder, prune=True)
    assert pruned.removed == ["observatory.txt"] and pruned.documents == 2 and pruned.embedded_chunks == 0
    assert not any(s.doc == "observatory.txt" for s in read_spans(config.index_dir))
    assert table_count(config, "SELECT COUNT(*) FROM contents") == 2
    hits = open_retriever(config, embedder).search("comet passing inside the orbit of Mars", k=5)
    assert hits and all(p.doc != "observatory.txt" for p in hits)


def test_identical_content_under_two_names_is_stored_and_embedded_once(
        make_corpus, config, embedder, sample_articles, read_spans):
    harbour = sample_articles["harbour.txt"]
    corpus = make_corpus(dict(sample_articles, **{"mirror/harbour-copy.txt": harbour}))
    report = build_index([corpus], config, embedder=embedder)
    assert sorted(report.added) == sorted([*sample_articles, "mirror/harbour-copy.txt"])
    assert report.documents == 4
    assert table_count(config, "SELECT COUNT(*) FROM contents") == 3
    spans = read_spans(config.index_dir)
    original = [(s.kind, s.start, s.end) for s in spans if s.doc == "harbour.txt"]
    mirrored = [(s.kind, s.start, s.end) for s in spans if s.doc == "mirror/harbour-copy.txt"]
    assert original and mirrored == original
    harbour_chunks = sum(1 for kind, _, _ in original if kind == "chunk")
    assert report.chunks == stored_chunks(config)
    assert report.embedded_chunks == report.chunks
    assert report.chunks == harbour_chunks + sum(
        1 for s in spans if s.kind == "chunk" and s.doc in ("orchard.txt", "observatory.txt"))


def test_the_summary_counts_identical_copies_and_near_duplicate_groups(syndicated, make_corpus, config, embedder,
                                                                     sample_articles):
    *_, report = syndicated
    assert report.identical_copies == 0 and report.near_duplicate_groups == 1
    assert "0 identical copies stored once, 1 near-duplicate groups" in report.summary()
    corpus = make_corpus(dict(sample_articles, **{"mirror/harbour-copy.txt": sample_articles["harbour.txt"]}))
    report = build_index([corpus], config, embedder=embedder)
    assert (report.identical_copies, report.near_duplicate_groups) == (1, 0)
    assert "1 identical copies stored once" in report.summary()


def test_sentence_vectors_are_pooled_from_their_chunk_and_close_to_embedding_each_sentence(
        bundled_reader, bundled_index, embedder):
    """Late chunking: a sentence's vector is read from its chunk's forward pass, not from one of its own. It is
    a contextual vector, so not equal to embedding the sentence alone, but close (and the same in both
    engines and both backends; see test_ray_engine and test_embedding)."""
    assert generations.read_manifest(bundled_index.index_dir)["sentence_vectors"] == "pooled"
    rows = bundled_reader.span_rows("sentence")
    stored = np.vstack([row.vector for row in rows])
    alone = embedder.embed([bundled_reader.text_of_content(row.content_hash)[row.start : row.end] for row in rows])
    similarity = (stored * alone).sum(axis=1)
    assert np.allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-4)
    assert np.median(similarity) > 0.8 and similarity.min() > 0.4
    assert not np.allclose(stored, alone, atol=1e-3)


def test_embedding_each_sentence_on_its_own_stays_available_and_an_index_keeps_its_way(
        copy_index, sample_index, embedder, tmp_path):
    config = copy_index(sample_index)
    corpus = sample_index.index_dir.parent / "corpus"
    build_index([corpus], config.replace(sentence_vectors="embedded"), embedder=embedder, rebuild=True)
    assert generations.read_manifest(config.index_dir)["sentence_vectors"] == "embedded"
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "late.txt").write_text("Late News\n\nThe ferry to the island was cancelled on Sunday.")
    build_index([tmp_path / "more"], config, embedder=embedder)  # the default is "pooled"
    assert generations.read_manifest(config.index_dir)["sentence_vectors"] == "embedded"
    reader = IndexReader(config.index_dir)
    first, *_ = reader.span_rows("sentence")
    text = reader.text_of_content(first.content_hash)
    assert np.allclose(first.vector, embedder.embed_one(text[first.start : first.end]), atol=1e-5)
    reader.close()


def test_a_search_hit_on_duplicated_content_lists_the_other_name(
        make_corpus, config, embedder, sample_articles):
    corpus = make_corpus(dict(sample_articles, **{"mirror/harbour-copy.txt": sample_articles["harbour.txt"]}))
    build_index([corpus], config, embedder=embedder)
    passages = open_retriever(config, embedder).search("harbour reopened after the storm", k=5)
    hit = passages[0]
    assert hit.doc == "harbour.txt"
    assert hit.chunk.same_text_as == ("mirror/harbour-copy.txt",)
    assert hit.to_dict()["duplicates"] == ["mirror/harbour-copy.txt"]
    assert all(p.doc != "mirror/harbour-copy.txt" for p in passages)


def test_a_renamed_file_is_not_embedded_again(corpus, config, embedder):
    build_index([corpus], config, embedder=embedder)
    (corpus / "harbour.txt").rename(corpus / "port-alder.txt")
    report = build_index([corpus], config, embedder=embedder, prune=True)
    assert report.added == ["port-alder.txt"] and report.removed == ["harbour.txt"]
    assert report.embedded_chunks == 0
    [top, *_] = open_retriever(config, embedder).search("harbour reopened after the storm", k=3)
    assert top.doc == "port-alder.txt" and top.chunk.same_text_as == ()


def test_build_with_other_chunking_settings_is_refused_without_rebuild(copy_index, sample_index, embedder):
    config = copy_index(sample_index)
    corpus = sample_index.index_dir.parent / "corpus"
    live = generations.current_generation(config.index_dir)
    for change in ({"chunk_chars": 300}, {"chunk_overlap_sentences": 0}):
        with pytest.raises(IndexMismatch) as caught:
            build_index([corpus], config.replace(**change), embedder=embedder)
        [(name, value)] = change.items()
        assert name in str(caught.value) and "--rebuild" in str(caught.value)
        assert generations.current_generation(config.index_dir) == live
        assert sorted(config.index_dir.glob("gen-*")) == [live]

    report = build_index([corpus], config.replace(chunk_chars=300), embedder=embedder, rebuild=True)
    assert report.embedded_chunks == report.chunks > 0 and len(report.added) == 3
    assert generations.read_manifest(config.index_dir)["chunk_chars"] == 300


@pytest.fixture(scope="module")
def syndicated(tmp_path_factory, bundled_index, articles_dir, embedder):
    """The bundled index extended with a wire copy of one article: new headline, a few words replaced,
    a credit line added. Returns (config, original id, copy id, report)."""
    root = tmp_path_factory.mktemp("syndicated")
    corpus = root / "articles"
    shutil.copytree(articles_dir, corpus)
    original = sorted(p.name for p in articles_dir.iterdir())[2]
    text = (corpus / original).read_text(encoding="utf-8")
    headline, body = text.split("\n", 1)
    words = list(re.finditer(r"\b[a-z]{6,}\b", body))
    assert len(words) > 100
    for match in reversed([words[10], words[45], words[90]]):
        body = body[: match.start()] + "reportedly" + body[match.end() :]
    copy_name = "wire/syndicated-copy.txt"
    (corpus / "wire").mkdir()
    (corpus / copy_name).write_text(
        f"Wire Exclusive: Washington Sets Deadline for Caracas\n{body}\nDistributed by Example Wire\n",
        encoding="utf-8",
    )
    config = bundled_index.replace(index_dir=root / "index")
    shutil.copytree(bundled_index.index_dir, config.index_dir, ignore=shutil.ignore_patterns(".lock"))
    report = build_index([corpus], config, embedder=embedder)
    return config, original, copy_name, report


def test_a_syndicated_copy_is_grouped_with_its_original(syndicated):
    config, original, copy_name, report = syndicated
    assert report.added == [copy_name] and len(report.unchanged) == 5
    assert report.embedded_chunks > 0, "a near-duplicate is still indexed in its own right"
    reader = IndexReader(config.index_dir, expected_model=model_id())
    hashes = {d.id: d.content_hash for d in reader.documents()}
    groups = dict(reader.db.execute("SELECT hash, dup_group FROM contents"))
    assert groups[hashes[original]] == groups[hashes[copy_name]]
    others = [groups[h] for doc, h in hashes.items() if doc not in (original, copy_name)]
    assert len(set(others)) == 4 and groups[hashes[original]] not in others
    reader.close()


def test_retrieval_returns_one_copy_of_a_syndicated_story_and_lists_the_other(syndicated, embedder):
    config, original, copy_name, _ = syndicated
    retriever = open_retriever(config, embedder)
    sentences = retriever.reader.sentences_of(original)
    for sentence in sentences[1:4]:
        passages = retriever.search(sentence.text, k=8)
        docs = [p.doc for p in passages]
        assert (original in docs) != (copy_name in docs), docs
        kept, other = (original, copy_name) if original in docs else (copy_name, original)
        for passage in passages:
            if passage.doc == kept:
                assert other in passage.to_dict()["duplicates"]
            else:
                assert kept not in passage.to_dict()["duplicates"]


def test_the_five_bundled_articles_are_not_near_duplicates_of_each_other(bundled_reader):
    groups = dict(bundled_reader.db.execute("SELECT hash, dup_group FROM contents"))
    assert len(groups) == 5 and len(set(groups.values())) == 5
    records = bundled_reader.chunks(row.id for row in bundled_reader.span_rows("chunk")).values()
    assert all(r.near_duplicates == () and r.same_text_as == () for r in records)
