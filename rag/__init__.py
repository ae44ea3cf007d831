"""Offline question answering over news articles, with citations to exact spans.

The public surface is imported lazily so that ``import rag`` (and ``rag --help``) stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.config import Config
    from rag.qa.answers import Answer, Citation
    from rag.qa.assistant import Assistant, answer
    from rag.qa.retrieval import Passage, Retriever, search

__all__ = ["Answer", "Assistant", "Citation", "Config", "Passage", "Retriever", "answer", "search"]

_HOMES = {
    "Answer": "rag.qa.answers",
    "Citation": "rag.qa.answers",
    "Assistant": "rag.qa.assistant",
    "answer": "rag.qa.assistant",
    "Config": "rag.config",
    "Passage": "rag.qa.retrieval",
    "Retriever": "rag.qa.retrieval",
    "search": "rag.qa.retrieval",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
