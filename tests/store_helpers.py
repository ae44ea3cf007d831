"""Store tests run against both chunk stores: FAISS files and Milvus (Lite)."""

from __future__ import annotations

from pathlib import Path

from rag.config import Config

STORES = ("faiss", "milvus")


def store_config(store_name: str, index_dir: Path) -> Config:
    """A Config for an index at ``index_dir`` whose chunks live in ``store_name`` (Milvus: a Milvus Lite
    file inside the index folder, the default location)."""
    return Config(index_dir=index_dir, store=store_name)
