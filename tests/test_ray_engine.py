"""The Ray engine of ``rag index`` (a real local Ray, the real model, real indexes on disk) builds the same
index as the local engine, reports bad files one by one, and embeds nothing that is already indexed.

Ray is started once for this module (2 CPUs, as ``rag index --engine ray`` starts it); ``build_index`` uses
the running Ray instead of starting its own. ``ray`` is only imported after ``ray_engine.start`` so that the
private Ray listens on the loopback interface (see ``rag.index.ray_engine.start``).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from shared_data import BENCHMARKS

from rag.config import Config
from rag.errors import FileProblem
from rag.index import catalog, generations, ray_engine
from rag.index.build import build_index
from rag.index.engines import chunk_document, embed_spans
from rag.ingest import dedup, readers

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray for this module's tests; its address lets a second process join it."""
    started = not ray_engine.is_running()
    if started:
        ray_engine.start()
    import ray

    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


def ray_config(index_dir: Path) -> Config:
    return Config(index_dir=index_dir, engine="ray")


def index_rows(index_dir: Path) -> dict:
    """Everything a build writes, straight from SQLite: documents, contents (text, MinHash, duplicate group),
    chunk and sentence rows (ids, spans) and their vectors."""
    generation = generations.current_generation(Path(index_dir))
    assert generation is not None
    db = sqlite3.connect(f"file:{generation / catalog.SQLITE}?mode=ro", uri=True)
    manifest = generations.read_manifest(Path(index_dir))
    parts = [f"part{i}" for i, _ in enumerate(manifest[catalog.PARTS])]
    for schema, name in zip(parts, manifest[catalog.PARTS], strict=True):
        db.execute(f"ATTACH DATABASE ? AS {schema}", (f"file:{generation / name}?mode=ro",))
    try:
        texts = " UNION ALL ".join(f"SELECT hash, text, minhash FROM {p}.texts" for p in parts)
        rows = {
            "documents": db.execute(
                "SELECT id, path, title, date, url, source, content_hash FROM documents ORDER BY id").fetchall(),
            "contents": db.execute(f"SELECT t.hash, t.text, c.dup_group, t.minhash FROM ({texts}) t "
                                   "JOIN contents c ON c.hash = t.hash ORDER BY t.hash").fetchall(),
        }
        for table in ("chunks", "sentences"):
            union = " UNION ALL ".join(f'SELECT id, content_hash, ord, start, "end", vector FROM {p}.{table}'
                                       for p in parts)
            found = db.execute(f"SELECT * FROM ({union}) ORDER BY id").fetchall()
            rows[table] = [r[:5] for r in found]
            rows[f"{table}_vectors"] = np.vstack([np.frombuffer(r[5], dtype=np.float32) for r in found])
        return rows
    finally:
        db.close()


def assert_same_index(ray_dir: Path, local_dir: Path) -> None:
    ray_rows, local_rows = index_rows(ray_dir), index_rows(local_dir)
    for key in ("documents", "contents", "chunks", "sentences"):
        assert ray_rows[key] == local_rows[key], key
    for key in ("chunks_vectors", "sentences_vectors"):
        assert ray_rows[key].shape == local_rows[key].shape
        assert np.abs(ray_rows[key] - local_rows[key]).max() <= TOLERANCE, key


def test_the_bundled_articles_give_the_same_index_as_the_local_engine(
        ray_address, bundled_build, articles_dir, tmp_path, read_spans):
    local_config, local_report = bundled_build
    report = build_index([articles_dir], ray_config(tmp_path / "index"))
    assert not report.errors
    assert report.added == local_report.added and len(report.added) == 5
    assert (report.chunks, report.documents, report.embedded_chunks) == (
        local_report.chunks, local_report.documents, local_report.embedded_chunks)
    assert read_spans(tmp_path / "index") == read_spans(local_config.index_dir)
    assert_same_index(tmp_path / "index", local_config.index_dir)
    assert generations.read_manifest(tmp_path / "index")["chunks"] == report.chunks


