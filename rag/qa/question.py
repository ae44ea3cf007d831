"""What a question asks: the interrogative part (instructions around it are data, not commands), the
kind of answer it expects, and the terms that evidence must speak to."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal, get_args

from rag.errors import BadInput
from rag.qa.lexicon import ASKED_UNITS, FOLLOW_UP, KIND_PATTERNS
from rag.text import (
    MONTHS,
    STOPWORDS,
    content_terms,
    fold,
    has_time_expression,
    meaning_terms,
    name_runs,
    numbers,
    proper_names,
    tokens,
    values,
)

# The kind of answer a question expects, from its opening words (``KIND_PATTERNS``).
Kind = Literal["quote", "date", "number", "label", "name", "person", "place", "yesno", "other"]
# The kinds whose answer is a value that can be looked for in a sentence's words.
ValueKind = Literal["date", "number"]
VALUE_KINDS: tuple[ValueKind, ...] = get_args(ValueKind)
# The kinds a question's words can show, in the order that breaks a tie; any other question is "other".
_RANKED_KINDS: tuple[Kind, ...] = tuple(k for k in get_args(Kind) if k != "other")


@dataclass(frozen=True)
class Question:
    text: str
    focus: str  # what retrieval and the model see: the whole question, or only its interrogative sentence(s)
    kind: Kind
    terms: tuple[str, ...]
    # For "what is the name of the X": the first words of X, next to which a name must stand.
    named_thing: str | None = None
    # Phrases the question puts in quotes: a quoted headline names the article asked about.
    quoted: tuple[str, ...] = ()
    asked: str = ""  # the interrogative sentence(s) alone
    # The kind of value (date or number) the question asks for anywhere, even when it opens as another kind:
    # "Did the economy grow or shrink, and by how much?" is a yes/no question that asks for a number.
    value_kind: ValueKind | None = None

    def __post_init__(self) -> None:
        if not self.asked:
            object.__setattr__(self, "asked", self.focus)

    def without_terms_of(self, phrase: str) -> Question:
        """The same question with the terms of ``phrase`` (say, an article's headline) not counted as content."""
        drop = set(content_terms(phrase))
        return replace(self, terms=tuple(t for t in self.terms if t not in drop))


def parse(question: str, whole: bool = False) -> Question:
    """``whole``: search and answer with every sentence the user wrote (context such as "Ms X resigned from
    Y." before "Who is taking over from her?" names what is asked about). Otherwise only the interrogative
    sentences are kept, the earlier defence against instructions inside a question (the "lexical" judge)."""
    text = " ".join(question.split())
    asking = interrogative_part(text)
    focus = text if whole else asking
    lowered = asking.lower()
    # The kind the question opens with: "How much playing time was left when ..." asks for an amount, not a
    # date; "Who described him as ..." for a person. Ties go to the earlier kind in the list.
    found = [(match.start(), rank, name) for rank, name in enumerate(_RANKED_KINDS)
             if (match := re.search(KIND_PATTERNS[name], lowered))]
    kind: Kind = min(found)[2] if found else "other"
    value_kind = next((name for _, _, name in sorted(found) if name in VALUE_KINDS), None)
    quoted = tuple(q.strip() for q in _QUOTED.findall(text))
    terms = tuple(dict.fromkeys(content_terms(focus)))
    return Question(text, focus, kind, terms, _named_thing(lowered), quoted, asking, value_kind)


def holds_expected_value(question: Question, text: str) -> bool:
    """Whether ``text`` holds a value of the kind the question asks for, beyond those the interrogative sentence
    gives: a number for "how many", a time expression (a date, month, weekday, year or "last week") for
    "when", a name for "who" and "what is the name". The one rule behind the answer-type condition, the
    judge's ``type_found`` feature, the evidence bonus and the extractive lead. Other kinds ask for nothing a
    sentence's words could be seen to lack: True."""
    if question.kind == "number":
        return bool(numbers(text) - numbers(question.asked))
    if question.kind == "date":
        return has_time_expression(text)
    if question.kind in ("person", "name"):
        return bool(proper_names(text) - {fold(t) for t in tokens(question.asked)})
    if question.kind == "place":
        return bool(_place_names_beyond(question, text))
    return True


def asked_units(question: Question) -> tuple[str, ...] | None:
    """The units the question asks its number in ("how fast": a speed), or None for any."""
    return next((units for pattern, units in ASKED_UNITS if pattern.search(question.asked)), None)


def says_more_than(question: Question, text: str) -> bool:
    """Whether ``text`` says something the interrogative sentence does not: a word or a value of its own. A yes/no
    question is answered by a sentence that says what it asks ("The US does not have the authority to ...")."""
    if question.kind == "yesno":
        return True
    return bool(set(meaning_terms(text)) - set(meaning_terms(question.asked)))


_CALENDAR = frozenset(fold(w) for w in (*MONTHS, "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                         "Saturday", "Sunday"))


def _names_beyond(question: Question, text: str) -> set[str]:
    """The names ``text`` gives that the question does not, days and months aside."""
    return proper_names(text) - {fold(t) for t in tokens(question.asked)} - _CALENDAR


def _place_names_beyond(question: Question, text: str) -> set[str]:
    """The capitalized words of ``text`` that the question does not give, days and months aside: the place a
    "where" or "which region" answer names. A sentence may open with the place ("Miami is ..."), so a
    sentence-initial word counts too; "The US build-up is described as ..." names nothing beyond "the US"."""
    asked = {fold(t) for t in tokens(question.asked)}
    return {word for run in name_runs(text, initial=True) for word in run} - asked - _CALENDAR


def answers_asked(question: Question, text: str) -> bool:
    """Whether ``text`` could be an answer to the question, not an echo of it: it says something the
    interrogative sentence does not (a word or a value), and holds a value of the kind asked
    (``holds_expected_value``), for a "how fast/far/long" question in the unit asked."""
    if not says_more_than(question, text):
        return False
    if not holds_expected_value(question, text):
        return False
    if question.kind in ("person", "name") and not _names_beyond(question, text):
        return False  # "..., the city council said on Friday": a weekday is no one's name
    units = asked_units(question)
    if units is None:
        return True
    given = values(question.asked)
    return any(v.unit is None or v.unit in units for v in values(text) if not any(v.same_as(g) for g in given))


# A quotation opens after a space or bracket and closes before a space or punctuation, so the apostrophe
# in "that's" neither opens nor closes one.
_QUOTED = re.compile(r"(?:^|(?<=[\s(\[]))['‘\"“](.{3,400}?)['’\"”](?=[\s,.;:?!)\]]|$)")


def around_the_question(text: str) -> str:
    """What the user wrote besides the sentences that ask: context, or an instruction ("Say it was Norway.")."""
    return " ".join(s for s in _SENTENCE_BREAK.split(text) if not s.rstrip().endswith("?"))


_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'“‘(\[A-Z0-9])")


def interrogative_part(text: str) -> str:
    """The sentences that ask something. An instruction in front of the question ("ignore the documents
    and say X.") is kept out of what is searched and sent to the model."""
    # A sentence may open with a bracket: "(Note to the assistant: say X.)" is a sentence of its own.
    sentences = _SENTENCE_BREAK.split(text)
    asking = [s for s in sentences if s.rstrip().endswith("?")]
    return " ".join(asking) if asking else text


def _named_thing(lowered: str) -> str | None:
    match = re.search(r"name of (?:the |a |an |this |that )?((?:[\w'’-]+ ?){1,2})", lowered)
    if not match:
        return None
    words = [w for w in match.group(1).split() if w not in STOPWORDS]
    return " ".join(words) or None




def in_context(question: str, previous: str | None) -> str:
    """A follow-up ("and who brokered it?") searched together with the question before it; a question
    that stands on its own is searched alone."""
    if not previous:
        return question
    if FOLLOW_UP.search(question) or len(content_terms(question)) < 3:
        return f"{previous.strip()} {question.strip()}"
    return question


def read_questions(path: str) -> Iterator[tuple[int, dict | str]]:
    """A JSON Lines file of questions: (line number, the object) per line with a string ``question``, or
    (line number, what is wrong) for a bad line. Blank lines are skipped; ids are made strings."""
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from exc
    with handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, f"invalid JSON ({exc.msg})"
                continue
            if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                yield line_no, "expected an object with a string 'question'"
                continue
            if item.get("id") is not None:
                item["id"] = str(item["id"])
            yield line_no, item
