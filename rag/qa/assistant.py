"""The Assistant: question → passages → evidence → (conflicts, answerability) → draft → verified answer.

It holds the loaded models and the open index, so one Assistant serves many questions. The language
model only ever sees the numbered evidence; whatever it writes is checked sentence by sentence against
the spans it cites (``verification``), and when nothing survives the answer is made of the evidence itself.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import MODES, Config
from rag.errors import BadQuestion
from rag.models.embedding import Embedder
from rag.qa import answerability, conflicts, evidence, verification
from rag.qa.answers import Answer, Citation, ReportedConflict, ReportedValue, SearchedPassage
from rag.qa.evidence import Evidence
from rag.qa.hostile import addresses_assistant
from rag.qa.judge import Judge, Judgement, calibrated_model
from rag.qa.judge import numbered as judge_numbered
from rag.qa.question import Question, in_context, parse
from rag.qa.retrieval import Passage, Retriever
from rag.text import fold, has_specific_date, has_time_expression, numbers, proper_names, tokens

if TYPE_CHECKING:
    from rag.models.llm import Generation  # the model module is imported only when a model is used

MAX_QUESTION_CHARS = 2000
EXTRACTIVE_SECOND_SENTENCE = 0.9
EXTRACTIVE_SAME_KIND = 0.8
# Under passage reading, at most this many best sentences of articles not read whole are added to the evidence.
OTHER_ARTICLES = 3


@dataclass(frozen=True)
class Event:
    """What :meth:`Assistant.stream` yields: ``status`` and ``token`` events, then one ``answer``."""

    kind: str
    text: str = ""
    answer: Answer | None = None


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


@dataclass(frozen=True)
class HostileSource:
    doc: str
    title: str
    order: str  # the passage that addresses the assistant
    claim: Evidence | None  # its sentence most relevant to the question, numbered after the evidence


@dataclass(frozen=True)
class Decision:
    """Whether to answer from the evidence, and why not."""

    answerable: bool
    reason: str
    judgement: Judgement | None  # the judge's answers decision, when it was asked
    judge_tokens: int


class Assistant:
    def __init__(self, config: Config | None = None, embedder: Embedder | None = None) -> None:
        self.config = config or Config.from_env()
        self.embedder = embedder or Embedder.for_config(self.config)
        self._retriever: Retriever | None = None
        self._generators: dict[str | None, object] = {}
        self._judges: dict[str | None, Judge] = {}
        # Guards what is loaded lazily and the index and embedding model (``prepare``, ``_rescored``); taken only
        # around work that does not yield, so a stream resumed on another thread, or left unfinished, holds
        # nothing. The language model needs no lock here: its own thread runs its work one job at a time.
        self._lock = threading.RLock()

    # --- loaded once ----------------------------------------------------------------------------------
    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None or self._retriever.reader.is_stale():
                self._retriever = Retriever.open(self.config, self.embedder)
            return self._retriever

    def generator(self, model: str | None = None):
        from rag.models.llm import Generator

        key = model or self.config.model_path
        with self._lock:
            if key not in self._generators:
                c = self.config
                self._generators[key] = Generator(key, c.n_ctx, c.n_threads, c.seed, c.max_new_tokens)
            return self._generators[key]

    def judge(self, model: str | None = None, with_model: bool = True) -> Judge:
        """The calibrated judge, using the language model ``model`` (loaded once) or, without one, its
        model-free fit (answerability only; see ``rag.qa.judge``)."""
        key = (model or self.config.model_path) if with_model else "<no model>"
        with self._lock:
            if key not in self._judges:
                generator = self.generator(model) if with_model else None
                # The coefficients weigh one model's log-odds: another model (SmolLM2 in tests, a GGUF of the
                # user's) is not asked until it is calibrated, and the judge decides from its cheap features.
                if generator is not None and generator.name != calibrated_model():
                    generator = None
                self._judges[key] = Judge(generator)
            return self._judges[key]

    def warm_up_generator(self, model: str | None = None) -> None:
        """Load the model and read its fixed instruction into the KV cache (a job on the model's thread, like
        every generation: llama.cpp is never run by two threads at once)."""
        self.generator(model).warm_up()

    # --- answering ------------------------------------------------------------------------------------
    def ask(self, question: str, id: str | None = None, mode: str | None = None, k: int | None = None,
            model: str | None = None, context: str | None = None, section: str | None = None) -> Answer:
        final = None
        for event in self.stream(question, id=id, mode=mode, k=k, model=model, context=context, section=section):
            if event.kind == "answer":
                final = event.answer
        assert final is not None
        return final

    def stream(self, question: str, id: str | None = None, mode: str | None = None, k: int | None = None,
               model: str | None = None, context: str | None = None, section: str | None = None
               ) -> Iterator[Event]:
        """Answer ``question``; ``context`` is the previous question of a conversation, used to search
        for a follow-up such as "and who brokered it?"; ``section`` limits the search to one section."""
        mode = mode or self.config.mode
        if mode not in MODES:
            raise BadQuestion(f"unknown mode '{mode}' (choose from {', '.join(MODES)})")
        text = _clean_question(question)
        yield Event("status", "searching the articles")
        # Loading models and the index happens once per process and is not part of any question's timings.
        with self._lock:
            _ = self.retriever, self.embedder.model
            if mode == "generative":
                self.generator(model)
        started = time.perf_counter()
        with self._lock:
            prepared = self.prepare(text, k, context, section)
        timings = {"retrieve_ms": prepared.retrieve_ms, "generate_ms": 0.0}
        # What every Answer of this question carries, abstention or not.
        common: dict[str, Any] = dict(question=question, id=id, mode=mode,
                                      searched=tuple(_searched(p) for p in prepared.passages))
        judged = self.config.judge == "model"
        if judged and prepared.verdict.answerable:
            yield Event("status", "checking that the evidence answers the question")
        judge_started = time.perf_counter()
        decision = self.decide(prepared, mode, model)
        judge = self.judge(model, with_model=mode == "generative") if judged and decision.answerable else None
        if judge is not None:
            prepared = replace(prepared, conflicts=self._confirmed_conflicts(prepared, judge))
        if decision.judgement is not None:
            timings["judge_ms"] = (time.perf_counter() - judge_started) * 1000
        judge_tokens = decision.judge_tokens
        if not decision.answerable:
            timings["total_ms"] = (time.perf_counter() - started) * 1000
            yield Event("answer", answer=_abstention(prepared, decision.reason, timings, None, common,
                                                     judge_tokens=judge_tokens))
            return
        claims: list[verification.VerifiedClaim] = []
        model_name = None
        prompt_tokens = 0
        if mode == "generative":
            yield Event("status", "writing the answer")
            generator = self.generator(model)
            model_name = generator.name
            draft = yield from self._drafted(generator, prepared.search_text, prepared, timings)
            prompt_tokens = draft.prompt_tokens
            if judge is not None:
                claims, tokens_read = self._judged(judge, draft, prepared, timings)
                judge_tokens += tokens_read
                if not claims and asks_apart_from_the_rest(prepared):
                    # Every sentence of the draft was refused, and the question came with other sentences (an
                    # instruction to say something, or context): the model may have followed those instead of
                    # the question. One rewrite answers the interrogative sentence alone, from the same evidence,
                    # and faces the same checks.
                    yield Event("status", "rewriting the answer to the question alone")
                    draft = yield from self._drafted(generator, prepared.question.asked, prepared, timings)
                    prompt_tokens += draft.prompt_tokens
                    claims, tokens_read = self._judged(judge, draft, prepared, timings)
                    judge_tokens += tokens_read
            else:
                claims = verification.verify(draft.text, prepared.prompt_evidence, self.config.support_threshold,
                                          prepared.question.terms, prepared.question.focus)
            claims = _name_the_person(prepared, claims)
            # The model read the evidence and found no answer: under the judge that is an abstention (its refusal
            # is a reading of meaning); under the lexical rules only when the evidence was marginal.
            if not claims and verification.is_refusal(draft.text) and \
                    (judged or prepared.verdict.best_score < self.config.confident_threshold):
                # Marginal evidence and the model, having read it, finds no answer: abstain.
                timings["total_ms"] = (time.perf_counter() - started) * 1000
                reason = "the closest passages do not answer the question"
                yield Event("answer", answer=_abstention(prepared, reason, timings, model_name, common,
                                                         prompt_tokens=draft.prompt_tokens))
                return
        if mode == "generative" and judged and not claims:
            # The model wrote an answer but the judge finds none of its sentences stated by the evidence: quoting
            # the nearest evidence instead answered the wrong question 13 times in 14 on the BBC dev set, so the
            # honest reply is that the articles do not (verifiably) say.
            timings["total_ms"] = (time.perf_counter() - started) * 1000
            reason = "no sentence of the drafted answer is stated by the passages it cites"
            yield Event("answer", answer=_abstention(prepared, reason, timings, model_name, common,
                                                     prompt_tokens=prompt_tokens, judge_tokens=judge_tokens))
            return
        if mode == "generative" and judge is not None and claims and not (prepared.conflicts or prepared.hostile):
            # The evidence as a whole was judged to answer, and each sentence to be stated by what it cites; the
            # cited sentences must also answer *this* question (not a near miss of it). Where sources disagree,
            # the disagreement is the answer and is shown whatever the model wrote beside it.
            gate_started = time.perf_counter()
            by_n = {e.n: e for e in prepared.evidence}
            cited = [by_n[n] for n in dict.fromkeys(n for c in claims for n in c.cited) if n in by_n]
            gate = judge.answered(prepared.question, cited, prepared.search_text)
            timings["judge_ms"] = timings.get("judge_ms", 0.0) + (time.perf_counter() - gate_started) * 1000
            if gate is not None:
                judge_tokens += gate.model_tokens
                if not gate.yes:
                    timings["total_ms"] = (time.perf_counter() - started) * 1000
                    reason = (f"the sentences the drafted answer cites do not state the answer to this question "
                              f"(judge {gate.probability:.2f} < {gate.threshold:.2f})")
                    yield Event("answer", answer=_abstention(prepared, reason, timings, model_name, common,
                                                             prompt_tokens=prompt_tokens, judge_tokens=judge_tokens))
                    return
        fallback = mode == "generative" and not claims
        if not claims:
            claims = self._extractive(prepared)
        answer_text, cited, reported = _compose(prepared, claims)
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        yield Event("answer", answer=Answer(
            answer=answer_text, abstained=False, citations=cited, conflicts=reported, timings=timings,
            model=model_name, prompt_tokens=prompt_tokens, fallback=fallback, judge_tokens=judge_tokens, **common))

    def _drafted(self, generator, question: str, prepared: Prepared, timings: dict
                 ) -> Generator[Event, None, Generation]:
        """Stream one draft answering ``question`` from the prepared evidence, token by token; returns the draft
        and adds its time to ``timings``."""
        started = time.perf_counter()
        draft = yield from _token_events(generator.stream(question, judge_numbered(prepared.prompt_evidence)))
        timings["generate_ms"] += (time.perf_counter() - started) * 1000
        return draft

    def _judged(self, judge: Judge, draft: Generation, prepared: Prepared, timings: dict
                ) -> tuple[list[verification.VerifiedClaim], int]:
        """The draft's sentences the judge finds stated, and the prompt tokens its checks read; adds their time
        to ``timings``."""
        started = time.perf_counter()
        claims, tokens_read = _judged_claims(judge, draft.text, prepared)
        timings["judge_ms"] = timings.get("judge_ms", 0.0) + (time.perf_counter() - started) * 1000
        return claims, tokens_read

    def prepare(self, text: str, k: int | None = None, context: str | None = None,
                section: str | None = None) -> Prepared:
        """Search, select and judge the evidence for a question (``k`` passages shown as searched); no
        model runs. Not thread-safe on its own: :meth:`stream` calls it under the assistant's lock."""
        k = k or self.config.k
        retriever = self.retriever
        started = time.perf_counter()
        judged = self.config.judge == "model"
        question = parse(text, whole=judged)
        search_text = in_context(question.focus, _clean_question(context) if context else None)
        query_vector = self.embedder.embed_one(search_text)
        ranked = retriever.ranked(search_text, max(k, self.config.evidence_passages), query_vector, section)
        passages = retriever.select(ranked, k)
        # Near-duplicate copies stay in the evidence pool: a copy that changes a fact is a disagreement.
        pool = retriever.select(ranked, max(k, self.config.evidence_passages), collapse=False)
        scoped = self._articles_named_in(question)
        if scoped:
            question = question.without_terms_of(" ".join(retriever.reader.document(d).title for d in scoped))
            pool = [p for p in pool if p.doc in scoped] or pool
            pool += self._other_chunks_of(scoped, pool, query_vector)
            passages = [p for p in passages if p.doc in scoped] or pool[:k]
        scored = evidence.score_sentences(question, query_vector, pool, retriever.reader)
        orders = self._orders_in({p.doc for p in pool}) if judged else {}
        scored_hostile = [e for e in scored if e.doc in orders]
        scored = [e for e in scored if e.doc not in orders]
        if judged and self.config.prompt_passages:
            # A question that names an article reads that article's chunks closest to the question.
            candidates = sorted(pool, key=lambda p: -p.dense_score) if scoped else passages
            reading = [p for p in candidates if p.doc not in orders][: self.config.prompt_passages]
            chosen = self._passage_evidence(question, query_vector, reading, scored)
            # Other articles' best sentences stay in view, so that a disagreement between sources can be seen.
            best = max((e.score for e in chosen), default=0.0)
            read_docs = {p.doc for p in reading}
            others = [e for e in evidence.select(scored, self.config.evidence_sentences)
                      if e.doc not in read_docs and e.score >= self.config.prompt_relevance * best][:OTHER_ARTICLES]
            chosen += [replace(e, n=len(chosen) + i) for i, e in enumerate(others, start=1)]
        else:
            chosen = evidence.select(scored, self.config.evidence_sentences)
            chosen = self._with_antecedent(question, chosen)
        hostile = _hostile_sources(orders, scored_hostile, len(chosen), retriever.reader)
        verdict = (answerability.relevant(chosen, self.config.abstain_threshold) if judged
                   else answerability.judge(question, chosen, self.config.abstain_threshold))
        found = conflicts.detect(question, chosen) if verdict.answerable else []
        if judged and self.config.prompt_passages:
            shown = list(chosen)
        else:
            shown = evidence.for_prompt(chosen, self.config.prompt_relevance)
        articles = {doc: retriever.reader.document_text(doc) for doc in {e.doc for e in shown}} if judged else {}
        return Prepared(question, search_text, passages, chosen, shown, verdict, found,
                        (time.perf_counter() - started) * 1000, hostile, articles)

    def decide(self, prepared: Prepared, mode: str, model: str | None = None) -> Decision:
        """Whether the prepared evidence answers the question: the relevance floor, then (under the model judge)
        the judge's ``answers`` decision, and the kind of thing asked for as a necessary condition. The one
        place this is decided, for answers and for the benchmark of the decision alone. Safe from any thread: the
        model's checks run on its own thread, and the re-scoring of the evidence under the assistant's lock."""
        if not prepared.verdict.answerable:
            return Decision(False, prepared.verdict.reason, None, 0)
        if self.config.judge != "model":
            return Decision(True, "", None, 0)
        judge = self.judge(model, with_model=mode == "generative")
        verdict = judge.answers(prepared.question, prepared.prompt_evidence, prepared.search_text)
        tokens = verdict.model_tokens
        if not verdict.yes and asks_apart_from_the_rest(prepared):
            # Sentences around the question (context, or an instruction) can confuse the check: the evidence
            # answers the question if it answers what the interrogative sentence asks.
            asked = prepared.question.asked
            alone = judge.answers(parse(asked, whole=True), self._rescored(prepared.prompt_evidence, asked), asked)
            tokens += alone.model_tokens
            verdict = max(verdict, alone, key=lambda v: v.probability)
        missing = answerability.missing_answer_type(prepared.question, prepared.prompt_evidence)
        if not verdict.yes or missing:
            reason = missing or (f"the closest passages do not state the answer (judge {verdict.probability:.2f}"
                                 f" < {verdict.threshold:.2f})")
            return Decision(False, reason, verdict, tokens)
        return Decision(True, "", verdict, tokens)

    def _rescored(self, items: list[Evidence], text: str) -> list[Evidence]:
        """The same evidence scored for ``text`` (the interrogative sentence alone), numbers kept."""
        question = parse(text, whole=True)
        with self._lock:
            vector = self.embedder.embed_one(text)
            reader = self.retriever.reader
            return [evidence.score_one(question, vector, e.sentence, e.title, reader, e.n) for e in items]

    def _passage_evidence(self, question: Question, query_vector, reading: list[Passage], scored: list[Evidence]
                          ) -> list[Evidence]:
        """Every sentence of the passages the model reads, in reading order, numbered: the answer is often
        in the sentence next to the one that repeats the question's words, and a model reading isolated
        sentences cannot see it. Each keeps its relevance score, for the judge's features and extractive mode."""
        reader = self.retriever.reader
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

    def _orders_in(self, docs: set[str]) -> dict[str, str]:
        """The documents among ``docs`` that address the assistant, with the passage that does."""
        reader = self.retriever.reader
        found = {}
        for doc in sorted(docs):
            order = addresses_assistant(reader.document_text(doc))
            if order:
                found[doc] = order
        return found

    def _confirmed_conflicts(self, prepared: Prepared, judge: Judge) -> list[conflicts.Conflict]:
        """The extractors' candidate disagreements that the judge confirms. When the question asks for wording
        (what exactly was said, how something was labelled), different words are the disagreement itself and
        the candidate stands; for values (dates, numbers, places, names) the judge reads what each source says
        the answer is and keeps the pair only if they differ. Without a model the candidates stand."""
        if judge.model is None or prepared.question.kind in {"quote", "label"}:
            return prepared.conflicts
        by_n = {e.n: e for e in prepared.evidence}
        shown = judge_numbered(prepared.prompt_evidence)
        kept = []
        for conflict in prepared.conflicts:
            first, second = _judged_pair(conflict, by_n)
            verdict = judge.disagree(prepared.search_text, (first, by_n[first].text), (second, by_n[second].text),
                                     shown)
            if verdict.yes:
                kept.append(conflict)
        return kept

    def _articles_named_in(self, question: Question) -> set[str]:
        """Articles whose headline the question quotes ("in the 'Sovereignty or Sanctuary' report")."""
        named = set()
        for phrase in question.quoted:
            if len(phrase.split()) >= 2:
                named.update(self.retriever.reader.documents_titled(phrase))
        return named

    def _other_chunks_of(self, docs: set[str], have: list[Passage], query_vector) -> list[Passage]:
        import numpy as np

        reader = self.retriever.reader
        known = {p.chunk.id for p in have}
        ids = [i for d in sorted(docs) for i in reader.chunk_ids_of(d) if i not in known]
        records, vectors = reader.chunks(ids), reader.chunk_vectors(ids)
        return [Passage(records[i], 0.0, float(np.dot(vectors[i], query_vector))) for i in ids]

    def _with_antecedent(self, question: Question, chosen: list[Evidence]) -> list[Evidence]:
        """For "who" questions: when the best sentence refers back to someone ("the US President wrote"),
        the sentence before it in the same article usually names them; add it as evidence."""
        if question.kind != "person" or not chosen or not _refers_back(chosen[0].text, question):
            return chosen
        best = chosen[0]
        before, _ = self.retriever.reader.neighbours(best.sentence)
        if before is None or not _names_someone_new(before.text, question):
            return chosen
        if any(e.sentence.id == before.id for e in chosen):
            return chosen
        extra = Evidence(len(chosen) + 1, before, best.title, best.score * 0.99, best.dense, best.coverage)
        return chosen + [extra]

    def _extractive(self, prepared: Prepared) -> list[verification.VerifiedClaim]:
        """The best evidence sentence, quoted, and the next one when it is nearly as relevant (from
        another article if one qualifies); for "who" questions, the sentence that names the person."""
        ranked = sorted(prepared.evidence, key=lambda e: -e.score)
        best = _best_of_the_expected_kind(prepared.question, ranked) or ranked[0]
        ranked = [best] + [e for e in ranked if e is not best]
        close = [e for e in ranked[1:] if e.score >= EXTRACTIVE_SECOND_SENTENCE * best.score]
        chosen = [best] + sorted(close, key=lambda e: e.doc == best.doc)[:1]
        if prepared.question.kind == "person" and _refers_back(best.text, prepared.question):
            naming = _naming_sentence_before(best, prepared)
            if naming is not None:
                chosen.insert(0, naming)
        return [verification.VerifiedClaim(_quoted(e.text), (e.n,), 1.0) for e in chosen]


