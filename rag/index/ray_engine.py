"""The Ray engine of ``rag index``: read → clean → chunk → embed as Ray Data pipelines.

:func:`rag.index.build.build_index` drives both engines the same way: it asks the engine to *read* every file
(documents, or one error per bad file), decides itself which documents are new and which contents are not
in the index yet, asks the engine to *embed* only those, and writes everything through the same
IndexWriter calls. This module is the Ray side of those two steps:

- read: files → ``load_file`` (decode, clean, extract) in Ray tasks. A file that fails comes back as an
  error row naming the problem, exactly the text the local engine reports; it never fails the job.
- embed: new contents → chunk (:func:`rag.index.engines.chunk_text`) in Ray tasks → embed in a pool of actors
  that load the model once each and embed whole batches of documents (:func:`rag.index.engines.embed_spans`).

Ray Data runs with ``preserve_order``, so results come back to the driver in the order they were asked for
and the index is the same as the local engine's (same documents, spans and row ids; vectors equal within
float tolerance).

Without an address a private Ray is started on this machine (sized for 2 cores, no dashboard, a small
object store) and shut down afterwards; with ``--ray-address`` / ``$RAG_RAY_ADDRESS`` / ``$RAY_ADDRESS``
the job joins that cluster, whose nodes need this project installed and the files at the same paths.
Only this module imports ray, and only ``rag.index.build.open_engine`` with ``engine="ray"`` imports this module.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Config
from rag.errors import BadInput, FileProblem
from rag.index.catalog import NewContent
from rag.index.engines import chunk_text, embed_spans
from rag.ingest import readers
from rag.models.embedding import DIMENSION

# A local Ray sized for this 2-core machine: two logical CPUs. Reading runs first, one task per core; then
# chunk tasks (half a CPU) feed two embedding actors (0.75 CPU each, so both fit beside a chunk task). Ray
# gives an actor OMP_NUM_THREADS = max(1, floor(num_cpus)), so each embeds on one thread: two such actors
# beat one actor on two threads here.
LOCAL_CPUS = 2
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
READ_TASK_CPUS = 1
CHUNK_TASK_CPUS = 0.5
EMBED_ACTORS = 2
EMBED_ACTOR_CPUS = 0.75
# Granularity: files per read task, documents per chunk task / embedding call (one block each).
FILES_PER_BLOCK = 8
DOCS_PER_BLOCK = 32

_DOC_FIELDS = ("id", "title", "date", "url", "source", "text", "hash", "blocks")


class RayEngine:
    """``with RayEngine(config): engine.read(files); engine.embed(docs)`` (a
    :class:`rag.index.engines.IngestEngine`). Joins or starts Ray on entry (a Ray already initialised in this
    process is used as it is) and stops the Ray it started on exit."""

    def __init__(self, config: Config, progress: bool = False) -> None:
        self.config = config
        self.progress = progress
        self._started = False
        self._saved: dict = {}
        self._cluster = False

    # --- Ray's lifetime ---------------------------------------------------------------------------------
    def __enter__(self) -> RayEngine:
        if not is_running():
            start(self.config.ray_address)
            self._started = True
        self._cluster = not _is_local()
        self._configure_ray_data()
        return self

    def __exit__(self, *exc) -> None:
        import ray
        from ray.data import DataContext

        context = DataContext.get_current()
        for name, value in self._saved.get("context", {}).items():
            setattr(context, name, value)
        if "preserve_order" in self._saved:
            context.execution_options.preserve_order = self._saved["preserve_order"]
        for handler, level in self._saved.get("handlers", []):
            handler.setLevel(level)
        self._saved = {}
        if self._started:
            ray.shutdown()

    def _configure_ray_data(self) -> None:
        """Blocks in order (both steps hand results on in input order); Ray Data's progress bars only on a
        terminal (``progress``), and none of its INFO lines ("execution finished …") on the console; its log
        file in the Ray session folder keeps everything."""
        from ray.data import DataContext

        context = DataContext.get_current()
        self._saved["preserve_order"] = context.execution_options.preserve_order
        context.execution_options.preserve_order = True
        wanted = {"enable_progress_bars": self.progress, "print_on_execution_start": False,
                  "enable_auto_log_stats": False}
        self._saved["context"] = {name: getattr(context, name) for name in wanted}
        for name, value in wanted.items():
            setattr(context, name, value)
        console = [h for h in logging.getLogger("ray.data").handlers
                   if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
        self._saved["handlers"] = [(h, h.level) for h in console]
        for handler in console:
            handler.setLevel(logging.ERROR)

    # --- the two steps build_index asks for -------------------------------------------------------------
    def read(self, files: Sequence[tuple[Path, str]]) -> Iterator[list[readers.Document] | FileProblem]:
        """Each file's documents in file order, or the problem that made it fail."""
        import pyarrow as pa
        import ray

        if not files:
            return
        rows = [{"index": i, "path": str(path.absolute()), "doc_id": doc_id}
                for i, (path, doc_id) in enumerate(files)]
        tables = [pa.Table.from_pylist(rows[i : i + FILES_PER_BLOCK]) for i in range(0, len(rows), FILES_PER_BLOCK)]
        dataset = ray.data.from_arrow(tables).map_batches(
            read_files, batch_format="pyarrow", batch_size=None, num_cpus=READ_TASK_CPUS,
        )
        # Rows come in file order (preserve_order), a file's rows together: its documents, or one error row.
        done = 0
        for index, grouped in groupby(_rows(dataset), key=lambda r: r["index"]):
            if index != done:
                raise RuntimeError(f"the Ray read stage returned file {index} where file {done} was due")
            found, path = list(grouped), files[done][0]
            error = found[0]["error"]
            yield FileProblem(str(path), error) if error is not None else [
                _document(r, path) for r in found if r["id"] is not None]
            done += 1
        if done < len(files):
            raise RuntimeError(f"the Ray read stage returned nothing for {files[done][0]}")

    def embed(self, docs: Sequence[readers.Document]) -> Iterator[NewContent]:
        """NewContent for each document (its text's chunks, sentences, vectors, MinHash), in input order."""
        import pyarrow as pa
        import ray

        if not docs:
            return
        rows = [{"key": i, "text": d.text, "blocks": _spans_bytes(d.blocks)}
                for i, d in enumerate(docs)]
        tables = [pa.Table.from_pylist(rows[i : i + DOCS_PER_BLOCK]) for i in range(0, len(rows), DOCS_PER_BLOCK)]
        dataset = (
            ray.data.from_arrow(tables)
            .map_batches(
                chunk_texts,  # type: ignore[arg-type]  # Ray's stubs do not know fn_kwargs fill the other arguments
                batch_format="pyarrow", batch_size=None, num_cpus=CHUNK_TASK_CPUS,
                fn_kwargs={"config": self.config},
            )
            .map_batches(
                EmbedBatch, batch_format="pyarrow", batch_size=DOCS_PER_BLOCK, num_cpus=EMBED_ACTOR_CPUS,
                compute=self._actor_pool(len(tables)),
                # The driver's whole Config goes with the task: RAG_* variables and flags given to the driver
                # hold on every worker, whatever the worker's own environment says.
                fn_constructor_kwargs={"config": self.config},
            )
        )
        # Rows come in input order (preserve_order), so the writer assigns the same row ids as with the local engine.
        done = 0
        for row in _rows(dataset):
            if row["key"] != done:
                raise RuntimeError(f"the Ray embedding stage returned document {row['key']} where {done} was due")
            doc = docs[done]
            yield NewContent(
                hash=doc.content_hash,
                text=doc.text,
                chunks=_spans(row["chunks"]),
                chunk_vectors=_vectors(row["chunk_vectors"]),
                sentences=_spans(row["sentences"]),
                sentence_vectors=_vectors(row["sentence_vectors"]),
                minhash=row["minhash"],
            )
            done += 1
        if done < len(docs):
            raise RuntimeError(f"the Ray embedding stage returned nothing for {docs[done].id}")

    def _actor_pool(self, blocks: int):
        """A fixed pool of EMBED_ACTORS on one machine (fewer for fewer blocks of work); on a cluster, a pool
        that grows with the work up to what its CPUs allow."""
        import ray
        from ray.data import ActorPoolStrategy

        if not self._cluster:
            return ActorPoolStrategy(size=max(1, min(EMBED_ACTORS, blocks)))
        cpus = ray.cluster_resources().get("CPU", LOCAL_CPUS)
        most = max(1, min(blocks, int((cpus - CHUNK_TASK_CPUS) // EMBED_ACTOR_CPUS)))
        return ActorPoolStrategy(min_size=1, max_size=most)


# --- starting Ray ----------------------------------------------------------------------------------------

def address(config_address: str | None) -> str | None:
    """The cluster to join: ``--ray-address`` / ``$RAG_RAY_ADDRESS``, else ``$RAY_ADDRESS``, else none."""
    return config_address or os.environ.get("RAY_ADDRESS") or None


def is_running() -> bool:
    """Whether this process is already connected to a Ray (without importing ray if it is not imported)."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def start(config_address: str | None = None) -> None:
    """Join the cluster at ``address(config_address)``, or start a private local Ray sized for 2 cores."""
    target = address(config_address)
    if not target:
        # A private Ray listens on the loopback interface only. Ray reads this when it is first imported, so
        # it only helps if nothing imported ray before (the CLI does not; tests take care not to).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    import rag

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False,
             "configure_logging": True}
    if target:
        # Ship this package to the cluster's workers (its dependencies must be installed there).
        ray.init(address=target, runtime_env={"py_modules": [str(Path(rag.__file__).parent)]}, **quiet)
        return
    # A new local Ray turns on token authentication (token in ~/.ray/auth_token) and warns that it did.
    auth = logging.getLogger("ray._private.authentication.authentication_token_setup")
    level = auth.level
    auth.setLevel(logging.ERROR)
    try:
        ray.init(address="local", num_cpus=LOCAL_CPUS, num_gpus=0, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                 **quiet)
    finally:
        auth.setLevel(level)


def _is_local() -> bool:
    import ray

    return len([n for n in ray.nodes() if n.get("Alive")]) <= 1


# --- the stages (run in Ray workers) -----------------------------------------------------------------------

def read_files(batch):
    """Read stage: rows (index, path, doc_id) → one row per document in file order, or one error row per bad
    file."""
    import pyarrow as pa

    out: dict[str, list] = {name: [] for name in ("index", "error", *_DOC_FIELDS)}

    def add(index: int, error: str | None, doc: readers.Document | None) -> None:
        out["index"].append(index)
        out["error"].append(error)
        out["id"].append(doc.id if doc else None)
        out["title"].append(doc.title if doc else None)
        out["date"].append(doc.date if doc else None)
        out["url"].append(doc.url if doc else None)
        out["source"].append(doc.source if doc else None)
        out["text"].append(doc.text if doc else None)
        out["hash"].append(doc.content_hash if doc else None)
        out["blocks"].append(_spans_bytes(doc.blocks) if doc else None)

    for row in batch.to_pylist():
        try:
            documents = list(readers.load_file(Path(row["path"]), row["doc_id"]))
        except BadInput as exc:
            add(row["index"], str(exc), None)
            continue
        except Exception as exc:  # any failure of one file is that file's error; the job goes on
            add(row["index"], f"cannot index file ({type(exc).__name__}: {exc})", None)
            continue
        if not documents:  # cannot happen today (load_file yields a document or raises): a row all the same
            add(row["index"], None, None)
        for doc in documents:
            add(row["index"], None, doc)
    schema = pa.schema([
        ("index", pa.int64()), ("error", pa.string()), ("id", pa.string()),
        ("title", pa.string()), ("date", pa.string()), ("url", pa.string()), ("source", pa.string()),
        ("text", pa.large_string()), ("hash", pa.string()), ("blocks", pa.binary()),
    ])
    return pa.Table.from_pydict(out, schema=schema)


def chunk_texts(batch, config: Config):
    """Chunk stage: (key, text, blocks) → plus chunk and sentence spans and the MinHash signature,
    computed by :func:`rag.index.engines.chunk_text`, as the local engine computes them."""
    import pyarrow as pa

    chunks, sentences, minhashes = [], [], []
    for row in batch.select(["text", "blocks"]).to_pylist():
        piece = chunk_text(row["text"], _spans(row["blocks"]), config)
        chunks.append(_spans_bytes(piece.chunks))
        sentences.append(_spans_bytes(piece.sentences))
        minhashes.append(piece.minhash)
    return (batch.append_column("chunks", pa.array(chunks, pa.binary()))
            .append_column("sentences", pa.array(sentences, pa.binary()))
            .append_column("minhash", pa.array(minhashes, pa.binary())))


class EmbedBatch:
    """Embed stage, one per actor: loads the model once, then embeds the chunks (and sentences) of a batch of
    documents with :func:`rag.index.engines.embed_spans`, as the local engine does. Returns the spans with float32
    vectors (raw bytes, row-major) and drops the text."""

    def __init__(self, config: Config) -> None:
        from rag.models.embedding import Embedder

        self.sentence_vectors = config.sentence_vectors
        self.embedder = Embedder.for_config(config)
        self.embedder.embed(["warm-up"])

    def __call__(self, batch):
        import pyarrow as pa

        rows = batch.select(["text", "chunks", "sentences"]).to_pylist()
        spans = [(_spans(r["chunks"]), _spans(r["sentences"])) for r in rows]
        vectors = embed_spans([r["text"] for r in rows], spans, self.embedder, self.sentence_vectors)
        return (batch.drop_columns(["text", "blocks"])
                .append_column("chunk_vectors", pa.array([c.astype(np.float32).tobytes() for c, _ in vectors],
                                                         pa.large_binary()))
                .append_column("sentence_vectors", pa.array([s.astype(np.float32).tobytes() for _, s in vectors],
                                                            pa.large_binary())))


# --- row encodings -----------------------------------------------------------------------------------------

def _spans_bytes(spans: Sequence[tuple[int, int]]) -> bytes:
    return np.asarray(spans, dtype=np.int64).reshape(-1, 2).tobytes()


def _spans(blob: bytes) -> tuple[tuple[int, int], ...]:
    return tuple((int(a), int(b)) for a, b in np.frombuffer(blob, dtype=np.int64).reshape(-1, 2))


def _vectors(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).reshape(-1, DIMENSION)


def _rows(dataset) -> Iterator[dict]:
    """The dataset's rows as dicts, in its block order."""
    for table in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
        yield from table.to_pylist()


def _document(row: dict, path: Path) -> readers.Document:
    return readers.Document(
        id=row["id"], path=str(path), title=row["title"], date=row["date"], text=row["text"],
        content_hash=row["hash"], blocks=_spans(row["blocks"]), url=row["url"], source=row["source"],
    )
