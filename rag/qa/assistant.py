"""The Assistant: the path of a question, gather → decide → draft → check → compose.

It holds the loaded models and the open index, so one Assistant serves many questions. The language
model only ever sees the numbered evidence; whatever it writes is checked sentence by sentence against
the spans it cites (``check``), and when nothing survives the answer is made of the evidence itself or is
an abstention. Which mechanism decides (the calibrated judge or the lexical rules) is a policy chosen once,
in ``__init__``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import MODES, Config, Mode
from rag.errors import BadQuestion
from rag.models.embedding import Embedder
from rag.qa import gather
from rag.qa.answers import Answer, Checked
from rag.qa.check import CheckedDraft, Written
from rag.qa.compose import (
    abstention_text,
    answering,
    closest_passage,
    compose,
    extractive_best,
    extractive_claims,
    name_every_one,
    name_the_person,
)
from rag.qa.decide import Conclusion, Decision, asks_apart_from_the_rest
from rag.qa.draft import Event, drafted
from rag.qa.evidence import Evidence
from rag.qa.gather import Prepared, clean_question
from rag.qa.judge import Judge, calibrated_model
from rag.qa.mechanism import Mechanism, mechanism_for
from rag.qa.retrieval import Retriever
from rag.qa.verification import VerifiedClaim

if TYPE_CHECKING:
    from rag.models.llm import Generation
    from rag.models.llm import Generator as Model


class Clock:
    """The timings of one question: stage names to milliseconds, in the order they first ran."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}

    def add(self, stage: str, ms: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + ms

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - started) * 1000)

    def done(self) -> dict[str, float]:
        """The timings with ``total_ms`` (from the start of the clock), as an answer carries them."""
        return {**self.timings, "total_ms": (time.perf_counter() - self.started) * 1000}


@dataclass(frozen=True)
class _Reply:
    """Builds the one answer of a question: what every answer carries, abstention or not."""

    question: str
    id: str | None
    mode: Mode
    clock: Clock

    def abstention(self, prepared: Prepared, reason: str, model: str | None = None, prompt_tokens: int = 0,
                   judge_tokens: int = 0, checked: Checked | None = None, draft: str = "") -> Answer:
        return Answer(question=self.question, answer=abstention_text(prepared, reason), abstained=True,
                      citations=(), conflicts=(), timings=self.clock.done(), model=model, mode=self.mode,
                      id=self.id, reason=reason, searched=prepared.searched(), prompt_tokens=prompt_tokens,
                      judge_tokens=judge_tokens, checked=checked, draft=draft)

    def answer(self, prepared: Prepared, claims: list[VerifiedClaim], model: str | None, prompt_tokens: int,
               judge_tokens: int, fallback: bool, conclusion: Conclusion, draft: str = "",
               lead: int | None = None) -> Answer:
        composed = compose(prepared, claims, conclusion.verified, lead)
        return Answer(question=self.question, answer=composed.text, abstained=False, citations=composed.citations,
                      conflicts=composed.conflicts, timings=self.clock.done(), model=model, mode=self.mode,
                      id=self.id, searched=prepared.searched(), prompt_tokens=prompt_tokens, fallback=fallback,
                      judge_tokens=judge_tokens, verified=composed.verified, sentences=composed.sentences,
                      checked=conclusion.checked, draft=draft)


