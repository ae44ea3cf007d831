"""Gather: a question's passages and numbered evidence, with everything decided about them before a model runs.

``prepare`` searches the index (dense and BM25, fused), picks the evidence sentences the model will read,
screens out documents that address the assistant with orders, finds candidate disagreements between sources
and the relevance floor's verdict. What differs between the two mechanisms (the calibrated judge, the lexical
rules) is read off the :class:`~rag.qa.policy.Policy` given, never branched on here by name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING

from rag.config import Config
from rag.errors import BadQuestion
from rag.qa import answerability, conflicts, evidence
from rag.qa.answers import SearchedPassage
from rag.qa.evidence import Evidence
from rag.qa.hostile import addresses_assistant
from rag.qa.lexicon import REFERRING
from rag.qa.policy import Policy
from rag.qa.question import Question, holds_expected_value, in_context, parse
from rag.qa.retrieval import Passage, Retriever
from rag.text import fold, proper_names, tokens

if TYPE_CHECKING:
    from rag.index.catalog import IndexReader
    from rag.models.embedding import Embedder

MAX_QUESTION_CHARS = 2000
# Under passage reading, at most this many best sentences of articles not read whole are added to the evidence.
OTHER_ARTICLES = 3
# An antecedent sentence added for a "who" question ranks just below the sentence that refers back to it.
ANTECEDENT_SCORE = 0.99


@dataclass(frozen=True)
class HostileSource:
    doc: str
    title: str
    order: str  # the passage that addresses the assistant
    claim: Evidence | None  # its sentence most relevant to the question, numbered after the evidence


@dataclass(frozen=True)
class Prepared:
    """Everything about a question that comes before the model: what was searched, the numbered evidence,
    whether it answers the question, where sources disagree, and which evidence the model reads."""

    question: Question
    search_text: str  # the question, or a follow-up together with the question before it
    passages: list[Passage]
    evidence: list[Evidence]
    prompt_evidence: list[Evidence]  # the part of ``evidence`` the model reads and may cite
    verdict: answerability.Verdict
    conflicts: list[conflicts.Conflict]
    retrieve_ms: float
    # Retrieved documents that address the assistant with orders (``rag.qa.hostile``): kept out of the evidence.
    hostile: tuple[HostileSource, ...] = ()
    # The whole text of each article the evidence comes from: a claim about someone the question names must
    # cite an article that names them.
    articles: dict[str, str] = field(default_factory=dict)

    def searched(self) -> tuple[SearchedPassage, ...]:
        """The passages shown as searched, as every answer of this question carries them."""
        return tuple(SearchedPassage(p.chunk.doc, p.chunk.title, p.chunk.start, p.chunk.end, p.chunk.text,
                                     p.score, p.dense_score) for p in self.passages)


def clean_question(question: str) -> str:
    """The question as one line of printable text, or :class:`BadQuestion` naming what is wrong with it."""
    if not isinstance(question, str):
        raise BadQuestion("the question must be text")
    cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in question)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise BadQuestion("the question is empty")
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise BadQuestion(f"the question is {len(cleaned)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return cleaned


def prepare(text: str, config: Config, retriever: Retriever, embedder: Embedder, policy: Policy,
            k: int | None = None, context: str | None = None, section: str | None = None) -> Prepared:
    """Search, select and screen the evidence for a question (``k`` passages shown as searched); no model runs.
    Not thread-safe on its own: the Assistant calls it under its lock (the index and embedder are shared)."""
    k = k or config.k
    reader = retriever.reader
    started = time.perf_counter()
    question = parse(text, whole=policy.whole_question)
    search_text = in_context(question.focus, clean_question(context) if context else None)
    query_vector = embedder.embed_one(search_text)
    ranked = retriever.ranked(search_text, max(k, config.evidence_passages), query_vector, section)
    passages = retriever.select(ranked, k)
    # Near-duplicate copies stay in the evidence pool: a copy that changes a fact is a disagreement.
    pool = retriever.select(ranked, max(k, config.evidence_passages), collapse=False)
    scoped = _articles_named_in(question, reader)
    if scoped:
        question = question.without_terms_of(" ".join(reader.document(d).title for d in scoped))
        pool = [p for p in pool if p.doc in scoped] or pool
        pool += _other_chunks_of(scoped, pool, query_vector, reader)
        passages = [p for p in passages if p.doc in scoped] or pool[:k]
    scored = evidence.score_sentences(question, query_vector, pool, reader)
    orders = _orders_in({p.doc for p in pool}, reader) if policy.screens_hostile else {}
    scored_hostile = [e for e in scored if e.doc in orders]
    scored = [e for e in scored if e.doc not in orders]
    reads_passages = policy.reads_passages(config)
    if reads_passages:
        # A question that names an article reads that article's chunks closest to the question.
        candidates = sorted(pool, key=lambda p: -p.dense_score) if scoped else passages
        reading = [p for p in candidates if p.doc not in orders][: config.prompt_passages]
        chosen = _passage_evidence(question, query_vector, reading, scored, reader)
        # Other articles' best sentences stay in view, so that a disagreement between sources can be seen.
        best = max((e.score for e in chosen), default=0.0)
        read_docs = {p.doc for p in reading}
        others = [e for e in evidence.select(scored, config.evidence_sentences)
                  if e.doc not in read_docs and e.score >= config.prompt_relevance * best][:OTHER_ARTICLES]
        chosen += [replace(e, n=len(chosen) + i) for i, e in enumerate(others, start=1)]
    else:
        chosen = evidence.select(scored, config.evidence_sentences)
        chosen = _with_antecedent(question, chosen, reader)
    hostile = _hostile_sources(orders, scored_hostile, len(chosen), reader)
    verdict = answerability.RELEVANCE[policy.relevance](question, chosen, config.abstain_threshold)
    # Articles read whole by the disagreement check and the claims' check, each read from the store once.
    article_text = cache(reader.document_text)
    found = conflicts.detect(question, chosen, article_text) if verdict.answerable else []
    shown = (trimmed(question, chosen, config.prompt_sentence_share) if reads_passages
             else evidence.for_prompt(chosen, config.prompt_relevance))
    articles = ({doc: article_text(doc) for doc in {e.doc for e in shown}}
                if policy.reads_whole_articles else {})
    return Prepared(question, search_text, passages, chosen, shown, verdict, found,
                    (time.perf_counter() - started) * 1000, hostile, articles)


def rescored(items: list[Evidence], text: str, reader: IndexReader, embedder: Embedder) -> list[Evidence]:
    """The same evidence scored for ``text`` (the interrogative sentence alone), numbers kept."""
    question = parse(text, whole=True)
    vector = embedder.embed_one(text)
    return [evidence.score_one(question, vector, e.sentence, e.title, reader, e.n) for e in items]


def _passage_evidence(question: Question, query_vector, reading: list[Passage], scored: list[Evidence],
                      reader: IndexReader) -> list[Evidence]:
    """Every sentence of the passages the model reads, in reading order, numbered: the answer is often
    in the sentence next to the one that repeats the question's words, and a model reading isolated
    sentences cannot see it. Each keeps its relevance score, for the judge's features and extractive mode."""
    known = {(e.doc, e.sentence.start): e for e in scored}
    out: list[Evidence] = []
    seen: set[tuple[str, int]] = set()
    for passage in reading:
        for sentence in reader.sentences_in(passage.chunk):
            key = (sentence.doc, sentence.start)
            if key in seen:
                continue  # chunks of one article share a sentence
            seen.add(key)
            item = known.get(key) or evidence.score_one(question, query_vector, sentence, passage.chunk.title,
                                                        reader, 0)
            out.append(replace(item, n=len(out) + 1))
    return out


