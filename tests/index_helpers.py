"""Indexes built for a test: the bundled articles with something added."""

from __future__ import annotations

import shutil
from pathlib import Path

from rag.config import Config
from rag.index.build import build_index
from rag.models.embedding import Embedder


def index_with_extra_file(folder: Path, articles_dir: Path, embedder: Embedder, name: str, text: str) -> Config:
    """An index (in ``folder``) of the bundled articles plus one more file, such as a planted document."""
    return index_with_extra_files(folder, articles_dir, embedder, {name: text})


def index_with_extra_files(folder: Path, articles_dir: Path, embedder: Embedder, files: dict[str, str]) -> Config:
    """An index (in ``folder``) of the bundled articles plus ``files`` (name: text)."""
    corpus = folder / "articles"
    shutil.copytree(articles_dir, corpus)
    for name, text in files.items():
        (corpus / name).write_text(text, encoding="utf-8")
    config = Config(index_dir=folder / "index")
    build_index([corpus], config, embedder=embedder)
    return config
