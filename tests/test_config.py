"""One configuration everywhere: defaults, then RAG_* variables (and Gradio's own for the address), then flags,
read the same way by the command line, the Python API and `python app.py`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import rag
from rag.config import Config

ROOT = Path(__file__).resolve().parent.parent


def test_variables_override_defaults_and_arguments_override_variables():
    env = {"RAG_K": "3", "RAG_SECTION": "sport", "RAG_INDEX_DIR": "/tmp/elsewhere"}
    config = Config.from_env(env)
    assert (config.k, config.section, config.index_dir) == (3, "sport", Path("/tmp/elsewhere"))
    assert Config.from_env(env, k=5, index_dir=None).k == 5
    assert Config.from_env(env, index_dir=None).index_dir == Path("/tmp/elsewhere")


def test_the_address_follows_gradio_variables_unless_rag_variables_say_otherwise():
    assert (Config.from_env({}).host, Config.from_env({}).port) == ("127.0.0.1", 7860)
    gradio = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8123"}
    assert (Config.from_env(gradio).host, Config.from_env(gradio).port) == ("0.0.0.0", 8123)
    assert Config.from_env(dict(gradio, RAG_PORT="9000")).port == 9000


def test_the_python_api_reads_the_index_folder_from_the_environment(bundled_index, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no index/ here: only RAG_INDEX_DIR can lead to one
    monkeypatch.setenv("RAG_INDEX_DIR", str(bundled_index.index_dir))
    monkeypatch.setenv("RAG_K", "3")
    passages = rag.search("naval build-up in the Caribbean")
    assert len(passages) == 3
    result = rag.answer("Where is the US naval build-up?", mode="extractive")
    assert not result.abstained and result.citations
    assert rag.Assistant().config.index_dir == bundled_index.index_dir


@pytest.mark.parametrize("how", ["flag", "gradio variable"])
def test_app_py_serves_on_the_port_it_is_given(bundled_index, how):
    from server_helpers import free_port, wait_until_up

    port = free_port()
    args = [sys.executable, "app.py", "--index-dir", str(bundled_index.index_dir)]
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", RAG_MODE="extractive")
    env.pop("RAG_PORT", None)
    if how == "flag":
        args += ["--port", str(port)]
    else:
        env["GRADIO_SERVER_PORT"] = str(port)
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process)  # raises unless it serves on that port
    finally:
        process.terminate()
        process.wait(timeout=30)