def test_workers_embed_with_the_drivers_configuration_not_their_own_environment(ray_address, make_corpus,
                                                                                 tmp_path, sample_articles):
    # Set on the driver's Config only (no RAG_* variable): where the ONNX export of the embedding model is kept.
    # The workers' environment says nothing of it, so a worker that built its embedder from its own environment
    # would write the export to the default cache instead.
    export_dir = tmp_path / "driver-only-export"
    assert "RAG_EMBEDDING_CACHE" not in os.environ
    config = dataclasses.replace(ray_config(tmp_path / "index"), embedding_cache=export_dir)
    report = build_index([make_corpus(sample_articles)], config)
    assert not report.errors and report.embedded_chunks > 0
    assert any(export_dir.rglob("*.onnx")), "the workers' embedder used the driver's embedding_cache"


BAD_FILES: dict[str, str | bytes] = {
    "empty.txt": "",
    "broken.json": '{"text": ',
    "binary.txt": b"\x00\x01\x02 not text" * 20,
    "records.jsonl": '{"text": "A fine first record about the harbour."}\n{"title": "no text here"}\n',
}


def test_bad_files_are_reported_one_by_one_as_the_local_engine_does_and_the_rest_is_indexed(
        ray_address, make_corpus, tmp_path, embedder, sample_articles):
    corpus = make_corpus(dict(sample_articles, **BAD_FILES))
    (corpus / "dangling.txt").symlink_to(corpus / "gone.txt")
    # json.loads raises RecursionError, not a JSON error, on a deeply nested array: both engines still report
    # it as that one file's error.
    (corpus / "deep.json").write_text("[" * 100_000, encoding="utf-8")
    local = build_index([corpus], Config(index_dir=tmp_path / "local"), embedder=embedder)
    assert len(local.errors) == 6
    assert FileProblem(str(corpus / "deep.json"), "JSON nested too deeply") in local.errors
    report = build_index([corpus], ray_config(tmp_path / "ray"))
    assert report.errors == local.errors
    assert any(p.path == str(corpus / "dangling.txt") and p.message.startswith("cannot read file")
               for p in report.errors)
    assert sorted(report.added) == sorted(sample_articles) == sorted(local.added)
    assert_same_index(tmp_path / "ray", tmp_path / "local")


def test_re_indexing_with_the_ray_engine_embeds_only_what_changed(
        ray_address, make_corpus, tmp_path, sample_articles, read_spans):
    corpus = make_corpus(dict(sample_articles, **{"mirror/harbour-copy.txt": sample_articles["harbour.txt"]}))
    config = ray_config(tmp_path / "index")
    first = build_index([corpus], config)
    harbour_chunks = sum(1 for s in read_spans(config.index_dir) if s.doc == "harbour.txt" and s.kind == "chunk")
    assert first.embedded_chunks == first.chunks and len(first.added) == 4
    assert first.chunks == sum(1 for s in read_spans(config.index_dir) if s.kind == "chunk") - harbour_chunks
    spans = read_spans(config.index_dir)

    again = build_index([corpus], config)
    assert again.embedded_chunks == 0 and sorted(again.unchanged) == sorted(first.added)
    assert again.added == again.updated == again.errors == []
    assert read_spans(config.index_dir) == spans

    orchard = corpus / "orchard.txt"
    orchard.write_text(orchard.read_text(encoding="utf-8") + "\nPickers arrived from three towns in October.\n",
                       encoding="utf-8")
    (corpus / "observatory.txt").rename(corpus / "comet.txt")
    changed = build_index([corpus], config, prune=True)
    assert changed.updated == ["orchard.txt"] and changed.added == ["comet.txt"]
    assert changed.removed == ["observatory.txt"]
    orchard_chunks = [s for s in read_spans(config.index_dir) if s.doc == "orchard.txt" and s.kind == "chunk"]
    assert changed.embedded_chunks == len(orchard_chunks) > 0


