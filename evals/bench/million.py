"""``rag bench --sections million``: an archive of 10^6 chunks on one machine, built without the embedding model.

The archive is synthetic, so that its size is the only thing measured. Each article has four chunks, and each
chunk is one sentence of words drawn from a Zipf-distributed vocabulary. Vectors are unit vectors clustered by
topic. The articles fall into 20 sections, one of them holding 1% of the chunks, and 5% of the articles are
near-copies of another (a word changed), found by their MinHash signatures as ``rag index`` finds them.
The archive is written through the same
``IndexWriter`` as ``rag index``, so the catalog, FAISS (HNSW above ``hnsw_threshold``) and bm25s files are
what the real build writes.

Measured: the build; opening the index in a fresh process (time and peak memory beyond the vectors);
retrieval p50/p95 (dense, BM25 and fusion, 50 candidates each, as a question runs them) unfiltered and within
the 1% section; recall@10 of the dense search within that section against exact search over its vectors; one
page of the section's headlines; and an incremental add of 1,000 articles.
"""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from evals.bench.scaling import _clustered_unit_vectors
from evals.bench.timing import percentile_of
from rag.config import Config

CHUNKS_PER_ARTICLE = 4
WORDS_PER_CHUNK = 60
SECTIONS = 20
SMALL_SECTION = "section00"  # 1% of the chunks
NEAR_COPY_SHARE = 0.05
DIMENSION = 384


def million(config: Config, chunks: int = 1_000_000, queries: int = 100, added: int = 1000,
            folder: Path | None = None) -> dict:
    """Build the synthetic archive of ``chunks`` chunks, measure it, add ``added`` articles; the figures."""
    from rag.index.catalog import IndexWriter
    from rag.index.generations import IndexSettings

    root = folder or Path(tempfile.mkdtemp(prefix="rag-bench-million-"))
    index_dir = root / "index"
    # The store is config.store (RAG_STORE=milvus: Milvus Lite, in a file inside the index folder).
    settings = IndexSettings("synthetic (no model)", DIMENSION, config.chunk_chars, 0, config.store)
    articles = chunks // CHUNKS_PER_ARTICLE
    try:
        started = time.perf_counter()
        with IndexWriter(index_dir, settings, milvus_uri=config.milvus_uri) as writer:
            _write_articles(writer, range(articles), seed=1)
            _, near_copy_groups = writer.duplicate_counts()
            manifest = writer.commit(config.hnsw_threshold)
        build_s = time.perf_counter() - started
        opened = _in_child(index_dir, queries, seed=2)
        earlier = _chunk_files(index_dir)
        started = time.perf_counter()
        with IndexWriter(index_dir, settings, milvus_uri=config.milvus_uri) as writer:
            _write_articles(writer, range(articles, articles + added), seed=3)
            _, near_copy_groups_after = writer.duplicate_counts()
            grown = writer.commit(config.hnsw_threshold)
        add_s = time.perf_counter() - started
        now = _chunk_files(index_dir)
        documents_mb, texts_mb = _catalog_mb(index_dir)
        after = _in_child(index_dir, queries, seed=2)
        return {"store": config.store, "chunks": manifest["chunks"], "articles": articles,
                "dense_index": manifest.get("dense_index"),
                "build_s": round(build_s, 1), "near_copy_groups": near_copy_groups, **opened,
                "added_articles": added, "add_s": round(add_s, 1),
                "add_share_of_build": round(add_s / build_s, 2),
                "near_copy_groups_after_add": near_copy_groups_after,
                # Files of the chunk index that the add wrote anew although they hold earlier chunks.
                # (Milvus keeps a collection per generation outside the folder: written whole, not counted.)
                "add_rewrote_earlier_files": (sum(now.get(path) != inode for path, inode in earlier.items())
                                              if config.store == "faiss" else None),
                "segments_after_add": len(grown.get("segments", [""])),
                # What an add copies: the documents' catalog (one row per document; the texts are linked).
                "add_copied_catalog_mb": round(documents_mb, 1), "catalog_texts_mb": round(texts_mb, 1),
                "search_ms_p50_after_add": after["search_ms_p50"],
                "section_search_ms_p50_after_add": after["section_search_ms_p50"]}
    finally:
        if folder is None:
            shutil.rmtree(root, ignore_errors=True)


