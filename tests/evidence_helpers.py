"""Build Evidence lists from plain sentences, for tests of the stages that read evidence."""

from __future__ import annotations

import numpy as np

from rag.index.catalog import SentenceRecord
from rag.qa.evidence import Evidence


def evidence_from(*items: tuple[str, str], score: float = 0.6, coverage: float = 0.5) -> list[Evidence]:
    """(doc, sentence) pairs → Evidence numbered 1..n, equally relevant unless scores are given."""
    result = []
    offsets: dict[str, int] = {}
    for n, (doc, text) in enumerate(items, start=1):
        start = offsets.get(doc, 0)
        sentence = SentenceRecord(n, doc, start, start + len(text), text, np.zeros(384, dtype=np.float32))
        offsets[doc] = start + len(text) + 1
        result.append(Evidence(n, sentence, f"Title of {doc}", score, score, coverage))
    return result
