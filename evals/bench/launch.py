"""Start-up: ``rag --help``, the first extractive and generative answers of a fresh process, and ``make run`` to
the app's first answer."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from evals.bench.timing import ms, timed_command

STARTUP_QUESTION = "In which region is the US naval build-up?"


def startup(index_dir: Path) -> dict:
    rag = [sys.executable, "-m", "rag.app.cli"]
    question = STARTUP_QUESTION
    return {
        "help_ms": timed_command(rag + ["--help"], 5),
        "first_extractive_answer_ms": timed_command(
            rag + ["ask", "--mode", "extractive", "--index-dir", str(index_dir), question], 1),
        "first_generative_answer_ms": timed_command(rag + ["ask", "--index-dir", str(index_dir), question], 1),
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
        return ms(elapsed)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
