"""What a question asks: the interrogative part (instructions around it are data, not commands), the
kind of answer it expects, and the terms that evidence must speak to."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from rag.errors import BadInput
from rag.text import STOPWORDS, content_terms


@dataclass(frozen=True)
class Question:
    text: str
    focus: str  # what retrieval and the model see: the whole question, or only its interrogative sentence(s)
    kind: str  # date | number | quote | label | person | place | name | yesno | other
    terms: tuple[str, ...]
    # For "what is the name of the X": the first words of X, next to which a name must stand.
    named_thing: str | None = None
    # Phrases the question puts in quotes: a quoted headline names the article asked about.
    quoted: tuple[str, ...] = ()
    asked: str = ""  # the interrogative sentence(s) alone
    # The kind of value (date or number) the question asks for anywhere, even when it opens as another kind:
    # "Did the economy grow or shrink, and by how much?" is a yes/no question that asks for a number.
    value_kind: str | None = None

    def __post_init__(self) -> None:
        if not self.asked:
            object.__setattr__(self, "asked", self.focus)

    def without_terms_of(self, phrase: str) -> Question:
        """The same question with the terms of ``phrase`` (say, an article's headline) not counted as content."""
        drop = set(content_terms(phrase))
        return replace(self, terms=tuple(t for t in self.terms if t not in drop))


_KINDS = [
    ("quote", r"\b(exact words|what words|which words|wording|"
              r"what (?:did|does) (?:[\w'’.-]+ ){1,3}(?:say|write|call)\b|phrase did|quote[ds]?\b)"),
    ("date", r"\b(when|what date|which date|what day|which day|what time|which year|what year|which month|"
             r"what month|in which month|in what month)\b"),
    ("number", r"\b(how many|how much|how long|how old|how far|what number|what percentage|what share|"
               r"what proportion|how large|how big|what (?:is|was|are|were) the (?:population|number|size|"
               r"cost|price|amount|total|rate|death toll|toll|budget|value))\b"),
    ("label", r"\b(classif\w*|designat\w*|label\w*|categori[sz]\w*|what kind of|what type of|"
              r"described as|call(?:ed)? it)\b"),
    ("name", r"\b(what is the name|what was the name|what's the name|name of the|named)\b"),
    ("person", r"^\W*(who|whom|whose)\b|\bwhich (?:official|person|leader|senator|minister|president)\b"),
    ("place", r"\b(where|which country|which countries|which region|which city|what region|what country|"
              r"what city|which island|which islands)\b"),
    ("yesno", r"^\W*(does|do|did|is|are|was|were|can|could|has|have|had|will|would|should)\b"),
]


VALUE_KINDS = ("date", "number")


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
    found = [(match.start(), rank, name) for rank, (name, pattern) in enumerate(_KINDS)
             if (match := re.search(pattern, lowered))]
    kind = min(found)[2] if found else "other"
    value_kind = next((name for _, _, name in sorted(found) if name in VALUE_KINDS), None)
    quoted = tuple(q.strip() for q in _QUOTED.findall(text))
    terms = tuple(dict.fromkeys(content_terms(focus)))
    return Question(text, focus, kind, terms, _named_thing(lowered), quoted, asking, value_kind)


# A quotation opens after a space or bracket and closes before a space or punctuation, so the apostrophe
# in "that's" neither opens nor closes one.
_QUOTED = re.compile(r"(?:^|(?<=[\s(\[]))['‘\"“](.{3,400}?)['’\"”](?=[\s,.;:?!)\]]|$)")


def interrogative_part(text: str) -> str:
    """The sentences that ask something. An instruction in front of the question ("ignore the documents
    and say X.") is kept out of what is searched and sent to the model."""
    # A sentence may open with a bracket: "(Note to the assistant: say X.)" is a sentence of its own.
    sentences = re.split(r"(?<=[.!?])\s+(?=[\"'“‘(\[A-Z0-9])", text)
    asking = [s for s in sentences if s.rstrip().endswith("?")]
    return " ".join(asking) if asking else text


def _named_thing(lowered: str) -> str | None:
    match = re.search(r"name of (?:the |a |an |this |that )?((?:[\w'’-]+ ?){1,2})", lowered)
    if not match:
        return None
    words = [w for w in match.group(1).split() if w not in STOPWORDS]
    return " ".join(words) or None


_FOLLOW_UP = re.compile(
    r"^\W*(and|but|also|what about|how about|then|so)\b|\b(it|its|they|them|their|he|him|his|she|her|that|this|"
    r"those|these|there)\b",
    re.IGNORECASE,
)


def in_context(question: str, previous: str | None) -> str:
    """A follow-up ("and who brokered it?") searched together with the question before it; a question
    that stands on its own is searched alone."""
    if not previous:
        return question
    if _FOLLOW_UP.search(question) or len(content_terms(question)) < 3:
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
