"""The mechanism that decides, chosen once: the calibrated judge (``--judge model``) or the lexical rules
(``--judge lexical``, the previous mechanism, kept reachable for comparison).

Each step of answering (gather, decide, check) asks the policy what to do where the two differ, so the choice
is made in one place (``policy_for``) rather than tested at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.config import Config, JudgeKind
from rag.qa import answerability, check, decide
from rag.qa.evidence import Evidence
from rag.qa.gather import Prepared
from rag.qa.judge import Judge
from rag.qa.question import Question


@dataclass(frozen=True)
class Policy:
    """The lexical rules: relevance floor and answer type decide; word overlap checks each written sentence."""

    name: JudgeKind = "lexical"
    # The whole question is parsed, instructions included (the judge reads meaning, so it sees them all).
    whole_question: bool = False
    # Documents that address the assistant with orders are kept out of the evidence.
    screens_hostile: bool = False
    # A claim about someone the question names must cite an article that names them (read whole).
    reads_whole_articles: bool = False
    # A draft none of whose sentences check out is an abstention, not a quotation of the nearest evidence.
    abstains_when_nothing_checks: bool = False

    @property
    def judged(self) -> bool:
        return self.name == "model"

    def reads_passages(self, config: Config) -> bool:
        """Whether the model reads whole passages (every sentence, numbered) instead of selected sentences."""
        return False

    def relevance(self, question: Question, chosen: list[Evidence], threshold: float) -> answerability.Verdict:
        return answerability.judge(question, chosen, threshold)

    def decide(self, prepared: Prepared, judge: Judge | None, rescore: decide.Rescore) -> decide.Decision:
        return decide.by_relevance(prepared)

    def check(self, judge: Judge | None, draft: str, prepared: Prepared, config: Config) -> check.CheckedDraft:
        return check.by_overlap(draft, prepared, config.support_threshold)

    def refusal_abstains(self, prepared: Prepared, config: Config) -> bool:
        """Whether the model's own refusal to answer makes an abstention: only when the evidence was marginal."""
        return prepared.verdict.best_score < config.confident_threshold


@dataclass(frozen=True)
class JudgedPolicy(Policy):
    """The calibrated judge decides whether the evidence answers, whether each sentence is stated by what it
    cites, and whether sources disagree; lexical checks are necessary conditions in front of it."""

    name: JudgeKind = "model"
    whole_question: bool = True
    screens_hostile: bool = True
    reads_whole_articles: bool = True
    abstains_when_nothing_checks: bool = True

    def reads_passages(self, config: Config) -> bool:
        return bool(config.prompt_passages)

    def relevance(self, question: Question, chosen: list[Evidence], threshold: float) -> answerability.Verdict:
        return answerability.relevant(chosen, threshold)

    def decide(self, prepared: Prepared, judge: Judge | None, rescore: decide.Rescore) -> decide.Decision:
        assert judge is not None, "the judged policy decides with a judge"
        return decide.by_judge(prepared, judge, rescore)

    def check(self, judge: Judge | None, draft: str, prepared: Prepared, config: Config) -> check.CheckedDraft:
        assert judge is not None, "the judged policy checks with a judge"
        return check.by_judge(judge, draft, prepared)

    def refusal_abstains(self, prepared: Prepared, config: Config) -> bool:
        # Under the judge the model's refusal is a reading of meaning, whatever the evidence's score.
        return True


def policy_for(config: Config) -> Policy:
    return JudgedPolicy() if config.judge == "model" else Policy()