class Assistant:
    def __init__(self, config: Config | None = None, embedder: Embedder | None = None) -> None:
        self.config = config or Config.from_env()
        self.embedder = embedder or Embedder.for_config(self.config)
        self.mechanism: Mechanism = mechanism_for(self.config)
        self.policy = self.mechanism.policy
        self._retriever: Retriever | None = None
        self._generators: dict[str | None, Model] = {}
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

    def generator(self, model: str | None = None) -> Model:
        from rag.models.llm import Generator as Model

        key = model or self.config.model_path
        with self._lock:
            if key not in self._generators:
                c = self.config
                self._generators[key] = Model(key, c.n_ctx, c.n_threads, c.seed, c.max_new_tokens,
                                                 c.llama_cpu, c.cache_dir)
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

    def check(self, question: str, draft: str, id: str | None = None, model: str | None = None) -> Answer:
        """The answer the assistant gives to ``question`` when ``draft`` is what was written: the same search,
        decision, checks and composition as :meth:`ask` in generative mode, with a draft written elsewhere (by
        another model, or by a person) in place of the model's."""
        final = None
        for event in self.stream(question, id=id, mode="generative", model=model, given_draft=draft):
            if event.kind == "answer":
                final = event.answer
        assert final is not None
        return final

    def stream(self, question: str, id: str | None = None, mode: str | None = None, k: int | None = None,
               model: str | None = None, context: str | None = None, section: str | None = None,
               given_draft: str | None = None) -> Iterator[Event]:
        """Answer ``question``; ``context`` is the previous question of a conversation, used to search
        for a follow-up such as "and who brokered it?"; ``section`` limits the search to one section;
        ``given_draft``: checked in place of what the model would write (see :meth:`check`)."""
        chosen_mode = self._mode(mode)
        text = clean_question(question)
        yield Event("status", "searching the articles")
        self._load(chosen_mode, model)  # once per process, and not part of any question's timings
        clock = Clock()
        with self._lock:
            prepared = self.prepare(text, k, context, section)
        clock.add("retrieve_ms", prepared.retrieve_ms)
        clock.add("generate_ms", 0.0)
        reply = _Reply(question, id, chosen_mode, clock)
        if self.policy.judged and prepared.verdict.answerable:
            yield Event("status", reading_status(prepared))
        decision, judge, prepared = self._decided(prepared, chosen_mode, model, clock)
        if not decision.answerable:
            yield Event("answer", answer=reply.abstention(prepared, decision.reason,
                                                         judge_tokens=decision.judge_tokens,
                                                         checked=decision.checked))
            return
        written = None
        if chosen_mode == "generative":
            written = (self._given(given_draft, prepared, model, judge, decision.judge_tokens, clock)
                       if given_draft is not None
                       else (yield from self._written(prepared, model, judge, decision.judge_tokens, clock)))
        best = extractive_best(prepared)
        with clock.stage("judge_ms") if judge is not None else nullcontext():
            conclusion = self.mechanism.conclude(prepared, decision, written, judge, self.config, best.n)
        model_name, prompt_tokens = (written.model, written.prompt_tokens) if written else (None, 0)
        draft = written.draft if written else ""
        judge_tokens = (written.judge_tokens if written else decision.judge_tokens) + conclusion.judge_tokens
        if not conclusion.answer:
            yield Event("answer", answer=reply.abstention(prepared, conclusion.reason, model_name, prompt_tokens,
                                                         judge_tokens, conclusion.checked, draft))
            return
        claims, fallback = answering(prepared, written.claims) if written else [], False
        if not claims:
            # No drafted sentence that answers was found in the evidence (or nothing was drafted): the best
            # evidence sentence, quoted, stands in only when it holds a value of the kind asked and the checks
            # accept it as answering; a right draft is never replaced by a quote that does not answer.
            quoted = answering(prepared, extractive_claims(prepared, best))
            with clock.stage("judge_ms") if judge is not None else nullcontext():
                # Where sources disagree the disagreement is the answer: the quote stands beside it unasked.
                accepted = bool(quoted) and (bool(prepared.conflicts or prepared.hostile)
                                             or self.mechanism.accepts_quote(judge, prepared, quoted))
            if not accepted:
                reason = ("no sentence of the draft that answers could be found in the evidence, and "
                          if written else "") + (closest_passage(prepared, best)
                                                 + ", which does not state what is asked")
                yield Event("answer", answer=reply.abstention(prepared, reason, model_name, prompt_tokens,
                                                             judge_tokens, conclusion.checked, draft))
                return
            claims, fallback = quoted, written is not None
        not_given = self.mechanism.withheld(prepared, claims)
        if not_given:
            yield Event("answer", answer=reply.abstention(prepared, not_given, model_name, prompt_tokens,
                                                         judge_tokens, conclusion.checked, draft))
            return
        yield Event("answer", answer=reply.answer(prepared, claims, model_name, prompt_tokens, judge_tokens,
                                                  fallback=fallback, conclusion=conclusion, draft=draft,
                                                  lead=best.n))

    # --- the steps --------------------------------------------------------------------------------------
    def prepare(self, text: str, k: int | None = None, context: str | None = None,
                section: str | None = None) -> Prepared:
        """Gather: search, select and screen the evidence for a question; no model runs. Not thread-safe on
        its own: :meth:`stream` calls it under the assistant's lock."""
        return gather.prepare(text, self.config, self.retriever, self.embedder, self.policy, k, context, section)

    def decide(self, prepared: Prepared, mode: str, model: str | None = None) -> Decision:
        """Whether the prepared evidence answers the question: the one place this is decided, for answers and
        for the benchmark of the decision alone."""
        judge = self.judge(model, with_model=mode == "generative") if self.policy.judged else None
        return self.mechanism.decide(prepared, judge, self._rescored)

    def _decided(self, prepared: Prepared, mode: Mode, model: str | None, clock: Clock
                 ) -> tuple[Decision, Judge | None, Prepared]:
        """Decide; where the answer goes ahead under the judge, the judge checks what is written. The
        disagreements found while gathering stand as found: on the news fit set the judge's reading of each
        value kept 1 of 4 real disagreements and 2 of 6 false ones (docs/notes/2026-12-02-fitted-decision.md)."""
        started = time.perf_counter()
        decision = self.decide(prepared, mode, model)
        judge = None
        if self.policy.judged and decision.answerable:
            judge = self.judge(model, with_model=mode == "generative")
        if decision.judgement is not None:
            clock.add("judge_ms", (time.perf_counter() - started) * 1000)
        return decision, judge, prepared

    def _written(self, prepared: Prepared, model: str | None, judge: Judge | None, judge_tokens: int,
                 clock: Clock) -> Generator[Event, None, Written]:
        """Draft and check: the model writes from the evidence, and each sentence faces the policy's check."""
        # Under the judge the evidence was read for its check (and said so); otherwise the writer reads it first.
        yield Event("status", "writing the answer" if self.policy.judged
                    else reading_status(prepared, "to write the answer from them"))
        generator = self.generator(model)
        draft = yield from self._draft(generator, prepared.search_text, prepared, clock)
        prompt_tokens = draft.prompt_tokens
        checked = self._check(judge, draft.text, prepared, clock)
        nothing_stands = not checked.claims or (checked.judged and not any(c.stated for c in checked.claims))
        if nothing_stands and self.policy.judged and asks_apart_from_the_rest(prepared):
            # No sentence of the draft was found stated, and the question came with other sentences (an
            # instruction to say something, or context): the model may have followed those instead of the
            # question. One rewrite answers the interrogative sentence alone, from the same evidence, and faces
            # the same checks.
            yield Event("status", "rewriting the answer to the question alone")
            judge_tokens += checked.judge_tokens
            draft = yield from self._draft(generator, prepared.question.asked, prepared, clock)
            prompt_tokens += draft.prompt_tokens
            checked = self._check(judge, draft.text, prepared, clock)
        judge_tokens += checked.judge_tokens
        claims = name_every_one(prepared, name_the_person(prepared, checked.claims))
        return Written(draft.text, claims, generator.name, prompt_tokens, judge_tokens)

    def _given(self, draft: str, prepared: Prepared, model: str | None, judge: Judge | None, judge_tokens: int,
               clock: Clock) -> Written:
        """A draft written elsewhere, facing the same checks as the model's."""
        checked = self._check(judge, draft, prepared, clock)
        claims = name_every_one(prepared, name_the_person(prepared, checked.claims))
        return Written(draft, claims, self.generator(model).name, 0, judge_tokens + checked.judge_tokens)

    def _draft(self, generator: Model, question: str, prepared: Prepared, clock: Clock
               ) -> Generator[Event, None, Generation]:
        with clock.stage("generate_ms"):
            return (yield from drafted(generator, question, prepared))

    def _check(self, judge: Judge | None, draft: str, prepared: Prepared, clock: Clock) -> CheckedDraft:
        with clock.stage("judge_ms") if judge is not None else nullcontext():
            return self.mechanism.check(judge, draft, prepared, self.config)

    # --- helpers ----------------------------------------------------------------------------------------
    def _mode(self, mode: str | None) -> Mode:
        chosen = mode or self.config.mode
        if chosen not in MODES:
            raise BadQuestion(f"unknown mode '{chosen}' (choose from {', '.join(MODES)})")
        return chosen

    def _load(self, mode: Mode, model: str | None) -> None:
        with self._lock:
            _ = self.retriever, self.embedder.model
            if mode == "generative":
                self.generator(model)

    def _rescored(self, items: list[Evidence], text: str) -> list[Evidence]:
        """The same evidence scored for ``text`` (the interrogative sentence alone), numbers kept."""
        with self._lock:
            return gather.rescored(items, text, self.retriever.reader, self.embedder)


