"""Where the shared public data live (the BBC archive, the benchmarks): next to the checkout as the README's
commands expect (`../shared`), or where RAG_SHARED_DIR says, or this machine's /work/shared. Tests that need
them are skipped, with the reason, where none of these exist."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CANDIDATES = [os.environ.get("RAG_SHARED_DIR"), ROOT.parent / "shared", "/work/shared"]
SHARED = next((Path(p) for p in _CANDIDATES if p and Path(p).is_dir()), ROOT.parent / "shared")
BBC = SHARED / "corpus" / "bbc"
BENCHMARKS = SHARED / "benchmarks"
