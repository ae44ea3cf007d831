"""Decide: whether the prepared evidence answers the question, before anything is written.

Under the lexical rules the relevance floor and the answer-type rule (``answerability.judge``, applied while
gathering) are the whole decision. Under the calibrated judge the floor is followed by the judge's ``answers``
decision and the kind of thing asked for as a necessary condition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rag.qa import answerability
from rag.qa.evidence import Evidence
from rag.qa.gather import Prepared
from rag.qa.judge import Judge, Judgement
from rag.qa.question import parse

# The same evidence scored for another text (the interrogative sentence alone), numbers kept.
Rescore = Callable[[list[Evidence], str], list[Evidence]]


@dataclass(frozen=True)
class Decision:
    """Whether to answer from the evidence, and why not."""

    answerable: bool
    reason: str
    judgement: Judgement | None  # the judge's answers decision, when it was asked
    judge_tokens: int


def by_relevance(prepared: Prepared) -> Decision:
    """The verdict reached while gathering stands (the lexical rules)."""
    if not prepared.verdict.answerable:
        return Decision(False, prepared.verdict.reason, None, 0)
    return Decision(True, "", None, 0)


def by_judge(prepared: Prepared, judge: Judge, rescore: Rescore) -> Decision:
    """The relevance floor, then the judge's ``answers`` decision and the kind of thing asked for. Safe from any
    thread: the model's checks run on its own thread, and ``rescore`` takes the caller's lock."""
    if not prepared.verdict.answerable:
        return Decision(False, prepared.verdict.reason, None, 0)
    verdict = judge.answers(prepared.question, prepared.prompt_evidence, prepared.search_text)
    tokens = verdict.model_tokens
    if not verdict.yes and asks_apart_from_the_rest(prepared):
        # Sentences around the question (context, or an instruction) can confuse the check: the evidence
        # answers the question if it answers what the interrogative sentence asks.
        asked = prepared.question.asked
        alone = judge.answers(parse(asked, whole=True), rescore(prepared.prompt_evidence, asked), asked)
        tokens += alone.model_tokens
        verdict = max(verdict, alone, key=lambda v: v.probability)
    missing = answerability.missing_answer_type(prepared.question, prepared.prompt_evidence)
    if not verdict.yes or missing:
        reason = missing or (f"the closest passages do not state the answer (judge {verdict.probability:.2f}"
                             f" < {verdict.threshold:.2f})")
        return Decision(False, reason, verdict, tokens)
    return Decision(True, "", verdict, tokens)


def asks_apart_from_the_rest(prepared: Prepared) -> bool:
    """The question has sentences besides the one that asks (and is not a follow-up searched with the one
    before it)."""
    question = prepared.question
    return question.asked != question.focus and prepared.search_text == question.focus