def reading_status(prepared: Prepared, purpose: str = "to check that they answer the question") -> str:
    """What the model is reading while the reader waits (reading is most of the wait on a CPU): how many
    sentences of which articles, about how many words, and what for."""
    titles = list(dict.fromkeys(e.title for e in prepared.prompt_evidence))
    words = sum(len(e.text.split()) for e in prepared.prompt_evidence)
    named = "; ".join(f"“{t}”" for t in titles[:3]) + (f" and {len(titles) - 3} more" if len(titles) > 3 else "")
    return (f"reading {len(prepared.prompt_evidence)} sentences (about {words} words) from {len(titles)} "
            f"article{'s' if len(titles) != 1 else ''}: {named}, {purpose}")


def answer(question: str, index_dir: str | Path | None = None, **options) -> Answer:
    """Answer one question from the index in ``index_dir`` (default: ``$RAG_INDEX_DIR``, else ``index``). Options
    are :class:`Config` fields plus ``id``; fields not given come from ``RAG_*`` variables, as on the command
    line. For many questions, create one :class:`Assistant` and call :meth:`Assistant.ask`."""
    request_id = options.pop("id", None)
    config = Config.from_env(index_dir=index_dir, **options)
    return Assistant(config).ask(question, id=request_id)


__all__ = ["Answer", "Assistant", "BadQuestion", "Event", "Prepared", "answer", "asks_apart_from_the_rest"]
