"""The chunk store in Milvus: one collection per index generation, with dense vectors and Milvus' own BM25.

``uri`` is a local file for Milvus Lite (embedded; what the tests use; by default ``milvus.db`` in the index
folder) or ``http://host:19530`` for a Milvus server or cluster. Each collection holds, per chunk, its
vector, the analysed text BM25 indexes, and the metadata that returns an exact span (doc, start, end, title,
date, content hash, duplicate group). Collections are named ``rag_<id>_gen_<n>``, where ``<id>`` is kept in
the index folder's ``INDEX_ID`` file, so one server can hold the collections of many index folders. The
manifest of a generation names its collection (``milvus_collection``) and where it is (``milvus_uri``).

Lexical search is Milvus' full-text search (a BM25 function over a VARCHAR field, scored by a sparse
inverted index). The text it indexes is already analysed by :func:`rag.index.backends.base.analyze`, the
tokenizer of the FAISS store, and split on whitespace by Milvus, and BM25's k1 and b are bm25s', so both
backends rank lexical matches alike. Inverse document frequencies for evidence selection come from the
same analysis, kept beside the catalog (``lexical_df.json``), because Milvus does not expose them.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexUnavailable
from rag.index.backends.base import (
    BM25_B,
    BM25_K1,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    ChunkRow,
    Within,
    analyze,
    bm25_idf,
    damaged,
    dense_kind,
    document_frequencies,
)

LEXICAL_DF = "lexical_df.json"
INDEX_ID = "INDEX_ID"
INSERT_BATCH = 1000
# Milvus' VARCHAR limit; the analysed text of a chunk is far shorter.
MAX_TEXT = 65_535
# Sections one chunk's text can be filed under (one per name it is stored under), as Milvus stores them.
MAX_SECTIONS = 16

# pymilvus keeps one connection per (uri, alias); Milvus Lite allows one server per database file and
# process, so every index in this process that uses a URI shares one client.
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def default_milvus_uri(index_dir: Path) -> str:
    """Without --milvus-uri, a Milvus Lite database file inside the index folder."""
    return str((Path(index_dir) / "milvus.db").resolve())


def collection_prefix(index_dir: Path) -> str:
    """Collections of this index folder are named ``rag_<id>_gen_<n>``: a Milvus server may hold many."""
    path = Path(index_dir) / INDEX_ID
    if not path.exists():
        path.write_text(os.urandom(6).hex(), encoding="utf-8")
    return f"rag_{path.read_text(encoding='utf-8').strip()}_"


def _is_server(uri: str) -> bool:
    return "://" in uri


def client_for(uri: str):
    with _clients_lock:
        if uri not in _clients:
            import logging

            # Failed calls print tracebacks and idle gRPC channels warn; the one-line errors we raise suffice.
            os.environ.setdefault("GRPC_VERBOSITY", "NONE")
            for name in ("pymilvus", "milvus_lite"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            from pymilvus import MilvusClient

            if not _is_server(uri):
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            try:
                _clients[uri] = MilvusClient(uri=uri)
            except Exception as exc:  # pymilvus raises MilvusException and plain errors alike
                hint = ("; Milvus Lite lets one process at a time open a database file: stop the other rag "
                        "process (e.g. rag serve), or use a Milvus server") if "://" not in uri else ""
                raise IndexUnavailable(f"{uri}: cannot open Milvus ({_one_line(exc)}){hint}") from exc
        return _clients[uri]


def close_client(uri: str) -> None:
    """Close this process's client for ``uri`` (Milvus Lite then releases the database file)."""
    with _clients_lock:
        client = _clients.pop(uri, None)
    if client is not None:
        client.close()
        if not _is_server(uri):
            # Closing a client leaves Milvus Lite's embedded server holding the file; release it for other processes.
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(uri)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def drop_collections(uri: str, prefix: str, keep: set[str]) -> None:
    """Drop the collections named ``prefix...`` except ``keep``."""
    client = client_for(uri)
    for name in client.list_collections():
        if name.startswith(prefix) and name not in keep:
            client.drop_collection(name)


def drop_collection(uri: str, name: str) -> None:
    client = client_for(uri)
    if client.has_collection(name):
        client.drop_collection(name)


def open_index(generation: Path, manifest: Mapping[str, Any], uri: str | None = None) -> MilvusChunkIndex:
    """The collection a generation's manifest names, at ``uri`` if it has moved, else where it was written."""
    return MilvusChunkIndex(uri or manifest["milvus_uri"], manifest["milvus_collection"], generation)


