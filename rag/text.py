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
    """The stemmed content words of ``normal_words``: each value one word with its unit ("1.55 billion euros"
    and "1.55bn euros" say the same, "two" and "2" too), British spellings, no titles or possessives; for
    comparing what a claim says with what its source says."""
    return [stem(w) for w in normal_words(text) if w not in STOPWORDS and len(w) > 1]


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


# --- one normalisation for comparing what sentences state -----------------------------------------------------
# Every check that compares a claim with its source (the necessary conditions, citations found for a claim, the
# verified tier, disagreements) reads values, units, spellings and names through these functions, so "$120
# million" and "$120m", "meters" and "metres", "Mr Demel" and "Herbert Demel" are compared as what they state.
# What is shown is never rewritten by them.

# American spellings read as the British ones (the archive's): whole words, and roots that take a suffix.
_SPELLING_WORDS = {
    "meter": "metre", "meters": "metres", "kilometer": "kilometre", "kilometers": "kilometres",
    "centimeter": "centimetre", "centimeters": "centimetres", "millimeter": "millimetre",
    "millimeters": "millimetres", "liter": "litre", "liters": "litres", "center": "centre", "centers": "centres",
    "centered": "centred", "theater": "theatre", "theaters": "theatres", "fiber": "fibre", "fibers": "fibres",
    "defense": "defence", "offense": "offence", "offenses": "offences", "license": "licence",
    "licenses": "licences", "pretense": "pretence", "catalog": "catalogue", "catalogs": "catalogues",
    "dialog": "dialogue", "program": "programme", "programs": "programmes", "aluminum": "aluminium",
    "jewelry": "jewellery", "gray": "grey", "plow": "plough", "mold": "mould", "skeptic": "sceptic",
    "skeptical": "sceptical", "maneuver": "manoeuvre", "airplane": "aeroplane", "airplanes": "aeroplanes",
    "tire": "tyre", "tires": "tyres", "cozy": "cosy", "mustache": "moustache", "pajamas": "pyjamas",
    "percent": "per cent",
}
_OUR_ROOTS = ("color", "favor", "honor", "labor", "neighbor", "behavior", "harbor", "humor", "flavor", "rumor",
              "vapor", "endeavor", "armor", "valor", "vigor", "odor", "parlor", "splendor", "savior", "tumor")
_DOUBLED_L = re.compile(r"^(travel|cancel|label|model|fuel|signal|channel|tunnel|counsel|level|marvel|total|"
                        r"dial|duel|equal|jewel|quarrel|rival|shovel|snorkel|tranquil)(ed|ing|er|ers)$")
_IZE = re.compile(r"^(\w{3,}?)(y|i)z(e|es|ed|ing|ation|ations|er|ers)$")


def british(word: str) -> str:
    """A folded word in its British spelling ("meters" → "metres", "organized" → "organised", "honors" →
    "honours"); a word with one spelling is returned as it is."""
    if word in _SPELLING_WORDS:
        return _SPELLING_WORDS[word]
    for root in _OUR_ROOTS:
        if word.startswith(root) and word[len(root):] in ("", "s", "ed", "ing", "able", "ite", "ites", "ful",
                                                          "ers", "er", "hood", "hoods", "ably", "al"):
            return root[:-2] + "our" + word[len(root):]
    doubled = _DOUBLED_L.match(word)
    if doubled:
        return doubled.group(1) + "l" + doubled.group(2)
    ize = _IZE.match(word)
    if ize and len(word) > 5 and not word.startswith(("size", "prize", "seize", "capsize", "citizen")):
        return f"{ize.group(1)}{ize.group(2)}s{ize.group(3)}"
    return word


# Titles and honorifics before a name: "Mr Demel" names Herbert Demel, so a title is never a name to find.
TITLES = frozenset("""mr mrs ms miss dr sir dame lord lady prof professor rev reverend mx""".split())

# Currencies, written before a number ("$", "US$", "£", "€") or after it ("dollars", "euros").
_CURRENCY_BEFORE = {"$": "usd", "us$": "usd", "us $": "usd", "£": "gbp", "€": "eur", "¥": "jpy", "a$": "aud",
                    "c$": "cad", "hk$": "hkd", "rs": "inr", "r$": "brl"}
_CURRENCY_BEFORE_PATTERN = re.compile(r"((?<![A-Za-z])(?:US\s?\$|HK\$|A\$|C\$|R\$|Rs\.?)|[$£€¥])\s?$",
                                      re.IGNORECASE)
# Units after a number, each with its normal name (abbreviations, plurals, American spellings).
_UNIT_WORDS: tuple[tuple[str, str], ...] = (
    (r"per\s?cent|percent|pc\b|%", "percent"),
    (r"(?:US\s)?dollars?|bucks", "usd"), (r"pounds? sterling|sterling", "gbp"), (r"euros?", "eur"),
    (r"yen", "jpy"), (r"yuan|renminbi", "cny"), (r"rupees?", "inr"),
    (r"km/h|kmh|kph|kilomet(?:re|er)s? (?:per|an) hour", "kilometre per hour"),
    (r"mph|miles? (?:per|an) hour", "mile per hour"),
    (r"kilomet(?:re|er)s?|km", "kilometre"), (r"centimet(?:re|er)s?|cm", "centimetre"),
    (r"millimet(?:re|er)s?|mm", "millimetre"), (r"met(?:re|er)s?", "metre"),
    (r"miles?", "mile"), (r"feet|foot|ft", "foot"), (r"inch(?:es)?|in\b", "inch"),
    (r"kilogram(?:me)?s?|kilos?|kg", "kilogram"), (r"tonnes?|tons?", "tonne"),
    (r"lit(?:re|er)s?", "litre"), (r"hours?|hrs?", "hour"), (r"minutes?|mins?", "minute"),
    (r"seconds?|secs?", "second"), (r"days?", "day"), (r"weeks?", "week"), (r"months?", "month"),
    (r"years?|yrs?", "year"),
)
_UNIT_AFTER = re.compile(r"^[\s-]?(?:(" + "|".join(f"(?:{p})" for p, _ in _UNIT_WORDS) + r"))(?![\w/])",
                         re.IGNORECASE)
