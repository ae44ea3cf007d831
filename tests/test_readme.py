"""The README's walk-through, run as written: every `rag` command in its fenced blocks, in order, in a fresh
folder holding what `make run` leaves (the bundled articles and their index in `index/`).

The measurement commands of docs/results.md and docs/performance.md are not run here (they take hours); each
figure there names the command that produced it."""


from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from shared_data import SHARED

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The sections a user follows step by step, in README order.
WALKTHROUGH = ("A short tour", "The archive", "Scale-out: Milvus and Ray")
NEEDS_SHARED = "../shared/"


def walkthrough_commands() -> list[tuple[str, list[str], list[str]]]:
    """(section, command words, the output the README shows under it) for each command, in order. In a block
    that shows a session (`$ rag ...` lines followed by their output) only the `$` lines are commands;
    elsewhere every line starting with `rag ` is."""
    found = []
    section = ""
    block: list[str] | None = None
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("```"):
            if block is not None and section in WALKTHROUGH:
                found += _commands_in(section, block)
            block = None if block is not None else []
            continue
        if block is not None:
            block.append(line)
    return found


def _commands_in(section: str, lines: list[str]) -> list[tuple[str, list[str], list[str]]]:
    session = any(line.startswith("$ ") for line in lines)
    found: list[tuple[str, list[str], list[str]]] = []
    for line in lines:
        command = line[2:] if session and line.startswith("$ ") else None if session else line
        if command is not None and command.startswith("rag "):
            found.append((section, shlex.split(command, comments=True), []))
        elif found and line.startswith(("documents:", "1. ", "   relevance")):
            found[-1][2].append(line)
    return found


def _shape(line: str) -> str:
    """A line with its numbers masked: timings and counts may differ, the wording may not."""
    return re.sub(r"\d[\d,.]*", "N", line)


def test_the_readme_has_a_walkthrough_to_run():
    sections = {section for section, _, _ in walkthrough_commands()}
    assert set(WALKTHROUGH) <= sections


def test_every_walkthrough_command_runs_as_written_in_order(tmp_path):
    work = tmp_path / "checkout"
    shutil.copytree(ROOT / "data" / "articles", work / "data" / "articles")
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED)
    env = dict(os.environ, RAG_PROGRESS_SECONDS="60")
    for key in [k for k in env if k.startswith("RAG_") and k != "RAG_PROGRESS_SECONDS"]:
        del env[key]
    # What `make run` does before serving: the bundled articles indexed into index/.
    made = subprocess.run([sys.executable, "-m", "rag.app.cli", "index", "data/articles"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    ran = 0
    for section, words, shown in walkthrough_commands():
        if any(NEEDS_SHARED in w for w in words) and not (tmp_path / "shared").is_dir():
            pytest.skip("the archive walk-through needs ../shared")
        done = subprocess.run([sys.executable, "-m", "rag.app.cli", *words[1:]], cwd=work, env=env,
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, f"{section}: {shlex.join(words)}\n{done.stderr[-3000:]}"
        printed = done.stdout.splitlines()
        for expected in shown:
            assert any(_shape(expected) == _shape(line) for line in printed), (
                f"{section}: {shlex.join(words)} printed nothing like {expected!r}:\n{done.stdout[:3000]}")
        ran += 1
    assert ran >= 8
