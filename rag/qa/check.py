"""Check: what the model wrote, sentence by sentence, against the evidence it cites.

Under the calibrated judge each sentence passes the necessary lexical checks (``verification.verify_with``) and
then the judge's ``supports`` decision; the sentences an answer keeps must also, read alone, state the answer
(``answered``). Under the lexical rules, ``verification.verify`` alone decides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rag.qa import verification
from rag.qa.gather import Prepared
from rag.qa.judge import Judge, Judgement
from rag.qa.judge import numbered as judge_numbered


@dataclass(frozen=True)
class Written:
    """What the draft-and-check steps produced: the draft, its checked sentences, and what reading and checking
    cost."""

    draft: str
    claims: list[verification.VerifiedClaim]
    model: str
    prompt_tokens: int
    judge_tokens: int


@dataclass(frozen=True)
class CheckedDraft:
    """The sentences of a draft that its citations state, and the prompt tokens the checks read."""

    claims: list[verification.VerifiedClaim]
    judge_tokens: int
    judged: bool = True  # whether the judge was asked about each sentence (else: necessary conditions only)


def by_necessary_conditions(draft: str, prepared: Prepared) -> CheckedDraft:
    """The draft's sentences that pass the necessary lexical checks (every number, name and quotation in what
    they cite), each cited to the evidence that states it (``verification.states``: its values, names and
    words found there) where one does, and marked stated; a sentence that passes the necessary checks only is
    kept, not stated. Where the fitted decision does not weigh the judge's reading of each sentence, asking it
    would cost time and change nothing."""
    question = prepared.question.focus

    def found(claim: str, cited) -> float | None:
        return 1.0 if verification.states(claim, [e.text for e in cited], question) else None

    claims = verification.verify_with(draft, prepared.prompt_evidence, found, question,
                                      articles=prepared.articles, keep_unstated=True, exhaustive=True)
    return CheckedDraft(claims, 0, judged=False)


def by_judge(judge: Judge, draft: str, prepared: Prepared, keep_unstated: bool = False) -> CheckedDraft:
    """The draft's sentences that the judge finds stated by their citations (after the necessary lexical
    checks). With ``keep_unstated``, a sentence that passes the necessary checks but that the judge does not
    find stated is kept too, marked not stated, with the probability the judge gave it."""
    shown = judge_numbered(prepared.prompt_evidence)
    read = 0
    rated: dict[tuple[str, tuple[int, ...]], float] = {}

    def accept(claim: str, cited) -> float | None:
        nonlocal read
        verdict = judge.supports(claim, judge_numbered(cited), prepared.search_text, shown)
        read += verdict.model_tokens
        rated[(claim, tuple(e.n for e in cited))] = verdict.probability
        return verdict.probability if verdict.yes else None

    claims = verification.verify_with(draft, prepared.prompt_evidence, accept, prepared.question.focus,
                                      articles=prepared.articles, keep_unstated=keep_unstated)
    claims = [c if c.stated else replace(c, support=rated.get((c.text, c.cited), 0.0)) for c in claims]
    return CheckedDraft(claims, read)


def by_overlap(draft: str, prepared: Prepared, support_threshold: float) -> CheckedDraft:
    """The draft's sentences whose citations contain their words, names and numbers (the lexical rules)."""
    claims = verification.verify(draft, prepared.prompt_evidence, support_threshold, prepared.question.terms,
                                 prepared.question.focus)
    return CheckedDraft(claims, 0)


def cited_answer(judge: Judge, claims: list[verification.VerifiedClaim], prepared: Prepared,
                 asked: str | None = None) -> Judgement | None:
    """Whether the sentences the answer cites, read alone, state the answer to *this* question (not a near miss
    of it), the question put as ``asked`` (default: as searched); None when the judge has no model to ask."""
    by_n = {e.n: e for e in prepared.evidence}
    cited = [by_n[n] for n in dict.fromkeys(n for c in claims for n in c.cited) if n in by_n]
    return judge.answered(prepared.question, cited, asked or prepared.search_text)
