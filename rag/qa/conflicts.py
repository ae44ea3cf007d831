"""Disagreement between sources: where relevant evidence from different articles gives different values
for what the question asks (a date, a number, the wording of a quotation, a label).

Values are extracted by the kind of answer the question expects, only from evidence sentences that are
about the question (close to the best one's relevance). Two values conflict when one article states the
first and not the second while another states the second and not the first; an article that mentions
both (two dates for two events, say) is no evidence of disagreement.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from itertools import combinations
from typing import TypeVar

from rag.qa.evidence import Evidence
from rag.qa.lexicon import HOW_MUCH_MONEY, ODDS_ASKED, SHARE_ASKED, TITLES, WORDED
from rag.qa.question import Question
from rag.text import (
    MONTH_PATTERN,
    MONTHS,
    STOPWORDS,
    content_terms,
    double_quote_matches,
    fold,
    has_time_expression,
    name_runs,
    quantity_matches,
    stem,
    tokens,
    without_possessives,
)
from rag.text import values as stated_values

RELATIVE_RELEVANCE = 0.6
ALIGNED_SIMILARITY = 0.6
MAX_DIFFERENT_WORDS = 6
MIN_COVERAGE = 0.2
# An article's answer may come from a sentence less relevant than the best, but not from one about something else.
ARTICLE_RELEVANCE = 0.5
MAX_QUOTE_WORDS = 8
# Two reports of one quantity (an early and a later toll, a revised estimate) differ by a fraction of it; amounts
# further apart than this factor are different quantities that share a unit ("140,000 people" killed, "two
# million people" thrown into poverty). Chosen on the news fit set (extractive): see docs/notes.
MAX_REVISION_FACTOR = 3.0
# An article stands for a value only when it names at least this share of the question's names that the article
# naming most of them names (it is about the same subject). Chosen on the news fit set (extractive): see docs/notes.
SUBJECT_NAMED = 2 / 3

T = TypeVar("T")

_MONTH_RE = rf"({MONTH_PATTERN})\.?"
_DATE_PATTERNS = [
    re.compile(rf"\b{_MONTH_RE}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!\s*(?:,\s*)?\d{{3}})?"),
    re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_RE}\b"),
]


@dataclass(frozen=True)
class ConflictValue:
    value: str
    evidence: tuple[int, ...]  # evidence numbers that state this value


@dataclass(frozen=True)
class Conflict:
    about: str
    values: tuple[ConflictValue, ...]


def detect(question: Question, evidence: list[Evidence], article_text: Callable[[str], str] | None = None
           ) -> list[Conflict]:
    """The disagreement between articles over what ``question`` asks, if any. ``article_text``: an article's whole
    text by its id, to keep only articles about the question's subject (without it, every article stands)."""
    if not evidence:
        return []
    top = max(e.score for e in evidence)
    if article_text is not None:
        on_subject = _about_the_subject(question, evidence, article_text)
        evidence = [e for e in evidence if e.doc in on_subject]
    relevant = [e for e in evidence if e.score >= RELATIVE_RELEVANCE * top and e.coverage >= MIN_COVERAGE]
    values = (_disagreeing(_article_answers(question, evidence, top))
              or _disagreeing(_asked_quantity(question, _typed_values(question, relevant)))
              or _disagreeing(_aligned_differences(question, relevant)))
    if not values:
        return []
    about = question.focus.rstrip("?").strip()
    return [Conflict(about, tuple(values))]


def _about_the_subject(question: Question, evidence: list[Evidence], article_text: Callable[[str], str]) -> set[str]:
    """The articles among ``evidence`` about what the question names: each names at least ``SUBJECT_NAMED`` of the
    question's names that the article naming most of them names. Two amounts of jobs cut, one by Oracle and one
    by another firm, are no disagreement about Oracle's cuts. A name of several words is named by all its words
    or by its initials ("United States" by "US")."""
    docs = {e.doc for e in evidence}
    names = name_runs(without_possessives(question.asked))
    if not names:
        return docs
    named = {}
    for doc in docs:
        words = set(tokens(without_possessives(article_text(doc))))
        named[doc] = sum(set(name) <= words or (len(name) > 1 and "".join(w[0] for w in name) in words)
                         for name in names)
    most = max(named.values())
    return {doc for doc, n in named.items() if n >= SUBJECT_NAMED * most}


