"""``rag bench``: what each section measures and reports. Speed itself is never asserted here (this machine
is noisy); these tests hold the measurements to being about the right things and the checks inside them to
being real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals.bench.embedding import embedding_throughput
from evals.bench.launch import first_ui_answer
from evals.bench.query import llama_speed, query_stages
from evals.bench.real_archive import archive
from evals.bench.report import render
from evals.bench.scaling import dense_scaling
from evals.bench.timing import DEV_SET
from rag.config import Config
from rag.index.engines import chunk_document
from rag.ingest import readers

ROOT = Path(__file__).resolve().parent.parent


def test_embedding_throughput_times_both_encoders_on_what_rag_index_embeds():
    config = Config()
    report = embedding_throughput([ROOT / "data" / "articles"], config, rounds=1)

    files, _ = readers.discover([ROOT / "data" / "articles"])
    expected = 0
    for path, doc_id in files:
        for doc in readers.load_file(path, doc_id):
            chunks, sentences = chunk_document(doc, config)
            expected += len(chunks) + len(sentences)
    assert report["texts"] == expected
    assert report["backend"] == "onnx"
    assert report["sentence_transformers_texts_per_s"] > 0 and report["rag_texts_per_s"] > 0
    assert report["texts"] < report["tokens"] <= report["texts"] * 256  # 256: the model's max_seq_length
    assert report["rag_tokens_per_s"] == pytest.approx(
        report["tokens"] * report["rag_texts_per_s"] / report["texts"], rel=0.01)
    # The two encoders were run on the same texts and agree: a faster but different embedder would fail here.
    assert report["max_vector_difference"] < 1e-5
    dev = report["dev_retrieval"]
    assert dev["questions"] == sum(1 for line in (ROOT / DEV_SET).read_text().splitlines() if line)
    assert dev["same_top_k"] == dev["questions"]
    # The runtimes' ceiling on identical fixed batches, both batch shapes measured for both runtimes.
    assert [row["batch"] for row in report["runtimes"]] == ["128x32", "16x256"]
    for row in report["runtimes"]:
        assert row["torch_tokens_per_s_best"] >= row["torch_tokens_per_s_median"] > 0
        assert row["onnxruntime_tokens_per_s_best"] >= row["onnxruntime_tokens_per_s_median"] > 0


def test_dense_scaling_reports_exact_and_approximate_latency_and_recall_at_each_ef_search():
    (row,) = dense_scaling([3000], queries=20, ef_values=(16, 64))
    # An exact search of 3,000 vectors takes measurable time (a zero would mean nothing was searched).
    assert row["vectors"] == 3000 and row["flat_ms_p50"] > 0
    assert [ef["ef_search"] for ef in row["hnsw"]] == [16, 64, 128]  # 128: what rag searches 3,000 vectors with
    assert row["rag_ef_search"] == 128
    recalls = [ef["recall@10"] for ef in row["hnsw"]]
    assert recalls == sorted(recalls) and 0.9 <= recalls[-1] <= 1.0  # a wider search never finds less here
    assert all(ef["ms_p50"] > 0 for ef in row["hnsw"])


def test_hnsw_ef_search_grows_with_the_index():
    from rag.index.backends.faiss import hnsw_ef_search

    sizes = [1_000, 100_000, 1_000_000, 10_000_000]
    efs = [hnsw_ef_search(n) for n in sizes]
    assert efs == sorted(efs) and efs[0] == 128 and efs[-1] > efs[1]


@pytest.mark.slow
def test_make_run_serves_a_first_generative_answer_with_citations(bundled_index, monkeypatch):
    """What the start-up figure times: `make run` on this installed checkout with its index, then one
    generative answer with the default model through the app's API (the function raises on an answer
    without citations, and stops the server either way)."""
    monkeypatch.chdir(ROOT)
    elapsed_ms = first_ui_answer(bundled_index.index_dir, timeout_s=300)
    assert elapsed_ms is not None and 0 < elapsed_ms < 300_000


def test_the_cli_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "rag.app.cli", "bench", "--sections", "scaling", "--sizes", "2000",
                             "--out", str(out)], capture_output=True, text=True, cwd=ROOT, check=True)
    report = json.loads(out.read_text())
    assert [row["vectors"] for row in report["dense_scaling"]] == [2000]
    assert "dense search scaling" in result.stdout and "peak RSS" in result.stdout


def test_an_unknown_section_is_one_line_and_a_non_zero_exit(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rag.app.cli", "bench", "--sections", "scaling,speed",
                             "--out", str(tmp_path / "b.json")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    assert "unknown bench section(s) speed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b.json").exists()


def test_llama_speed_reads_a_fixed_prompt_and_writes_then_leaves_the_cache_empty():
    from rag.models.llm import Generator

    generator = Generator("smollm2-135m")
    speed = llama_speed(generator.llm, "How many ships?", prompt_tokens=64, new_tokens=8)
    assert speed["llama_read_tokens_per_s"] > 0 and speed["llama_write_tokens_per_s"] > 0
    assert generator.llm.n_tokens == 0  # the next measured question does not reuse the fixed prompt


def test_the_llm_section_times_every_installed_build_in_turn_and_answers_the_same_questions_with_each(
        bundled_index):
    from evals.bench.llm import llm_variants
    from rag.models import llama_cpu

    config = bundled_index.replace(model_path="smollm2-135m")
    questions = ["Who brokered the call between Trump and Maduro?", "Where is the US naval build-up?"]
    report = llm_variants(config, rounds=2, prompt_tokens=64, new_tokens=8, questions=questions)
    expected = [name for name in llama_cpu.installed(config.cache_dir)
                if name == "avx2" or llama_cpu.BUILT[name].needs <= llama_cpu.cpu_flags()]
    assert list(report["variants"]) == expected
    assert report["chosen_by_default"] == "avx2" and report["chosen_by_auto"] == expected[-1]
    for name, row in report["variants"].items():
        assert len(row["read_runs"]) == len(row["write_runs"]) == 2
        assert min(row["read_runs"]) > 0 and min(row["write_runs"]) > 0
        # Each child really ran its own build: the kernels it reports are that build's.
        assert ("AVX512" in row["kernels"]) == (name == "avx512") and "AVX2" in row["kernels"]
    assert report["variants"]["avx2"]["read_ratio"] == 1.0
    answers = report["answers"]
    assert answers["questions"] == 2 and list(answers["builds"]) == expected
    for row in answers["builds"].values():
        assert row["answer_ms_p50"] > 0 and 0 <= row["same_answer_as_avx2"] <= 2
        assert row["prompt_tokens_p50"] > 0
    assert answers["builds"]["avx2"]["same_answer_as_avx2"] == 2
    assert "llama.cpp builds" in render({"machine": {}, "llm": report, "peak_rss_mb": 1})


def test_query_stages_time_the_default_path_each_stage_and_the_model_on_the_evidence_it_reads(bundled_index):
    report = query_stages(bundled_index.replace(model_path="smollm2-135m"), generative_questions=2)
    for stage in ("embed_ms", "bm25_ms", "evidence_ms", "gather_ms"):
        assert report[stage]["p50"] > 0
    # Dense search and fusion over 41 chunks can round to 0.0 ms; the whole path holds each of its stages.
    stages = ("embed_ms", "dense_ms", "bm25_ms", "fusion_ms", "evidence_ms")
    assert {*stages, "retrieval_and_evidence_ms", "gather_ms"} <= set(report)
    assert report["retrieval_and_evidence_ms"]["p50"] >= max(report[stage]["p50"] for stage in stages)
    # The whole is the assistant's own gather, of which the evidence is a part.
    assert report["retrieval_and_evidence_ms"] == report["gather_ms"]
    assert report["evidence_ms"]["p50"] <= report["gather_ms"]["p50"]
    generation = report["generation"]
    assert generation["model"] == "smollm2-135m" and generation["questions"] == 2
    # Under the judge the model reads every sentence of the top passages (prompt_passages), at least two.
    assert generation["evidence_sentences_read_p50"] >= 2
    assert generation["judge"] == "model" and 0 <= generation["judge_share_of_tokens_read"] <= 1
    assert 0 < generation["time_to_first_token_ms_p50"] <= generation["generate_ms_p50"]
    assert generation["prompt_tokens_p50"] > 0 and generation["llama_read_tokens_per_s"] > 0
    # The draft faced the configured policy's check (the judge's here), not the lexical one.
    assert "check_ms_p50" in generation and "verification_ms_p50" not in generation
    # Each stage of the whole answers, as their timings name them.
    for stage in ("retrieve_ms", "generate_ms", "total_ms"):
        assert generation[f"answer_{stage}_p50"] >= 0
    assert 0 < generation["answer_retrieve_ms_p50"] <= generation["answer_total_ms_p50"]
    assert generation["answer_total_ms_p50"] == generation["answer_with_judge_ms_p50"]


@pytest.mark.slow
def test_the_archive_section_builds_both_ways_and_measures_answers_at_that_size(monkeypatch):
    """On the bundled articles (the real run uses the 2,225 BBC articles): both builds in their own processes,
    the same top 5 passages, recall of gold spans, and per-stage and whole-answer latency."""
    monkeypatch.chdir(ROOT)
    report = archive(ROOT / "data" / "articles", ROOT / DEV_SET, Config(), generative_questions=0)
    assert set(report["builds"]) == {"today", "before"}
    for row in report["builds"].values():
        assert row["documents"] == 5 and row["chunks"] > 0 and row["sentences"] > row["chunks"]
        assert row["peak_rss_mb"] > 100 and row["index_mb_on_disk"] > 0
    assert report["builds"]["today"]["sentence_vectors"] == "pooled"
    assert report["builds"]["before"]["sentence_vectors"] == "embedded"
    # Chunk vectors are the same both ways, so every question retrieves the same passages.
    assert report["same_top5"]["archive_dev"] == {"questions": 15, "same_top5_allowing_ties": 15}
    assert 0 < report["recall_at_5"]["hits"] <= report["recall_at_5"]["questions"]
    assert report["query"]["retrieval_and_evidence_ms"]["p50"] > 0
    assert report["extractive_answer_ms"]["p50"] > 0 and "generative_answer_ms" not in report
    assert "today's build is" in render(dict(report={}, archive=report, peak_rss_mb=1, machine={}))


def test_the_million_section_builds_a_synthetic_archive_and_measures_it_where_it_grows(tmp_path):
    from evals.bench.million import million

    # The 10^5 version (the whole section builds 10^6 chunks): HNSW, as above the default threshold.
    report = million(Config(), chunks=100_000, queries=20, added=1_000, folder=tmp_path)
    assert report["chunks"] == 100_000 and report["dense_index"] == "hnsw"
    assert report["section_chunks"] == 1_000  # the 1% section
    assert report["section_recall_at_10"] >= 0.95 and report["section_searches_short_of_10"] == 0
    assert report["search_ms_p50"] > 0 and report["section_search_ms_p50"] > 0 and report["open_s"] > 0
    assert report["browse_page_ms_p50"] > 0 and report["add_s"] > 0
    # The add wrote its chunks as a segment of their own and left the earlier chunks' files as they were.
    assert report["add_rewrote_earlier_files"] == 0 and report["segments_after_add"] == 2
    # The near-copies (5% of the articles, a word changed) were found by their signatures, the added ones too.
    assert 1_000 <= report["near_copy_groups"] < report["near_copy_groups_after_add"] <= 26_000 * 0.06
    # What it copied is the documents' catalog, a small share of the texts and vectors it linked.
    assert 0 < report["add_copied_catalog_mb"] < report["catalog_texts_mb"] / 4
    assert report["search_ms_p50_after_add"] > 0
    from rag.index.catalog import IndexReader

    reader = IndexReader(tmp_path / "index")
    assert reader.chunk_count == 100_000 + 1_000 * 4  # the added articles are in the index
    sections = reader.sections()
    assert len(sections) == 20 and sections["section00"] == 250
    assert "synthetic archive of 100,000 chunks" in render({"machine": {}, "million": report, "peak_rss_mb": 1})


def test_the_index_ratio_section_times_rag_index_against_a_plain_encode_of_the_same_chunks_in_turns(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "rag.app.cli", "bench", "--sections", "index_ratio",
                             "--archive-corpus", "data/articles", "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT, check=True)
    ratio = json.loads(out.read_text())["index_time_ratio"]
    assert ratio["documents"] == len(list((ROOT / "data" / "articles").glob("*.txt")))
    assert ratio["chunks"] >= ratio["documents"] and len(ratio["rounds_s"]["rag_index"]) == 2
    assert ratio["index_to_encode"] == round(ratio["rag_index"] / ratio["sentence_transformers_encode"], 2) > 0
    assert "rag index against a plain encode" in result.stdout
