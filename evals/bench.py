"""``rag bench``: the numbers behind the README's performance section, measured on this machine.

Start-up, indexing throughput, per-stage query latency, generation speed, peak memory, and dense-search
scaling (exact vs approximate) on synthetic vectors. Prints a table and writes JSON.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from evals.metrics import percentile
from rag.config import Config

DEV_SET = Path("evals/datasets/dev_qa.jsonl")


def _dev_questions() -> list[str]:
    return [item["question"] for item in _questions_of(DEV_SET)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _p(values: list[float], q: int) -> float:
    return round(percentile(values, q), 2)


def _timed_command(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return _ms(statistics.median(times))


STARTUP_QUESTION = "In which region is the US naval build-up?"


def startup(index_dir: Path) -> dict:
    rag = [sys.executable, "-m", "rag.app.cli"]
    question = STARTUP_QUESTION
    return {
        "help_ms": _timed_command(rag + ["--help"], 5),
        "first_extractive_answer_ms": _timed_command(
            rag + ["ask", "--mode", "extractive", "--index-dir", str(index_dir), question], 1),
        "first_generative_answer_ms": _timed_command(rag + ["ask", "--index-dir", str(index_dir), question], 1),
        "make_run_to_first_ui_answer_ms": first_ui_answer(index_dir),
    }


def first_ui_answer(index_dir: Path, timeout_s: float = 300) -> float | None:
    """From ``make run`` (an installed checkout with its index) to the app's first generative answer, asked
    through its API as soon as the page is served. ``None`` where there is no Makefile (not a checkout)."""
    import os
    import signal
    import socket
    import urllib.request

    from gradio_client import Client

    if not Path("Makefile").is_file():
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    server = subprocess.Popen(["make", "-s", "run", f"PORT={port}", f"INDEX_DIR={index_dir}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            if server.poll() is not None or time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"make run did not serve {url} (exit code {server.returncode})")
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        answer = Client(url, verbose=False).predict(STARTUP_QUESTION, "generative", 8, api_name="/ask")
        elapsed = time.perf_counter() - started
        if not answer.get("citations"):
            raise RuntimeError(f"the first UI answer came back without citations: {answer.get('answer')!r}")
        return _ms(elapsed)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def indexing(corpora: dict[str, list[Path]], config: Config) -> dict:
    from rag.index.build import build_index
    from rag.models.embedding import Embedder

    embedder = Embedder()
    embedder.embed(["warm-up"])
    result = {}
    for name, paths in corpora.items():
        folder = Path(tempfile.mkdtemp(prefix="rag-bench-"))
        try:
            started = time.perf_counter()
            report = build_index(paths, config.replace(index_dir=folder), embedder=embedder)
            seconds = time.perf_counter() - started
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        result[name] = {"documents": report.documents, "chunks": report.chunks, "seconds": round(seconds, 2),
                        "documents_per_s": round(report.documents / seconds, 1),
                        "chunks_per_s": round(report.chunks / seconds, 1)}
    return result


def ingestion_engines(paths: list[Path], config: Config) -> dict:
    """``rag index`` with the local engine, then with the Ray engine, on the same corpus into fresh indexes.

    Each time covers a whole build including loading the model (in this process, or once per Ray actor);
    starting the private local Ray is timed apart. Also checks that both engines built the same index."""
    from rag.index import ray_engine
    from rag.index.build import build_index
    from rag.models.embedding import Embedder

    folders = {name: Path(tempfile.mkdtemp(prefix=f"rag-bench-{name}-")) for name in ("local", "ray")}
    result: dict = {}
    try:
        started = time.perf_counter()
        local = build_index(paths, config.replace(index_dir=folders["local"], engine="local"), embedder=Embedder())
        result["local"] = _throughput(local, time.perf_counter() - started)
        ours = not ray_engine.is_running()
        started = time.perf_counter()
        if ours:
            ray_engine.start(config.ray_address)
        startup_s = time.perf_counter() - started
        try:
            started = time.perf_counter()
            remote = build_index(paths, config.replace(index_dir=folders["ray"], engine="ray"))
            result["ray"] = dict(_throughput(remote, time.perf_counter() - started), startup_s=round(startup_s, 2))
        finally:
            if ours:
                import ray

                ray.shutdown()
        result.update(_compare_indexes(folders["local"], folders["ray"]))
    finally:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
    result["ray_speedup"] = round(result["local"]["seconds"] / result["ray"]["seconds"], 2)
    return result


def embedding_throughput(paths: list[Path], config: Config, rounds: int = 2) -> dict:
    """Our embedder against plain ``SentenceTransformer.encode`` on the texts ``rag index`` embeds for
    ``paths`` (every chunk and every sentence), side by side in this process: models loaded and warmed first,
    then the rounds alternate between the two so that a busy spell on the machine hits both alike; the best
    round of each counts. Also checks that both give the same vectors and the same dev-set retrieval."""
    from sentence_transformers import SentenceTransformer

    from rag.index.engines import chunk_document
    from rag.ingest import readers
    from rag.models.embedding import Embedder, _model_path

    files, _ = readers.discover(paths)
    texts: list[str] = []
    for path, doc_id in files:
        for doc in readers.load_file(path, doc_id):
            chunks, sentences = chunk_document(doc, config)
            texts += [doc.text[c.start : c.end] for c in chunks] + [doc.text[s.start : s.end] for s in sentences]
    plain = SentenceTransformer(str(_model_path()), device="cpu")
    ours = Embedder()
    plain.encode(["warm-up"])
    ours.embed(["warm-up"])
    seconds, last = _alternating_rounds({
        "sentence_transformers": lambda: plain.encode(texts, normalize_embeddings=True, convert_to_numpy=True),
        "rag": lambda: ours.embed(texts),
    }, rounds)
    reference, vectors = last["sentence_transformers"], last["rag"]
    best = {name: min(times) for name, times in seconds.items()}
    # What the transformer reads (after truncation), so the rates compare with the runtimes' fixed batches.
    tokens = int(plain.tokenize(texts)["attention_mask"].sum())
    return {
        "texts": len(texts), "backend": ours.backend, "tokens": tokens,
        **{f"{name}_texts_per_s": round(len(texts) / best[name], 1) for name in best},
        **{f"{name}_tokens_per_s": round(tokens / best[name]) for name in best},
        "rounds_s": {name: [round(t, 2) for t in times] for name, times in seconds.items()},
        "speedup": round(best["sentence_transformers"] / best["rag"], 2),
        "max_vector_difference": float(np.abs(reference - vectors).max()),
        "dev_retrieval": _dev_retrieval_by_backend(config),
        "runtimes": _runtime_tokens_per_s(plain, ours.model) if ours.backend == "onnx" else None,
    }


def _alternating_rounds(runs: dict[str, Callable[[], Any]], rounds: int) -> tuple[dict[str, list[float]],
                                                                                dict[str, Any]]:
    """Each run once per round, in turn, so that a busy spell on the machine hits them alike: the seconds of
    every round by name, and each run's last result."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    last: dict[str, Any] = {}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            last[name] = run()
            seconds[name].append(time.perf_counter() - started)
    return seconds, last