def _span(words: list[str], start: int, end: int) -> str:
    return " ".join(words[start:end]).strip(" ,.;:()\"“”")


def _typed_values(question: Question, relevant: list[Evidence]) -> dict[str, tuple[str, list[Evidence]]]:
    """Values of the kind the question asks for, with the evidence stating each."""
    if question.kind == "label":
        return _differing_modifiers(question, relevant)
    extract = {"date": _dates, "number": _numbers_of(question), "quote": _quotes(question),
               "name": _names_of(question)}.get(question.kind)
    if extract is None:
        return {}
    stated: dict[str, tuple[str, list[Evidence]]] = {}
    for e in relevant:
        for key, shown in extract(e.text):
            stated.setdefault(key, (shown, []))[1].append(e)
    return _merge_contained(stated) if question.kind == "quote" else stated


def _article_answers(question: Question, evidence: list[Evidence], top: float
                     ) -> dict[str, tuple[str, list[Evidence]]]:
    """The value each article gives: from each article, the most relevant sentence that holds a value of the
    kind asked for (a number, a date), however little of the question's wording it repeats ("only three
    minutes left to play" answers "How much playing time was left when ..."). Pairs of articles whose values
    differ are the disagreement."""
    found = {"date": _dates, "number": _numbers_of(question)}.get(question.value_kind or "")
    if found is None:
        return {}
    values_in = [(e, found(e.text)) for e in evidence]
    # Where the evidence states amounts of the quantity asked about (jobs, for "how many jobs"), an article's
    # answer is its most relevant sentence stating one, not one that gives another amount.
    strict = any(_asked_quantity(question, dict.fromkeys(k for k, _ in values), strict=True) for _, values in values_in)
    best: dict[str, tuple[Evidence, list[tuple[str, str]]]] = {}
    for e, values in sorted(values_in, key=lambda pair: -pair[0].score):
        asked = _asked_quantity(question, dict.fromkeys(k for k, _ in values), strict=strict)
        kept = [(k, shown) for k, shown in values if k in asked]
        if e.doc not in best and e.score >= ARTICLE_RELEVANCE * top and kept:
            best[e.doc] = (e, kept)
    stated: dict[str, tuple[str, list[Evidence]]] = {}
    for e, kept in best.values():
        for key, shown in kept:
            stated.setdefault(key, (shown, []))[1].append(e)
    return stated


def _aligned_differences(question: Question, relevant: list[Evidence]) -> dict[str, tuple[str, list[Evidence]]]:
    """Two articles telling the same sentence with different words in one place (a syndicated copy with an
    edited fact: "played in Tampa, Florida" / "played in Glendale, Arizona"): the differing words are the
    values. Only for nearly identical sentences, and only where the words differ in meaning."""
    asked = set(question.terms)
    holds_value = {"number": quantity_matches, "date": has_time_expression}.get(question.value_kind or "")
    stated: dict[str, tuple[str, list[Evidence]]] = {}
    for a, b in combinations(relevant, 2):
        if a.doc == b.doc:
            continue
        words_a, words_b = a.text.split(), b.text.split()
        matcher = SequenceMatcher(a=[fold(w) for w in words_a], b=[fold(w) for w in words_b], autojunk=False)
        if matcher.ratio() < ALIGNED_SIMILARITY:
            continue
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag != "replace" or not (i2 - i1 <= MAX_DIFFERENT_WORDS and j2 - j1 <= MAX_DIFFERENT_WORDS):
                continue
            spans = [(_span(words_a, i1, i2), a), (_span(words_b, j1, j2), b)]
            if any(not set(content_terms(text)) - asked for text, _ in spans):
                continue
            if holds_value is not None and not all(holds_value(text) for text, _ in spans):
                # Asked for an amount (or a date), two copies disagree where they give different amounts, not
                # where one says "General Motors of the US is" and the other "GM had".
                continue
            if question.kind not in {"quote", "label"} and not _same_kind_of_fact(*(text for text, _ in spans)):
                # Copies edited in wording ("before losing" / "eventual champion") are not reports of two facts.
                continue
            for text, item in spans:
                entry = stated.setdefault(f"span:{' '.join(fold(text).split())}", (text, []))
                if item not in entry[1]:
                    entry[1].append(item)
    return stated


_ORDINAL = re.compile(r"\b(?:\d+(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|"
                      r"eleventh|twelfth)\b", re.IGNORECASE)