# "m" after a number is a million with a currency ("£3m"), metres without one ("the 100m").
_METRES_OR_MILLION = "m"
# A time of a race or a clock: "14:32.93", "2:05:38", "1:02".
_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?\b")
_SECONDS = {"hour": 3600.0, "minute": 60.0, "second": 1.0}


@dataclass(frozen=True)
class Value:
    """What a number in a sentence states: its value (scale applied: "£3bn" is 3e9), the digits as written
    without their scale (3), and its unit in one normal name ("gbp", "usd", "percent", "metre", "second",
    "kilometre per hour") or None. A duration written in parts ("14 minutes 32.93 seconds", "14:32.93") is one
    value in seconds."""

    value: float
    bare: float
    unit: str | None
    start: int
    end: int

    def same_as(self, other: Value) -> bool:
        """The same value stated: equal values (or equal digits where one of them leaves its scale unsaid), in
        the same unit or with a unit left unsaid."""
        if self.unit is not None and other.unit is not None and self.unit != other.unit:
            return False
        if _close(self.value, other.value):
            return True
        return (_close(self.value, self.bare) or _close(other.value, other.bare)) and _close(self.bare, other.bare)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def values(text: str) -> list[Value]:
    """Every value ``text`` states, with its unit and currency normalised (``Value``)."""
    found: list[Value] = []
    taken: list[tuple[int, int]] = []
    for match in _CLOCK.finditer(text):
        a, b, c, fraction = match.groups()
        parts = [float(a), float(b)] + ([float(c)] if c else [])
        seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts))) + (float(f"0.{fraction}") if fraction
                                                                              else 0.0)
        found.append(Value(seconds, seconds, "second", match.start(), match.end()))
        taken.append(match.span())
    pending: Value | None = None  # a duration being written in parts ("14 minutes" ... "32.93 seconds")
    for quantity, match in quantity_matches(text):
        start, end = match.start(), match.end()
        if any(a <= start < b for a, b in taken):
            continue
        written = match.group()
        core_end = start + len(written.rstrip(_AROUND))
        unit = None
        window = text[max(0, start - 4):start]
        before = _CURRENCY_BEFORE_PATTERN.search(window)
        currency = _CURRENCY_BEFORE.get(re.sub(r"\s|\.", "", before.group(1)).lower()) if before else None
        if before:
            start -= len(window) - before.start()
        value, bare = quantity.value, quantity.bare
        after = _UNIT_AFTER.match(text[core_end:])
        if after:
            unit = next(name for pattern, name in _UNIT_WORDS if re.fullmatch(pattern, after.group(1), re.I))
            end = core_end + after.end()
        scale = (match.group("scale") or "").lower() if match.group("digits") else ""
        if scale == _METRES_OR_MILLION and currency is None and unit is None:
            # "the 100m": metres, unless something makes it money; both readings stay comparable by ``bare``.
            unit, value = "metre", bare
        unit = currency or unit
        if unit in _SECONDS:
            seconds = value * _SECONDS[unit]
            if pending is not None and text[pending.end:start].strip(" ,and") == "":
                total = pending.value + seconds
                found[-1] = pending = Value(total, total, "second", pending.start, end)
                continue
            pending = Value(seconds, seconds, "second", start, end)
            found.append(pending)
            continue
        pending = None
        found.append(Value(value, bare, unit, start, end))
    return sorted(found, key=lambda v: v.start)


_AROUND = " \t\n-"


def values_stated(claim: str, sources: str, given: str = "") -> bool:
    """Whether every value the claim states is one the sources (or ``given``, the question) state: the same
    value in the same unit, however either writes it."""
    stated = values(sources) + values(given)
    return all(any(v.same_as(s) for s in stated) for v in values(claim))


def normal_words(text: str) -> list[str]:
    """The words of ``text`` for comparing what it says: folded, possessives and titles dropped, each word in
    its British spelling, each value one word with its unit ("$120m" and "120 million dollars" are both
    "q120000000 usd")."""
    out, last = [], 0
    for value in values(text):
        rounded = round(value.value, 6)
        written = str(int(rounded)) if rounded == int(rounded) else repr(rounded).replace(".", "d")
        out += [text[last:value.start], f" q{written} {(value.unit or '').replace(' ', '')} "]
        last = value.end
    plain = "".join(out) + text[last:]
    return [british(t) for t in tokens(without_possessives(plain)) if t not in TITLES]


def name_words(text: str) -> set[str]:
    """The words of the names ``text`` states (``proper_names``), titles dropped and possessives removed:
    "Mr Demel's" gives {"demel"}; a currency's letters ("US$120m") are part of its value, not a name."""
    return {british(n) for n in proper_names(without_possessives(without_values(text))) if n not in TITLES}


def without_values(text: str) -> str:
    """``text`` with each value (``values``) blanked out, its length kept."""
    for value in reversed(values(text)):
        text = text[:value.start] + " " * (value.end - value.start) + text[value.end:]
    return text
