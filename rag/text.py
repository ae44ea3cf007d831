"""Small text utilities shared by evidence selection, conflict detection and verification."""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not of off on once only or other our ours ourselves out over own same she should so some such than that
    the their theirs them themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself many much yes
    according evidence article articles report reports reported said say says tell told coverage sources source
    described describe""".split()
)
ORDINAL_WORDS = frozenset("half first second third fourth fifth once twice".split())
NUMBER_WORDS = frozenset(
    """one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen
    eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion
    trillion dozen dozens""".split()
) | ORDINAL_WORDS
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
# A word that may be a name ("O'Neill", "U.S.", "Jean-Pierre"), and what stands before a sentence's first word.
_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
_SENTENCE_START = re.compile(r"[.!?:]\s*[\"'“‘]?\s*$|^\s*[\"'“‘(\[]\s*$")
# A citation marker, "[3]", and a run of them: the judge, the UI and the evals find markers through these.
MARKER = re.compile(r"\[(\d+)\]")
MARKER_RUN = re.compile(r"((?:\s*\[\d+\])+)")  # "[1] [2]", kept whole by re.split


def fold(text: str) -> str:
    """Lower case, accents removed, curly quotes straightened: for matching, never for display."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"').lower()


@lru_cache(maxsize=8)
def _double_quotes(shortest: int, longest: int | None) -> re.Pattern[str]:
    return re.compile(rf"[“\"]([^”\"]{{{shortest},{'' if longest is None else longest}}})[”\"]")


def double_quoted(text: str, shortest: int, longest: int | None = None) -> list[str]:
    """What ``text`` puts in double quotes (straight or curly), between ``shortest`` and ``longest`` characters."""
    return _double_quotes(shortest, longest).findall(text)


def double_quote_matches(text: str, shortest: int, longest: int | None = None) -> list[re.Match[str]]:
    """``double_quoted`` with where each quotation is: ``match.group(1)`` is what is quoted."""
    return list(_double_quotes(shortest, longest).finditer(text))


def tokens(text: str) -> list[str]:
    return [t.replace("'", "") for t in _TOKEN.findall(fold(text))]


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return english_stemmer().stemWord(word)


_per_thread = threading.local()