def run_rag(*args: str, env: dict | None = None, code: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "rag.app.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, **(env or {})})


def test_rag_index_engine_ray_starts_its_own_ray_and_stops_it(make_corpus, tmp_path, sample_articles):
    corpus = make_corpus(dict(sample_articles, **{"empty.txt": ""}))
    env = {"RAY_ADDRESS": "", "RAG_RAY_ADDRESS": ""}
    result = run_rag("index", str(corpus), "--index-dir", str(tmp_path / "index"), "--engine", "ray", env=env)
    assert result.returncode == 1, result.stderr  # a bad file: exit code 1, the rest indexed
    assert "3 added" in result.stdout and "1 failed" in result.stdout
    assert f"error: {corpus / 'empty.txt'}: empty file" in result.stderr
    assert "Traceback" not in result.stderr
    assert generations.read_manifest(tmp_path / "index")["documents"] == 3


def test_rag_index_joins_a_running_ray_given_its_address(ray_address, make_corpus, tmp_path, sample_articles):
    corpus = make_corpus()
    result = run_rag("index", str(corpus), "--index-dir", str(tmp_path / "index"), "--engine", "ray",
                     "--ray-address", ray_address)
    assert result.returncode == 0, result.stderr
    assert "3 added" in result.stdout
    again = run_rag("index", str(corpus), "--index-dir", str(tmp_path / "index"), env={
        "RAY_ADDRESS": ray_address, "RAG_ENGINE": "ray"})
    assert again.returncode == 0, again.stderr
    assert "3 unchanged" in again.stdout and "(0 embedded" in again.stdout


# Runs the CLI, then fails if anything imported ray on the way.
NO_RAY = """
import sys
from rag.app.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
assert "ray" not in sys.modules, "ray was imported"
sys.exit(code)
"""


def test_help_and_the_local_engine_never_import_ray(make_corpus, tmp_path):
    helped = run_rag("--help", code=NO_RAY)
    assert helped.returncode == 0, helped.stderr
    assert "index" in helped.stdout
    indexed = run_rag("index", str(make_corpus()), "--index-dir", str(tmp_path / "index"), code=NO_RAY,
                      env={"RAG_ENGINE": "local"})
    assert indexed.returncode == 0, indexed.stderr
    assert "3 added" in indexed.stdout


@pytest.mark.slow
@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="needs ../shared/benchmarks")
def test_the_benchmark_passages_give_the_same_documents_spans_and_vectors(ray_address, tmp_path, embedder):
    """The ~2,000 benchmark passages through the Ray engine, checked against the local engine's own
    functions: every document, chunk and sentence span and MinHash, and vectors of a sample of spans."""
    from evals.benchmarks import corpus_of

    cache = tmp_path / "corpus"
    for name in ("rgb", "squad2"):
        corpus_of(name, BENCHMARKS, cache)
    config = ray_config(tmp_path / "index")
    report = build_index([cache], config)
    assert not report.errors and report.documents > 2000

    files, _ = readers.discover([cache])
    docs = [doc for path, doc_id in files for doc in readers.load_file(path, doc_id)]
    rows = index_rows(config.index_dir)
    assert rows["documents"] == sorted((d.id, d.path, d.title, d.date, d.url, d.source, d.content_hash) for d in docs)
    first = {}
    for doc in docs:
        first.setdefault(doc.content_hash, doc)
    assert [h for h, *_ in rows["contents"]] == sorted(first)
    assert report.embedded_chunks == report.chunks == len(rows["chunks"])
    # Row ids follow the local engine's order: contents in order of first appearance, spans in text order.
    expected_chunks, expected_sentences = [], []
    for doc in first.values():
        chunks, sentences = chunk_document(doc, config)
        expected_chunks += [(doc.content_hash, i, c.start, c.end) for i, c in enumerate(chunks)]
        expected_sentences += [(doc.content_hash, i, s.start, s.end) for i, s in enumerate(sentences)]
    assert [r[1:] for r in rows["chunks"]] == expected_chunks
    assert [r[1:] for r in rows["sentences"]] == expected_sentences
    texts = {h: text for h, text, _, _ in rows["contents"]}
    assert {h: m for h, _, _, m in rows["contents"]} == {
        h: dedup.signature(d.text, d.blocks) for h, d in first.items()}
    # Vectors of every 40th text, as the local engine computes them (chunks, and sentences pooled from them).
    sample = list(first.values())[::40]
    pieces = [chunk_document(doc, config) for doc in sample]
    spans = [([(c.start, c.end) for c in chunks], [(s.start, s.end) for s in sentences])
             for chunks, sentences in pieces]
    for doc, (chunk_vectors, sentence_vectors) in zip(sample, embed_spans([d.text for d in sample], spans, embedder),
                                                      strict=True):
        for kind, expected in (("chunks", chunk_vectors), ("sentences", sentence_vectors)):
            stored = rows[f"{kind}_vectors"][[i for i, r in enumerate(rows[kind]) if r[1] == doc.content_hash]]
            assert np.abs(stored - expected).max() <= TOLERANCE, kind
    # Every stored text is the cleaned text of its document, character for character.
    assert texts == {h: d.text for h, d in first.items()}