def _runtime_tokens_per_s(plain, onnx_model, shapes: tuple[tuple[int, int], ...] = ((128, 32), (16, 256)),
                          rounds: int = 5) -> list[dict]:
    """The transformer alone in each runtime, on identical fixed batches (``(texts, tokens)`` per shape,
    random token ids, no padding): the ceiling either runtime reaches here, free of tokenization, batching
    and pooling. Rounds alternate; best and median tokens/s of each."""
    import torch

    rng = np.random.default_rng(0)
    rows = []
    for count, width in shapes:
        feeds = {"input_ids": rng.integers(1000, 20000, (count, width)),
                 "attention_mask": np.ones((count, width), dtype=np.int64),
                 "token_type_ids": np.zeros((count, width), dtype=np.int64)}
        tensors = {name: torch.from_numpy(array) for name, array in feeds.items()}

        def run_torch(tensors: dict = tensors) -> None:
            with torch.inference_mode():
                plain[0].auto_model(**tensors)

        runs = {"torch": run_torch, "onnxruntime": lambda feeds=feeds: onnx_model.session.run(None, feeds)}
        for run in runs.values():
            run()
        seconds, _ = _alternating_rounds(runs, rounds)
        tokens = count * width
        rows.append({"batch": f"{count}x{width}",
                     **{f"{name}_tokens_per_s_best": round(tokens / min(times)) for name, times in seconds.items()},
                     **{f"{name}_tokens_per_s_median": round(tokens / float(np.median(times)))
                        for name, times in seconds.items()}})
    return rows


def _dev_retrieval_by_backend(config: Config, k: int = 5) -> dict:
    """The bundled articles indexed and searched once with each embedding backend: on how many dev questions
    the top ``k`` passages (document and span, in order) are the same."""
    from rag.index.build import build_index
    from rag.models.embedding import Embedder
    from rag.qa.retrieval import Retriever

    questions = _dev_questions()
    tops: dict[str, list[list[tuple[str, int, int]]]] = {}
    for backend in ("torch", "onnx"):
        folder = Path(tempfile.mkdtemp(prefix=f"rag-bench-{backend}-"))
        try:
            embedder = Embedder(backend=backend)
            settings = config.replace(index_dir=folder, store="faiss", engine="local")
            build_index([Path("data/articles")], settings, embedder=embedder)
            retriever = Retriever.open(settings, embedder)
            try:
                tops[backend] = [[(p.doc, p.chunk.start, p.chunk.end) for p in retriever.search(q, k)]
                                 for q in questions]
            finally:
                retriever.reader.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    same = sum(a == b for a, b in zip(tops["torch"], tops["onnx"], strict=True))
    return {"questions": len(questions), "same_top_k": same, "k": k}