def _token_events(tokens: Generator[str, None, Generation]) -> Generator[Event, None, Generation]:
    """Each piece of text the model writes as a ``token`` event; returns the finished generation. Closing this
    closes ``tokens`` (the model then stops at its next token)."""
    try:
        while True:
            try:
                token = next(tokens)
            except StopIteration as done:
                return done.value
            yield Event("token", token)
    finally:
        tokens.close()


def _judged_pair(conflict: conflicts.Conflict, by_n: dict[int, Evidence]) -> tuple[int, int]:
    """The two evidence sentences the judge compares: the first value's, and that of the first other value
    stated in another article (two values of one sentence are not two sources)."""
    first = conflict.values[0].evidence[0]
    for value in conflict.values[1:]:
        second = next((n for n in value.evidence if by_n[n].doc != by_n[first].doc), None)
        if second is not None:
            return first, second
    return first, conflict.values[1].evidence[0]


def _hostile_sources(orders: dict[str, str], scored: list[Evidence], numbered_after: int, reader
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


def _hostile_conflicts(prepared: Prepared) -> list[conflicts.Conflict]:
    """What a hostile document claims, set beside what the best evidence from the other articles says."""
    if not prepared.prompt_evidence:
        return []
    best = prepared.prompt_evidence[0]
    about = prepared.question.focus.rstrip("?").strip()
    return [conflicts.Conflict(about, (conflicts.ConflictValue(" ".join(best.text.split()), (best.n,)),
                                       conflicts.ConflictValue(" ".join(h.claim.text.split()), (h.claim.n,))))
            for h in prepared.hostile if h.claim is not None]


def _judged_claims(judge: Judge, draft: str, prepared: Prepared) -> tuple[list[verification.VerifiedClaim], int]:
    """The draft's sentences that the judge finds stated by their citations (after the necessary lexical
    checks), and how many prompt tokens the checks read."""
    shown = judge_numbered(prepared.prompt_evidence)
    read = 0

    def accept(claim: str, cited) -> float | None:
        nonlocal read
        verdict = judge.supports(claim, judge_numbered(cited), prepared.search_text, shown)
        read += verdict.model_tokens
        return verdict.probability if verdict.yes else None

    return verification.verify_with(draft, prepared.prompt_evidence, accept, prepared.question.focus,
                                 articles=prepared.articles), read


def asks_apart_from_the_rest(prepared: Prepared) -> bool:
    """The question has sentences besides the one that asks (and is not a follow-up searched with the one
    before it)."""
    question = prepared.question
    return question.asked != question.focus and prepared.search_text == question.focus


def _best_of_the_expected_kind(question: Question, ranked: list[Evidence]) -> Evidence | None:
    """For "when" and "how many" questions, the most relevant sentence that holds a date (a calendar date
    first) or a number, among those nearly as relevant as the best."""
    close = [e for e in ranked if e.score >= EXTRACTIVE_SAME_KIND * ranked[0].score]
    if question.kind == "date":
        return next((e for e in close if has_specific_date(e.text)), None) or \
            next((e for e in close if has_time_expression(e.text)), None)
    if question.kind == "number":
        return next((e for e in close if numbers(e.text) - numbers(question.focus)), None)
    return None


def _name_the_person(prepared: Prepared, claims: list[verification.VerifiedClaim]) -> list[verification.VerifiedClaim]:
    """A "who" answer that only says "the US President wrote it" gets the evidence sentence naming him."""
    question = prepared.question
    if question.kind != "person" or not claims:
        return claims
    if not any(_REFERRING.search(c.text) for c in claims) and any(_names_someone_new(c.text, question) for c in claims):
        return claims
    cited = {n for c in claims for n in c.cited}
    by_n = {e.n: e for e in prepared.evidence}
    for n in sorted(cited):
        naming = _naming_sentence_before(by_n[n], prepared)
        if naming is not None:
            return claims + [verification.VerifiedClaim(_quoted(naming.text), (naming.n,), 1.0)]
    return claims


def _naming_sentence_before(item: Evidence, prepared: Prepared) -> Evidence | None:
    """The closest evidence sentence before ``item`` in its article that names someone the question does not."""
    earlier = [e for e in prepared.evidence if e.doc == item.doc and e.sentence.end <= item.sentence.start
               and _names_someone_new(e.text, prepared.question)]
    return max(earlier, key=lambda e: e.sentence.start) if earlier else None


_REFERRING = re.compile(
    r"\b(he|she|they|the (?:\w+ ){0,2}(?:president|senator|minister|official|spokesman|spokeswoman|leader|"
    r"secretary|envoy|ambassador|governor|mayor|chief|head|source|author))\b",
    re.IGNORECASE,
)


def _refers_back(text: str, question: Question) -> bool:
    """The sentence points at someone named earlier ("the US President wrote") rather than naming them."""
    return bool(_REFERRING.search(text)) or not _names_someone_new(text, question)


def _quoted(text: str) -> str:
    text = " ".join(text.split())
    return text if text.startswith(("“", '"')) else f"“{text}”"


def _abstention(prepared: Prepared, reason: str, timings: dict, model: str | None, common: dict,
                prompt_tokens: int = 0, judge_tokens: int = 0) -> Answer:
    warnings = "".join(f" Warning: {h.doc} (“{h.title}”) addresses the assistant with instructions; it was not "
                       f"used as evidence." for h in prepared.hostile)
    return Answer(
        answer=f"The articles don't say. I searched {len(prepared.passages)} passages, but {reason}.{warnings}",
        abstained=True, citations=(), conflicts=(), timings=timings, model=model, reason=reason,
        prompt_tokens=prompt_tokens, judge_tokens=judge_tokens, **common)


def _names_someone_new(text: str, question: Question) -> bool:
    return bool(proper_names(text) - {fold(t) for t in tokens(question.text)})


def _clean_question(question: str) -> str:
    if not isinstance(question, str):
        raise BadQuestion("the question must be text")
    cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in question)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise BadQuestion("the question is empty")
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise BadQuestion(f"the question is {len(cleaned)} characters long; the limit is {MAX_QUESTION_CHARS}")
    return cleaned


