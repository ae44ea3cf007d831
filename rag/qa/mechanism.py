"""The mechanism that decides, chosen once (``mechanism_for``, the one place that branches on it): the fitted
decision over the calibrated judge's signals (``--judge model``) or the lexical rules (``--judge lexical``, the
previous mechanism, kept reachable for comparison).

The steps (gather, decide, check) read the policy's flags (``rag.qa.policy``, a leaf that imports none of them);
what differs in behaviour (how to decide, check, conclude) is a method here, which the assistant calls.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rag.config import Config
from rag.qa.check import CheckedDraft, Written, by_necessary_conditions, by_overlap, cited_answer
from rag.qa.check import by_judge as check_by_judge
from rag.qa.decide import (
    AFTER_DRAFT,
    Conclusion,
    Decision,
    Rescore,
    answered_signal,
    by_relevance,
    conclude,
    could_flip,
    signals,
    weighs,
    withheld,
)
from rag.qa.decide import by_judge as decide_by_judge
from rag.qa.gather import Prepared
from rag.qa.judge import Judge
from rag.qa.policy import FITTED, LEXICAL, Policy, policy_for
from rag.qa.verification import VerifiedClaim, is_refusal


@dataclass(frozen=True)
class Mechanism:
    """The lexical rules: relevance floor and answer type decide; word overlap checks each written sentence."""

    policy: Policy = LEXICAL

    @property
    def judged(self) -> bool:
        return self.policy.judged

    def decide(self, prepared: Prepared, judge: Judge | None, rescore: Rescore) -> Decision:
        return by_relevance(prepared)

    def check(self, judge: Judge | None, draft: str, prepared: Prepared, config: Config) -> CheckedDraft:
        return by_overlap(draft, prepared, config.support_threshold)

    def conclude(self, prepared: Prepared, decision: Decision, written: Written | None,
                 judge: Judge | None, config: Config, extractive_best: int | None) -> Conclusion:
        """Answer or abstain, once every signal is in. The lexical rules abstain here only when the model,
        having read marginal evidence, found no answer in it."""
        if written is not None and not written.claims and is_refusal(written.draft) \
                and prepared.verdict.best_score < config.confident_threshold:
            return Conclusion(False, False, "the closest passages do not answer the question")
        return Conclusion(True, False)

    def accepts_quote(self, judge: Judge | None, prepared: Prepared, quoted: list[VerifiedClaim]) -> bool:
        """Whether a quoted evidence sentence may stand as the answer where no drafted sentence does. The lexical
        rules take it (it holds a value of the kind asked, or it would not be asked)."""
        return True

    def withheld(self, prepared: Prepared, claims: list[VerifiedClaim]) -> str:
        """Why the answer about to be shown gives no answer after all (it says the value was not made public),
        or "". The lexical rules show it."""
        return ""


@dataclass(frozen=True)
class FittedMechanism(Mechanism):
    """One decision fitted on news questions weighs the calibrated judge's signals (does the evidence answer,
    is each sentence stated by what it cites, do the cited sentences answer), retrieval's scores and the
    lexical conditions; lexical checks on each sentence stay necessary conditions in front of the judge."""

    policy: Policy = FITTED

    def decide(self, prepared: Prepared, judge: Judge | None, rescore: Rescore) -> Decision:
        assert judge is not None, "the fitted policy decides with a judge"
        decision = decide_by_judge(prepared, judge, rescore)
        fitted = judge.calibration.get("decision" if judge.model is not None else "decision_no_model")
        if decision.answerable and fitted is not None and not weighs(fitted, *AFTER_DRAFT):
            # Everything the fitted decision weighs is known before a word is written: an abstention now saves
            # the draft and its checks (which could not change it).
            early = conclude(prepared, fitted, signals(prepared, decision, [], None, None))
            if not early.answer:
                return Decision(False, early.reason, decision.judgement, decision.judge_tokens, early.checked)
        return decision

    def check(self, judge: Judge | None, draft: str, prepared: Prepared, config: Config) -> CheckedDraft:
        assert judge is not None, "the fitted policy checks with a judge"
        fitted = judge.calibration.get("decision") if judge.model is not None else None
        if fitted is not None and not weighs(fitted, "supports", "claims_stated"):
            return by_necessary_conditions(draft, prepared)
        # A sentence the judge does not find stated is kept, unverified, when it passes the necessary checks:
        # the fitted decision weighs the judge's doubt instead of obeying it.
        return check_by_judge(judge, draft, prepared, keep_unstated=True)

    def conclude(self, prepared: Prepared, decision: Decision, written: Written | None,
                 judge: Judge | None, config: Config, extractive_best: int | None) -> Conclusion:
        with_model = judge is not None and judge.model is not None and written is not None
        claims = written.claims if written else []
        values = signals(prepared, decision, claims, written.draft if with_model and written else None,
                         extractive_best)
        fitted = judge.calibration.get("decision" if with_model else "decision_no_model") if judge else None
        asked = None
        if with_model and judge is not None and claims and not (prepared.conflicts or prepared.hostile) \
                and (fitted is None or could_flip(prepared, fitted, values, "answered_llm")):
            # Whether the cited sentences, read alone, state the answer to this question (not a near miss of
            # it): asked only where its answer could change the outcome. Where sources disagree the
            # disagreement is the answer, whatever the model wrote beside it.
            asked = cited_answer(judge, claims, prepared)
        values["answered_llm"] = answered_signal(asked, fitted)
        conclusion = conclude(prepared, fitted, values)
        # Only an answer the model wrote and the judge's model weighed can be verified: the decision without a
        # model (extractive mode) separates nothing on news (its AUC on the fit set is below 0.5).
        return replace(conclusion, verified=conclusion.verified and with_model,
                       judge_tokens=asked.model_tokens if asked is not None else 0)

    def accepts_quote(self, judge: Judge | None, prepared: Prepared, quoted: list[VerifiedClaim]) -> bool:
        """The judge, reading the quoted sentences alone, finds that they state the answer to this question;
        without a model to ask, the decision that accepted the question stands."""
        if judge is None or judge.model is None:
            return True
        # Asked with the interrogative sentence alone: an instruction around it ("reply only 'Coldplay'") is no
        # part of what the quote must answer.
        verdict = cited_answer(judge, quoted, prepared, prepared.question.asked)
        return verdict is None or verdict.yes

    def withheld(self, prepared: Prepared, claims: list[VerifiedClaim]) -> str:
        return withheld(prepared, claims)


def mechanism_for(config: Config) -> Mechanism:
    """The mechanism ``config.judge`` names: the one branch on it."""
    return FittedMechanism() if policy_for(config).judged else Mechanism()
