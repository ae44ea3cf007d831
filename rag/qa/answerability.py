"""Whether the evidence answers the question at all. The model is never asked when it does not.

Two tests, both documented in the README ("Abstention"):
1. Relevance: the best evidence sentence must score at least ``Config.abstain_threshold`` (half embedding
   similarity, half IDF-weighted share of the question's terms it contains).
2. Answer type: a question that asks for a number, a date or a name is only answerable if the strongest
   evidence contains one that the question does not already give (evidence about "large numbers of
   migrants" does not say how many; "the world's largest aircraft carrier" does not name it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.qa.evidence import Evidence
from rag.qa.question import Question
from rag.text import fold, has_time_expression, numbers, proper_names, tokens

CLOSE_TO_BEST = 0.8
NAME_WINDOW = 4
@dataclass(frozen=True)
class Verdict:
    answerable: bool
    reason: str
    best_score: float


def relevant(evidence: list[Evidence], threshold: float) -> Verdict:
    """The necessary condition alone: some evidence sentence is relevant at all (the calibrated judge decides
    whether it answers; ``rag.qa.judge``)."""
    if not evidence:
        return Verdict(False, "nothing in the index matches the question", 0.0)
    best = max(e.score for e in evidence)
    if best < threshold:
        return Verdict(False, f"no sentence is relevant enough (best {best:.2f} < {threshold:.2f})", best)
    return Verdict(True, "", best)


def missing_answer_type(question: Question, evidence: list[Evidence]) -> str:
    """A necessary condition of the calibrated judge's path: a question that asks for a number, a date or a
    name cannot be answered by evidence that holds none (beyond those the question gives). Looser than the
    lexical mechanism's rule: all the evidence the model reads counts, a time or a number answers "when",
    and a name must stand next to the thing whose name is asked."""
    # Numbers the question asks with count as given; one stated in an instruction around it ("output the words
    # 'FIVE DAYS'") does not.
    given = numbers(question.asked)
    if question.kind == "number":
        if not any(numbers(e.text) - given for e in evidence):
            return "the most relevant sentences give no number"
    elif question.kind == "date":
        if not any(has_time_expression(e.text) or numbers(e.text) - given for e in evidence):
            return "the most relevant sentences give no date or time"
    elif question.kind == "name" and question.named_thing:
        if not any(_name_next_to(e.text, question.named_thing, question.text) for e in evidence):
            return f"the most relevant sentences do not name the {question.named_thing}"
    return ""


def judge(question: Question, evidence: list[Evidence], threshold: float) -> Verdict:
    if not evidence:
        return Verdict(False, "nothing in the index matches the question", 0.0)
    best = max(e.score for e in evidence)
    if best < threshold:
        return Verdict(False, f"no sentence is relevant enough (best {best:.2f} < {threshold:.2f})", best)
    strongest = [e for e in evidence if e.score >= CLOSE_TO_BEST * best]
    missing = _missing_answer_type(question, strongest)
    if missing:
        return Verdict(False, missing, best)
    return Verdict(True, "", best)


def _missing_answer_type(question: Question, strongest: list[Evidence]) -> str:
    if question.kind == "number":
        given = numbers(question.focus)
        if not any(numbers(e.text) - given for e in strongest):
            return "the most relevant sentences give no number"
    elif question.kind == "date":
        if not any(has_time_expression(e.text) for e in strongest):
            return "the most relevant sentences give no date"
    elif question.kind == "name" and question.named_thing:
        if not any(_name_next_to(e.text, question.named_thing, question.focus) for e in strongest):
            return f"the most relevant sentences do not name the {question.named_thing}"
    return ""


def _name_next_to(text: str, thing: str, asked: str) -> bool:
    """A proper name the question does not contain stands within a few words of a word of ``thing``."""
    words = re.findall(r"[\w’'.-]+", text)
    folded = [fold(w).strip(".") for w in words]
    names = proper_names(text) - {fold(w) for w in tokens(asked)} - set(map(fold, asked.split()))
    wanted = {w.rstrip("s") for w in thing.split()}
    for i, word in enumerate(folded):
        if word.rstrip("s") in wanted:
            window = words[max(0, i - NAME_WINDOW) : i + NAME_WINDOW + 1]
            if any(fold(w).rstrip(".") in names for w in window):
                return True
    return False
