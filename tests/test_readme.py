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
ARCHIVE = "The archive"
WALKTHROUGH = ("A short tour", ARCHIVE, "Scale-out: Milvus and Ray")
NEEDS_SHARED = "../shared/"
# What the README's prose says each `rag ask` of the tour prints (its output is described, not shown): a few
# words of each, checked both in the README and in what the command prints.
PROMISED = {
    "How did the United States classify the Cartel de los Soles?": (
        "the sources disagree", "international", "foreign terrorist organization"),
    "Who won the 2022 football World Cup final?": ("I found no passage that I could check states the answer",),
    "Which company is Britain's only producer of feta cheese?": ("Shepherds Purse",),
    "In which region is the US naval build-up?": ("Caribbean",),
}


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
        elif found and session and line.strip():
            found[-1][2].append(line)  # what the README shows the command printing
    return found


def _shape(line: str) -> str:
    """A line with its durations and numbers masked: timings and counts may differ, the wording may not."""
    line = re.sub(r"\b(\d+h)?(\d+m)?\d+(\.\d+)? ?s\b", "T", line)
    return re.sub(r"\d[\d,.]*", "N", line)


def test_the_readme_has_a_walkthrough_to_run():
    sections = {section for section, _, _ in walkthrough_commands()}
    assert set(WALKTHROUGH) <= sections


def test_the_readme_describes_what_each_ask_of_the_tour_prints():
    text = " ".join(README.read_text(encoding="utf-8").split()).lower()
    asked = {w[2] for _, w, _ in walkthrough_commands() if w[:2] == ["rag", "ask"]}
    assert asked == set(PROMISED), "every `rag ask` of the tour has its promised output here"
    for words in PROMISED.values():
        for expected in words:
            assert expected.lower() in text, expected


def _run_walkthrough(tmp_path: Path, commands: list[tuple[str, list[str], list[str]]]) -> int:
    """Run ``commands`` in order in a fresh folder holding what `make run` leaves; check what each prints."""
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
    for section, words, shown in commands:
        done = subprocess.run([sys.executable, "-m", "rag.app.cli", *words[1:]], cwd=work, env=env,
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, f"{section}: {shlex.join(words)}\n{done.stderr[-3000:]}"
        # Progress lines go to stderr, results to stdout: the README shows both as a terminal does.
        printed = (done.stdout + done.stderr).splitlines()
        for expected in shown:
            assert any(_shape(expected) == _shape(line) for line in printed), (
                f"{section}: {shlex.join(words)} printed nothing like {expected!r}:\n{done.stdout[:3000]}")
        if words[:2] == ["rag", "ask"]:
            said = " ".join(done.stdout.split()).lower()
            for expected in PROMISED[words[2]]:
                assert expected.lower() in said, f"{shlex.join(words)} did not say {expected!r}:\n{done.stdout}"
    return len(commands)


def test_every_walkthrough_command_on_the_bundled_articles_runs_as_written_in_order(tmp_path):
    commands = [c for c in walkthrough_commands() if c[0] != ARCHIVE]
    assert not any(NEEDS_SHARED in w for _, words, _ in commands for w in words)
    assert _run_walkthrough(tmp_path, commands) >= 5


@pytest.mark.skipif(not SHARED.is_dir(), reason="the archive walk-through needs ../shared")
def test_every_walkthrough_command_on_the_archive_runs_as_written_in_order(tmp_path):
    commands = [c for c in walkthrough_commands() if c[0] == ARCHIVE]
    assert any(NEEDS_SHARED in w for _, words, _ in commands for w in words)
    assert _run_walkthrough(tmp_path, commands) >= 4
