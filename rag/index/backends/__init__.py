"""Chunk stores by name: the one place that knows which backends exist.

- ``"faiss"`` (:mod:`rag.index.backends.faiss`): FAISS and bm25s files inside each generation (the default).
- ``"milvus"`` (:mod:`rag.index.backends.milvus`): one Milvus collection per generation, at a URI (Milvus Lite
  file or server); imported only when an index uses it.

The catalog opens a generation's chunk index with :func:`open_backend` and writes one with
:func:`write_backend`; what a backend needs to find its data again is in the manifest entries its writer
returned. The interfaces are in :mod:`rag.index.backends.base`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rag.config import STORES, Store
from rag.errors import SettingsError
from rag.index.backends.base import ChunkIndex, ChunkIndexWriter, damaged

# What a manifest without a "store" entry (written before there was a choice) used.
DEFAULT_STORE: Store = "faiss"


def store_of(manifest: Mapping[str, Any]) -> Store:
    """The store a generation's chunks are in, by its manifest."""
    return manifest.get("store", DEFAULT_STORE)


def open_backend(store_name: Store, generation: Path, manifest: Mapping[str, Any],
                 uri: str | None = None) -> ChunkIndex:
    """The chunk index of ``generation``, which its manifest says how to find. ``uri``: where the store's
    server or file is now, if not where the manifest recorded it (stores without one ignore it).
    Raises IndexCorrupt if it cannot be read and IndexUnavailable if its store cannot be reached."""
    if store_name == "faiss":
        from rag.index.backends.faiss import FaissChunkIndex

        return FaissChunkIndex(generation, manifest.get("segments", ("",)))
    if store_name == "milvus":
        from rag.index.backends.milvus import open_index

        return open_index(generation, manifest, uri)
    raise damaged(f"{generation}: its chunks are in an unknown store {store_name!r}")


def write_backend(store_name: Store, index_dir: Path, uri: str | None = None) -> ChunkIndexWriter:
    """A writer of chunk indexes for new generations of ``index_dir`` in ``store_name``; ``uri`` as for
    :func:`open_backend` (None: the store's default for this index folder)."""
    if store_name == "faiss":
        from rag.index.backends.faiss import FaissWriter

        return FaissWriter()
    if store_name == "milvus":
        from rag.index.backends.milvus import MilvusWriter

        return MilvusWriter(index_dir, uri)
    raise SettingsError(f"unknown chunk store {store_name!r} (choose {' or '.join(STORES)})")