def _holds_a_fact(text: str) -> bool:
    """A span that states something two reports can give differently: an amount, an ordinal, a date or time, or
    a name (a title such as "Mr" alone is none)."""
    if quantity_matches(text) or _ORDINAL.search(text) or has_time_expression(text):
        return True
    return any(w[:1].isupper() and fold(w).strip(".") not in TITLES for w in _WORDS.findall(text)
               if fold(w) not in STOPWORDS)


def _same_kind_of_fact(a: str, b: str) -> bool:
    """Two differing spans that could be one fact reported two ways: each holds a fact, and neither is more than
    twice as long as the other (a word swapped for a word, a place for a place)."""
    long, short = sorted((len(a.split()), len(b.split())), reverse=True)
    return _holds_a_fact(a) and _holds_a_fact(b) and long <= 2 * short


def _disagreeing(stated: dict[str, tuple[str, list[Evidence]]]) -> list[ConflictValue]:
    docs_of = {key: {e.doc for e in items} for key, (_, items) in stated.items()}
    keys: set[str] = set()
    for a, b in combinations(sorted(stated), 2):
        if docs_of[a] - docs_of[b] and docs_of[b] - docs_of[a] and _comparable(a, b):
            keys.update((a, b))
    # By the first sentence stating each value, then by value: a set's order changes from process to process.
    ordered = sorted(keys, key=lambda k: (min(e.n for e in stated[k][1]), k))
    return [ConflictValue(stated[k][0], tuple(sorted({e.n for e in stated[k][1]}))) for k in ordered]


def _comparable(a: str, b: str) -> bool:
    # Numbers only disagree when they count the same thing, and are close enough to be two reports of it.
    if a.startswith("number:") and b.startswith("number:"):
        (value_a, unit_a), (value_b, unit_b) = (k.removeprefix("number:").split("|", 1) for k in (a, b))
        low, high = sorted((abs(float(value_a)), abs(float(value_b))))
        return unit_a == unit_b and low > 0 and high / low <= MAX_REVISION_FACTOR
    return True


_HOW_MANY = re.compile(r"\bhow many ([a-z][\w-]*)")


def _counted_unit(question: Question) -> str | None:
    """What a "how many X" question counts: X, stemmed."""
    match = _HOW_MANY.search(question.asked.lower())
    return stem(match.group(1)) if match and match.group(1) not in STOPWORDS else None


def _asked_quantity(question: Question, stated: dict[str, T], strict: bool = False) -> dict[str, T]:
    """Of ``stated`` (keyed ``number:value|unit``, ``date:...``), the amounts of the quantity the question asks
    about. "How much" of money: sums of money only (a share in per cent is not a price). "How many X": amounts
    of X, where there are any (the question asks about jobs, not the deal's value in dollars), else all of them
    (``strict``: none). "What proportion": percentages only; odds: odds only. Keys that are not amounts pass."""
    if SHARE_ASKED.search(question.asked.lower()):
        return {k: v for k, v in stated.items() if not k.startswith("number:") or k.endswith("|percent")}
    if ODDS_ASKED.search(question.asked.lower()):
        return {k: v for k, v in stated.items() if not k.startswith("number:") or k.endswith("|odds")}
    if HOW_MUCH_MONEY.search(question.asked.lower()):
        money = {f"|{unit}" for unit in _MONEY_OR_SHARE - {"percent"}}
        return {k: v for k, v in stated.items() if not k.startswith("number:") or k[k.index("|"):] in money}
    unit = _counted_unit(question)
    if unit is None:
        return {} if strict else stated
    counted = {k: v for k, v in stated.items() if k.startswith("number:") and k.endswith(f"|{unit}")}
    return counted if counted or strict else stated


def _dates(text: str) -> list[tuple[str, str]]:
    found = []
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            groups = match.groups()
            month_text, day = (groups[0], groups[1]) if not groups[0].isdigit() else (groups[1], groups[0])
            month = _month_number(month_text)
            if month and 1 <= int(day) <= 31:
                found.append((f"date:{month}-{int(day)}", match.group().strip()))
    return found


def _month_number(name: str) -> int | None:
    name = name.lower().rstrip(".")
    for i, month in enumerate(MONTHS, start=1):
        if month.lower().startswith(name) and len(name) >= 3:
            return i
    return None


