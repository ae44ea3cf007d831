"""What several measuring tools share, in a leaf module that imports nothing of the project: `rag --help`
reads these names without loading what the tools measure with."""

from __future__ import annotations

# The public benchmarks `rag eval --benchmark` runs (evals/benchmarks.py).
BENCHMARKS = ("rgb", "squad2", "squad2-decision")
