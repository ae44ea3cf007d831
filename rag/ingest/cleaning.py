"""Decide which parts of an article's text are its prose, without rewriting the text.

Web pages copied as text carry chrome: widgets ("17.1 C", "Delhi"), calls to action ("Fill out my online
form."), empty bylines ("Published:"), link lists ("Related articles", "spot_img"). None of it is prose: it is
made of short lines that are not sentences. The rule here is structural, not a list of strings: a line is
prose when it is a run of words that reads as at least one full sentence. Everything else (chrome, but also
headlines and section headings) is left out of the index. Offsets always refer to the original text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import MONTH_PATTERN

_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
# Sentence-final punctuation, optionally followed by closing quotes or brackets.
_ENDS_LIKE_SENTENCE = re.compile(r"[.!?…][\"'”’»)\]]*$")
MIN_PROSE_WORDS = 8
LONG_LINE_WORDS = 25
_DATE = re.compile(
    rf"\b(?:\d{{4}}-\d{{2}}-\d{{2}}|(?:{MONTH_PATTERN})\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}|"
    rf"\d{{1,2}} (?:{MONTH_PATTERN})\.? \d{{4}})\b"
)


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    words: int
    prose: bool


def _raw_lines(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in re.finditer(r"[^\n\r]+", text):
        raw = match.group()
        stripped = raw.strip()
        if stripped:
            start = match.start() + (len(raw) - len(raw.lstrip()))
            spans.append((start, start + len(stripped)))
    return spans


def _wrap_width(text: str, spans: list[tuple[int, int]]) -> int | None:
    """The width a hard-wrapped text was wrapped at, else None: no line is longer than it (at most 120
    characters) and most lines with words come within 70% of it."""
    lengths = [b - a for a, b in spans if len(_WORD.findall(text[a:b])) >= 5]
    if len(lengths) < 5:
        return None
    width = max(lengths)
    full = sum(length >= 0.7 * width for length in lengths)
    return width if width <= 120 and full >= 0.6 * len(lengths) else None


def _title_case(line: str) -> bool:
    long_words = [w for w in _WORD.findall(line) if len(w) >= 4]
    return len(long_words) >= 2 and sum(w[0].isupper() for w in long_words) >= 0.6 * len(long_words)


def _continues(text: str, previous_line: tuple[int, int], line: tuple[int, int], width: int | None) -> bool:
    """Whether ``line`` continues the paragraph whose last line is ``previous_line`` (a soft wrap)."""
    between = text[previous_line[1] : line[0]]
    if between.count("\n") + between.replace("\r\n", "").count("\r") > 1:
        return False  # a blank line
    before = text[previous_line[0] : previous_line[1]]
    if _title_case(before):
        return False
    if width is not None and previous_line[1] - previous_line[0] >= 0.7 * width:
        return True
    return not _ENDS_LIKE_SENTENCE.search(before) and text[line[0]].islower()


def lines(text: str) -> list[Line]:
    """Paragraphs of ``text`` as stripped spans, each classified as prose or not.

    A paragraph is usually one line. Hard-wrapped text (lines cut at a fixed width) and a line that
    breaks mid-sentence before a lower-case word are joined into one paragraph, so that a sentence
    spanning a line break stays one sentence.
    """
    spans = _raw_lines(text)
    width = _wrap_width(text, spans)
    merged: list[tuple[int, int]] = []
    last_line: tuple[int, int] | None = None
    for span in spans:
        if merged and last_line is not None and _continues(text, last_line, span, width):
            merged[-1] = (merged[-1][0], span[1])
        else:
            merged.append(span)
        last_line = span
    result = []
    for start, end in merged:
        paragraph = text[start:end]
        words = len(_WORD.findall(paragraph))
        result.append(Line(start, end, words, _looks_like_prose(paragraph, words)))
    return result


def _looks_like_prose(line: str, words: int) -> bool:
    if words >= LONG_LINE_WORDS:
        return True
    return words >= MIN_PROSE_WORDS and bool(_ENDS_LIKE_SENTENCE.search(line))


def prose_blocks(text: str) -> list[tuple[int, int]]:
    """Maximal runs of prose lines separated only by whitespace, as (start, end) offsets.

    A block never spans a non-prose line, so a chunk built inside a block cannot contain chrome.
    Short texts with no sentence-length line (a one-line record, a caption) fall back to every
    line that ends like a sentence, then to every line, so that no real content is dropped.
    """
    all_lines = lines(text)
    chosen = [ln for ln in all_lines if ln.prose]
    if not chosen:
        chosen = [ln for ln in all_lines if _ENDS_LIKE_SENTENCE.search(text[ln.start : ln.end])]
    if not chosen:
        chosen = [ln for ln in all_lines if ln.words > 0]
    chosen_ids = {id(ln) for ln in chosen}
    blocks: list[tuple[int, int]] = []
    previous_chosen = False
    for ln in all_lines:
        keep = id(ln) in chosen_ids
        if keep and previous_chosen and blocks:
            blocks[-1] = (blocks[-1][0], ln.end)
        elif keep:
            blocks.append((ln.start, ln.end))
        previous_chosen = keep
    return blocks


def find_title(text: str) -> str | None:
    """The headline: the first heading-like line before the first prose line (or a Markdown heading)."""
    for ln in lines(text):
        line = text[ln.start : ln.end]
        if ln.prose:
            return None
        heading = line.lstrip("#").strip()
        if 3 <= ln.words <= 30 and not heading.endswith((".", ":", "!")):
            return heading
    return None


def find_date(text: str, head_chars: int = 600) -> str | None:
    """A dateline in the first few hundred characters ("Published: March 3, 2025", "2025-03-03")."""
    match = _DATE.search(text[:head_chars])
    return match.group() if match else None
