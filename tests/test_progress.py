"""Progress of long jobs: a plain line every few seconds when the output is not a terminal (CI, logs)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rag.progress import Reporter

ROOT = Path(__file__).resolve().parent.parent


def test_off_a_terminal_progress_is_plain_lines_with_count_rate_and_time_left():
    stream = io.StringIO()
    reporter = Reporter("lines", stream, every_s=0.0, prefix="rag index")
    with reporter.task("embedding", 4, unit="article") as task:
        for _ in range(4):
            task.advance()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("rag index: embedding: 1/4 articles (25%), ")
    assert "articles/s" in lines[0] and "left" in lines[0]
    assert lines[-1].startswith("rag index: embedding: 4 articles in ")
    assert "\r" not in stream.getvalue()  # no bar redraws in a log


def test_lines_are_spaced_by_the_interval_so_a_log_stays_short():
    stream = io.StringIO()
    with Reporter("lines", stream, every_s=3600.0).task("reading", 1000, unit="file") as task:
        for _ in range(1000):
            task.advance()
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[0]]  # only the closing line
    assert "1,000 files in" in stream.getvalue()


def test_a_listener_hears_every_step_even_when_nothing_is_printed():
    heard = []
    reporter = Reporter("off", listener=lambda label, done, total: heard.append((label, done, total)))
    assert list(reporter.iterate(["a", "b"], "indexing", unit="file")) == ["a", "b"]
    assert heard == [("indexing", 1, 2), ("indexing", 2, 2)]


def test_auto_picks_lines_when_the_stream_is_not_a_terminal():
    assert Reporter.auto(io.StringIO()).style == "lines"
    assert Reporter.of(False).style == "off"


def test_rag_index_tells_its_progress_in_a_log_and_ends_with_the_summary(tmp_path, articles_dir):
    env = dict(os.environ, RAG_PROGRESS_SECONDS="0")
    done = subprocess.run(
        [sys.executable, "-m", "rag.app.cli", "index", str(articles_dir), "--index-dir", str(tmp_path / "index")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "rag index: reading: 1/5 files (20%)" in done.stderr
    assert "rag index: embedding: 5/5 articles (100%)" in done.stderr
    assert "rag index: writing the vector and keyword indexes" in done.stderr
    assert done.stdout.startswith("documents: 5 added")
