"""The embedding backends: the ONNX export computes what plain sentence-transformers computes, and its
cache is written once, atomically, outside site-packages.

Everything runs the real packaged model. Exports go to temporary cache folders, so these tests never touch
the user's cache (except through the shared ``embedder`` fixture, which uses it as `rag` does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.config import Config
from rag.errors import SettingsError
from rag.models import embedding
from rag.models.embedding import DIMENSION, EXPORT_FILE, EXPORT_MANIFEST, Embedder, OnnxModel, onnx_export

ROOT = Path(__file__).resolve().parent.parent

# Over the 2,596 chunk texts of the bundled articles and the benchmark passages the two backends differed by
# at most 2.5e-7 in any coordinate (cosine >= 0.9999998): float rounding. These bounds leave a margin of
# about 40x and still fail on any real change (a different pooling, truncation or tokenization moves
# vectors by 1e-2 or more; dynamic int8 quantization by 2e-2).
MAX_COORDINATE_DIFFERENCE = 1e-5
MIN_COSINE = 0.99999

LONG_TEXT = " ".join(f"Paragraph {n} of the report lists ship movements near Venezuela." for n in range(60))
TEXTS = [
    "The United States deployed warships to the Caribbean.",
    "Maduro said Venezuela wants peace, but not a slave's peace.",
    "",
    "Ünïcode — quotes “like these”, 2025-11-29, 15,000 troops & an F-35.",
    "   leading and trailing spaces   ",
    LONG_TEXT,  # past the model's 256-token limit: truncated, the same way by both backends
    "airspace",
]


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture(scope="module")
def onnx_embedder(export_cache) -> Embedder:
    embedder = Embedder(backend="onnx", cache_dir=export_cache)
    assert isinstance(embedder.model, OnnxModel)
    return embedder


@pytest.fixture(scope="module")
def sentence_transformer():
    """Plain ``SentenceTransformer(path)``, the reference the ONNX backend is held to."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embedding._model_path()), device="cpu")


@pytest.fixture(scope="module")
def article_texts() -> list[str]:
    """Every chunk and sentence of the bundled articles, as `rag index` embeds them."""
    from rag.config import Config
    from rag.index.engines import chunk_document
    from rag.ingest import readers

    texts = []
    files, _ = readers.discover([ROOT / "data" / "articles"], None)
    for path, doc_id in files:
        for doc in readers.load_file(path, doc_id):
            chunks, sentences = chunk_document(doc, Config())
            texts += [doc.text[s.start : s.end] for s in (*chunks, *sentences)]
    return texts


def reference(model, texts: list[str]) -> np.ndarray:
    return model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)


def test_onnx_vectors_equal_plain_sentence_transformers_vectors_to_float_rounding(
        onnx_embedder, sentence_transformer, article_texts):
    texts = TEXTS + article_texts
    ours = onnx_embedder.embed(texts)
    plain = reference(sentence_transformer, texts)
    assert np.abs(ours - plain).max() < MAX_COORDINATE_DIFFERENCE
    assert (ours * plain).sum(axis=1).min() > MIN_COSINE


def test_both_backends_give_the_same_vectors_so_the_model_id_does_not_name_the_backend(onnx_embedder):
    torch_vectors = Embedder(backend="torch").embed(TEXTS)
    assert np.abs(onnx_embedder.embed(TEXTS) - torch_vectors).max() < MAX_COORDINATE_DIFFERENCE
    assert "onnx" not in embedding.model_id() and "torch" not in embedding.model_id()


def test_tokenization_matches_sentence_transformers_including_truncation(onnx_embedder, sentence_transformer):
    features = sentence_transformer.tokenize(TEXTS)
    expected = [ids[mask.bool()].tolist() for ids, mask in zip(features["input_ids"], features["attention_mask"],
                                                                strict=True)]
    ours = onnx_embedder.model.token_ids(TEXTS)
    assert ours == expected
    assert max(len(ids) for ids in ours) == sentence_transformer.max_seq_length == 256


PASSAGE_SENTENCES = ("Shares in the oil firm fell 10% on Monday.",
                     "The company owes $27bn in back taxes, the ministry said.",
                     "Its chief executive resigned last week.")
PASSAGE = " ".join(PASSAGE_SENTENCES)
SENTENCES = [(PASSAGE.index(s), PASSAGE.index(s) + len(s)) for s in PASSAGE_SENTENCES]


def test_span_vectors_come_from_the_texts_own_pass_and_agree_across_backends(onnx_embedder):
    """Late chunking: one forward pass gives the passage's vector (as embed gives it) and each sentence's."""
    assert PASSAGE[slice(*SENTENCES[2])] == "Its chief executive resigned last week."
    vectors, spans = onnx_embedder.embed_with_spans([PASSAGE, TEXTS[0]], [SENTENCES, []])
    np.testing.assert_allclose(vectors, onnx_embedder.embed([PASSAGE, TEXTS[0]]), atol=1e-6)
    assert len(spans[0]) == 3 and spans[1] == []
    pooled = np.vstack(spans[0])
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    alone = onnx_embedder.embed([PASSAGE[a:b] for a, b in SENTENCES])
    # Contextual: each is close to its own sentence embedded alone, but carries its passage too (the later
    # sentences of this passage lean towards the first, which sets the topic).
    similarity = pooled @ alone.T
    assert np.diag(similarity).min() > 0.5 and not np.allclose(np.diag(similarity), 1.0, atol=0.01)
    torch_vectors, torch_spans = Embedder(backend="torch").embed_with_spans([PASSAGE], [SENTENCES])
    assert np.abs(np.vstack(torch_spans[0]) - pooled).max() < MAX_COORDINATE_DIFFERENCE
    assert np.abs(torch_vectors[0] - vectors[0]).max() < MAX_COORDINATE_DIFFERENCE


