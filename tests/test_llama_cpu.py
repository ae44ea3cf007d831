"""Which build of llama.cpp's CPU kernels runs: the package's AVX2 one by default; with ``auto`` the AVX-512 one
where it is installed and the CPU has its flags (AVX2 elsewhere); either on request. Each run is a process of
its own, as in use: a process loads one build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import Config
from rag.errors import SettingsError
from rag.models import llama_cpu

ROOT = Path(__file__).resolve().parent.parent
AVX2_ONLY = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c"})


def in_child(script: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


WRITE = """
import json
from rag.models.llm import Generator
from rag.models import llama_cpu
generator = Generator("smollm2-135m", max_new_tokens=24)
evidence = [(1, "The fishing harbour in Port Alder reopened on Tuesday after a winter storm closed it for three days.")]
text = generator.generate("When did the harbour in Port Alder reopen?", evidence).text
print(json.dumps({"loaded": llama_cpu.loaded(), "chosen": generator.cpu, "kernels": llama_cpu.kernels(),
                  "text": text}))
"""


def test_a_cpu_without_avx512_runs_the_avx2_build_the_package_carries():
    cache = Config.from_env().cache_dir
    assert llama_cpu.choose("auto", cache, flags=AVX2_ONLY) == "avx2"
    assert llama_cpu.runnable(cache, flags=AVX2_ONLY) == ["avx2"]  # what `rag bench --sections llm` compares


def test_where_the_cpu_has_avx512_with_vnni_install_keeps_that_build_and_auto_chooses_it():
    cache = Config.from_env().cache_dir
    if llama_cpu.AVX512.needs <= llama_cpu.cpu_flags():
        assert "avx512" in llama_cpu.installed(cache), "make install builds the AVX-512 variant on this CPU"
        assert llama_cpu.choose("auto", cache) == "avx512"
    else:
        assert llama_cpu.choose("auto", cache) == "avx2"


def test_a_build_that_is_not_installed_or_that_the_cpu_cannot_run_is_refused_in_one_line(tmp_path):
    with pytest.raises(SettingsError, match="not installed.*rag.models.llama_cpu build"):
        llama_cpu.choose("avx512", tmp_path, flags=llama_cpu.AVX512.needs)
    cache = Config.from_env().cache_dir
    if "avx512" in llama_cpu.installed(cache):
        with pytest.raises(SettingsError, match="lacks: .*avx512_vnni"):
            llama_cpu.choose("avx512", cache, flags=AVX2_ONLY)
    with pytest.raises(SettingsError, match="llama_cpu must be one of auto, avx2, avx512"):
        Config.from_env({"RAG_LLAMA_CPU": "amx"})


def test_forcing_the_avx2_build_loads_it_and_the_model_answers_from_the_evidence():
    # Forced even where the default would choose otherwise (RAG_LLAMA_CPU=auto set outside, say).
    run = in_child(WRITE, RAG_LLAMA_CPU="avx2")
    assert run["chosen"] == run["loaded"] == "avx2"
    assert "AVX2" in run["kernels"] and "AVX512" not in run["kernels"]
    assert "Tuesday" in run["text"]


def test_by_default_the_avx2_build_runs_and_auto_runs_the_best_installed_one_and_both_answer():
    run = in_child(WRITE)
    assert run["chosen"] == run["loaded"] == "avx2"
    expected = llama_cpu.choose("auto", Config.from_env().cache_dir)
    run = in_child(WRITE, RAG_LLAMA_CPU="auto")
    assert run["chosen"] == run["loaded"] == expected
    if expected == "avx512":
        assert "AVX512" in run["kernels"] and "AMX" not in run["kernels"]
    assert "Tuesday" in run["text"]


def test_a_process_runs_one_build_and_asking_for_another_after_loading_is_refused():
    if "avx512" not in llama_cpu.installed(Config.from_env().cache_dir):
        pytest.skip("only the AVX2 build is installed here (a CPU without AVX-512)")
    script = """
import json
from rag.config import Config
from rag.errors import SettingsError
from rag.models import llama_cpu
first = llama_cpu.load("avx2", Config.from_env().cache_dir)
import llama_cpp  # noqa: F401  (loads the kernels chosen above)
try:
    llama_cpu.load("avx512", Config.from_env().cache_dir)
    refused = ""
except SettingsError as exc:
    refused = str(exc)
print(json.dumps({"first": first, "loaded": llama_cpu.loaded(), "refused": refused}))
"""
    run = in_child(script)
    assert run["first"] == run["loaded"] == "avx2"
    assert "already runs llama.cpp's avx2 build" in run["refused"]
