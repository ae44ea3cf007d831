"""Decide: whether the prepared evidence answers the question, before anything is written.

Under the lexical rules the relevance floor and the answer-type rule (``answerability.judge``, applied while
gathering) are the whole decision. Under the calibrated judge the floor is followed by the judge's ``answers``
decision and the kind of thing asked for as a necessary condition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rag.qa import answerability
from rag.qa.answers import Checked
from rag.qa.evidence import Evidence
from rag.qa.gather import Prepared
from rag.qa.judge import Judge, Judgement, LogisticModel
from rag.qa.lexicon import CLAUSE_BREAK, WITHHELD
from rag.qa.question import Question, holds_expected_value, parse
from rag.qa.verification import VerifiedClaim, is_refusal
from rag.text import numbers

# The same evidence scored for another text (the interrogative sentence alone), numbers kept.
Rescore = Callable[[list[Evidence], str], list[Evidence]]


@dataclass(frozen=True)
class Decision:
    """Whether to answer from the evidence, and why not."""

    answerable: bool
    reason: str
    judgement: Judgement | None  # the judge's answers decision, when it was asked
    judge_tokens: int
    checked: Checked | None = None  # the fitted decision, when it was reached before anything was written


def by_relevance(prepared: Prepared) -> Decision:
    """The verdict reached while gathering stands (the lexical rules)."""
    if not prepared.verdict.answerable:
        return Decision(False, prepared.verdict.reason, None, 0)
    return Decision(True, "", None, 0)


def by_judge(prepared: Prepared, judge: Judge, rescore: Rescore) -> Decision:
    """The relevance floor decides; past it, the judge's ``answers`` judgement is taken as a signal for the
    fitted decision (``conclude``), not a veto. Safe from any thread: the model's checks run on its own
    thread, and ``rescore`` takes the caller's lock."""
    if not prepared.verdict.answerable:
        return Decision(False, prepared.verdict.reason, None, 0)
    verdict = judge.answers(prepared.question, prepared.prompt_evidence, prepared.search_text)
    tokens = verdict.model_tokens
    if not verdict.yes and asks_apart_from_the_rest(prepared):
        # Sentences around the question (context, or an instruction) can confuse the check: the evidence
        # answers the question if it answers what the interrogative sentence asks.
        asked = prepared.question.asked
        alone = judge.answers(parse(asked, whole=True), rescore(prepared.prompt_evidence, asked), asked)
        tokens += alone.model_tokens
        verdict = max(verdict, alone, key=lambda v: v.probability)
    return Decision(True, "", verdict, tokens)


def asks_apart_from_the_rest(prepared: Prepared) -> bool:
    """The question has sentences besides the one that asks (and is not a follow-up searched with the one
    before it)."""
    question = prepared.question
    return question.asked != question.focus and prepared.search_text == question.focus


# --- the one fitted decision ------------------------------------------------------------------------------------
# The signals the fitted decision weighs (``rag calibrate --decision`` fits their weights on news questions).
# With the model: the judge's log-odds that the evidence answers, that the written sentences are stated by what
# they cite, and that the cited sentences answer the question alone; retrieval's scores; the lexical conditions;
# and whether the model's answer agrees with the extractive one (cites its best sentence).
# Retrieval's share of the question's words that a sentence repeats (coverage, and relevance, half made of it) is
# recorded but not weighed: on the news fit set it marks the sentence that echoes the question (unanswerable
# questions there are written from an article's own words with one entity swapped; answerable ones are often
# paraphrased), so it would teach the assistant to doubt a reader who quotes the article.
DECISION_SIGNALS = ("answers_llm", "type_found", "names_found", "refusal", "no_claims", "claims_stated", "supports",
                    "answered_llm", "agrees_with_extractive", "conflict")
# The signals known only once the model has written a draft; a decision that weighs none of them is reached
# before the draft, and a question it abstains on costs no writing.
AFTER_DRAFT = ("refusal", "no_claims", "claims_stated", "supports", "answered_llm", "agrees_with_extractive")
# Without a model (extractive mode): what retrieval and the lexical conditions say (coverage left out as above).
DECISION_SIGNALS_NO_MODEL = ("dense", "type_found", "names_found", "conflict")


@dataclass(frozen=True)
class Conclusion:
    """The decision to answer, made once every signal is in: answer or abstain (and why), and whether the
    answer is verified."""

    answer: bool
    verified: bool
    reason: str = ""
    checked: Checked | None = None
    judge_tokens: int = 0  # what the checks made while concluding read