def test_a_span_the_model_truncated_away_gets_no_pooled_vector(onnx_embedder):
    long_text = "word " * 400 + "The end of a very long text."
    tail = (long_text.index("The end"), len(long_text))
    _, [spans] = onnx_embedder.embed_with_spans([long_text], [[(0, 4), tail]])
    assert spans[0] is not None and spans[1] is None


def test_vectors_are_float32_unit_length_and_one_per_text(onnx_embedder):
    vectors = onnx_embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), DIMENSION) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_vectors_come_back_in_input_order_whatever_the_batching(onnx_embedder):
    forward = onnx_embedder.embed(TEXTS)
    backward = onnx_embedder.embed(TEXTS[::-1])
    one_by_one = np.vstack([onnx_embedder.embed_one(text) for text in TEXTS])
    np.testing.assert_allclose(backward[::-1], forward, atol=1e-5)
    np.testing.assert_allclose(one_by_one, forward, atol=1e-5)
    # Texts of different lengths are not confused with one another.
    assert float(forward[0] @ forward[1]) < 0.9


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_repeated_texts_get_one_row_each_in_input_order(backend, onnx_embedder):
    embedder = onnx_embedder if backend == "onnx" else Embedder(backend="torch")
    repeated = [TEXTS[1], TEXTS[0], TEXTS[1], TEXTS[6], TEXTS[0]]
    vectors = embedder.embed(repeated)
    distinct = embedder.embed([TEXTS[1], TEXTS[0], TEXTS[6]])
    assert vectors.shape == (5, DIMENSION)
    np.testing.assert_allclose(vectors, distinct[[0, 1, 0, 2, 1]], atol=1e-6)


def test_empty_input_gives_an_empty_matrix():
    # No model is loaded for it.
    embedder = Embedder(backend="onnx", cache_dir="/nonexistent/never-created")
    vectors = embedder.embed([])
    assert vectors.shape == (0, DIMENSION) and vectors.dtype == np.float32
    assert embedder._model is None


def test_the_export_is_written_once_into_the_cache_and_reused(export_cache, onnx_embedder):
    folder = export_cache / embedding.export_name()
    assert onnx_embedder.model and (folder / EXPORT_FILE).is_file()
    manifest = json.loads((folder / EXPORT_MANIFEST).read_text(encoding="utf-8"))
    assert manifest["model"] == embedding.model_id() and manifest["format"] == embedding.EXPORT_FORMAT
    before = (folder / EXPORT_FILE).stat()
    second = Embedder(backend="onnx", cache_dir=export_cache)
    second.embed_one("a second process-worth of embedder")
    after = (folder / EXPORT_FILE).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not written again
    assert sorted(p.name for p in export_cache.iterdir()) == [folder.name]  # no temporary folder left


def test_the_cache_name_says_which_model_version_and_backend(export_cache):
    from importlib.metadata import version

    name = embedding.export_name()
    assert version(embedding.MODEL_PACKAGE) in name and "onnx" in name
    site_packages = Path(embedding._model_path()).parent.parent
    assert site_packages not in embedding.cache_root().parents


def test_concurrent_exports_into_an_empty_cache_leave_one_complete_export(tmp_path):
    """Two processes export at once: each builds in its own temporary folder and renames it into place, so
    both end up with the same complete export and nothing partial is ever visible."""
    cache = tmp_path / "cache"
    script = ("import sys; from pathlib import Path; from rag.models.embedding import onnx_export; "
              "print(onnx_export(Path(sys.argv[1])))")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    workers = [subprocess.Popen([sys.executable, "-c", script, str(cache)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env) for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    folder = cache / embedding.export_name()
    assert {out.strip() for out, _ in outputs} == {str(folder)}
    assert sorted(p.name for p in cache.iterdir()) == [folder.name]
    assert sorted(p.name for p in folder.iterdir()) == sorted([EXPORT_FILE, EXPORT_MANIFEST])
    assert onnx_export(cache) == folder


def test_an_export_that_cannot_be_written_falls_back_to_torch_with_one_line_on_stderr(tmp_path, capfd):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")
    embedder = Embedder(backend="onnx", cache_dir=blocked / "cache")
    vector = embedder.embed_one(TEXTS[0])
    assert embedder.backend == "torch"
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("rag:")]
    assert len(lines) == 1
    assert "ONNX embedding backend unavailable" in lines[0] and "using PyTorch" in lines[0]
    np.testing.assert_allclose(vector, Embedder(backend="torch").embed_one(TEXTS[0]), atol=MAX_COORDINATE_DIFFERENCE)


def test_the_backend_is_chosen_by_argument_then_environment(monkeypatch):
    monkeypatch.setenv("RAG_EMBEDDING_BACKEND", "torch")
    assert Embedder().backend == "torch"
    assert Embedder(backend="onnx").backend == "onnx"
    monkeypatch.delenv("RAG_EMBEDDING_BACKEND")
    assert Embedder().backend == Config().embedding_backend == "onnx"
    with pytest.raises(SettingsError, match="embedding backend must be one of onnx, torch"):
        Embedder(backend="tensorflow")


def test_an_embedder_for_a_config_uses_its_backend_and_cache_whatever_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_EMBEDDING_BACKEND", "onnx")
    embedder = Embedder.for_config(Config(embedding_backend="torch", embedding_cache=tmp_path))
    assert embedder.backend == "torch" and embedder.cache_dir == tmp_path