def _throughput(report, seconds: float) -> dict:
    return {"documents": report.documents, "chunks": report.chunks, "errors": len(report.errors),
            "seconds": round(seconds, 2), "documents_per_s": round(report.documents / seconds, 1),
            "chunks_per_s": round(report.chunks / seconds, 1)}


def _compare_indexes(a: Path, b: Path) -> dict:
    """Whether two indexes hold the same documents and chunk and sentence rows, and how far their vectors are."""
    from rag.index.catalog import IndexReader

    readers = [IndexReader(a), IndexReader(b)]
    try:
        spans, vectors = [], []
        for reader in readers:
            rows = {kind: reader.span_rows(kind) for kind in ("chunk", "sentence")}
            spans.append((reader.documents(), {kind: [(r.id, r.content_hash, r.start, r.end) for r in found]
                                               for kind, found in rows.items()}))
            vectors.append(np.vstack([r.vector for found in rows.values() for r in found]))
        same = spans[0] == spans[1] and vectors[0].shape == vectors[1].shape
        difference = float(np.abs(vectors[0] - vectors[1]).max()) if same else None
        return {"same_documents_and_spans": same, "max_vector_difference": difference}
    finally:
        for reader in readers:
            reader.close()


def query_stages(config: Config, generative_questions: int, questions: list[str] | None = None) -> dict:
    """Per-stage latency over ``questions`` (the seed dev questions by default), measured around each stage's
    public call; ``retrieval_and_evidence_ms`` is the whole of it."""
    from rag.qa import answerability, conflicts, evidence
    from rag.qa.assistant import Assistant
    from rag.qa.question import parse
    from rag.qa.verification import verify

    assistant = Assistant(config)
    retriever = assistant.retriever
    reader = retriever.reader
    assistant.embedder.embed(["warm-up"])
    questions = questions or _dev_questions()
    stages: dict[str, list[float]] = {k: [] for k in ("embed_ms", "dense_ms", "bm25_ms", "fusion_ms", "evidence_ms",
                                                      "retrieval_and_evidence_ms")}
    for text in questions:
        question = parse(text)
        t0 = time.perf_counter()
        vector = assistant.embedder.embed_one(question.focus)
        t1 = time.perf_counter()
        reader.dense(vector, config.candidates)
        t2 = time.perf_counter()
        reader.lexical(question.focus, config.candidates)
        t3 = time.perf_counter()
        passages = retriever.search(question.focus, config.evidence_passages, query_vector=vector)
        t4 = time.perf_counter()
        scored = evidence.score_sentences(question, vector, passages, reader)
        chosen = evidence.select(scored, config.evidence_sentences)
        evidence.for_prompt(chosen, config.prompt_relevance)
        answerability.judge(question, chosen, config.abstain_threshold)
        conflicts.detect(question, chosen)
        t5 = time.perf_counter()
        stages["embed_ms"].append(_ms(t1 - t0))
        stages["dense_ms"].append(_ms(t2 - t1))
        stages["bm25_ms"].append(_ms(t3 - t2))
        # search() repeats dense and lexical search: what it adds beyond them is fusion and metadata.
        stages["fusion_ms"].append(max(_ms(t4 - t3) - stages["dense_ms"][-1] - stages["bm25_ms"][-1], 0.0))
        stages["evidence_ms"].append(_ms(t5 - t4))
        stages["retrieval_and_evidence_ms"].append(_ms(t5 - t0) - stages["dense_ms"][-1] - stages["bm25_ms"][-1])
    result = {k: {"p50": _p(v, 50), "p95": _p(v, 95)} for k, v in stages.items()}
    if generative_questions:
        generator = assistant.generator()
        prepared_questions = [assistant.prepare(text) for text in questions[:generative_questions]]
        prompts, first, speed, totals, verify_ms = [], [], [], [], []
        for prepared in prepared_questions:
            shown = prepared.prompt_evidence
            draft = generator.generate(prepared.search_text, [(e.n, e.text) for e in shown])
            started = time.perf_counter()
            verify(draft.text, shown, config.support_threshold, prepared.question.terms, prepared.question.focus)
            verify_ms.append(_ms(time.perf_counter() - started))
            prompts.append(draft.prompt_tokens)
            first.append(draft.first_token_ms)
            totals.append(draft.total_ms)
            writing = (draft.total_ms - draft.first_token_ms) / 1000
            if draft.completion_tokens > 1 and writing > 0:
                speed.append((draft.completion_tokens - 1) / writing)
        # The same questions with llama.cpp's cache emptied first: what reusing the fixed prefix saves.
        cold_first = []
        for prepared in prepared_questions:
            generator.llm.reset()
            shown = [(e.n, e.text) for e in prepared.prompt_evidence]
            cold_first.append(generator.generate(prepared.search_text, shown).first_token_ms)
        # Whole answers with the judge: its share of the answer's time and of the tokens the model read.
        answers = [assistant.ask(text, mode="generative") for text in questions[:generative_questions]]
        answer_ms = [a.timings["total_ms"] for a in answers]
        judge_ms = [a.timings.get("judge_ms", 0.0) for a in answers]
        judge_tokens = [a.judge_tokens for a in answers]
        read = [a.judge_tokens + a.prompt_tokens for a in answers]
        result["generation"] = {
            "model": generator.name, "questions": len(prompts), "judge": config.judge,
            "answer_with_judge_ms_p50": _p(answer_ms, 50), "judge_ms_p50": _p(judge_ms, 50),
            "judge_share_of_time": round(sum(judge_ms) / max(sum(answer_ms), 1e-9), 3),
            "judge_tokens_p50": _p(judge_tokens, 50),
            "judge_share_of_tokens_read": round(sum(judge_tokens) / max(sum(read), 1), 3),
            "time_to_first_token_ms_p50_with_empty_cache": _p(cold_first, 50),
            "evidence_sentences_read_p50": _p([len(p.prompt_evidence) for p in prepared_questions], 50),
            "prompt_tokens_p50": _p(prompts, 50), "prompt_tokens_p95": _p(prompts, 95),
            "time_to_first_token_ms_p50": _p(first, 50), "time_to_first_token_ms_p95": _p(first, 95),
            "generate_ms_p50": _p(totals, 50), "tokens_per_s_p50": _p(speed, 50),
            "verification_ms_p50": _p(verify_ms, 50),
            **_llama_speed(generator.llm, " ".join(questions)),
        }
    return result