def _release_milvus_lite(index_dir: Path) -> None:
    from rag.index.generations import read_manifest

    uri = read_manifest(index_dir).get("milvus_uri")
    if uri is not None and "://" not in uri:
        from rag.index.backends.milvus import close_client

        close_client(uri)


def _chunk_files(index_dir: Path) -> dict[str, int]:
    """The live generation's files of chunks and texts (its chunk index and catalog parts; not the documents'
    ``meta.sqlite``, which each generation copies), by path in the generation, with inodes."""
    from rag.index.catalog import SQLITE
    from rag.index.generations import MANIFEST, current_generation

    generation = current_generation(index_dir)
    assert generation is not None
    return {str(f.relative_to(generation)): f.stat().st_ino for f in generation.rglob("*")
            if f.is_file() and f.name not in (SQLITE, MANIFEST)}


def _catalog_mb(index_dir: Path) -> tuple[float, float]:
    """The live generation's documents catalog (``meta.sqlite``) and its parts of texts, in MB."""
    from rag.index.catalog import PARTS, SQLITE
    from rag.index.generations import current_generation, read_manifest

    generation = current_generation(index_dir)
    assert generation is not None
    parts = sum((generation / name).stat().st_size for name in read_manifest(index_dir).get(PARTS, []))
    return (generation / SQLITE).stat().st_size / 2**20, parts / 2**20