_YEAR = re.compile(r"(?:19|20)\d\d")
_RANGE_AFTER = re.compile(r"\s*(?:to|-|–)\s*\d")
_RANGE_BEFORE = re.compile(r"\d\s*(?:to|-|–)\s*$")
_FRACTION_AFTER = re.compile(r"/([1-9]\d?)\b")
# The units (``rag.text.values``) that make a number an amount of money or a share, whatever follows it.
_MONEY_OR_SHARE = frozenset({"usd", "gbp", "eur", "jpy", "cny", "inr", "aud", "cad", "hkd", "brl", "percent"})


def _numbers_of(question: Question) -> Callable[[str], list[tuple[str, str]]]:
    """The number extractor for ``question``: what a "how many X" question counts is the unit of an amount
    followed by X within a few words ("17.2 million new shares" counts shares)."""
    counted = _counted_unit(question)
    return lambda text: _numbers(text, counted)


def _numbers(text: str, counted: str | None = None) -> list[tuple[str, str]]:
    """Numbers with what they count, however written ("£4.4bn", "two minutes"): the currency before them, a
    per cent after them, else the first meaningful word after them ("12 warships", "100,000 Americans"). A
    number in words counts only the word right after it ("two minutes", not "one of the")."""
    found = []
    stated = stated_values(text)
    for quantity, match in quantity_matches(text):
        end = match.end()
        if _YEAR.fullmatch(match.group()):
            continue  # "the 2003 World Cup": a year is a date, not a count
        if _RANGE_AFTER.match(text, end) or _RANGE_BEFORE.search(text, 0, match.start()):
            continue  # "18 to 24 year olds": the ends of a range are no answer
        if text[max(0, match.start() - 1) : match.start()] == "/":
            continue  # the lower half of "6/4", read with the upper half
        fraction = _FRACTION_AFTER.match(text, end) if match.group("digits") else None
        if fraction:
            # Odds ("the 6/4 favourite"): one value, the ratio, shown as written.
            value = quantity.value / int(fraction.group(1))
            found.append((f"number:{value:g}|odds", text[match.start() : fraction.end()]))
            continue
        # Currency and per cent as the one normalisation reads them ("US$3bn", "3 billion dollars", "5 per cent").
        amount = next((v for v in stated if v.start <= match.start() < v.end), None)
        money = amount is not None and amount.unit in _MONEY_OR_SHARE
        if money and amount is not None:
            unit_name, shown_end = amount.unit, max(end, amount.end)
        else:
            following = list(re.finditer(r"[A-Za-z][\w-]*", text[end : end + 40]))[:3]
            if match.group("digits") is None:
                following = following[:1]
                if quantity.value == 1:
                    continue  # "one" is as often a pronoun as a count
            unit = next((w for w in following if counted and stem(w.group().lower()) == counted),
                        next((w for w in following if w.group().lower() not in STOPWORDS), None))
            if unit is None:
                continue
            unit_name, shown_end = stem(unit.group().lower()), end + unit.end()
        shown = text[(amount.start if money and amount is not None else match.start()) : shown_end].strip()
        found.append((f"number:{quantity.value:g}|{unit_name}", shown))
    return found


_NAMED_HEAD = re.compile(r"\bname of (?:the |a |an |this |that )?((?:[\w'’-]+ ){0,3}?[\w'’-]+?)"
                         r"(?= that\b| which\b| who\b| whose\b| where\b| in\b| for\b| of\b|,|\?|$)")


def _names_of(question: Question) -> Callable[[str], list[tuple[str, str]]]:
    """For "what is the name of the West End musical that ...": the name written right after the thing asked
    about ("West End musical Bombay Dreams", "musical, Bollywood Dreams"), when the question does not give it."""
    head = _NAMED_HEAD.search(question.asked)
    if head is None:
        return lambda text: []
    noun = head.group(1).split()[-1]
    pattern = re.compile(rf"\b(?i:{re.escape(noun)})s?,?\s+(?:(?i:called|named)\s+)?((?:[A-Z][\w’'-]*\s?){{1,4}})")
    asked = {fold(t) for t in tokens(question.asked)}

    def extract(text: str) -> list[tuple[str, str]]:
        found = []
        for match in pattern.finditer(text):
            name = match.group(1).strip()
            words = [fold(w) for w in name.split()]
            if not set(words) <= asked:
                found.append((f"name:{' '.join(words)}", name))
        return found

    return extract