def english_stemmer() -> Any:
    """PyStemmer's English stemmer, built once per thread: its objects are not thread-safe, and building one for
    every query cost more than the stemming. The one stemmer of the lexical index and of these helpers."""
    stemmer = getattr(_per_thread, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _per_thread.stemmer = Stemmer.Stemmer("english")
    return stemmer


def content_terms(text: str) -> list[str]:
    """Stemmed words that carry meaning: no stop words, no possessive 's."""
    result = []
    for token in tokens(text):
        if token.endswith("s") and len(token) > 3 and token[:-1] + "'s" in fold(text):
            token = token[:-1]
        if token not in STOPWORDS and len(token) > 1:
            result.append(stem(token))
    return result


def numbers(text: str) -> set[str]:
    """Numerals and number words in ``text``, normalized (digits with separators removed)."""
    found = {m.replace(",", "") for m in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}
    found |= {t for t in tokens(text) if t in NUMBER_WORDS}
    return found


# A name's word ends before a full stop, a closing single quote ("'Ring of Fire'") or a dangling hyphen.
_NOT_IN_NAME = ".'’-"


def name_runs(text: str, initial: bool = False) -> list[tuple[str, ...]]:
    """Runs of adjacent capitalized words, folded ("Arthur Hailey's novels" → ("arthur", "hailey's")); a run
    of one sentence-initial word is no name unless ``initial``."""
    runs: list[list[str]] = []
    starts: list[bool] = []
    previous_end: int | None = None
    in_run = False
    for match in _WORD.finditer(text):
        word = match.group().rstrip(_NOT_IN_NAME)
        before = text[previous_end : match.start()] if previous_end is not None else ""
        first = previous_end is None
        previous_end = match.start() + len(word)  # a full stop after the word belongs to what follows
        if not (word[:1].isupper() and fold(word) not in STOPWORDS):
            in_run = False
            continue
        if in_run and before.strip() == "":
            runs[-1].append(fold(word))
        else:
            runs.append([fold(word)])
            starts.append(first or bool(_SENTENCE_START.search(before)))
        in_run = True
    return [tuple(run) for run, at_start in zip(runs, starts, strict=True) if len(run) > 1 or not at_start or initial]


def proper_names(text: str) -> set[str]:
    """Capitalized words that are not merely sentence-initial, folded: the names a claim asserts."""
    names = set()
    for sentence_start, match in _capitalized(text):
        if not sentence_start:
            names.add(fold(match))
    return names


def _capitalized(text: str):
    previous_end = None
    for match in _WORD.finditer(text):
        word = match.group().rstrip(_NOT_IN_NAME)
        before = text[previous_end : match.start()] if previous_end is not None else ""
        at_start = previous_end is None or bool(_SENTENCE_START.search(before))
        previous_end = match.end()
        if word[:1].isupper() and fold(word) not in STOPWORDS:
            yield at_start, word


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
# Full month names, then their common abbreviations: a regular-expression alternation.
MONTH_PATTERN = "|".join(MONTHS) + "|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"

_TIME = re.compile(
    rf"\b({'|'.join(MONTHS)}|"
    r"Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|\d{4}|\d{1,2}/\d{1,2}|yesterday|today|"
    r"tomorrow|last (?:week|month|year)|this (?:week|month|year)|ago|earlier|later)\b",
    re.IGNORECASE,
)


def has_time_expression(text: str) -> bool:
    """A date, month, weekday, year or relative time ("last week")."""
    return bool(_TIME.search(text))


_SPECIFIC_DATE = re.compile(
    rf"\b(?:(?:{'|'.join(MONTHS)})\.? \d{{1,2}}\b|\d{{1,2}} (?:{'|'.join(MONTHS)})\b|\d{{4}}-\d{{2}}-\d{{2}})",
    re.IGNORECASE,
)


def has_specific_date(text: str) -> bool:
    """A calendar date with its day ("November 21", "21 November", "2025-11-21"), not just a month or weekday."""
    return bool(_SPECIFIC_DATE.search(text))


# --- quantities: the same number however it is written ("1.55bn" = "1.55 billion", "two" = "2") -------------
_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_SCALES = {"hundred": 100, "thousand": 1_000, "k": 1_000, "m": 1_000_000, "mn": 1_000_000, "million": 1_000_000,
           "bn": 1_000_000_000, "billion": 1_000_000_000, "tn": 10**12, "trillion": 10**12, "dozen": 12}
_QUANTITY = re.compile(
    r"(?P<digits>\d[\d,]*(?:\.\d+)?)(?:\s?(?P<scale>bn|mn|m|k|tn)\b|\s+(?P<word>hundred|thousand|million|billion|"
    r"trillion)\b)?"
    r"|(?P<words>\b(?:(?:" + "|".join(list(_UNITS) + list(_TENS)) + r")(?:[\s-]+(?:and\s+)?)?)+"
    r"(?:(?:hundred|thousand|million|billion|trillion)\b)?)"
    r"|\b(?:a\s+)?(?P<dozen>dozen)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Quantity:
    """A number as written: its value with the scale it was given ("1.55bn": 1.55e9) and without (1.55)."""

    value: float
    bare: float


def quantities(text: str) -> list[Quantity]:
    """Every number in ``text``, in digits or words, with its scale ("bn", "million") applied."""
    return [q for q, _ in quantity_matches(text)]


def quantity_matches(text: str) -> list[tuple[Quantity, re.Match]]:
    """Each number in ``text`` with the match that wrote it (``match.group("digits")`` is None for words)."""
    found = []
    for m in _QUANTITY.finditer(text):
        if m.group("digits"):
            bare = float(m.group("digits").replace(",", ""))
            scale = (m.group("scale") or m.group("word") or "").lower()
            found.append((Quantity(bare * _SCALES.get(scale, 1), bare), m))
        elif m.group("words"):
            value = _words_value(m.group("words"))
            if value is not None:
                found.append((Quantity(value, value), m))
        elif m.group("dozen"):
            found.append((Quantity(12, 12), m))
    return found


def _words_value(words: str) -> float | None:
    total, current = 0.0, 0.0
    seen = False
    for word in re.findall(r"[a-z]+", words.lower()):
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        elif word in _SCALES:
            total += (current or 1) * _SCALES[word]
            current = 0.0
        else:
            continue
        seen = True
    return total + current if seen else None


def meaning_terms(text: str) -> list[str]:
    """``content_terms`` with each number written as its value ("1.55 billion" and "1.55bn" are one term,
    "two" and "2" another), for comparing what a claim says with what its source says."""
    return content_terms(_with_values(text))


def _with_values(text: str) -> str:
    """``text`` with each number replaced by one word for its value ("1.55bn" → "q1550000000")."""
    out, last = [], 0
    for quantity, match in quantity_matches(text):
        value = round(quantity.value, 6)
        written = str(int(value)) if value == int(value) else repr(value).replace(".", "d")
        out += [text[last : match.start()], f" q{written} "]
        last = match.end()
    return "".join(out) + text[last:]


def quantities_stated(claim: str, sources: str) -> bool:
    """Whether every number the claim states is one the sources state: the same value, or the same digits
    with the scale left unsaid ("1.55" against "1.55bn")."""
    stated = quantities(sources)
    values = {round(q.value, 6) for q in stated}
    bares = {round(q.bare, 6) for q in stated}
    return all(round(q.value, 6) in values or (q.value == q.bare and round(q.bare, 6) in bares)
               for q in quantities(claim))


_POSSESSIVE = re.compile(r"(?<=\w)['’]s\b")


def without_possessives(text: str) -> str:
    """``text`` with possessive 's removed ("Becker's record" → "Becker record"), for matching names."""
    return _POSSESSIVE.sub("", text)