class MilvusChunkIndex:
    def __init__(self, uri: str, collection: str, generation: Path) -> None:
        self.uri = uri
        self.collection = collection
        self.client = client_for(uri)
        if not self.client.has_collection(collection):
            raise damaged(f"{uri}: Milvus collection {collection} is missing")
        self.client.load_collection(collection)
        stats = self.client.get_collection_stats(collection)
        self._count = int(stats.get("row_count", 0))
        fields = self.client.describe_collection(collection).get("fields", [])
        # Collections written before sections were stored filter by chunk id instead.
        self._has_sections = any(f.get("name") == "sections" for f in fields)
        description = self.client.describe_index(collection, "vector")
        self.kind = "hnsw" if str(description.get("index_type", "")).upper() == "HNSW" else "flat"
        try:
            self._df = json.loads((generation / LEXICAL_DF).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise damaged(f"{generation / LEXICAL_DF}: damaged ({exc})") from exc

    @staticmethod
    def write(uri: str, collection: str, rows: Sequence[ChunkRow], dimension: int, hnsw_threshold: int,
              generation: Path | None = None) -> str:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        client = client_for(uri)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("terms", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                         analyzer_params={"tokenizer": "standard"})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("doc", DataType.VARCHAR, max_length=4096)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        schema.add_field("title", DataType.VARCHAR, max_length=4096)
        schema.add_field("date", DataType.VARCHAR, max_length=64)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=128)
        schema.add_field("dup_group", DataType.VARCHAR, max_length=128)
        schema.add_field("sections", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_SECTIONS,
                         max_length=256)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"],
                                     output_field_names=["sparse"]))
        # Milvus Lite scans every row per search whatever the index (about 3 us a row), and its HNSW build takes
        # minutes at 1e5 rows: it gains nothing there, so Lite stays exact. A server gets HNSW above the threshold.
        kind = dense_kind(len(rows), hnsw_threshold) if _is_server(uri) else "flat"
        index_params = client.prepare_index_params()
        if kind == "hnsw":
            index_params.add_index(field_name="vector", index_type="HNSW", metric_type="IP",
                                   params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION})
        else:
            index_params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        index_params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                               params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
        if client.has_collection(collection):
            client.drop_collection(collection)
        client.create_collection(collection, schema=schema, index_params=index_params, consistency_level="Strong")
        tokenized = analyze([r.lexical_text for r in rows]) if rows else []
        for begin in range(0, len(rows), INSERT_BATCH):
            batch = rows[begin : begin + INSERT_BATCH]
            client.insert(collection, [
                {"id": r.id, "vector": np.asarray(r.vector, dtype=np.float32).tolist(),
                 "terms": " ".join(tokens)[:MAX_TEXT], "doc": r.doc, "start": r.start, "end": r.end,
                 "title": r.title[:4096], "date": r.date or "", "content_hash": r.content_hash,
                 "dup_group": r.dup_group, "sections": [x[:256] for x in r.sections[:MAX_SECTIONS]]}
                for r, tokens in zip(batch, tokenized[begin : begin + INSERT_BATCH], strict=True)
            ])
        client.flush(collection)
        if generation is not None:
            (generation / LEXICAL_DF).write_text(json.dumps(document_frequencies(tokenized)), encoding="utf-8")
        return kind

    @property
    def count(self) -> int:
        return self._count

    def dense(self, query_vector: np.ndarray, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        if not self._count or (within is not None and within.size == 0):
            return []
        limit = min(n, self._count if within is None else within.size)
        hits = self.client.search(
            self.collection, data=[np.asarray(query_vector, dtype=np.float32).tolist()], anns_field="vector",
            limit=limit, search_params={"metric_type": "IP", "params": {"ef": max(128, limit)}},
            output_fields=["id"], filter=self._filter(within),
        )[0]
        return [(int(hit["id"]), float(hit["distance"])) for hit in hits]

    def _filter(self, within: Within | None) -> str:
        """The filter expression Milvus applies inside its search ("" for none)."""
        if within is None:
            return ""
        if self._has_sections:
            return f"array_contains(sections, {json.dumps(within.section)})"
        return f"id in {json.dumps([int(i) for i in within.chunk_ids])}"

    def lexical(self, query: str, n: int, within: Within | None = None) -> list[tuple[int, float]]:
        tokens = analyze([query])[0]
        if not self._count or not tokens or (within is not None and within.size == 0):
            return []
        limit = min(n, self._count if within is None else within.size)
        hits = self.client.search(
            self.collection, data=[" ".join(tokens)], anns_field="sparse", limit=limit,
            search_params={"metric_type": "BM25"}, output_fields=["id"], filter=self._filter(within),
        )[0]
        # Milvus Lite reports BM25 scores negated (as distances); a server reports them positive.
        return [(int(hit["id"]), abs(float(hit["distance"]))) for hit in hits if hit["distance"] != 0]

    def idf(self, terms: Iterable[str]) -> dict[str, float]:
        return {term: bm25_idf(max(self._count, 1), int(self._df.get(term, 0))) for term in terms}

    def close(self) -> None:
        pass


class MilvusWriter:
    """:class:`rag.index.backends.base.ChunkIndexWriter` for Milvus: a new collection per generation at ``uri``
    (default: a Milvus Lite file in the index folder)."""

    def __init__(self, index_dir: Path, uri: str | None = None) -> None:
        self.index_dir = Path(index_dir)
        self.uri = uri or default_milvus_uri(self.index_dir)
        self._written: str | None = None

    def write(self, generation: Path, rows: Sequence[ChunkRow], dimension: int,
              hnsw_threshold: int) -> dict[str, Any]:
        collection = f"{collection_prefix(self.index_dir)}{generation.name.replace('-', '_')}"
        self._written = collection
        kind = MilvusChunkIndex.write(self.uri, collection, rows, dimension, hnsw_threshold, generation)
        return {"dense_index": kind, "milvus_uri": self.uri, "milvus_collection": collection}

    def append(self, generation: Path, previous: Path, previous_manifest: Mapping[str, Any],
               rows: Sequence[ChunkRow], dimension: int, hnsw_threshold: int) -> dict[str, Any] | None:
        """Not done: each generation is a collection of its own, written whole."""
        return None

    def discard(self) -> None:
        if self._written is not None:
            with contextlib.suppress(Exception):  # best effort: the next build drops it too
                drop_collection(self.uri, self._written)

    def drop_stale(self, keep: Iterable[Mapping[str, Any]]) -> None:
        """Drop the collections of this index folder (half-written or superseded ones) except those of ``keep``."""
        if not (self.index_dir / INDEX_ID).exists():
            return
        names = {name for manifest in keep if (name := manifest.get("milvus_collection"))}
        drop_collections(self.uri, collection_prefix(self.index_dir), keep=names)
