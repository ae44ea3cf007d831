"""Embedding throughput: our embedder against plain ``SentenceTransformer.encode``, and each runtime alone."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from evals.bench.timing import dev_questions
from rag.config import Config


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


def _alternating_rounds(runs: Mapping[str, Callable[[], Any]], rounds: int) -> tuple[dict[str, list[float]],
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

    questions = dev_questions()
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