_WORDED_ASKED = re.compile(rf"\b(?:what|which) ({WORDED})\b", re.IGNORECASE)


def _quotes(question: Question):
    """Short quotations that share a word with the question, or that come right after the thing a "what slogan"
    question asks for ('the slogan "Britain forward not back"'): the wording of the thing asked about."""
    asked = set(question.terms)
    thing = _WORDED_ASKED.search(question.asked)
    # Right after it: 'slogan "X"', 'slogan, "X"', 'slogan will be: "X"' (not 'called the slogan a "tired idea"').
    after_thing = re.compile(rf"\b{thing.group(1)}s?\s*(?:(?:will|would|is|was|to)\s+be|is|was|reads?)?\s*[,:]?\s*"
                             r"[\"“]\s*$", re.IGNORECASE) if thing else None

    def extract(text: str) -> list[tuple[str, str]]:
        found = []
        for match in double_quote_matches(text, 2, 300):
            quoted = match.group(1).strip().rstrip(",.;:!?").strip()
            if asked & set(content_terms(quoted)) or (
                    after_thing is not None and after_thing.search(text, 0, match.start() + 1)):
                found.append((f"quote:{' '.join(fold(quoted).split())}", quoted))
        return found

    return extract


def _merge_contained(stated: dict[str, tuple[str, list[Evidence]]]) -> dict[str, tuple[str, list[Evidence]]]:
    """A long quotation that contains a short one states the short one: "... completely closed" is the
    "completely closed" wording. Quotations longer than a phrase that contain no other are statements,
    not wordings, and are left out."""
    keys = sorted(stated, key=len)
    merged: dict[str, tuple[str, list[Evidence]]] = {}
    for key in keys:
        shown, items = stated[key]
        phrase = key.split(":", 1)[1]
        target = next((k for k in merged if k.split(":", 1)[1] in phrase), None)
        if target is not None:
            merged[target][1].extend(e for e in items if e not in merged[target][1])
        elif len(phrase.split()) <= MAX_QUOTE_WORDS:
            merged[key] = (shown, list(items))
    return merged


_WORDS = re.compile(r"[A-Za-z][\w’'-]*")


def _differing_modifiers(question: Question, relevant: list[Evidence]) -> dict[str, tuple[str, list[Evidence]]]:
    """Labels: the same head phrase with a different qualifier in different articles
    ("foreign terrorist organization" / "international terrorist organization")."""
    asked = set(question.terms)
    stated: dict[str, tuple[str, list[Evidence]]] = {}
    for a, b in combinations(relevant, 2):
        if a.doc == b.doc:
            continue
        words_a, words_b = _WORDS.findall(a.text), _WORDS.findall(b.text)
        for n in (3, 2):
            for head in _shared_ngrams(words_a, words_b, n):
                if any(stem(w) in asked for w in head.split()):
                    continue
                for item, words in ((a, words_a), (b, words_b)):
                    for modifier in _modifiers(words, head, n):
                        phrase = f"{modifier} {head}"
                        entry = stated.setdefault(f"label:{phrase}", (phrase, []))
                        if item not in entry[1]:
                            entry[1].append(item)
    # Keep only heads that carry two different qualifiers.
    heads: dict[str, set[str]] = {}
    for key in stated:
        modifier, head = key.split(":", 1)[1].split(" ", 1)
        heads.setdefault(head, set()).add(modifier)
    return {k: v for k, v in stated.items() if len(heads[k.split(":", 1)[1].split(" ", 1)[1]]) >= 2}


def _shared_ngrams(a: list[str], b: list[str], n: int) -> set[str]:
    def grams(words: list[str]) -> set[str]:
        lowered = [w.lower() for w in words]
        return {
            " ".join(lowered[i : i + n]) for i in range(len(lowered) - n + 1)
            if all(w not in STOPWORDS and w.islower() for w in words[i : i + n])
        }

    return grams(a) & grams(b)


def _modifiers(words: list[str], head: str, n: int) -> list[str]:
    lowered = [w.lower() for w in words]
    found = []
    for i in range(1, len(lowered) - n + 1):
        if " ".join(lowered[i : i + n]) == head:
            before = words[i - 1]
            if before.islower() and before not in STOPWORDS and len(before) > 2:
                found.append(before)
    return found
