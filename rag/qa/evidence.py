"""Evidence selection: the sentences of the retrieved passages that speak to the question, numbered.

A sentence's relevance mixes meaning and wording: the cosine similarity of its embedding to the
question's, and the share of the question's content terms it contains (quoted phrases and names in a
question are often the whole point). Selection keeps several articles in view, so that disagreeing
sources are both seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from rag.index.catalog import IndexReader, SentenceRecord
from rag.qa.question import VALUE_KINDS, Question, holds_expected_value
from rag.qa.retrieval import Passage, spread_over_articles
from rag.text import content_terms, fold

DENSE_WEIGHT = 0.5
LEXICAL_WEIGHT = 0.5
# A sentence that holds the kind of thing asked for (a date for "when", a number for "how many")
# is worth more than an equally similar one that does not.
ANSWER_TYPE_BONUS = 0.1
# The evidence "nearly as relevant as the best" (its score at least this share of the best one's): where the
# answer-type condition looks for a value, the judge's ``type_found`` feature too (its fitted weight assumes
# this share: change it only with ``rag calibrate``), and where an extractive answer may take its lead.
CLOSE_TO_BEST = 0.8


@dataclass(frozen=True)
class Evidence:
    n: int
    sentence: SentenceRecord
    title: str
    score: float
    dense: float
    coverage: float

    @property
    def doc(self) -> str:
        return self.sentence.doc

    @property
    def text(self) -> str:
        return self.sentence.text


def coverage(weights: dict[str, float], text: str) -> float:
    """Share of the question's term weight (IDF) that ``text`` contains: rare words count most."""
    total = sum(weights.values())
    if not total:
        return 0.0
    present = set(content_terms(text))
    return sum(w for term, w in weights.items() if term in present) / total


def nearly_as_relevant(evidence: Sequence[Evidence]) -> list[Evidence]:
    """The evidence scoring at least ``CLOSE_TO_BEST`` of the best score, in the order given."""
    best = max((e.score for e in evidence), default=0.0)
    return [e for e in evidence if e.score >= CLOSE_TO_BEST * best]


def score_sentences(
    question: Question, query_vector: np.ndarray, passages: list[Passage], reader: IndexReader
) -> list[Evidence]:
    """Every sentence of the passages, scored, best first (unnumbered: ``n`` is 0)."""
    weights = reader.idf(question.terms)
    seen: set[tuple[str, int]] = set()
    seen_texts: set[str] = set()
    scored = []
    for passage in passages:
        for sentence in reader.sentences_in(passage.chunk):
            key = (sentence.doc, sentence.start)
            # The same sentence in two copies of a story is one piece of evidence (the better-ranked copy's).
            text_key = " ".join(fold(sentence.text).split())
            if key in seen or text_key in seen_texts:
                continue
            seen.add(key)
            seen_texts.add(text_key)
            dense = float(np.dot(sentence.vector, query_vector))
            cover = coverage(weights, sentence.text)
            score = DENSE_WEIGHT * dense + LEXICAL_WEIGHT * cover
            if cover > 0 and question.kind in VALUE_KINDS and holds_expected_value(question, sentence.text):
                score += ANSWER_TYPE_BONUS
            scored.append(Evidence(0, sentence, passage.chunk.title, score, dense, cover))
    scored.sort(key=lambda e: (-e.score, e.doc, e.sentence.start))
    return scored


def score_one(question: Question, query_vector: np.ndarray, sentence: SentenceRecord, title: str,
              reader: IndexReader, n: int) -> Evidence:
    """One sentence scored as :func:`score_sentences` scores it, numbered ``n``."""
    dense = float(np.dot(sentence.vector, query_vector))
    cover = coverage(reader.idf(question.terms), sentence.text)
    return Evidence(n, sentence, title, DENSE_WEIGHT * dense + LEXICAL_WEIGHT * cover, dense, cover)


def select(scored: list[Evidence], limit: int, per_doc: int = 2) -> list[Evidence]:
    """The best ``limit`` sentences, at most ``per_doc`` from one article while others remain, numbered 1..n."""
    chosen = spread_over_articles(scored, per_doc)[:limit]
    chosen.sort(key=lambda e: -e.score)
    return [replace(e, n=i) for i, e in enumerate(chosen, start=1)]


# The best two sentences always go to the model: an answer often needs the sentence before or after the
# best match (who "the president" is, what "it" refers to), and it tends to score well below the best.
MIN_PROMPT_SENTENCES = 2


def for_prompt(chosen: list[Evidence], relevance: float, minimum: int = MIN_PROMPT_SENTENCES) -> list[Evidence]:
    """The selected sentences worth the model's reading time: those scoring at least ``relevance`` times the
    best one's score, and never fewer than ``minimum``; order and numbers kept. On two CPU cores every
    prompt token costs the user 25-50 ms, and sentences far below the best rarely hold the answer
    (``relevance`` 0 keeps them all)."""
    if not chosen:
        return []
    cutoff = relevance * max(e.score for e in chosen)
    return [e for i, e in enumerate(chosen) if i < minimum or e.score >= cutoff]
