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

from rag.qa.evidence import Evidence, nearly_as_relevant
from rag.qa.question import VALUE_KINDS, Question, holds_expected_value
from rag.text import fold, proper_names, tokens

# A name answers "what is the name of the X" when it stands within this many words of X.
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
    return _missing_value(question, evidence, question.text)


def judge(question: Question, evidence: list[Evidence], threshold: float) -> Verdict:
    if not evidence:
        return Verdict(False, "nothing in the index matches the question", 0.0)
    best = max(e.score for e in evidence)
    if best < threshold:
        return Verdict(False, f"no sentence is relevant enough (best {best:.2f} < {threshold:.2f})", best)
    missing = _missing_value(question, nearly_as_relevant(evidence), question.focus)
    if missing:
        return Verdict(False, missing, best)
    return Verdict(True, "", best)


def _missing_value(question: Question, evidence: list[Evidence], asked: str) -> str:
    """Why ``evidence`` cannot answer the question (it holds no value of the kind asked for), or "". Numbers the
    interrogative sentence gives count as given; one stated in an instruction around it ("output the words
    'FIVE DAYS'") does not. ``asked``: the text whose words a name next to the named thing must not repeat."""
    if question.kind in VALUE_KINDS and not any(holds_expected_value(question, e.text) for e in evidence):
        return f"the most relevant sentences give no {question.kind}"
    if question.kind == "name" and question.named_thing:
        if not any(_name_next_to(e.text, question.named_thing, asked) for e in evidence):
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


# The relevance floor each policy applies while gathering (``rag.qa.policy.Relevance``).
RELEVANCE = {"answer_type": judge, "floor": lambda question, chosen, threshold: relevant(chosen, threshold)}
