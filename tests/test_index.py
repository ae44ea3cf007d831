"""The on-disk index: the offset invariant, the manifest, refusal of mismatched indexes, HNSW, corruption
and atomic generations."""

from __future__ import annotations

import json
import shutil

import faiss
import numpy as np
import pytest
from store_helpers import store_config

from rag.config import Config
from rag.errors import IndexCorrupt, IndexMismatch, IndexMissing
from rag.index import catalog, generations
from rag.index.backends import faiss as faiss_store
from rag.index.build import build_index, index_settings
from rag.index.catalog import IndexReader, IndexWriter
from rag.models.embedding import DIMENSION, model_id
from rag.qa.retrieval import Retriever


# --- the offset invariant ---------------------------------------------------------------------------------
def test_stored_document_text_is_the_file_decoded_as_utf8(bundled_reader, articles_dir):
    documents = bundled_reader.documents()
    assert sorted(d.id for d in documents) == sorted(p.name for p in articles_dir.iterdir())
    for doc in documents:
        assert bundled_reader.document_text(doc.id) == (articles_dir / doc.id).read_bytes().decode("utf-8")


def test_every_chunk_and_sentence_is_the_exact_slice_of_the_original_file(bundled_spans, articles_dir):
    files = {p.name: p.read_bytes().decode("utf-8") for p in articles_dir.iterdir()}
    assert {s.doc for s in bundled_spans} == set(files)
    for span in bundled_spans:
        text = files[span.doc]
        assert 0 <= span.start < span.end <= len(text)
        assert text[span.start : span.end] == span.text
        assert span.text == span.text.strip()


def test_reader_chunks_and_their_sentences_satisfy_the_offset_invariant(bundled_reader):
    chunk_ids = [row.id for row in bundled_reader.span_rows("chunk")]
    assert len(chunk_ids) == bundled_reader.chunk_count == bundled_reader.manifest["chunks"] > 0
    records = bundled_reader.chunks(chunk_ids)
    assert sorted(records) == sorted(chunk_ids)
    for record in records.values():
        text = bundled_reader.document_text(record.doc)
        assert record.text == text[record.start : record.end]
        assert record.title == bundled_reader.document(record.doc).title
        sentences = bundled_reader.sentences_in(record)
        assert sentences, "a chunk is made of sentences"
        # A chunk starts exactly at its first sentence and ends exactly at its last: never mid-sentence.
        assert sentences[0].start == record.start and sentences[-1].end == record.end
        for sentence in sentences:
            assert sentence.doc == record.doc
            assert sentence.text == text[sentence.start : sentence.end]


def test_neighbours_are_the_adjacent_sentences_of_the_same_document(bundled_reader):
    first_chunk = bundled_reader.span_rows("chunk")[0].id
    [record] = bundled_reader.chunks([first_chunk]).values()
    sentences = bundled_reader.sentences_in(record)
    before, after = bundled_reader.neighbours(sentences[0])
    assert after is not None and after.start >= sentences[0].end
    assert before is None or before.end <= sentences[0].start
    for found in (before, after):
        if found is not None:
            assert found.text == bundled_reader.document_text(record.doc)[found.start : found.end]


def test_stored_vectors_are_the_embeddings_of_the_stored_spans(bundled_reader, embedder):
    chunk_ids = [row.id for row in bundled_reader.span_rows("chunk")]
    records = bundled_reader.chunks(chunk_ids)
    stored = np.vstack([bundled_reader.chunk_vector(i) for i in chunk_ids])
    fresh = embedder.embed([records[i].text for i in chunk_ids])
    assert stored.shape == (len(chunk_ids), DIMENSION)
    np.testing.assert_allclose(np.sum(stored * fresh, axis=1), 1.0, atol=1e-3)

    # A sentence's vector is pooled from the first chunk that holds it (rag.index.engines.embed_spans).
    record = records[chunk_ids[0]]
    sentences = bundled_reader.sentences_in(record)
    _, [pooled] = embedder.embed_with_spans([record.text], [[(s.start - record.start, s.end - record.start)
                                                              for s in sentences]])
    stored = np.vstack([s.vector for s in sentences])
    np.testing.assert_allclose(np.sum(stored * np.vstack(pooled), axis=1), 1.0, atol=1e-3)


# --- the manifest -----------------------------------------------------------------------------------------
def test_the_manifest_records_what_the_index_is_bound_to(bundled_index, bundled_build):
    manifest = generations.read_manifest(bundled_index.index_dir)
    assert manifest["embedding_model"] == model_id()
    assert manifest["dimension"] == DIMENSION
    assert manifest["chunk_chars"] == bundled_index.chunk_chars
    assert manifest["chunk_overlap_sentences"] == bundled_index.chunk_overlap_sentences
    assert manifest["dense_index"] == "flat" == bundled_build[1].dense_index
    assert manifest["documents"] == 5 and manifest["chunks"] == bundled_build[1].chunks
    assert manifest["format_version"] == generations.FORMAT_VERSION


