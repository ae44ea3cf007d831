"""The index folder: the CURRENT pointer, manifests, settings an index is bound to, and publishing a generation."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rag.errors import IndexMismatch, IndexMissing
from rag.index import generations
from rag.index.build import build_index, index_settings
from rag.index.catalog import IndexReader
from rag.index.generations import IndexSettings

SETTINGS = IndexSettings(embedding_model="m (p 1.0)", dimension=4, chunk_chars=700, chunk_overlap_sentences=1,
                         store="faiss")


def test_the_settings_are_the_first_entries_of_the_manifest_in_their_order(bundled_index):
    manifest = generations.read_manifest(bundled_index.index_dir)
    names = [f.name for f in dataclasses.fields(IndexSettings)]
    assert list(manifest)[: 1 + len(names)] == ["format_version", *names]
    assert {name: manifest[name] for name in names} == index_settings(bundled_index).as_dict()


def test_publishing_writes_the_manifest_points_current_at_the_generation_and_removes_the_others(tmp_path):
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    with pytest.raises(IndexMissing):
        generations.live(index_dir)
    old, new = generations.new_generation(index_dir), generations.new_generation(index_dir)
    manifest = generations.new_manifest(SETTINGS, {"dense_index": "flat"}, chunks=0, documents=0, extra={"x": 1})
    assert list(manifest)[:2] == ["format_version", "embedding_model"] and list(manifest)[-1] == "x"
    generations.publish(index_dir, new, manifest)
    assert (index_dir / generations.CURRENT_FILE).read_text(encoding="utf-8") == new.name
    assert generations.live(index_dir) == (new, json.loads(json.dumps(manifest)))
    assert not old.exists() and sorted(index_dir.glob("gen-*")) == [new]


def test_extending_is_refused_for_the_first_setting_that_differs(tmp_path):
    manifest = generations.new_manifest(SETTINGS, {"dense_index": "flat"}, chunks=0, documents=0)
    generations.check_extendable(tmp_path, manifest, SETTINGS)
    with pytest.raises(IndexMismatch, match="chunk_chars=700, now 300"):
        generations.check_extendable(tmp_path, manifest, dataclasses.replace(SETTINGS, chunk_chars=300))


def test_a_manifest_without_a_store_entry_is_read_and_extended_as_a_faiss_index(copy_index, sample_index, embedder):
    """Manifests written before the store could be chosen have no "store" entry."""
    config = copy_index(sample_index)
    path = generations.current_generation(config.index_dir) / generations.MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    del manifest["store"]
    path.write_text(json.dumps(manifest), encoding="utf-8")
    reader = IndexReader(config.index_dir, store="faiss")
    assert reader.chunk_count == manifest["chunks"]
    reader.close()
    with pytest.raises(IndexMismatch, match="--store faiss"):
        IndexReader(config.index_dir, store="milvus")
    report = build_index([sample_index.index_dir.parent / "corpus"], config, embedder=embedder)
    assert report.embedded_chunks == 0 and len(report.unchanged) == 3
