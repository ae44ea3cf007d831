"""llama.cpp's speed with each installed build of its CPU kernels, side by side in one run.

A process loads one build of the kernels (rag.models.llama_cpu), so each measurement is a fresh child process:
it loads the model, reads the same prompt from an empty cache and writes the same number of tokens greedily.
The builds take turns (AVX2, AVX-512, AVX2, ...) so that a shared machine's slow minutes fall on each alike;
the table gives each build's median and their ratio. The children also write the same text: the tokens each
wrote are compared, since a faster build is of use only if it answers the same.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from rag.config import Config


def llm_variants(config: Config, rounds: int = 3, prompt_tokens: int = 500, new_tokens: int = 64,
                 questions: list[str] | None = None) -> dict:
    """Tokens/s read and written by each installed build the CPU supports, ``rounds`` alternating runs each;
    with ``questions``, whole answers to them by each build too (:func:`answers_by_build`)."""
    from rag.models import llama_cpu

    variants = llama_cpu.runnable(config.cache_dir)
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name in variants:
            runs[name].append(_child(name, config, prompt_tokens, new_tokens))
    result: dict = {"model": config.model_path or "qwen2.5-1.5b", "prompt_tokens": prompt_tokens,
                    "new_tokens": new_tokens, "rounds": rounds, "variants": {}}
    for name, rows in runs.items():
        result["variants"][name] = {
            "kernels": rows[0]["kernels"],
            "read_tokens_per_s": round(statistics.median(r["read_tokens_per_s"] for r in rows), 1),
            "write_tokens_per_s": round(statistics.median(r["write_tokens_per_s"] for r in rows), 1),
            "read_runs": [r["read_tokens_per_s"] for r in rows],
            "write_runs": [r["write_tokens_per_s"] for r in rows],
            "same_text_as_avx2": rows[0]["written"] == runs[llama_cpu.BUILT_IN][0]["written"],
        }
    base = result["variants"][llama_cpu.BUILT_IN]
    for row in result["variants"].values():
        row["read_ratio"] = round(row["read_tokens_per_s"] / base["read_tokens_per_s"], 2)
        row["write_ratio"] = round(row["write_tokens_per_s"] / base["write_tokens_per_s"], 2)
    result["chosen_by_default"] = llama_cpu.choose(config.llama_cpu, config.cache_dir)
    result["chosen_by_auto"] = llama_cpu.choose("auto", config.cache_dir)
    if questions:
        result["answers"] = answers_by_build(config, questions)
    return result


def answers_by_build(config: Config, questions: list[str]) -> dict:
    """Whole answers (the default path: search, the judge, the draft, the checks) from one persistent process per
    build, taking turns question by question: each build's p50 and p95 answer time, their ratio, and how many
    answers each build wrote word for word alike."""
    from rag.models import llama_cpu

    builds = llama_cpu.runnable(config.cache_dir)
    command = [sys.executable, "-m", "evals.bench.llm_worker", "answer"]
    model = config.model_path or "qwen2.5-1.5b"
    workers = {name: subprocess.Popen([*command, name, str(config.index_dir), model], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
               for name in builds}
    try:
        for name in builds:  # loading the models and a first answer are not timed
            _ask(workers[name], questions[0])
        rows: dict[str, list[dict]] = {name: [] for name in builds}
        for question in questions:
            for name in builds:
                rows[name].append(_ask(workers[name], question))
    finally:
        for worker in workers.values():
            worker.stdin.close()  # type: ignore[union-attr]
            worker.wait(timeout=60)
    base = rows[llama_cpu.BUILT_IN]
    result: dict = {"questions": len(questions), "builds": {}}
    for name, answers in rows.items():
        totals = [a["total_ms"] for a in answers]
        result["builds"][name] = {
            "answer_ms_p50": round(statistics.median(totals), 1),
            "answer_ms_p95": round(sorted(totals)[min(len(totals) - 1, int(0.95 * len(totals)))], 1),
            "prompt_tokens_p50": statistics.median(a["prompt_tokens"] for a in answers),
            # What the model reads anew for a question (its instruction stays in llama.cpp's cache across them).
            "judge_tokens_p50": statistics.median(a["judge_tokens"] for a in answers),
            # Over the answers that drafted (an abstention before writing streams no token).
            "first_token_ms_p50": _median_or_none([a["first_token_ms"] for a in answers]),
            "same_answer_as_avx2": sum(a["answer"] == b["answer"] for a, b in zip(answers, base, strict=True)),
        }
    for row in result["builds"].values():
        row["p50_ratio"] = round(row["answer_ms_p50"] / result["builds"][llama_cpu.BUILT_IN]["answer_ms_p50"], 2)
    return result


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


def _ask(worker: subprocess.Popen, question: str) -> dict:
    worker.stdin.write(json.dumps(question) + "\n")  # type: ignore[union-attr]
    worker.stdin.flush()  # type: ignore[union-attr]
    line = worker.stdout.readline()  # type: ignore[union-attr]
    if not line:
        raise RuntimeError(f"a bench worker stopped (exit {worker.wait()})")
    return json.loads(line)


def _child(variant: str, config: Config, prompt_tokens: int, new_tokens: int) -> dict:
    command = [sys.executable, "-m", "evals.bench.llm_worker", "measure", variant, config.model_path or "qwen2.5-1.5b",
               str(prompt_tokens), str(new_tokens), str(config.n_threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"llama.cpp {variant} build failed to run: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
