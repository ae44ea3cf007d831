"""The answer a user gets: text with ``[n]`` markers, the citations behind them, and any disagreement."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.config import Mode


@dataclass(frozen=True)
class Citation:
    n: int
    doc: str
    title: str
    quote: str  # == document text[start:end]
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        return {"n": self.n, "doc": self.doc, "title": self.title, "quote": self.quote, "start": self.start,
                "end": self.end, "score": round(self.score, 4)}


@dataclass(frozen=True)
class ReportedValue:
    value: str
    citations: tuple[int, ...]


@dataclass(frozen=True)
class ReportedConflict:
    about: str
    values: tuple[ReportedValue, ...]

    def to_dict(self) -> dict:
        return {"about": self.about,
                "values": [{"value": v.value, "citations": list(v.citations)} for v in self.values]}


@dataclass(frozen=True)
class SearchedPassage:
    """What was retrieved, shown to a user when the assistant abstains or in a sources panel."""

    doc: str
    title: str
    start: int
    end: int
    text: str
    score: float  # fused rank score (reciprocal rank fusion)
    similarity: float = 0.0  # cosine of question and passage


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer, the citations behind it, and whether it is verified: the fitted decision
    accepted the answer at its verified operating point and the checks found what the sentence states in its
    citations. An unverified sentence is what the evidence probably states: read the cited passage."""

    text: str
    citations: tuple[int, ...]
    verified: bool
    # Whether the checks found each of its values and names, and the words it adds to the question, in the
    # sentences it cites (``verification.states``); verified when, besides, the decision accepts the answer at
    # its verified operating point.
    stated: bool = False

    def to_dict(self) -> dict:
        return {"text": self.text, "citations": list(self.citations), "verified": self.verified,
                "stated": self.stated}


@dataclass(frozen=True)
class Checked:
    """What decided whether to answer: the fitted probability that the answer is right, the operating points
    it was compared with, and the signals it weighed (the judge's log-odds, retrieval scores, lexical
    conditions)."""

    probability: float
    threshold: float  # below it, the assistant abstains
    verified_threshold: float | None  # at or above it, the answer is verified
    signals: dict[str, float]

    def to_dict(self) -> dict:
        return {"probability": round(self.probability, 4), "threshold": self.threshold,
                "verified_threshold": self.verified_threshold,
                "signals": {k: round(v, 4) for k, v in self.signals.items()}}


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...]
    conflicts: tuple[ReportedConflict, ...]
    timings: dict[str, float]
    model: str | None
    mode: Mode
    id: str | None = None
    # Not part of the JSON contract: for the UI, evaluation and benchmarks.
    reason: str = ""
    searched: tuple[SearchedPassage, ...] = field(default=(), repr=False)
    prompt_tokens: int = 0
    fallback: bool = False
    judge_tokens: int = 0  # prompt tokens the judge's checks read (beyond the answer prompt's cached prefix)
    verified: bool = False
    sentences: tuple[AnswerSentence, ...] = ()
    checked: Checked | None = None  # the fitted decision, where one was made
    # What the model wrote before the checks ("" when nothing was written: extractive mode, or an abstention
    # decided before drafting): ``rag eval`` scores it beside the final answer, to count what the checks lose.
    draft: str = ""

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "conflicts": [c.to_dict() for c in self.conflicts],
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "model": self.model,
            "mode": self.mode,
            "verified": self.verified,
            "sentences": [s.to_dict() for s in self.sentences],
            "checked": self.checked.to_dict() if self.checked is not None else None,
        }