def _llama_speed(llm, text: str, prompt_tokens: int = 256, new_tokens: int = 32) -> dict:
    """llama.cpp alone on a fixed prompt (``text`` repeated to ``prompt_tokens`` tokens, cache emptied
    first), then greedy writing: the machine's speed for this model at the time of the run, so that
    generation figures from different hours can be compared."""
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False)
    tokens = (tokens * (prompt_tokens // max(len(tokens), 1) + 1))[:prompt_tokens]
    llm.reset()
    started = first = time.perf_counter()
    written = 0
    for _ in llm.generate(tokens, temp=0.0, top_k=1, reset=True):
        written += 1
        if written == 1:
            first = time.perf_counter()
        if written > new_tokens:
            break
    finished = time.perf_counter()
    llm.reset()
    return {"llama_read_tokens_per_s": round(prompt_tokens / (first - started), 1),
            "llama_write_tokens_per_s": round(new_tokens / (finished - first), 1)}


def _clustered_unit_vectors(rng: np.random.Generator, size: int, spread: float = 0.6) -> np.ndarray:
    """Synthetic stand-ins for sentence embeddings: unit vectors around many topic centres (uniformly random
    vectors have no neighbourhood structure at all, which no real corpus looks like)."""
    centres = rng.standard_normal((max(size // 100, 10), 384), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((size, 384), dtype=np.float32)
    noise *= spread / np.linalg.norm(noise, axis=1, keepdims=True)
    data = centres[rng.integers(0, len(centres), size)] + noise
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def dense_scaling(sizes: list[int], queries: int = 100, k: int = 10, seed: int = 0,
                  ef_values: tuple[int, ...] = (64, 128, 256, 512, 1024)) -> list[dict]:
    """Exact (flat) vs approximate (HNSW built as ``rag index`` builds it) inner-product search on clustered
    unit vectors, the graph searched at each of ``ef_values`` and at the efSearch ``rag`` uses for that size;
    queries are perturbed copies of stored vectors. Recall is against the exact top ``k``."""
    import faiss

    from rag.index.backends.base import HNSW_EF_CONSTRUCTION, HNSW_M
    from rag.index.backends.faiss import hnsw_ef_search

    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        data = _clustered_unit_vectors(rng, size)
        noise = rng.standard_normal((queries, 384), dtype=np.float32)
        noise *= 0.3 / np.linalg.norm(noise, axis=1, keepdims=True)
        query = data[rng.choice(size, queries, replace=False)] + noise
        query /= np.linalg.norm(query, axis=1, keepdims=True)
        flat = faiss.IndexFlatIP(384)
        flat.add(data)
        started = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(384, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.add(data)
        build_s = time.perf_counter() - started
        exact, flat_ms = _timed_searches(flat, query, k)
        row: dict = {"vectors": size, "flat_ms_p50": _p(flat_ms, 50), "flat_ms_p95": _p(flat_ms, 95),
                     "hnsw_build_s": round(build_s, 1), "rag_ef_search": hnsw_ef_search(size), "hnsw": []}
        for ef in sorted({*ef_values, hnsw_ef_search(size)}):
            hnsw.hnsw.efSearch = ef
            found, times = _timed_searches(hnsw, query, k)
            recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(exact, found, strict=True)]))
            row["hnsw"].append({"ef_search": ef, "ms_p50": _p(times, 50), "ms_p95": _p(times, 95),
                                f"recall@{k}": round(recall, 3)})
        rows.append(row)
        del flat, hnsw, data
    return rows


def _timed_searches(index, queries: np.ndarray, k: int) -> tuple[list[np.ndarray], list[float]]:
    """Each query searched on its own, as a user's question is: the ids found and milliseconds taken."""
    found, times = [], []
    for row in queries:
        started = time.perf_counter()
        _, ids = index.search(row.reshape(1, -1), k)
        times.append((time.perf_counter() - started) * 1000)
        found.append(ids[0])
    return found, times


def _synthetic_rows(rng: np.random.Generator, size: int, words: int = 80) -> list:
    """Chunk rows with clustered vectors and Zipf-distributed words, for the store comparison."""
    from rag.index.backends.base import ChunkRow

    vocabulary = np.array([f"w{n}" for n in range(20_000)])
    vectors = _clustered_unit_vectors(rng, size)
    ranks = np.minimum(rng.zipf(1.2, (size, words)), len(vocabulary)) - 1
    return [ChunkRow(i + 1, vectors[i], " ".join(vocabulary[ranks[i]]), f"doc{i // 4}", 0, 100, "", None, "h", "g")
            for i in range(size)]


def store_latency(sizes: list[int], config: Config, queries: int = 100, seed: int = 1,
                  stores: tuple[str, ...] = ("faiss", "milvus")) -> list[dict]:
    """Retrieval (dense + BM25 + fusion) latency from the FAISS store and from Milvus Lite on the same rows.
    Both use the index kind ``rag index`` would choose at that size (exact below ``hnsw_threshold``)."""
    from rag.index.backends.faiss import FaissChunkIndex
    from rag.qa.retrieval import reciprocal_rank_fusion

    rng = np.random.default_rng(seed)
    results = []
    for size in sizes:
        rows = _synthetic_rows(rng, size)
        folder = Path(tempfile.mkdtemp(prefix="rag-bench-stores-"))
        try:
            opened = {}
            for name in stores:
                generation = folder / name
                generation.mkdir()
                started = time.perf_counter()
                if name == "faiss":
                    FaissChunkIndex.write(generation, rows, 384, config.hnsw_threshold)
                    opened[name] = FaissChunkIndex(generation)
                else:
                    from rag.index.backends.milvus import MilvusChunkIndex

                    uri = str(folder / "milvus.db")
                    MilvusChunkIndex.write(uri, "bench", rows, 384, config.hnsw_threshold, generation)
                    opened[name] = MilvusChunkIndex(uri, "bench", generation)
                write_s = time.perf_counter() - started
                picks = rng.choice(size, queries, replace=False)
                times = []
                for i in picks:
                    vector, text = rows[i].vector, " ".join(rows[i].lexical_text.split()[:6])
                    started = time.perf_counter()
                    dense = opened[name].dense(vector, config.candidates)
                    lexical = opened[name].lexical(text, config.candidates)
                    reciprocal_rank_fusion([[c for c, _ in dense], [c for c, _ in lexical]])
                    times.append((time.perf_counter() - started) * 1000)
                results.append({"store": name, "chunks": size, "index": opened[name].kind,
                                "write_s": round(write_s, 1), "retrieval_ms_p50": _p(times, 50),
                                "retrieval_ms_p95": _p(times, 95)})
            if "milvus" in opened:
                from rag.index.backends.milvus import close_client

                opened["milvus"].client.drop_collection("bench")
                close_client(opened["milvus"].uri)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results


# A whole `rag index` in a fresh process, so that its peak memory and its model loading are its own.
_BUILD_CHILD = """
import json, resource, sys, time
from rag.config import Config
from rag.models.embedding import Embedder
from rag.index.build import build_index
started = time.perf_counter()
report = build_index([sys.argv[1]], Config.from_env(index_dir=sys.argv[2], sentence_vectors=sys.argv[3]),
                     embedder=Embedder(batch_tokens=int(sys.argv[4])), progress=True)
print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "documents": report.documents,
                  "chunks": report.chunks, "sentences": report.embedded_sentences,
                  "identical_copies": report.identical_copies, "near_duplicate_groups": report.near_duplicate_groups,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


# How `rag index` built before the archive issue: every sentence embedded on its own, batches of 4,096 tokens.
BUILDS = {"today": ("pooled", 1024), "before": ("embedded", 4096)}


def _build_in_child(corpus: Path, index_dir: Path, how: str) -> dict:
    sentence_vectors, batch_tokens = BUILDS[how]
    done = subprocess.run([sys.executable, "-c", _BUILD_CHILD, str(corpus), str(index_dir), sentence_vectors,
                           str(batch_tokens)], stdout=subprocess.PIPE, text=True, check=True,
                          env={**os.environ, "RAG_PROGRESS_SECONDS": "30"})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    vectors = result["chunks"] + result["sentences"]
    generation = next(index_dir.glob("gen-*"))
    return {**result, "sentence_vectors": sentence_vectors, "batch_tokens": batch_tokens,
            "vectors_per_s": round(vectors / result["seconds"], 1),
            "documents_per_s": round(result["documents"] / result["seconds"], 1),
            "index_mb_on_disk": round(sum(f.stat().st_size for f in generation.rglob("*") if f.is_file()) / 2**20, 1)}


def _questions_of(dataset: Path) -> list[dict]:
    return [json.loads(line) for line in dataset.read_text(encoding="utf-8").splitlines() if line.strip()]


def _top_passages(index_dir: Path, questions: list[str], k: int = 5) -> list[list[tuple[str, int, int, float]]]:
    from rag.qa.retrieval import Retriever

    retriever = Retriever.open(Config(index_dir=index_dir))
    try:
        return [[(p.doc, p.chunk.start, p.chunk.end, round(p.score, 6)) for p in retriever.search(q, k)]
                for q in questions]
    finally:
        retriever.reader.close()


def _same_allowing_ties(a: list[tuple], b: list[tuple]) -> bool:
    """The same passages in the same order, except that passages with equal scores may trade places."""
    def by_score(rows: list[tuple]) -> dict[float, set]:
        groups: dict[float, set] = {}
        for row in rows:
            groups.setdefault(row[3], set()).add(row[:3])
        return groups

    return [row[3] for row in a] == [row[3] for row in b] and by_score(a) == by_score(b)


def _recall_at(index_dir: Path, items: list[dict], k: int = 5) -> dict:
    """Share of answerable questions whose gold quote lies in one of the top ``k`` passages, as `rag eval`
    counts it (``evals.metrics.retrieval_hits``)."""
    from evals.metrics import retrieval_hits
    from rag.qa.retrieval import Retriever

    retriever = Retriever.open(Config(index_dir=index_dir))
    reader = retriever.reader
    answerable = [item for item in items if item.get("supporting") and item.get("answer") is not None]
    try:
        hits = sum(retrieval_hits(item, [dict(p.to_dict(), doc_text=reader.document_text(p.doc))
                                         for p in retriever.search(item["question"], k)]) is not None
                   for item in answerable)
    finally:
        reader.close()
    return {"k": k, "hits": hits, "questions": len(answerable),
            "recall": round(hits / len(answerable), 3) if answerable else None}


def _gold_sentence_ranks(index_dir: Path, items: list[dict]) -> dict:
    """Sentence vectors alone, no words: for each gold quote, the rank of its sentence among its article's
    sentences by cosine with the question."""
    from rag.index.catalog import IndexReader
    from rag.models.embedding import Embedder

    reader = IndexReader(index_dir)
    embedder = Embedder()
    ranks = []
    try:
        for item in items:
            for gold in item.get("supporting", [])[:1]:
                at = reader.document_text(gold["doc"]).find(gold["quote"])
                sentences = reader.sentences_of(gold["doc"])
                golden = [i for i, s in enumerate(sentences) if s.start <= at < s.end]
                if at < 0 or not golden:
                    continue
                scores = np.vstack([s.vector for s in sentences]) @ embedder.embed_one(item["question"])
                ranks.append(int((scores > scores[golden[0]]).sum()) + 1)
    finally:
        reader.close()
    return {"quotes": len(ranks), "top1": round(sum(r == 1 for r in ranks) / len(ranks), 3) if ranks else None,
            "top3": round(sum(r <= 3 for r in ranks) / len(ranks), 3) if ranks else None}


def archive(corpus: Path, dataset: Path, config: Config, generative_questions: int) -> dict | None:
    """``rag index`` of a real archive two ways in one run (today's: sentence vectors pooled from each chunk's
    forward pass, in batches of 1,024 tokens; before the archive issue: every sentence embedded on its own, in
    batches of 4,096), then at that size: per-stage query latency, extractive and generative answers, and
    recall@5 of gold spans."""
    from rag.qa.assistant import Assistant

    if not corpus.is_dir() or not dataset.is_file():
        return None
    folders = {name: Path(tempfile.mkdtemp(prefix=f"rag-bench-archive-{name}-")) for name in BUILDS}
    try:
        builds = {name: _build_in_child(corpus, folder, name) for name, folder in folders.items()}
        items = _questions_of(dataset)
        seed = _questions_of(DEV_SET)
        seed_folders = {name: Path(tempfile.mkdtemp(prefix=f"rag-bench-seed-{name}-")) for name in folders}
        for name, folder in seed_folders.items():
            _build_in_child(Path("data/articles"), folder, name)
        same = {}
        for label, questions, where in (("archive_dev", [i["question"] for i in items], folders),
                                        ("seed_dev", [i["question"] for i in seed], seed_folders)):
            tops = {name: _top_passages(folder, questions) for name, folder in where.items()}
            same[label] = {"questions": len(questions), "same_top5_allowing_ties": sum(
                _same_allowing_ties(a, b) for a, b in zip(tops["today"], tops["before"], strict=True))}
        for folder in seed_folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        index_dir = folders["today"]
        result: dict[str, Any] = {
            "corpus": str(corpus), "builds": builds,
            "speedup": round(builds["before"]["seconds"] / builds["today"]["seconds"], 2),
            "same_top5": same, "recall_at_5": _recall_at(index_dir, items),
            "gold_sentence_rank": {name: _gold_sentence_ranks(folder, items) for name, folder in folders.items()},
            "query": query_stages(config.replace(index_dir=index_dir), 0, [i["question"] for i in items]),
        }
        assistant = Assistant(config.replace(index_dir=index_dir, mode="extractive"))
        assistant.ask("warm-up")
        extractive = [assistant.ask(i["question"]).timings["total_ms"] for i in items]
        result["extractive_answer_ms"] = {"p50": _p(extractive, 50), "p95": _p(extractive, 95)}
        if generative_questions:
            assistant.generator()
            answers = [assistant.ask(i["question"], mode="generative").timings["total_ms"]
                       for i in items[:generative_questions]]
            result["generative_answer_ms"] = {"p50": _p(answers, 50), "p95": _p(answers, 95),
                                              "questions": len(answers)}
        return result
    finally:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)


def machine_speed() -> dict:
    """Two reference speeds taken at the start of a run, so that figures from runs at different moments of a
    shared machine can be compared: a pure-Python loop (one core) and float32 matrix products (all cores)."""
    started = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i
    loop_ms = time.perf_counter() - started
    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    a @ a
    started = time.perf_counter()
    for _ in range(5):
        a @ a
    seconds = time.perf_counter() - started
    return {"python_loop_1e6_ms": _ms(loop_ms), "float32_matmul_gflops": round(5 * 2 * 1024**3 / seconds / 1e9, 1)}


SECTIONS = ("startup", "indexing", "embedding", "engines", "query", "scaling", "stores", "archive")


def run(config: Config, out: Path, sizes: list[int], benchmarks_dir: Path | None, generative_questions: int,
        sections: tuple[str, ...] = SECTIONS, store_sizes: tuple[int, ...] = (10_000, 100_000),
        stores: tuple[str, ...] = ("faiss", "milvus"), archive_corpus: Path | None = None,
        archive_questions: Path | None = None) -> dict:
    """Measure the chosen ``sections`` and write them as JSON to ``out``."""
    corpora = {"bundled": [Path("data/articles")]}
    if benchmarks_dir is not None and benchmarks_dir.is_dir() and {"indexing", "embedding", "engines"} & set(sections):
        from evals.benchmarks import corpus_of

        cache = Path(tempfile.mkdtemp(prefix="rag-bench-corpus-"))
        for name in ("rgb", "squad2"):
            corpus_of(name, benchmarks_dir, cache)
        corpora["benchmark_passages"] = [cache]  # ids relative to it stay distinct: rgb-corpus/..., squad2-corpus/...
    measure = {
        "startup": lambda: startup(config.index_dir),
        "indexing": lambda: indexing(corpora, config),
        "embedding_throughput": lambda: (embedding_throughput(corpora["benchmark_passages"], config)
                                         if "benchmark_passages" in corpora else None),
        "ingestion_engines": lambda: (ingestion_engines(corpora["benchmark_passages"], config)
                                      if "benchmark_passages" in corpora else None),
        "query": lambda: query_stages(config, generative_questions),
        "dense_scaling": lambda: dense_scaling(sizes),
        "stores": lambda: store_latency(list(store_sizes), config, stores=stores),
        "archive": lambda: (archive(archive_corpus, archive_questions, config, generative_questions)
                            if archive_corpus and archive_questions else None),
    }
    chosen = {"embedding": "embedding_throughput", "engines": "ingestion_engines", "scaling": "dense_scaling"}
    report: dict = {"machine": {"cpus": __import__("os").cpu_count(), "python": sys.version.split()[0],
                                **machine_speed()}}
    for section in sections:
        key = chosen.get(section, section)
        print(f"rag bench: measuring {section}", file=sys.stderr, flush=True)
        report[key] = measure[key]()
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def render(report: dict) -> str:
    machine = report.get("machine", {})
    lines = [f"machine: {machine.get('cpus')} CPUs, Python loop of 1e6 steps {machine.get('python_loop_1e6_ms')} ms, "
             f"float32 matmul {machine.get('float32_matmul_gflops')} GFLOP/s"]
    if "startup" in report:
        lines.append("start-up")
        lines += [f"  {k:34} {v:>10}" for k, v in report["startup"].items()]
    if "indexing" in report:
        lines.append("indexing")
        for name, row in report["indexing"].items():
            lines.append(f"  {name:18} {row['documents']:>6} docs {row['chunks']:>6} chunks {row['seconds']:>7} s "
                         f"{row['documents_per_s']:>7} docs/s {row['chunks_per_s']:>7} chunks/s")
    speed = report.get("embedding_throughput")
    if speed:
        lines.append(f"embedding (benchmark passages: {speed['texts']} chunk and sentence texts, best of "
                     f"{len(speed['rounds_s']['rag'])} alternating rounds)")
        lines.append(f"  SentenceTransformer.encode {speed['sentence_transformers_texts_per_s']:>8} texts/s "
                     f"{speed['sentence_transformers_tokens_per_s']:>6} tokens/s")
        lines.append(f"  rag Embedder ({speed['backend']:5})      {speed['rag_texts_per_s']:>8} texts/s "
                     f"{speed['rag_tokens_per_s']:>6} tokens/s   "
                     f"{speed['speedup']}x, max vector difference {speed['max_vector_difference']:.1e}")
        dev = speed["dev_retrieval"]
        lines.append(f"  dev set, bundled articles indexed and searched with each backend: same top {dev['k']} "
                     f"on {dev['same_top_k']}/{dev['questions']} questions")
        for row in speed.get("runtimes") or []:
            lines.append(f"  transformer alone, batch {row['batch']:>6}: tokens/s best (median) torch "
                         f"{row['torch_tokens_per_s_best']} ({row['torch_tokens_per_s_median']}), onnxruntime "
                         f"{row['onnxruntime_tokens_per_s_best']} ({row['onnxruntime_tokens_per_s_median']})")
    engines = report.get("ingestion_engines")
    if engines:
        lines.append("ingestion engines (benchmark passages, whole build incl. model loading)")
        for name in ("local", "ray"):
            row = engines[name]
            extra = f"  (+{row['startup_s']} s starting Ray)" if "startup_s" in row else ""
            lines.append(f"  {name:18} {row['documents']:>6} docs {row['chunks']:>6} chunks {row['seconds']:>7} s "
                         f"{row['documents_per_s']:>7} docs/s {row['chunks_per_s']:>7} chunks/s{extra}")
        lines.append(f"  same documents and spans: {engines['same_documents_and_spans']}, max vector difference "
                     f"{engines['max_vector_difference']}, Ray/local speed {engines['ray_speedup']}x")
    if "query" in report:
        lines.append("query stages (ms)            p50        p95")
        for name, row in report["query"].items():
            if name != "generation":
                lines.append(f"  {name:24} {row['p50']:>8} {row['p95']:>10}")
        for k, v in report["query"].get("generation", {}).items():
            lines.append(f"  {k:34} {v:>10}")
    if "dense_scaling" in report:
        lines.append("dense search scaling (synthetic 384-d vectors, k=10; ms p50/p95)")
        for row in report["dense_scaling"]:
            lines.append(f"  {row['vectors']:>9} vectors  flat {row['flat_ms_p50']}/{row['flat_ms_p95']}  "
                         f"HNSW built in {row['hnsw_build_s']} s, rag uses efSearch {row['rag_ef_search']}")
            for ef in row["hnsw"]:
                lines.append("    HNSW " + "  ".join(f"{k}={v}" for k, v in ef.items()))
    if "stores" in report:
        lines.append("retrieval from each store (dense + BM25 + fusion, synthetic chunks)")
        for row in report["stores"]:
            lines.append("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    found = report.get("archive")
    if found:
        lines.append(f"archive ({found['corpus']}), each build a fresh process incl. model loading")
        for name, row in found["builds"].items():
            lines.append(f"  {name:6} (sentence vectors {row['sentence_vectors']}, batches of {row['batch_tokens']} "
                         f"tokens) {row['documents']} docs, {row['chunks']} chunks, {row['sentences']} sentences "
                         f"in {row['seconds']} s: {row['vectors_per_s']} vectors/s, {row['documents_per_s']} docs/s, "
                         f"peak {row['peak_rss_mb']} MB, {row['index_mb_on_disk']} MB on disk")
        first = next(iter(found["builds"].values()))
        lines.append(f"  today's build is {found['speedup']}x as fast; {first['identical_copies']} identical copies "
                     f"stored once, {first['near_duplicate_groups']} near-duplicate groups")
        for name, row in found["same_top5"].items():
            lines.append(f"  same top-5 passages both ways ({name}): "
                         f"{row['same_top5_allowing_ties']}/{row['questions']}")
        for name, row in found["gold_sentence_rank"].items():
            lines.append(f"  {name}: the gold quote's sentence ranks first among its article's sentences by cosine "
                         f"for {row['top1']} of {row['quotes']} quotes (top 3: {row['top3']})")
        recall = found["recall_at_5"]
        lines.append(f"  recall@5 of gold spans: {recall['recall']} ({recall['hits']}/{recall['questions']})")
        lines.append("  query stages at this size (ms)   p50        p95")
        for name, row in found["query"].items():
            lines.append(f"    {name:28} {row['p50']:>8} {row['p95']:>10}")
        for name in ("extractive_answer_ms", "generative_answer_ms"):
            if name in found:
                lines.append(f"    {name:28} {found[name]['p50']:>8} {found[name]['p95']:>10}")
    lines.append(f"peak RSS {report['peak_rss_mb']} MB")
    return "\n".join(lines)
