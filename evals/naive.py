"""The usual approach, as a baseline: the top-k chunks go straight into the prompt and the model's own
``[n]`` markers are trusted as citations. No evidence selection, no verification, no abstention gate."""

from __future__ import annotations

import re
import time

from rag.config import Config
from rag.models.llm import Generator
from rag.qa.retrieval import Retriever
from rag.qa.verification import is_refusal

NAIVE_CHUNKS = 5


class NaiveAssistant:
    def __init__(self, config: Config, retriever: Retriever | None = None) -> None:
        self.config = config
        self.retriever = retriever or Retriever.open(config)
        self.generator = Generator(config.model_path, config.n_ctx, config.n_threads, config.seed,
                                   config.max_new_tokens, config.llama_cpu, config.cache_dir)

    def ask(self, question: str, id: str | None = None) -> dict:
        started = time.perf_counter()
        passages = self.retriever.search(question, NAIVE_CHUNKS)
        retrieved = time.perf_counter()
        draft = self.generator.generate(question, [(i, p.text) for i, p in enumerate(passages, start=1)])
        cited = sorted({int(n) for n in re.findall(r"\[(\d+)\]", draft.text) if 1 <= int(n) <= len(passages)})
        citations = [
            {"n": n, "doc": passages[n - 1].doc, "title": passages[n - 1].chunk.title, "quote": passages[n - 1].text,
             "start": passages[n - 1].chunk.start, "end": passages[n - 1].chunk.end, "score": passages[n - 1].score}
            for n in cited
        ]
        finished = time.perf_counter()
        return {
            "id": id, "question": question, "answer": draft.text.strip(),
            "abstained": is_refusal(draft.text) and not cited, "citations": citations, "conflicts": [],
            "timings": {"retrieve_ms": (retrieved - started) * 1000, "generate_ms": draft.total_ms,
                        "total_ms": (finished - started) * 1000},
            "model": self.generator.name, "mode": "naive", "prompt_tokens": draft.prompt_tokens,
        }