# The kinds whose value a sentence's words show (``holds_expected_value``): a sentence holding one is kept in a
# trimmed passage however it scores, since the answer often sits in a sentence that repeats few of the question's words.
_SHOWN_KINDS = ("number", "date", "person", "name", "place")


def trimmed(question: Question, sentences: list[Evidence], share: float) -> list[Evidence]:
    """What the model reads of the passages: their sentences that score at least ``share`` of the best, or share a
    word with the question and hold a value of the kind asked. Numbers are kept (the model sees "[1] [2] [5]"), so
    that a citation points at the same sentence for every step; only the model's reading is trimmed, not the
    evidence that disagreements and extractive answers are found in. ``share`` 0 keeps them all."""
    if share <= 0 or not sentences:
        return sentences
    best = max(e.score for e in sentences)
    kept = [e for e in sentences
            if e.score >= share * best
            or (e.coverage > 0 and question.kind in _SHOWN_KINDS and holds_expected_value(question, e.text))]
    return kept


def _orders_in(docs: set[str], reader: IndexReader) -> dict[str, str]:
    """The documents among ``docs`` that address the assistant, with the passage that does."""
    found = {}
    for doc in sorted(docs):
        order = addresses_assistant(reader.document_text(doc))
        if order:
            found[doc] = order
    return found


def _hostile_sources(orders: dict[str, str], scored: list[Evidence], numbered_after: int, reader: IndexReader
                     ) -> tuple[HostileSource, ...]:
    sources: list[HostileSource] = []
    for doc, order in orders.items():
        own = [e for e in scored if e.doc == doc and not addresses_assistant(e.text)]
        best = own[0] if own else None
        claim = None
        if best is not None:
            claim = replace(best, n=numbered_after + len(sources) + 1)
        sources.append(HostileSource(doc, reader.document(doc).title, order, claim))
    return tuple(sources)


def _articles_named_in(question: Question, reader: IndexReader) -> set[str]:
    """Articles whose headline the question quotes ("in the 'Sovereignty or Sanctuary' report")."""
    named = set()
    for phrase in question.quoted:
        if len(phrase.split()) >= 2:
            named.update(reader.documents_titled(phrase))
    return named


def _other_chunks_of(docs: set[str], have: list[Passage], query_vector, reader: IndexReader) -> list[Passage]:
    import numpy as np

    known = {p.chunk.id for p in have}
    ids = [i for d in sorted(docs) for i in reader.chunk_ids_of(d) if i not in known]
    records, vectors = reader.chunks(ids), reader.chunk_vectors(ids)
    return [Passage(records[i], 0.0, float(np.dot(vectors[i], query_vector))) for i in ids]


def _with_antecedent(question: Question, chosen: list[Evidence], reader: IndexReader) -> list[Evidence]:
    """For "who" questions: when the best sentence refers back to someone ("the US President wrote"),
    the sentence before it in the same article usually names them; add it as evidence."""
    if question.kind != "person" or not chosen or not refers_back(chosen[0].text, question):
        return chosen
    best = chosen[0]
    before, _ = reader.neighbours(best.sentence)
    if before is None or not names_someone_new(before.text, question):
        return chosen
    if any(e.sentence.id == before.id for e in chosen):
        return chosen
    extra = Evidence(len(chosen) + 1, before, best.title, best.score * ANTECEDENT_SCORE, best.dense, best.coverage)
    return chosen + [extra]


def refers_back(text: str, question: Question) -> bool:
    """The sentence points at someone named earlier ("the US President wrote") rather than naming them."""
    return bool(REFERRING.search(text)) or not names_someone_new(text, question)


def names_someone_new(text: str, question: Question) -> bool:
    """The sentence names someone the question does not."""
    return bool(proper_names(text) - {fold(t) for t in tokens(question.text)})
