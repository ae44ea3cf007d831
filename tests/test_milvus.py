"""The Milvus chunk store (Milvus Lite here): what the collection holds, how generations replace each other,
and that retrieval over it finds what the FAISS store finds."""

from __future__ import annotations

import subprocess
import sys

import pytest
from store_helpers import store_config

from rag.index import generations
from rag.index.backends.base import BM25_K1
from rag.index.backends.milvus import client_for
from rag.index.build import build_index
from rag.index.catalog import IndexReader
from rag.qa.retrieval import Retriever


@pytest.fixture(scope="module")
def milvus_bundled(tmp_path_factory, articles_dir, embedder):
    config = store_config("milvus", tmp_path_factory.mktemp("milvus-bundled") / "index")
    report = build_index([articles_dir], config, embedder=embedder)
    assert report.documents == 5 and not report.errors
    return config


def collections(config) -> list[str]:
    manifest = generations.read_manifest(config.index_dir)
    prefix = manifest["milvus_collection"].rsplit("gen_", 1)[0]
    return sorted(n for n in client_for(manifest["milvus_uri"]).list_collections() if n.startswith(prefix))


def test_without_a_uri_the_collection_lives_in_a_milvus_lite_file_in_the_index_folder(milvus_bundled):
    manifest = generations.read_manifest(milvus_bundled.index_dir)
    assert manifest["store"] == "milvus"
    assert manifest["milvus_uri"] == str((milvus_bundled.index_dir / "milvus.db").resolve())
    assert manifest["milvus_collection"] in collections(milvus_bundled)
    assert not list(generations.current_generation(milvus_bundled.index_dir).glob("dense.faiss"))


def test_every_chunk_of_the_catalog_is_in_the_collection_under_its_id_with_its_vector(milvus_bundled, articles_dir):
    reader = IndexReader(milvus_bundled.index_dir)
    ids = [row.id for row in reader.span_rows("chunk")]
    assert reader.chunk_count == len(ids) == reader.manifest["chunks"] > 0
    records = reader.chunks(ids)
    for chunk_id in ids:
        [(found, score)] = reader.dense(reader.chunk_vector(chunk_id), 1)
        assert found == chunk_id and score == pytest.approx(1.0, abs=1e-4)
        record = records[chunk_id]
        assert (articles_dir / record.doc).read_text(encoding="utf-8")[record.start : record.end] == record.text


def test_milvus_finds_the_same_top_passages_as_faiss_on_the_dev_set(milvus_bundled, bundled_retriever, embedder,
                                                                   dev_qa):
    milvus = Retriever.open(milvus_bundled, embedder)

    def top(retriever, question):
        return [(p.doc, p.chunk.start, p.chunk.end) for p in retriever.search(question, k=5)]

    for item in dev_qa:
        vector = embedder.embed_one(item["question"])
        dense_faiss = bundled_retriever.reader.dense(vector, 10)
        dense_milvus = milvus.reader.dense(vector, 10)
        assert [round(s, 4) for _, s in dense_milvus] == [round(s, 4) for _, s in dense_faiss]
        assert top(milvus, item["question"]) == top(bundled_retriever, item["question"]), item["question"]


def test_lexical_scores_and_idf_match_the_faiss_store(milvus_bundled, bundled_reader):
    milvus = IndexReader(milvus_bundled.index_dir)
    for query in ("naval build-up Caribbean", "Nicolas Maduro deadline", "oil tanker seized"):
        faiss_hits = bundled_reader.lexical(query, 5)
        milvus_hits = milvus.lexical(query, 5)
        assert [i for i, _ in milvus_hits] == [i for i, _ in faiss_hits] and faiss_hits
        # Milvus multiplies every BM25 term score by (k1 + 1), bm25s does not: same ranking, scaled scores.
        scale = BM25_K1 + 1
        assert [s for _, s in milvus_hits] == pytest.approx([s * scale for _, s in faiss_hits], rel=1e-3)
    terms = ["maduro", "naval", "venezuela", "nosuchterm"]
    assert milvus.idf(terms) == pytest.approx(bundled_reader.idf(terms))


def test_a_new_generation_gets_a_new_collection_and_one_previous_is_kept(tmp_path, make_corpus, embedder):
    corpus = make_corpus()
    config = store_config("milvus", tmp_path / "index")
    names = []
    for round_ in range(3):
        (corpus / "harbour.txt").write_text(f"Harbour Update {round_}\n\nThe harbour master said on Tuesday that "
                                            f"repairs to the outer pier will take {round_ + 2} more weeks.\n")
        build_index([corpus], config, embedder=embedder)
        names.append(generations.read_manifest(config.index_dir)["milvus_collection"])
    assert len(set(names)) == 3
    assert collections(config) == sorted(names[1:])


def test_a_collection_left_by_a_crashed_build_is_dropped_by_the_next_build(tmp_path, make_corpus, embedder):
    corpus = make_corpus()
    config = store_config("milvus", tmp_path / "index")
    build_index([corpus], config, embedder=embedder)
    manifest = generations.read_manifest(config.index_dir)
    crashed = manifest["milvus_collection"].rsplit("gen_", 1)[0] + "gen_1"
    client_for(manifest["milvus_uri"]).create_collection(crashed, dimension=4)
    assert crashed in collections(config)
    # The crashed collection is never read: the manifest names the live one.
    assert Retriever.open(config, embedder).search("record apple harvest", k=1)[0].doc == "orchard.txt"

    (corpus / "orchard.txt").unlink()
    build_index([corpus], config, embedder=embedder, prune=True)
    assert crashed not in collections(config)
    assert manifest["milvus_collection"] in collections(config)  # the previous generation, kept one more round


def test_an_explicit_uri_puts_the_collection_there(tmp_path, make_corpus, embedder):
    uri = str(tmp_path / "elsewhere" / "vectors.db")
    config = store_config("milvus", tmp_path / "index").replace(milvus_uri=uri)
    build_index([make_corpus()], config, embedder=embedder)
    assert generations.read_manifest(config.index_dir)["milvus_uri"] == uri
    assert not (config.index_dir / "milvus.db").exists()
    passages = Retriever.open(config, embedder).search("comet inside the orbit of Mars", k=1)
    assert passages[0].doc == "observatory.txt"


def test_an_unreachable_milvus_server_is_exit_code_2_with_one_line_naming_it(milvus_bundled, tmp_path):
    result = subprocess.run([sys.executable, "-m", "rag.app.cli", "search", "naval build-up", "--index-dir",
                             str(milvus_bundled.index_dir), "--store", "milvus", "--milvus-uri",
                             "http://127.0.0.1:9"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "http://127.0.0.1:9" in lines[0] and "Traceback" not in result.stderr, result.stderr
