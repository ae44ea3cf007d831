"""What the sections of ``rag bench`` share: the seed dev questions, milliseconds and percentiles as reported,
a timed command, and the machine's reference speeds."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evals.metrics import percentile

DEV_SET = Path("evals/datasets/dev_qa.jsonl")


def dev_questions() -> list[str]:
    return [item["question"] for item in questions_of(DEV_SET)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def percentile_of(values: Sequence[float], q: int) -> float:
    return round(percentile(list(values), q), 2)


def timed_command(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return ms(statistics.median(times))


def questions_of(dataset: Path) -> list[dict]:
    return [json.loads(line) for line in dataset.read_text(encoding="utf-8").splitlines() if line.strip()]


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
    return {"python_loop_1e6_ms": ms(loop_ms), "float32_matmul_gflops": round(5 * 2 * 1024**3 / seconds / 1e9, 1)}