def _searched(passage: Passage) -> SearchedPassage:
    c = passage.chunk
    return SearchedPassage(c.doc, c.title, c.start, c.end, c.text, passage.score, passage.dense_score)


def _compose(prepared: Prepared, claims: list[verification.VerifiedClaim]):
    """Answer text with markers renumbered 1..m in order of appearance, and the matching citations."""
    by_n = {e.n: e for e in prepared.evidence}
    by_n.update({h.claim.n: h.claim for h in prepared.hostile if h.claim is not None})
    renumber: dict[int, int] = {}

    def markers(ns) -> str:
        out = []
        for n in ns:
            renumber.setdefault(n, len(renumber) + 1)
            out.append(f"[{renumber[n]}]")
        return "".join(out)

    parts = []
    reported = []
    for source in prepared.hostile:
        # The order itself is not repeated: echoing an injected instruction is what it wants.
        parts.append(f"Warning: {source.doc} (“{source.title}”) addresses the assistant with instructions; it is "
                     f"not used as evidence, and what it claims is shown beside the other sources.")
    for conflict in prepared.conflicts + _hostile_conflicts(prepared):
        clauses = []
        values = []
        for value in conflict.values:
            docs = sorted({by_n[n].doc for n in value.evidence})
            verb = "say" if len(docs) > 1 else "says"
            clauses.append(f"{' and '.join(docs)} {verb} “{value.value}” {markers(value.evidence)}")
            values.append(value)
        parts.append("The sources disagree: " + "; ".join(clauses) + ".")
        reported.append((conflict.about, values))
    for claim in claims:
        text = claim.text.rstrip()
        parts.append(f"{text} {markers(claim.cited)}")
    cited = tuple(
        Citation(new, by_n[old].doc, by_n[old].title, by_n[old].text, by_n[old].sentence.start,
                 by_n[old].sentence.end, by_n[old].score)
        for old, new in sorted(renumber.items(), key=lambda item: item[1])
    )
    conflicts_out = tuple(
        ReportedConflict(about, tuple(ReportedValue(v.value, tuple(renumber[n] for n in v.evidence)) for v in values))
        for about, values in reported
    )
    return " ".join(parts), cited, conflicts_out


def answer(question: str, index_dir: str | Path | None = None, **options) -> Answer:
    """Answer one question from the index in ``index_dir`` (default: ``$RAG_INDEX_DIR``, else ``index``). Options
    are :class:`Config` fields plus ``id``; fields not given come from ``RAG_*`` variables, as on the command
    line. For many questions, create one :class:`Assistant` and call :meth:`Assistant.ask`."""
    request_id = options.pop("id", None)
    config = Config.from_env(index_dir=index_dir, **options)
    return Assistant(config).ask(question, id=request_id)


__all__ = ["Answer", "Assistant", "BadQuestion", "Event", "Prepared", "answer", "asks_apart_from_the_rest"]