def edit_manifest(config, **changes) -> None:
    path = generations.current_generation(config.index_dir) / generations.MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_an_index_built_with_another_embedding_model_is_refused(copy_index, bundled_index, embedder):
    config = copy_index(bundled_index)
    edit_manifest(config, embedding_model="other-embedder (other-package 9.9)")
    with pytest.raises(IndexMismatch) as caught:
        IndexReader(config.index_dir, expected_model=model_id())
    message = str(caught.value)
    assert "other-embedder" in message and model_id() in message and "--rebuild" in message
    with pytest.raises(IndexMismatch):
        Retriever.open(config, embedder)


def test_an_index_of_another_format_version_is_refused(copy_index, sample_index):
    config = copy_index(sample_index)
    edit_manifest(config, format_version=generations.FORMAT_VERSION + 1)
    with pytest.raises(IndexMismatch, match="rebuild"):
        IndexReader(config.index_dir)


def test_extending_an_index_built_with_another_embedding_model_is_refused(copy_index, sample_index, embedder):
    config = copy_index(sample_index)
    edit_manifest(config, embedding_model="other-embedder (other-package 9.9)")
    with pytest.raises(IndexMismatch, match="embedding_model"):
        build_index([sample_index.index_dir.parent / "corpus"], config, embedder=embedder)


def test_above_the_hnsw_threshold_the_dense_index_is_hnsw_and_finds_the_same_passages(
        copy_index, bundled_index, bundled_retriever, articles_dir, embedder, dev_qa):
    config = copy_index(bundled_index).replace(hnsw_threshold=1)
    report = build_index([articles_dir], config, embedder=embedder)
    assert report.dense_index == "hnsw" and report.embedded_chunks == 0
    assert generations.read_manifest(config.index_dir)["dense_index"] == "hnsw"
    hnsw = Retriever.open(config, embedder)
    inner = faiss.downcast_index(hnsw.reader.chunk_index.dense_index.index)
    assert isinstance(inner, faiss.IndexHNSWFlat)
    assert inner.hnsw.efSearch == faiss_store.hnsw_ef_search(inner.ntotal) == 128
    def spans(retriever, question):
        return [(p.doc, p.chunk.start, p.chunk.end) for p in retriever.search(question, k=5)]

    for item in dev_qa:
        assert spans(hnsw, item["question"]) == spans(bundled_retriever, item["question"])

    back = build_index([articles_dir], config.replace(hnsw_threshold=10_000), embedder=embedder)
    assert back.dense_index == "flat" and back.embedded_chunks == 0


def test_an_index_of_a_folder_without_any_good_file_is_empty_but_valid(make_corpus, tmp_path, embedder):
    corpus = make_corpus({"empty.txt": "", "notes.csv": "a,b"})
    config = Config(index_dir=tmp_path / "index")
    report = build_index([corpus], config, embedder=embedder)
    assert report.documents == report.chunks == 0 and len(report.errors) == 1
    retriever = Retriever.open(config, embedder)
    assert retriever.reader.chunk_count == 0
    assert retriever.search("anything at all", k=5) == []


# --- missing, corrupt and half-written indexes --------------------------------------------------------------
def test_a_folder_without_an_index_is_reported_as_missing(tmp_path):
    with pytest.raises(IndexMissing, match="rag index"):
        IndexReader(tmp_path / "nothing-here")


def truncate(path, keep: float) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(int(size * keep))


CORRUPTIONS = {
    "truncated dense.faiss": lambda gen: truncate(gen / faiss_store.DENSE, 0.5),
    "empty dense.faiss": lambda gen: truncate(gen / faiss_store.DENSE, 0),
    "missing dense.faiss": lambda gen: (gen / faiss_store.DENSE).unlink(),
    "garbage meta.sqlite": lambda gen: (gen / catalog.SQLITE).write_bytes(b"this is not a database" * 100),
    "missing meta.sqlite": lambda gen: (gen / catalog.SQLITE).unlink(),
    "missing texts part": lambda gen: (gen / "texts-1.sqlite").unlink(),
    "garbage texts part": lambda gen: (gen / "texts-1.sqlite").write_bytes(b"this is not a database" * 100),
    "truncated manifest": lambda gen: truncate(gen / generations.MANIFEST, 0.5),
    "missing bm25 folder": lambda gen: shutil.rmtree(gen / faiss_store.LEXICAL),
    "CURRENT names a missing generation": lambda gen: (gen.parent / generations.CURRENT_FILE).write_text("gen-0"),
}


@pytest.mark.parametrize("damage", list(CORRUPTIONS))
def test_a_damaged_index_is_refused_with_one_line_that_says_to_rebuild(
        copy_index, sample_index, embedder, damage):
    config = copy_index(sample_index)
    CORRUPTIONS[damage](generations.current_generation(config.index_dir))
    with pytest.raises(IndexCorrupt) as caught:
        IndexReader(config.index_dir, expected_model=model_id())
    message = str(caught.value)
    assert "rebuild" in message and "\n" not in message
    if "part" in damage or "meta.sqlite" in damage:  # the file at fault is named
        assert ("texts-1.sqlite" if "part" in damage else "meta.sqlite") in message

    # Following the advice repairs it.
    report = build_index([sample_index.index_dir.parent / "corpus"], config, embedder=embedder, rebuild=True)
    assert report.documents == 3 and not report.errors
    assert IndexReader(config.index_dir, expected_model=model_id()).chunk_count == report.chunks


