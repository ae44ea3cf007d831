"""Chunk stores behind the factory: each writes rows and opens them again; unknown stores are refused; Milvus is
only imported for an index that uses it; a Milvus writer drops what it wrote for a build that failed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexCorrupt, SettingsError
from rag.index.backends import open_backend, write_backend
from rag.index.backends.base import ChunkRow

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["harbour storm pier", "apple harvest orchard", "comet telescope orbit", "ferry island cancelled"]


def rows(dimension: int = 8) -> list[ChunkRow]:
    vectors = np.eye(dimension, dtype=np.float32)
    return [ChunkRow(i + 10, vectors[i], f"Title {i}\n{text}", f"doc{i}.txt", 0, len(text), f"Title {i}", None,
                     f"h{i}", f"h{i}") for i, text in enumerate(WORDS)]


def test_the_faiss_store_writes_rows_and_opens_them_through_the_factory(tmp_path):
    generation = tmp_path / "gen-1"
    generation.mkdir()
    written = write_backend("faiss", tmp_path).write(generation, rows(), 8, hnsw_threshold=1000)
    assert written == {"dense_index": "flat", "segments": [""]}  # one segment, at the generation's root
    index = open_backend("faiss", generation, {"store": "faiss", **written})
    assert index.count == 4 and index.kind == "flat"
    assert index.dense(np.eye(8, dtype=np.float32)[2], 1) == [(12, pytest.approx(1.0))]
    assert [chunk for chunk, _ in index.lexical("orchard", 5)] == [11]
    weights = index.idf(["orchard", "nosuchterm"])
    assert weights["nosuchterm"] > weights["orchard"] > 0


def test_an_unknown_store_is_refused(tmp_path):
    with pytest.raises(IndexCorrupt, match="unknown store 'elastic'.*rebuild"):
        open_backend("elastic", tmp_path, {"store": "elastic"})
    with pytest.raises(SettingsError, match="faiss or milvus"):
        write_backend("elastic", tmp_path)


def test_a_faiss_index_is_written_and_read_without_importing_milvus(tmp_path):
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from rag.index.build import BuildReport
        from rag.index.catalog import IndexReader, IndexWriter, NewContent
        from rag.index.generations import IndexSettings

        settings = IndexSettings("m (p 1.0)", 4, 700, 1, "faiss")
        text = "One sentence here. Another one there."
        with IndexWriter(sys.argv[1], settings) as writer:
            writer.put_document("a.txt", "a.txt", "A", None, None, None, "h")
            writer.put_content(NewContent("h", text, [(0, 37)], np.ones((1, 4), np.float32) / 2,
                                          [(0, 18), (19, 37)], np.ones((2, 4), np.float32) / 2, b""))
            writer.commit(hnsw_threshold=1000)
        reader = IndexReader(sys.argv[1])
        assert reader.chunk_count == 1 and reader.lexical("sentence", 1)[0][0] == 1
        leaked = [m for m in ("pymilvus", "milvus_lite", "rag.index.backends.milvus") if m in sys.modules]
        assert not leaked, leaked
    """)
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "index")], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr


def test_a_milvus_writer_discards_the_collection_of_a_build_that_failed(tmp_path):
    from rag.index.backends.milvus import client_for

    generation = tmp_path / "gen-7"
    generation.mkdir()
    writer = write_backend("milvus", tmp_path)
    written = writer.write(generation, rows(), 8, hnsw_threshold=1000)
    assert written["milvus_uri"] == str((tmp_path / "milvus.db").resolve())
    client = client_for(written["milvus_uri"])
    assert written["milvus_collection"] in client.list_collections()
    index = open_backend("milvus", generation, written)
    assert index.count == 4 and [chunk for chunk, _ in index.lexical("orchard", 5)] == [11]
    writer.discard()
    assert written["milvus_collection"] not in client.list_collections()
