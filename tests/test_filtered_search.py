"""A section is applied inside the search, in every store: the results equal an exact search restricted to the
section, and there are as many as asked whenever the section holds that many chunks. Real FAISS (flat and
HNSW), real bm25s and real Milvus Lite, on synthetic chunks whose vectors cluster by topic."""

from __future__ import annotations

import numpy as np
import pytest

from rag.index.backends import open_backend, write_backend
from rag.index.backends.base import ChunkRow, Within

DIMENSION = 32
CHUNKS = 3000
TOPICS = ["harbour storm pier ferry", "apple harvest orchard picker", "comet telescope orbit nucleus",
          "election ballot candidate vote", "league striker goal keeper"]


def section_of(i: int) -> str:
    # A large section (about 30% of the chunks), a small one (1%), a tiny one (5 chunks), and the rest.
    if i % 100 == 7:
        return "small"
    if i in (11, 911, 1811, 2411, 2911):
        return "tiny"
    return "large" if i % 10 < 3 else "other"


def synthetic_rows() -> list[ChunkRow]:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((len(TOPICS), DIMENSION)).astype(np.float32)
    rows = []
    for i in range(CHUNKS):
        topic = i % len(TOPICS)
        vector = centres[topic] + 0.8 * rng.standard_normal(DIMENSION).astype(np.float32)
        vector /= np.linalg.norm(vector)
        words = " ".join(rng.choice(TOPICS[topic].split(), size=6))
        rows.append(ChunkRow(i + 1, vector, f"Story {i}\n{words}", f"doc{i}.txt", 0, len(words), f"Story {i}",
                             None, f"h{i}", f"h{i}", (section_of(i),)))
    return rows


ROWS = synthetic_rows()
VECTORS = np.vstack([r.vector for r in ROWS])
IDS = np.array([r.id for r in ROWS], dtype=np.int64)


def within(section: str) -> Within:
    return Within(section, np.array([r.id for r in ROWS if section in r.sections], dtype=np.int64))


def exact_dense(query: np.ndarray, n: int, section: str) -> list[int]:
    keep = np.array([section in r.sections for r in ROWS])
    scores = VECTORS[keep] @ query
    ids = IDS[keep]
    order = np.lexsort((ids, -scores))[:n]
    return [int(ids[i]) for i in order]


def queries(count: int = 20) -> np.ndarray:
    rng = np.random.default_rng(11)
    chosen = VECTORS[rng.choice(CHUNKS, size=count, replace=False)]
    noisy = chosen + 0.3 * rng.standard_normal(chosen.shape).astype(np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def opened(name: str, tmp_path_factory):
    folder = tmp_path_factory.mktemp(name)
    generation = folder / "gen-1"
    generation.mkdir()
    kind = name.split("-")[0]
    writer = write_backend(kind, folder)
    written = writer.write(generation, ROWS, DIMENSION, hnsw_threshold=1000 if name == "faiss-hnsw" else 10**6)
    return open_backend(kind, generation, {"store": kind, **written})


@pytest.fixture(scope="module", params=["faiss-flat", "faiss-hnsw", "milvus"])
def store(request, tmp_path_factory):
    index = opened(request.param, tmp_path_factory)
    yield request.param, index
    index.close()


def test_a_filtered_dense_search_equals_the_exact_search_of_the_section(store):
    name, index = store
    for section in ("large", "small", "tiny"):
        for query in queries():
            found = [chunk for chunk, _ in index.dense(query, 10, within(section))]
            expected = exact_dense(query, 10, section)
            assert len(found) == min(10, within(section).size), (name, section)
            if name == "faiss-hnsw" and section == "large":
                # The graph search (a large section is not searched exhaustively): nearly every exact neighbour.
                assert len(set(found) & set(expected)) >= 9, (name, section)
            else:
                assert found == expected, (name, section)


def test_a_large_section_of_an_hnsw_graph_is_searched_inside_the_graph_and_keeps_its_recall(tmp_path_factory):
    index = opened("faiss-hnsw", tmp_path_factory)
    assert index.kind == "hnsw"
    index.exact_within = 0  # every section through the graph search with FAISS' ID selector
    for section in ("large", "small"):
        hits = total = 0
        for query in queries():
            found = [chunk for chunk, _ in index.dense(query, 10, within(section))]
            assert len(found) == 10, section  # always k results
            assert all(section_of(chunk - 1) == section for chunk in found)
            expected = exact_dense(query, 10, section)
            hits += len(set(found) & set(expected))
            total += 10
        assert hits / total >= 0.95, (section, hits / total)


def test_a_filtered_lexical_search_ranks_the_sections_chunks_as_the_whole_index_does(store):
    name, index = store
    for section in ("large", "small", "tiny"):
        for query in ("harbour storm", "orchard picker apple", "goal"):
            everything = index.lexical(query, CHUNKS)
            expected = [score for chunk, score in everything if section_of(chunk - 1) == section][:10]
            found = index.lexical(query, 10, within(section))
            # The same scores, best first (chunks of equal score may come in either order), each the chunk's
            # score in the whole index, and every chunk the section's.
            assert [score for _, score in found] == pytest.approx(expected, rel=1e-4), (name, section, query)
            scores = dict(everything)
            assert all(score == pytest.approx(scores[chunk], rel=1e-4) for chunk, score in found)
            assert all(section_of(chunk - 1) == section for chunk, _ in found)


def test_an_empty_section_finds_nothing(store):
    _, index = store
    empty = Within("none", np.array([], dtype=np.int64))
    assert index.dense(queries(1)[0], 10, empty) == [] and index.lexical("harbour", 10, empty) == []


@pytest.mark.parametrize("store_name", ["faiss", "milvus"])
def test_a_search_in_a_section_returns_only_its_articles_and_as_many_as_asked(store_name, make_corpus,
                                                                              sample_articles, tmp_path, embedder):
    from store_helpers import store_config

    from rag.index.build import build_index
    from rag.qa.retrieval import Retriever

    # One of the sample articles filed under "coast", the rest under "science": a query about the harbour,
    # asked within "science", must still come back with science passages only, and with k of them.
    files = {f"{'coast' if i < 1 else 'science'}/{name}": text for i, (name, text) in enumerate(
        sorted(sample_articles.items()))}
    config = store_config(store_name, tmp_path / "index")
    report = build_index([make_corpus(files)], config)
    assert not report.errors
    retriever = Retriever.open(config, embedder)
    science = retriever.reader.chunk_ids_in("science")
    for section in ("coast", "science"):
        k = min(4, len(retriever.reader.chunk_ids_in(section)))
        passages = retriever.search("When did the harbour reopen after the storm?", k, section=section)
        assert len(passages) == k
        assert all(p.doc.startswith(f"{section}/") for p in passages)
    assert science and len(retriever.ranked("harbour storm", 50, section="science")) == len(science)
    retriever.reader.close()