def _section(article: int, articles: int) -> str:
    # The first 1% of the articles (so 1% of the chunks) form the small section; the rest spread over 19.
    if article < max(1, articles // 100):
        return SMALL_SECTION
    return f"section{1 + article % (SECTIONS - 1):02d}"


def _write_articles(writer, numbers: range, seed: int, batch: int = 10_000) -> None:
    """Write articles ``numbers`` (names and sections depend only on the number; texts on ``seed``)."""
    from rag.index.catalog import NewContent
    from rag.ingest import dedup

    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{n}" for n in range(20_000)])
    total = max(numbers.stop, 1)
    for begin in range(numbers.start, numbers.stop, batch):
        block = range(begin, min(begin + batch, numbers.stop))
        vectors = _clustered_unit_vectors(rng, len(block) * CHUNKS_PER_ARTICLE)
        ranks = np.minimum(rng.zipf(1.2, (len(block) * CHUNKS_PER_ARTICLE, WORDS_PER_CHUNK)), len(vocabulary)) - 1
        originals: dict[int, str] = {}
        for offset, number in enumerate(block):
            rows = slice(offset * CHUNKS_PER_ARTICLE, (offset + 1) * CHUNKS_PER_ARTICLE)
            chunk_texts = [" ".join(vocabulary[r]) + "." for r in ranks[rows]]
            chunk_vectors = vectors[rows]
            copy_of = None
            if offset and rng.random() < NEAR_COPY_SHARE:  # a near-copy of an earlier article of the block
                copy_of = block[int(rng.integers(0, offset))]
                chunk_texts = originals[copy_of].split("\n")
                chunk_texts[0] = f"changed{number} " + chunk_texts[0]  # one word changed, each copy its own
                chunk_vectors = vectors[(copy_of - block.start) * CHUNKS_PER_ARTICLE:][:CHUNKS_PER_ARTICLE]
            text = "\n".join(chunk_texts)
            originals[number] = text
            spans, at = [], 0
            for piece in chunk_texts:
                spans.append((at, at + len(piece)))
                at += len(piece) + 1
            content_hash = hashlib.sha256(text.encode()).hexdigest()
            section = _section(number, total)
            doc_id = f"{section}/{number:07d}.txt"
            title = " ".join(vocabulary[ranks[rows][0][:6]]).capitalize()
            day = f"20{number % 25:02d}-{1 + number % 12:02d}-{1 + number % 28:02d}"
            writer.put_document(doc_id, doc_id, title, day, None, None, content_hash)
            writer.put_content(NewContent(content_hash, text, spans, chunk_vectors, spans, chunk_vectors,
                                          dedup.signature(text, [(0, len(text))])))
    # Near-copies are found as ``rag index`` finds them (MinHash bands; an add looks up only its own texts').
    writer.group_near_copies()


def _in_child(index_dir: Path, queries: int, seed: int) -> dict:
    _release_milvus_lite(index_dir)  # Milvus Lite lets one process at a time open its file
    command = [sys.executable, "-m", "evals.bench.million", str(index_dir), str(queries), str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the million bench's reader failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure_reader(index_dir: Path, queries: int, seed: int) -> dict:
    """(In a fresh process.) Open the index, then time searches and a page of the small section."""
    from rag.index.catalog import IndexReader

    before_mb = _resident_mb()  # nothing heavy is loaded yet: the peak while opening is the index's
    started = time.perf_counter()
    reader = IndexReader(index_dir)
    open_s = time.perf_counter() - started
    peak_mb = _peak_resident_mb()
    from rag.qa.retrieval import reciprocal_rank_fusion

    vectors_mb = reader.chunk_count * DIMENSION * 4 / 2**20
    rng = np.random.default_rng(seed)
    picks = rng.choice(reader.chunk_count, queries, replace=False) + 1
    stored = reader.chunk_vectors(int(i) for i in picks)
    words = {int(i): reader.chunks([int(i)])[int(i)].text.split()[:6] for i in picks}
    started = time.perf_counter()
    within = reader.within(SMALL_SECTION)
    within_s = time.perf_counter() - started
    section_vectors = np.vstack([v for _, v in sorted(reader.chunk_vectors(int(i) for i in within.chunk_ids).items())])
    timings: dict[str, list[float]] = {"unfiltered": [], "section": []}
    hits = total = short = 0
    for chunk_id in picks:
        query = stored[int(chunk_id)]
        text = " ".join(words[int(chunk_id)])
        for name, where in (("unfiltered", None), ("section", within)):
            started = time.perf_counter()
            dense = reader.dense(query, 50, where)
            lexical = reader.lexical(text, 50, where)
            reciprocal_rank_fusion([[c for c, _ in dense], [c for c, _ in lexical]])
            timings[name].append((time.perf_counter() - started) * 1000)
            if where is not None:
                # Near-copies share vectors, so the exact 10th score decides, not ids (ties count as found).
                tenth = np.sort(section_vectors @ query)[::-1][min(9, within.size - 1)]
                short += len(dense[:10]) < min(10, within.size)
                hits += sum(score >= tenth - 1e-5 for _, score in dense[:10])
                total += min(10, within.size)
    pages = []
    cursor = None
    for _ in range(5):
        started = time.perf_counter()
        records, cursor = reader.page(SMALL_SECTION, "headline", cursor, 50)
        pages.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    reader.page(SMALL_SECTION, "date", None, 50)
    by_date_ms = (time.perf_counter() - started) * 1000
    return {
        "open_s": round(open_s, 2),
        # What opening added to the process at its peak; the vectors are memory-mapped, so this can be below
        # their size, and "beyond the vectors" negative.
        "open_peak_mb": round(peak_mb - before_mb, 1),
        "open_peak_mb_beyond_vectors": round(peak_mb - before_mb - vectors_mb, 1),
        "vectors_mb": round(vectors_mb, 1),
        "section_chunks": within.size, "section_filter_ms": round(within_s * 1000, 1),
        "search_ms_p50": percentile_of(timings["unfiltered"], 50),
        "search_ms_p95": percentile_of(timings["unfiltered"], 95),
        "section_search_ms_p50": percentile_of(timings["section"], 50),
        "section_search_ms_p95": percentile_of(timings["section"], 95),
        "section_to_unfiltered_p50": round(percentile_of(timings["section"], 50)
                                           / max(percentile_of(timings["unfiltered"], 50), 1e-6), 2),
        "section_recall_at_10": round(hits / max(total, 1), 3), "section_searches_short_of_10": short,
        "browse_page_ms_p50": percentile_of(pages, 50), "browse_page_by_date_ms": round(by_date_ms, 1),
    }


def _peak_resident_mb() -> float:
    """This process's peak resident memory since it started this program. Not ``ru_maxrss``: Linux carries that
    across fork and exec, so a child started by a parent holding a large index reported the parent's size
    (the 4,889 MB "open" of the first 10^6 run, and 524 MB at 10^5)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


if __name__ == "__main__":
    print(json.dumps(_measure_reader(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
