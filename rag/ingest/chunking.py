"""Sentence-aware chunking with exact character offsets into the original text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.errors import SettingsError
from rag.ingest import cleaning

# A candidate boundary: sentence punctuation, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)")
_NEXT_STARTS_SENTENCE = re.compile(r"\s+[\"'“‘«(\[]?[A-Z0-9À-ÖØ-Þ]")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sen", "rep", "gov", "gen", "col", "lt", "sgt", "capt", "st", "jr", "sr",
    "vs", "etc", "inc", "ltd", "co", "corp", "no", "vol", "fig", "approx", "est", "dept", "univ", "pres",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "ft", "mt",
}
# After a quotation, "..." Maduro declared / she said: the attribution belongs to the same sentence.
_ATTRIBUTION = re.compile(
    r"\s+(?:[A-Z][\w.’'-]*\s+){1,4}(?:said|says|declared|wrote|writes|told|added|asked|stated|insisted|"
    r"argued|warned|replied|announced)\b"
)
# Initialisms such as "U.S." or "D.C.", and single initials such as "J." in "J. Smith".
_INITIALISM = re.compile(r"(?:\b[A-Za-z]\.)+$")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    sentences: tuple[Sentence, ...]


def split_sentences(text: str, blocks: list[tuple[int, int]]) -> list[list[Sentence]]:
    """Sentences of each block, as spans trimmed of surrounding whitespace. Paragraphs (see
    :func:`rag.ingest.cleaning.lines`) are hard boundaries; a soft line break inside a paragraph is not."""
    paragraphs = [(p.start, p.end) for p in cleaning.lines(text)]
    result = []
    for block_start, block_end in blocks:
        sentences: list[Sentence] = []
        for start, end in paragraphs:
            start, end = max(start, block_start), min(end, block_end)
            if start < end:
                sentences.extend(_split_line(text, start, end))
        result.append(sentences)
    return result


def _split_line(text: str, start: int, end: int) -> list[Sentence]:
    pieces = []
    cursor = start
    segment = text[start:end]
    for match in _BOUNDARY.finditer(segment):
        cut = start + match.end()
        if not _NEXT_STARTS_SENTENCE.match(text, cut, end) or _is_abbreviation(text, cursor, start + match.start()):
            continue
        if match.group()[-1] in "\"”’»" and _ATTRIBUTION.match(text, cut, end):
            continue
        pieces.append((cursor, cut))
        cursor = cut
    pieces.append((cursor, end))
    sentences = []
    for a, b in pieces:
        piece = text[a:b]
        stripped = piece.strip()
        if not stripped:
            continue
        a += len(piece) - len(piece.lstrip())
        sentences.append(Sentence(a, a + len(stripped)))
    return sentences


def _is_abbreviation(text: str, sentence_start: int, dot: int) -> bool:
    if text[dot] != ".":
        return False
    before = text[sentence_start : dot + 1]
    token = before.split()[-1] if before.split() else ""
    if _INITIALISM.search(token):
        return True
    return token[:-1].lower().strip("\"'“‘(") in _ABBREVIATIONS


def make_chunks(sentence_blocks: list[list[Sentence]], max_chars: int, overlap: int) -> list[Chunk]:
    """Group consecutive sentences of one block into chunks of about ``max_chars`` characters.

    A chunk always holds whole sentences; consecutive chunks of a block share ``overlap`` sentences.
    A sentence longer than ``max_chars`` becomes a chunk of its own.
    """
    if max_chars < 1 or overlap < 0:
        raise SettingsError("max_chars must be positive and overlap non-negative")
    chunks = []
    for sentences in sentence_blocks:
        i = 0
        while i < len(sentences):
            j = i + 1
            while j < len(sentences) and sentences[j].end - sentences[i].start <= max_chars:
                j += 1
            group = tuple(sentences[i:j])
            chunks.append(Chunk(group[0].start, group[-1].end, group))
            if j >= len(sentences):
                break
            i = max(j - overlap, i + 1)
    return chunks
