"""One place for every tunable: defaults here, overridden by ``RAG_*`` environment variables, then CLI flags.

The allowed values of each choice are a ``Literal`` type defined here once; the CLI's ``choices``, the UI's
radio buttons and the validation below all read them from these types.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from rag.errors import SettingsError

Mode = Literal["generative", "extractive"]
Store = Literal["faiss", "milvus"]
Engine = Literal["local", "ray"]
JudgeKind = Literal["model", "lexical"]
SentenceVectors = Literal["pooled", "embedded"]
EmbeddingBackend = Literal["onnx", "torch"]
# Which build of llama.cpp's CPU kernels to run (rag.models.llama_cpu): the best one installed that the CPU
# supports, the package's own AVX2 build, or the AVX-512 one.
LlamaCpu = Literal["auto", "avx2", "avx512"]

MODES: tuple[Mode, ...] = get_args(Mode)
STORES: tuple[Store, ...] = get_args(Store)
ENGINES: tuple[Engine, ...] = get_args(Engine)
JUDGES: tuple[JudgeKind, ...] = get_args(JudgeKind)
EMBEDDING_BACKENDS: tuple[EmbeddingBackend, ...] = get_args(EmbeddingBackend)
SENTENCE_VECTORS: tuple[SentenceVectors, ...] = get_args(SentenceVectors)
LLAMA_CPUS: tuple[LlamaCpu, ...] = get_args(LlamaCpu)
_CHOICES: dict[str, tuple[str, ...]] = {
    "store": STORES, "engine": ENGINES, "mode": MODES, "judge": JUDGES,
    "sentence_vectors": SENTENCE_VECTORS, "embedding_backend": EMBEDDING_BACKENDS, "llama_cpu": LLAMA_CPUS,
}
_PATHS = {"index_dir", "uploads_dir", "cache_dir", "embedding_cache"}


def _user_cache() -> Path:
    # The XDG rule platformdirs applies on Linux, the only platform this runs on (README: platformdirs rejected).
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-news"


@dataclass(frozen=True)
class Config:
    index_dir: Path = Path("index")
    # Where chunk vectors and the lexical index live: "faiss" (files under index_dir, the default) or
    # "milvus" (a collection at milvus_uri: a local file for Milvus Lite, or http://host:19530).
    store: Store = "faiss"
    milvus_uri: str | None = None
    # How `rag index` reads, chunks and embeds: "local" (this process) or "ray" (a Ray Data pipeline on a
    # local Ray, or on the cluster at ray_address / $RAY_ADDRESS).
    engine: Engine = "local"
    ray_address: str | None = None
    # Where the UI stores uploaded articles (document ids are relative to its parent folder).
    uploads_dir: Path = Path("data/uploads")
    # Where the UI listens (`rag serve`, `python app.py`). Besides RAG_HOST/RAG_PORT, Gradio's own
    # GRADIO_SERVER_NAME/GRADIO_SERVER_PORT are honoured, so a deployment set up for Gradio works unchanged.
    host: str = "127.0.0.1"
    port: int = 7860
    # Chunking: chunks are whole sentences up to about this many characters, sharing this many sentences.
    chunk_chars: int = 700
    chunk_overlap_sentences: int = 1
    # Sentence vectors (evidence scoring) are "pooled" from their chunk's forward pass (free at index time) or
    # "embedded" one sentence at a time (twice the indexing time). See rag.index.engines.embed_spans.
    sentence_vectors: SentenceVectors = "pooled"
    # Above this many chunks the dense index switches from exact (flat) to approximate (HNSW); see `rag bench`.
    hnsw_threshold: int = 50_000
    # Retrieval. ``section`` keeps only articles filed under it (a first folder, or the word before a numbered
    # file name such as sport_199.txt; see rag.index.catalog.section_of).
    section: str | None = None
    k: int = 8
    candidates: int = 50
    max_chunks_per_doc: int = 2
    # Evidence and answering.
    mode: Mode = "generative"
    evidence_sentences: int = 6
    # Sentences are scored from this many passages (more than are shown: scoring them is cheap).
    evidence_passages: int = 16
    # Of those sentences, the model reads only the ones scoring at least this share of the best one's
    # score (always the best two): prompt length is the wait on a CPU. 0 sends them all.
    prompt_relevance: float = 0.6
    # Under the model judge the model reads every sentence of this many top passages (numbered, in reading
    # order) instead of the best sentences alone: the answer often sits next to the sentence that echoes the
    # question. 0 restores the sentence selection above.
    prompt_passages: int = 3
    # Of those passages, keep only the sentences scoring at least this share of the best one's score, and those
    # that share a word with the question and hold a value of the kind asked (a number for "how many", a name
    # for "who"): fewer tokens read. 0 reads the passages whole.
    prompt_sentence_share: float = 0.0
    model_path: str | None = None
    n_ctx: int = 2048
    n_threads: int = 2
    # llama.cpp's CPU kernels: the AVX2 build the package carries, or "auto" (its AVX-512 build where it is
    # installed and the CPU has the flags: 1.35-1.40x the reading speed, `rag bench --sections llm`). AVX2 stays
    # the default: the AVX-512 build's numbers flip some greedy answers, and on the fit set the flips went
    # against it, 0.72 against 0.76 (docs/notes/2026-12-07-fast-on-two-cores.md).
    llama_cpu: LlamaCpu = "avx2"
    max_new_tokens: int = 120
    seed: int = 0
    # Abstain when the best evidence sentence scores below this relevance; between it and
    # ``confident_threshold`` a refusal by the model is accepted as an abstention (README "Abstention").
    abstain_threshold: float = 0.20
    confident_threshold: float = 0.45
    # A generated sentence survives verification when at least this share of its content words
    # appears in the spans it cites (the "lexical" judge only).
    support_threshold: float = 0.6
    # Who decides answerability, support and disagreement: "model" (rag.qa.judge: the language model's calibrated
    # yes/no with cheap features; extractive mode uses its model-free fit for answerability) or "lexical" (the
    # word-overlap rules of earlier versions, kept for comparison).
    judge: JudgeKind = "model"
    # Where the assembled default model (models/) and the ONNX export of the embedding model (embeddings/) are
    # kept: never inside site-packages. ``embedding_cache`` moves the ONNX export alone.
    cache_dir: Path = field(default_factory=_user_cache)
    embedding_cache: Path | None = None
    # "onnx" (ONNX Runtime on a local export; the default) or "torch" (sentence-transformers; same vectors).
    embedding_backend: EmbeddingBackend = "onnx"
    # ``user:password`` for the UI; required to serve on any interface but the loopback one.
    auth: str | None = field(default=None, repr=False)
    # Seconds between progress lines when output is not a terminal.
    progress_seconds: float = 5.0

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if self.auth is not None and ":" not in self.auth:
            raise SettingsError("RAG_AUTH must be user:password")

    @property
    def embedding_cache_dir(self) -> Path:
        return self.embedding_cache or self.cache_dir / "embeddings"

    @property
    def credentials(self) -> tuple[str, str] | None:
        if not self.auth:
            return None
        user, password = self.auth.split(":", 1)
        return user, password

    def replace(self, **overrides: Any) -> Config:
        """A copy with the given fields replaced, except those given as ``None`` (CLI flags left unset).

        To clear a field that may be ``None``, use :func:`dataclasses.replace`."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"unknown config option(s): {', '.join(sorted(unknown))}")
        clean = {k: _coerce(self, k, v) for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **clean)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Config:
        """Defaults, then ``RAG_<FIELD>`` environment variables, then explicit overrides."""
        env = os.environ if environ is None else environ
        base = cls()
        from_env = {name: env[variable] for name, variable in _ALIASES.items() if variable in env}
        from_env.update({f.name: env[f"RAG_{f.name.upper()}"] for f in fields(cls) if f"RAG_{f.name.upper()}" in env})
        return base.replace(**from_env).replace(**overrides)


# Other programs' variables for the same settings; a RAG_* variable wins over them.
_ALIASES = {"host": "GRADIO_SERVER_NAME", "port": "GRADIO_SERVER_PORT", "ray_address": "RAY_ADDRESS"}


def _coerce(config: Config, name: str, value: Any) -> Any:
    current = getattr(config, name)
    if name in _PATHS:
        return Path(value)
    if isinstance(value, str):
        try:
            if isinstance(current, int):
                return int(value)
            if isinstance(current, float):
                return float(value)
        except ValueError:
            raise SettingsError(f"{name} must be a number, not {value!r}") from None
        if name == "auth" and not value:
            return None  # RAG_AUTH= (empty) means no password, as if unset
    return value
