"""Shared fixtures: one real embedding model and one real index of the bundled articles per test session.

Everything here is the real thing (the packaged all-MiniLM-L6-v2 model, FAISS, BM25, SQLite); only the
folders are temporary. Fixtures that answer tests reuse:

- ``articles_dir``: the bundled articles folder (``data/articles``).
- ``embedder``: a loaded :class:`rag.models.embedding.Embedder`.
- ``bundled_index``: a :class:`rag.config.Config` whose ``index_dir`` holds an index of ``articles_dir``.
- ``bundled_reader`` / ``bundled_retriever``: that index opened for reading and searching.
- ``bundled_spans`` / ``read_spans(index_dir)``: every stored chunk and sentence, read from the catalog.
- ``sample_index``: a small index of SAMPLE_ARTICLES; ``copy_index(config)`` copies an index to change it.
- ``make_corpus``: writes small synthetic corpora into temporary folders.
- ``dev_qa``: the public dev questions.
- ``store_name``: "faiss" and "milvus" in turn; ``store_config(store_name, index_dir)`` makes a Config.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from store_helpers import STORES

from rag.config import Config
from rag.index.build import BuildReport, build_index
from rag.index.catalog import IndexReader
from rag.models.embedding import Embedder, model_id
from rag.qa.retrieval import Retriever

ROOT = Path(__file__).resolve().parent.parent
DEV_QA = ROOT / "evals" / "datasets" / "dev_qa.jsonl"

# Small synthetic articles with distinct topics, so that a query about one finds that one.
SAMPLE_ARTICLES: dict[str, str] = {
    "harbour.txt": (
        "Harbour Reopens After Three-Day Storm\n"
        "Published: March 4, 2025\n\n"
        "The fishing harbour in Port Alder reopened on Tuesday after a winter storm closed it for three "
        "days, the town council said.\n\n"
        "Crews returned to the docks at dawn, and the harbour master said damage to the outer pier "
        "was lighter than first feared. Engineers will inspect the sea wall next week before cargo ships "
        "return.\n"
    ),
    "orchard.txt": (
        "Apple Growers Expect Record Harvest\n\n"
        "Orchards across the northern valley are expected to produce a record apple harvest this autumn, "
        "according to the regional growers association.\n\n"
        "Warm spring weather and steady summer rain helped the trees, although growers warned that a "
        "shortage of seasonal pickers could leave some fruit unharvested in October.\n"
    ),
    "observatory.txt": (
        "Observatory Spots Comet Approaching Inner Solar System\n\n"
        "Astronomers at the mountain observatory have detected a faint comet that will pass inside the orbit "
        "of Mars early next year, the observatory director announced.\n\n"
        "The comet is too dim to see without a telescope for now, but it may brighten enough for binoculars "
        "by February if its icy nucleus survives the approach to the Sun.\n"
    ),
}


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: takes minutes; still part of `make test` (skip with -m 'not slow')")


@pytest.fixture(params=STORES)
def store_name(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def articles_dir() -> Path:
    """The bundled seed articles (five .txt files about one event; 000_* carries web-page chrome)."""
    folder = ROOT / "data" / "articles"
    assert sorted(p.suffix for p in folder.iterdir()) == [".txt"] * 5
    return folder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real packaged embedding model, loaded once per session."""
    model = Embedder()
    model.embed_one("warm up")
    return model


@pytest.fixture(scope="session")
def bundled_build(tmp_path_factory, articles_dir, embedder) -> tuple[Config, BuildReport]:
    config = Config(index_dir=tmp_path_factory.mktemp("bundled") / "index")
    report = build_index([articles_dir], config, embedder=embedder)
    assert not report.errors, report.errors
    return config, report


@pytest.fixture(scope="session")
def bundled_index(bundled_build) -> Config:
    """A Config whose ``index_dir`` holds a freshly built index of the bundled articles. Treat as read-only;
    tests that modify an index work on a copy (see ``copy_index``)."""
    return bundled_build[0]


@pytest.fixture(scope="session")
def bundled_reader(bundled_index) -> Iterator[IndexReader]:
    reader = IndexReader(bundled_index.index_dir, expected_model=model_id())
    yield reader
    reader.close()


@pytest.fixture(scope="session")
def bundled_retriever(bundled_reader, embedder, bundled_index) -> Retriever:
    return Retriever(bundled_reader, embedder, bundled_index)


@pytest.fixture(scope="session")
def dev_qa() -> list[dict]:
    with open(DEV_QA, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@dataclass(frozen=True)
class StoredSpan:
    doc: str
    kind: str  # "chunk" or "sentence"
    start: int
    end: int
    text: str  # the stored document text sliced at [start:end]


def stored_spans(index_dir: Path) -> list[StoredSpan]:
    """Every chunk and sentence of the live generation, for every document name, as the catalog stores them."""
    reader = IndexReader(index_dir)
    try:
        return [StoredSpan(doc, kind, s, e, reader.document_text(doc)[s:e])
                for kind in ("chunk", "sentence") for doc, s, e in reader.document_spans(kind)]
    finally:
        reader.close()


@pytest.fixture(scope="session")
def read_spans() -> Callable[[Path], list[StoredSpan]]:
    """``read_spans(index_dir)``: all chunks and sentences of any index folder."""
    return stored_spans


@pytest.fixture(scope="session")
def bundled_spans(bundled_index) -> list[StoredSpan]:
    """All chunks and sentences of the bundled index."""
    return stored_spans(bundled_index.index_dir)


@pytest.fixture
def copy_index(tmp_path) -> Callable[[Config], Config]:
    """Copy an index folder into this test's tmp dir and return a Config pointing at the copy."""

    def copy(config: Config, name: str = "index-copy") -> Config:
        target = tmp_path / name
        shutil.copytree(config.index_dir, target, ignore=shutil.ignore_patterns(".lock"))
        return config.replace(index_dir=target)

    return copy


def write_files(folder: Path, files: dict[str, str | bytes]) -> Path:
    """Write ``{relative name: str | bytes}`` under ``folder`` (text as UTF-8) and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


@pytest.fixture
def make_corpus(tmp_path) -> Callable[..., Path]:
    """``make_corpus(files=None, name=None)``: a fresh folder under tmp_path holding ``files``
    (``{relative name: str | bytes}``), by default SAMPLE_ARTICLES."""
    counter = iter(range(1_000_000))

    def make(files: dict[str, str | bytes] | None = None, name: str | None = None) -> Path:
        folder = tmp_path / (name or f"corpus-{next(counter)}")
        assert not folder.exists()
        return write_files(folder, SAMPLE_ARTICLES if files is None else files)

    return make


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, embedder) -> Config:
    """A small index of SAMPLE_ARTICLES (read-only; copy it with ``copy_index`` to change it). Its corpus
    folder is ``sample_index.index_dir.parent / "corpus"``."""
    root = tmp_path_factory.mktemp("sample")
    write_files(root / "corpus", SAMPLE_ARTICLES)
    config = Config(index_dir=root / "index")
    report = build_index([root / "corpus"], config, embedder=embedder)
    assert sorted(report.added) == sorted(SAMPLE_ARTICLES) and not report.errors
    return config


@pytest.fixture
def sample_articles() -> dict[str, str]:
    return dict(SAMPLE_ARTICLES)