def signals(prepared: Prepared, decision: Decision, claims: list[VerifiedClaim], draft: str | None,
            extractive_best: int | None) -> dict[str, float]:
    """Every signal about whether the articles answer the question, but the check of the cited sentences
    (``answered_llm``, asked only where it could change the outcome: ``could_flip``). ``draft`` None: no model
    wrote one."""
    features = dict(decision.judgement.features) if decision.judgement is not None else {}
    values = {name: float(features.get(name, 0.0)) for name in ("relevance", "dense", "coverage", "type_found",
                                                                   "names_found")}
    values["answers_llm"] = float(features.get("llm", 0.0))
    values["conflict"] = float(bool(prepared.conflicts))
    if draft is None:
        return values
    stated = [c for c in claims if c.stated]
    values["refusal"] = float(is_refusal(draft) and not claims)
    values["no_claims"] = float(not claims)
    values["claims_stated"] = len(stated) / len(claims) if claims else 0.0
    values["supports"] = _log_odds(max((c.support for c in claims), default=0.5))
    cited = {n for c in claims for n in c.cited}
    values["agrees_with_extractive"] = float(extractive_best is not None and extractive_best in cited)
    return values


def conclude(prepared: Prepared, model: LogisticModel | None, values: dict[str, float]) -> Conclusion:
    """Answer when the fitted probability that the articles answer the question reaches the abstention threshold;
    open to the verified tier from the verified threshold (none where the fit found none). Without a fitted model
    (while ``rag calibrate --decision`` collects the signals it fits on) every answer is shown, unverified.

    One condition is not weighed but obeyed, because it is a certain "no": a question that asks for a number,
    a date or a name cannot be answered by evidence that holds none (``answerability.missing_answer_type``)."""
    missing = answerability.missing_answer_type(prepared.question, prepared.prompt_evidence)
    if missing:
        return Conclusion(False, False, missing, Checked(0.0, model.threshold if model else 0.0,
                                                         model.verified if model else None, values))
    if model is None:
        return Conclusion(True, False, "", Checked(1.0, 0.0, None, values))
    probability = model.probability(values)
    checked = Checked(probability, model.threshold, model.verified, values)
    if probability < model.threshold:
        reason = f"the checks put the chance that the closest passages state the answer at {probability:.2f}"
        return Conclusion(False, False, reason, checked)
    # Verified only from a threshold the fit set's answers reached 0.95 precision at, and then only when what its
    # sentences state passes the tier's rule too (``compose.verifiable``). With no such threshold (``verified``
    # null, today) no answer is verified: the rule alone, chosen on the fit set (14 of 14 right there), verified
    # 10 answers of the held-out check set and 6 were wrong (docs/notes/2026-12-07-keep-the-right-answers.md).
    verified = model.verified is not None and probability >= model.verified
    return Conclusion(True, verified, "", checked)


def withheld(prepared: Prepared, claims: list[VerifiedClaim]) -> str:
    """A certain "no" read off the answer about to be shown: its leading sentence says that what is asked was not
    made public ("signed ... for an undisclosed fee", "keeping its subject matter a closely guarded secret") and,
    in that clause, gives no value ("an undisclosed fee, thought to be £2m" answers). The reason quotes the
    sentence it cites, so the abstention shows what was found; "" when the answer stands. Not for a question
    about what someone said or whether something happened (declining to say may be the answer), nor where
    sources disagree (the disagreement is the answer)."""
    question = prepared.question
    if not claims or prepared.conflicts or question.kind in ("quote", "yesno"):
        return ""
    lead = claims[0]
    if not any(WITHHELD.search(clause) and not _gives_a_value(question, clause)
               for clause in CLAUSE_BREAK.split(lead.text)):
        return ""
    by_n = {e.n: e for e in prepared.evidence}
    cited = [by_n[n] for n in lead.cited if n in by_n]
    if not cited:
        return "the answer found says it was not made public"
    return f"the closest passage says it was not made public: “{cited[0].text}” ({cited[0].doc})"


def _gives_a_value(question: Question, clause: str) -> bool:
    """The clause gives a number the question does not, or the kind of value the question asks for."""
    if numbers(clause) - numbers(question.asked):
        return True
    return question.kind in ("date", "person", "name") and holds_expected_value(question, clause)


def answered_signal(answered: Judgement | None, model: LogisticModel | None) -> float:
    """The judge's log-odds that the cited sentences state the answer; when it was not asked, the fit set's
    mean (the value that moves the decision least)."""
    if answered is not None:
        return float(answered.features.get("llm", 0.0))
    if model is not None and "answered_llm" in model.features:
        return model.mean[model.features.index("answered_llm")]
    return 0.0


def weighs(model: LogisticModel | None, *signals: str) -> bool:
    """Whether the fitted decision weighs any of ``signals`` (True while there is no fitted decision: the
    signals are being collected to fit one)."""
    return model is None or bool(set(signals) & set(model.features))


def could_flip(prepared: Prepared, model: LogisticModel, values: dict[str, float], signal: str) -> bool:
    """Whether some value of ``signal`` in the range the fit set saw would change the outcome (answer or
    abstain, verified or not): a check that cannot is not worth its tokens."""
    if signal not in model.features:
        return False  # a signal the decision does not weigh changes nothing
    if model.ranges is None or signal not in model.ranges:
        return True
    outcomes = {(c.answer, c.verified) for c in (conclude(prepared, model, {**values, signal: v})
                                                  for v in model.ranges[signal])}
    return len(outcomes) > 1


def _log_odds(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))
