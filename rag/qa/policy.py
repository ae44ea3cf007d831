"""The policy: what the chosen mechanism asks of each step, as flags. A leaf of types: the steps (gather, decide,
check) import it and it imports none of them; the behaviour that differs between mechanisms lives in
``rag.qa.mechanism``, chosen once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rag.config import Config, JudgeKind

# How the relevance floor reads the evidence while gathering: the lexical rules also require a value of the
# expected kind ("answer_type"); the fitted decision leaves that to the judge and applies the floor alone.
Relevance = Literal["answer_type", "floor"]


@dataclass(frozen=True)
class Policy:
    name: JudgeKind
    # The whole question is parsed, instructions included (the judge reads meaning, so it sees them all).
    whole_question: bool
    # Documents that address the assistant with orders are kept out of the evidence.
    screens_hostile: bool
    # A claim about someone the question names must cite an article that names them (read whole).
    reads_whole_articles: bool
    relevance: Relevance
    # The model reads whole passages (every sentence, numbered) instead of selected sentences, where the
    # configuration asks for passages.
    passages: bool

    @property
    def judged(self) -> bool:
        return self.name == "model"

    def reads_passages(self, config: Config) -> bool:
        """Whether the model reads whole passages (every sentence, numbered) instead of selected sentences."""
        return self.passages and bool(config.prompt_passages)


LEXICAL = Policy("lexical", whole_question=False, screens_hostile=False, reads_whole_articles=False,
                 relevance="answer_type", passages=False)
FITTED = Policy("model", whole_question=True, screens_hostile=True, reads_whole_articles=True, relevance="floor",
                passages=True)


def policy_for(config: Config) -> Policy:
    return FITTED if config.judge == "model" else LEXICAL
