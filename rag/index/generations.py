"""The index folder: which generation is live, what its manifest says, and how a new one goes live.

Layout of an index folder::

    index/CURRENT        name of the live generation, replaced atomically (write aside, then rename)
    index/.lock          held by a writer, so two builds never interleave
    index/gen-<n>/       one complete generation: manifest.json, the catalog (meta.sqlite and its parts of
                         texts, texts-<n>.sqlite, see rag.index.catalog) and the chunk index of its store (see
                         rag.index.backends); files that did not change are hard links to the previous one's

A build writes a new generation folder beside the live one and only then points CURRENT at it
(:func:`publish`). A crash at any point leaves the old generation live; the next build removes the
half-written folder (:func:`remove_stale`). Nothing outside ``rag.index`` touches these files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Store
from rag.errors import IndexCorrupt, IndexMismatch, IndexMissing
from rag.index.backends import store_of

if TYPE_CHECKING:
    from filelock import FileLock

FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
MANIFEST = "manifest.json"
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class IndexSettings:
    """What an index is bound to: querying or extending it with other values is refused. These are the first
    entries of every manifest, under these names and in this order."""

    embedding_model: str
    dimension: int
    chunk_chars: int
    chunk_overlap_sentences: int
    store: Store  # where the chunks are: a name known to rag.index.backends

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def current_generation(index_dir: Path) -> Path | None:
    """The live generation's folder, or None if no index was ever built in ``index_dir``."""
    pointer = index_dir / CURRENT_FILE
    if not pointer.exists():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    generation = index_dir / name
    if not name or not generation.is_dir():
        raise IndexCorrupt(
            f"{pointer}: points at missing generation '{name}'; rebuild with: rag index PATH --rebuild"
        )
    return generation


def live(index_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The live generation and its manifest."""
    generation = current_generation(index_dir)
    if generation is None:
        raise IndexMissing(f"{index_dir}: no index here; build one with: rag index data/articles")
    path = generation / MANIFEST
    try:
        return generation, json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"{path}: unreadable manifest ({exc}); rebuild with: rag index PATH --rebuild") from exc


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The live generation's manifest."""
    return live(index_dir)[1]


def check_readable(index_dir: Path, generation: Path, manifest: Mapping[str, Any], expected_model: str | None,
                   store: str | None) -> None:
    """Refuse a generation of another format, embedded with another model than ``expected_model``, or whose
    chunks are in another store than ``store`` (None: either check is skipped)."""
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"{generation}: index format {manifest.get('format_version')} is not "
            f"{FORMAT_VERSION}; rebuild with: rag index PATH --rebuild"
        )
    if expected_model is not None and manifest.get("embedding_model") != expected_model:
        raise IndexMismatch(
            f"{index_dir}: built with embedding model '{manifest.get('embedding_model')}', "
            f"but this installation embeds with '{expected_model}'; rebuild with: rag index PATH --rebuild"
        )
    built_store = store_of(manifest)
    if store is not None and store != built_store:
        raise IndexMismatch(
            f"{index_dir}: its chunks are in {built_store}, not {store}; use --store {built_store}, "
            f"or rebuild with: rag index PATH --store {store} --rebuild"
        )


def check_extendable(index_dir: Path, manifest: Mapping[str, Any], settings: IndexSettings) -> None:
    """Refuse to extend an index built with other settings."""
    old = {**manifest, "store": store_of(manifest)}
    for key, value in settings.as_dict().items():
        if old.get(key) != value:
            raise IndexMismatch(
                f"{index_dir}: index was built with {key}={old.get(key)!r}, now {value!r}; "
                "rebuild with: rag index PATH --rebuild"
            )


def lock(index_dir: Path) -> FileLock:
    """The lock a writer holds while it builds a generation of ``index_dir``."""
    from filelock import FileLock

    return FileLock(str(index_dir / LOCK_FILE))


def new_generation(index_dir: Path) -> Path:
    """A new, empty generation folder beside the live one."""
    generation = index_dir / f"gen-{time.time_ns()}"
    generation.mkdir()
    return generation


def remove_stale(index_dir: Path, keep: Path | None) -> None:
    """Remove every generation folder but ``keep`` (half-written by a crash, or superseded)."""
    for child in index_dir.glob("gen-*"):
        if child != keep:
            shutil.rmtree(child, ignore_errors=True)


def new_manifest(settings: IndexSettings, chunk_index: Mapping[str, Any], chunks: int, documents: int,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A generation's manifest: the format, its settings, what its store returned about its chunk index, counts,
    the time, then ``extra``."""
    return {
        "format_version": FORMAT_VERSION,
        **settings.as_dict(),
        **chunk_index,
        "chunks": chunks,
        "documents": documents,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }


def publish(index_dir: Path, generation: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest`` into the complete ``generation``, make it durable, point CURRENT at it (atomically),
    and remove every other generation folder."""
    (generation / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    _fsync_tree(generation)
    pointer_tmp = index_dir / f".{CURRENT_FILE}.tmp"
    with open(pointer_tmp, "w", encoding="utf-8") as handle:
        handle.write(generation.name)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer_tmp, index_dir / CURRENT_FILE)
    _fsync_dir(index_dir)
    remove_stale(index_dir, keep=generation)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
