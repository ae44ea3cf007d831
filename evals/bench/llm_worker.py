"""The child processes of ``rag bench --sections llm`` (evals.bench.llm): each loads one build of llama.cpp's
CPU kernels, which is why each is a process of its own.

``python -m evals.bench.llm_worker measure VARIANT MODEL PROMPT_TOKENS NEW_TOKENS THREADS`` prints one JSON line;
``python -m evals.bench.llm_worker answer VARIANT INDEX_DIR MODEL`` answers each question read from stdin (a JSON string
per line) with one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rag.config import Config

PROMPT_SOURCE = Path("data/articles")


def _measure(variant: str, model: str, prompt_tokens: int, new_tokens: int, threads: int) -> dict:
    """(In a child process.) Load the model on ``variant``, read ``prompt_tokens`` of the bundled articles'
    text, write ``new_tokens`` greedily."""
    from rag.models import llama_cpu, weights

    config = Config.from_env()
    loaded = llama_cpu.load(variant, config.cache_dir)  # type: ignore[arg-type]
    from llama_cpp import Llama

    llm = Llama(model_path=str(weights.resolve(model).path), n_ctx=2048, n_threads=threads, n_batch=512, seed=0,
                verbose=False)
    text = " ".join(path.read_text(encoding="utf-8") for path in sorted(PROMPT_SOURCE.glob("*.txt")))
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True)
    tokens = (tokens * (prompt_tokens // max(len(tokens), 1) + 1))[:prompt_tokens]
    started = time.perf_counter()
    llm.eval(tokens)
    read_s = time.perf_counter() - started
    written: list[int] = []
    started = time.perf_counter()
    for token in llm.generate(tokens, temp=0.0, top_k=1, reset=True):  # finds the prompt read
        written.append(int(token))
        if len(written) >= new_tokens:
            break
    write_s = time.perf_counter() - started
    return {"variant": loaded, "read_tokens_per_s": round(prompt_tokens / read_s, 1),
            "write_tokens_per_s": round(new_tokens / write_s, 1), "written": written,
            "kernels": llama_cpu.kernels()}


def _answer_loop(variant: str, index_dir: str, model: str) -> None:
    """(In a child process.) Answer each question read from stdin (one JSON string per line) on ``variant``."""
    from rag.qa.assistant import Assistant

    assistant = Assistant(Config.from_env(index_dir=index_dir, llama_cpu=variant, model_path=model))
    for line in sys.stdin:
        # Streamed as the UI streams it: the first drafted token is when a reader first sees words.
        asked = time.perf_counter()
        first_token_ms, answer = None, None
        for event in assistant.stream(json.loads(line)):
            if event.kind == "token" and first_token_ms is None:
                first_token_ms = (time.perf_counter() - asked) * 1000
            if event.answer is not None:
                answer = event.answer
        assert answer is not None
        print(json.dumps({"answer": answer.answer, "total_ms": answer.timings["total_ms"],
                          "first_token_ms": first_token_ms, "judge_tokens": answer.judge_tokens,
                          "prompt_tokens": answer.prompt_tokens}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "answer":
        _answer_loop(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        name, model_name, prompt, new, threads = sys.argv[2:7]
        print(json.dumps(_measure(name, model_name, int(prompt), int(new), int(threads))))