def generation_names(config):
    return sorted(p.name for p in config.index_dir.glob("gen-*"))


def test_an_exception_inside_a_writer_leaves_the_previous_generation_live(copy_index, sample_index):
    config = copy_index(sample_index)
    live = generations.current_generation(config.index_dir)
    documents_before = IndexReader(config.index_dir).documents()
    with pytest.raises(RuntimeError, match="disk full"):
        with IndexWriter(config.index_dir, index_settings(config)) as writer:
            writer.remove_document(documents_before[0].id)
            writer.put_document("new.txt", "new.txt", "New", None, None, None, "0" * 64)
            half_written = writer.generation
            assert half_written.exists() and half_written != live
            raise RuntimeError("disk full")
    assert not half_written.exists()
    assert generations.current_generation(config.index_dir) == live
    assert generation_names(config) == [live.name]
    assert IndexReader(config.index_dir, expected_model=model_id()).documents() == documents_before


def test_a_build_that_fails_midway_leaves_the_previous_generation_live(copy_index, sample_index, embedder):
    """Chunking with chunk_chars=0 raises after the writer has copied the metadata and replaced documents."""
    config = copy_index(sample_index)
    live = generations.current_generation(config.index_dir)
    documents_before = IndexReader(config.index_dir).documents()
    with pytest.raises(ValueError):
        build_index([sample_index.index_dir.parent / "corpus"], config.replace(chunk_chars=0),
                    embedder=embedder, rebuild=True)
    assert generations.current_generation(config.index_dir) == live
    assert generation_names(config) == [live.name]
    reader = IndexReader(config.index_dir, expected_model=model_id())
    assert reader.documents() == documents_before
    assert reader.chunk_count == generations.read_manifest(config.index_dir)["chunks"]


def test_a_half_written_generation_from_a_crash_is_ignored_and_then_cleaned_up(
        copy_index, sample_index, embedder):
    config = copy_index(sample_index)
    live = generations.current_generation(config.index_dir)
    crashed = config.index_dir / "gen-1"
    crashed.mkdir()
    (crashed / catalog.SQLITE).write_bytes(b"partial")
    assert IndexReader(config.index_dir).generation == live
    build_index([sample_index.index_dir.parent / "corpus"], config, embedder=embedder)
    assert not crashed.exists()
    assert generation_names(config) == [generations.current_generation(config.index_dir).name]


def test_a_reader_keeps_its_generation_while_a_new_one_is_built(
        copy_index, sample_index, embedder, sample_articles):
    config = copy_index(sample_index)
    reader = IndexReader(config.index_dir, expected_model=model_id())
    assert not reader.is_stale()
    corpus = sample_index.index_dir.parent / "corpus"
    build_index([corpus], config, embedder=embedder, prune=True, rebuild=True)
    assert reader.is_stale()
    assert sorted(d.id for d in reader.documents()) == sorted(sample_articles)
    passages = Retriever(reader, embedder, config).search("record apple harvest", k=2)
    assert passages and passages[0].doc == "orchard.txt"


# --- both chunk stores: FAISS files and a Milvus (Lite) collection ----------------------------------------
@pytest.fixture
def built(store_name, tmp_path, make_corpus, embedder):
    """The sample corpus indexed into ``store_name``: (config, corpus folder)."""
    corpus = make_corpus()
    config = store_config(store_name, tmp_path / "index")
    report = build_index([corpus], config, embedder=embedder)
    assert report.documents == 3 and not report.errors
    return config, corpus


def test_either_store_returns_chunks_that_are_exact_slices_of_the_files(built, embedder):
    config, corpus = built
    retriever = Retriever.open(config, embedder)
    assert retriever.reader.manifest["store"] == config.store
    passages = retriever.search("harbour reopened after the storm", k=10)
    assert passages and passages[0].doc == "harbour.txt"
    for passage in passages:
        file_text = (corpus / passage.doc).read_text(encoding="utf-8")
        assert passage.text == file_text[passage.chunk.start : passage.chunk.end]


def test_either_store_refuses_an_index_built_with_another_embedding_model(built, embedder):
    config, corpus = built
    edit_manifest(config, embedding_model="other-embedder (other-package 9.9)")
    with pytest.raises(IndexMismatch, match="other-embedder"):
        Retriever.open(config, embedder)
    with pytest.raises(IndexMismatch, match="embedding_model"):
        build_index([corpus], config, embedder=embedder)


def test_an_index_is_refused_when_asked_for_from_the_other_store(built, embedder):
    config, corpus = built
    other = "milvus" if config.store == "faiss" else "faiss"
    with pytest.raises(IndexMismatch, match=f"--store {config.store}"):
        Retriever.open(config.replace(store=other), embedder)
    with pytest.raises(IndexMismatch, match="store"):
        build_index([corpus], config.replace(store=other), embedder=embedder)
