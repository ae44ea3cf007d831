"""Draft: the language model writes an answer from the numbered evidence, streamed token by token.

What it writes is only a draft: every sentence faces ``check`` before it reaches the user.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rag.qa.answers import Answer
from rag.qa.gather import Prepared
from rag.qa.judge import numbered

if TYPE_CHECKING:
    from rag.models.llm import Generation  # the model module is imported only when a model is used
    from rag.models.llm import Generator as Model

EventKind = Literal["status", "token", "answer"]


@dataclass(frozen=True)
class Event:
    """What ``Assistant.stream`` yields: ``status`` and ``token`` events, then one ``answer``."""

    kind: EventKind
    text: str = ""
    answer: Answer | None = None


def drafted(model: Model, question: str, prepared: Prepared) -> Generator[Event, None, Generation]:
    """Stream one draft answering ``question`` from the evidence the model reads; returns the finished draft.
    Closing this stops the model at its next token."""
    tokens = model.stream(question, numbered(prepared.prompt_evidence))
    try:
        while True:
            try:
                token = next(tokens)
            except StopIteration as done:
                return done.value
            yield Event("token", token)
    finally:
        tokens.close()
