"""The judge: calibrated probabilities for the four questions about meaning that an answer depends on.

- ``answers(question, evidence)``: does the evidence state the answer to *this* question (not a related
  fact, another person's, or a detail it leaves out)?
- ``supports(claim, cited)``: do the cited sentences state the claim?
- ``disagree(question, a, b)``: do two sentences give different values for what is asked?
- ``answered(question, cited)``: do the sentences a written answer cites, read alone, state the answer to the
  question? The whole evidence can hold an answer while the sentence the model cites is a near miss (the
  dollar rate for a question about the euro, the fan who collected the items for a question about who bought
  them).

Each is a small logistic model over a few features: the loaded language model's yes/no log-odds on a short
check (read from its next-token logits, the check appended to the answer prompt so that llama.cpp's cached
reading of the instruction, evidence and question is reused), and cheap lexical and embedding features. The
coefficients and decision thresholds come from ``rag calibrate`` (labelled decisions from SQuAD 2.0 and RGB,
fitted on one half and reported on the other) and live in ``rag/qa/calibration/judge.json`` beside the command
that wrote them. Without a model (extractive mode, or a model the file was not fitted for), ``answers`` and
``supports`` use model-free fits of the same data, and ``disagree`` is not asked (the extractors' candidates
stand).

Lexical checks are *necessary* conditions, never proof: a claim that states a number, a name or a quotation
its citations lack is refused before the model is asked (``rag.qa.verification.necessary``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from rag.errors import SettingsError
from rag.qa.evidence import nearly_as_relevant
from rag.qa.lexicon import NEGATION
from rag.qa.question import holds_expected_value
from rag.text import MARKER, STOPWORDS, fold, meaning_terms, numbers, proper_names, tokens

if TYPE_CHECKING:
    from rag.qa.evidence import Evidence
    from rag.qa.question import Question

Numbered = tuple[int, str]  # an evidence sentence as the model reads it: "[n] text"
Kind = Literal["answers", "answers_no_model", "supports", "supports_no_model", "disagree", "answered"]
KINDS: tuple[Kind, ...] = ("answers", "answers_no_model", "supports", "supports_no_model", "disagree", "answered")
# The one decision to answer, fitted on news questions (with the model's log-odds, and without a model).
DecisionKind = Literal["decision", "decision_no_model"]
DECISION_KINDS: tuple[DecisionKind, ...] = ("decision", "decision_no_model")
CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration" / "judge.json"

# The checks the model answers Yes or No to, appended after the numbered evidence and the question.
CHECKS = {
    "answers": "Does the evidence above state the answer to this exact question (not a related fact, not "
               "about someone or something else)?",
    "supports": "Statement: {claim}\nDoes evidence {cited} state this statement (same who, what and when)?",
    "disagree": "Do evidence {a} and evidence {b} give different answers to the question?",
    "answered": "Does evidence {cited} state the answer to this exact question?",
}


class YesNoModel(Protocol):
    """What the judge needs of a language model (``rag.models.llm.Generator`` is one)."""

    def yes_no(self, question: str, evidence: Sequence[tuple[int, str]], check: str): ...

    def short_answer(self, question: str, evidence: Sequence[tuple[int, str]], n: int) -> str: ...


@dataclass(frozen=True)
class Judgement:
    kind: Kind
    probability: float
    threshold: float
    features: dict[str, float] = field(default_factory=dict)
    model_tokens: int = 0  # prompt tokens the model read for this check
    model_ms: float = 0.0

    @property
    def yes(self) -> bool:
        return self.probability >= self.threshold


@dataclass(frozen=True)
class LogisticModel:
    """P(yes) = sigmoid(intercept + sum(coef * (x - mean) / scale)), with the decision threshold fitted beside it."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    # For the fitted decision to answer: the probability from which an answer is shown as verified, and the range
    # (5th to 95th percentile) of each signal on the fit set, to tell which checks could change an outcome.
    verified: float | None = None
    ranges: dict[str, tuple[float, float]] | None = None

    def probability(self, values: dict[str, float]) -> float:
        z = self.intercept + sum(c * (values[f] - m) / s for f, m, s, c in
                                 zip(self.features, self.mean, self.scale, self.coef, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @classmethod
    def from_dict(cls, data: dict) -> LogisticModel:
        return cls(tuple(data["features"]), tuple(data["mean"]), tuple(data["scale"]), tuple(data["coef"]),
                   float(data["intercept"]), float(data["threshold"]),
                   float(data["verified"]) if data.get("verified") is not None else None,
                   {k: (float(lo), float(hi)) for k, (lo, hi) in data["ranges"].items()} if data.get("ranges")
                   else None)


def calibrated_model(path: Path = CALIBRATION_FILE) -> str | None:
    """The name of the language model the calibration was fitted with."""
    return _read(path).get("model")


def load_calibration(path: Path = CALIBRATION_FILE) -> dict[str, LogisticModel]:
    """The judge's fitted models by kind, and the fitted decisions to answer (``decision``,
    ``decision_no_model``) where ``rag calibrate --decision`` has written them."""
    data = _read(path)
    missing = [k for k in KINDS if k not in data.get("kinds", {})]
    if missing:
        raise SettingsError(f"{path}: the judge's calibration lacks {', '.join(missing)}; run rag calibrate")
    fitted: dict[str, LogisticModel] = {k: LogisticModel.from_dict(data["kinds"][k]) for k in KINDS}
    fitted.update({k: LogisticModel.from_dict(data["fitted_decisions"][k]) for k in DECISION_KINDS
                   if k in data.get("fitted_decisions", {})})
    return fitted


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the judge's calibration ({exc.strerror}); run rag calibrate") from exc
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}: the judge's calibration is not valid JSON ({exc.msg})") from exc


class Judge:
    """Calibrated yes/no decisions about meaning. ``model`` may be None: then ``answers`` and ``supports`` use
    their model-free fits (cheap features only)."""

    def __init__(self, model: YesNoModel | None, calibration: dict[str, LogisticModel] | None = None) -> None:
        self.model = model
        self.calibration = calibration if calibration is not None else load_calibration()

    # --- the four questions -----------------------------------------------------------------------------
    def answers(self, question: Question, evidence: Sequence[Evidence], prompt_question: str | None = None
                ) -> Judgement:
        values = answer_features(question, evidence)
        kind: Kind = "answers" if self.model is not None else "answers_no_model"
        tokens_read, ms = 0, 0.0
        if self.model is not None:
            verdict = self.model.yes_no(prompt_question or question.text, numbered(evidence), CHECKS["answers"])
            values["llm"], tokens_read, ms = verdict.log_odds, verdict.new_tokens, verdict.ms
        return self._decide(kind, values, tokens_read, ms)

    def supports(self, claim: str, cited: Sequence[Numbered], question: str,
                 shown: Sequence[Numbered] | None = None) -> Judgement:
        """``cited``: the numbered sentences the claim cites. ``shown``: what the model read when it wrote the
        claim; the check is appended to that prompt (cached) and names the cited sentences by number."""
        values = support_features(claim, [text for _, text in cited], question)
        tokens_read, ms = 0, 0.0
        if self.model is not None:
            context = list(shown) if shown is not None and set(cited) <= set(shown) else list(cited)
            check = CHECKS["supports"].format(claim=" ".join(claim.split()),
                                              cited=" and ".join(f"[{n}]" for n, _ in cited))
            verdict = self.model.yes_no(question, context, check)
            values["llm"], tokens_read, ms = verdict.log_odds, verdict.new_tokens, verdict.ms
        return self._decide("supports" if self.model is not None else "supports_no_model", values, tokens_read, ms)

    def disagree(self, question: str, a: Numbered, b: Numbered, shown: Sequence[Numbered] | None = None
                 ) -> Judgement:
        """Two sources disagree when what each says the answer is differs: the model reads the answer off each
        sentence alone in a few words (semantic extraction), the words are compared (lexical comparison of two
        short values), and its yes/no on the pair and the sentences' likeness are weighed in too."""
        values = disagreement_features(question, a[1], b[1])
        tokens_read, ms = 0, 0.0
        if self.model is not None:
            started = time.perf_counter()
            context = list(shown) if shown is not None and {a, b} <= set(shown) else [a, b]
            check = CHECKS["disagree"].format(a=f"[{a[0]}]", b=f"[{b[0]}]")
            verdict = self.model.yes_no(question, context, check)
            # Each value is read from its sentence alone: with the others in view a small model borrows from them.
            value_a = self.model.short_answer(question, [a], a[0])
            value_b = self.model.short_answer(question, [b], b[0])
            values["llm"], tokens_read = verdict.log_odds, verdict.new_tokens
            values["value_overlap"] = value_overlap(value_a, value_b, question)
            ms = (time.perf_counter() - started) * 1000
        else:
            values["llm"] = 0.0
            values["value_overlap"] = 1.0
        return self._decide("disagree", values, tokens_read, ms)

    def answered(self, question: Question, cited: Sequence[Evidence], prompt_question: str | None = None
                 ) -> Judgement | None:
        """Whether the sentences an answer cites, shown to the model alone, state the answer to the question.
        None without a model: the model-free fit of ``answers`` is too weak to overrule an answer (its held-out
        AUC is about 0.64)."""
        if self.model is None or not cited:
            return None
        values = answer_features(question, cited)
        check = CHECKS["answered"].format(cited=" and ".join(f"[{e.n}]" for e in cited))
        verdict = self.model.yes_no(prompt_question or question.text, numbered(cited), check)
        values["llm"] = verdict.log_odds
        return self._decide("answered", values, verdict.new_tokens, verdict.ms)

    def _decide(self, kind: Kind, values: dict[str, float], tokens_read: int, ms: float) -> Judgement:
        fitted = self.calibration[kind]
        return Judgement(kind, fitted.probability(values), fitted.threshold, values, tokens_read, ms)


def numbered(evidence: Sequence[Evidence]) -> list[Numbered]:
    return [(e.n, e.text) for e in evidence]


# --- cheap features ------------------------------------------------------------------------------------------
def answer_features(question: Question, evidence: Sequence[Evidence]) -> dict[str, float]:
    """Relevance of the best evidence (its score, cosine and share of the question's terms), and whether the
    strongest evidence holds the kind of thing asked for and the names the question gives."""
    if not evidence:
        return {"relevance": 0.0, "dense": 0.0, "coverage": 0.0, "type_found": 0.0, "names_found": 0.0}
    best = max(evidence, key=lambda e: e.score)
    strongest = nearly_as_relevant(evidence)
    asked_names = proper_names(question.text)
    joined = " ".join(fold(e.text) for e in evidence)
    return {
        "relevance": best.score,
        "dense": max(e.dense for e in evidence),
        "coverage": max(e.coverage for e in evidence),
        "type_found": float(any(holds_expected_value(question, e.text) for e in strongest)),
        "names_found": sum(n in joined for n in asked_names) / len(asked_names) if asked_names else 1.0,
    }


def support_features(claim: str, sources: Sequence[str], question: str) -> dict[str, float]:
    """How much of the claim its sources contain: content words, the words it adds to the question's, and
    whether the sources negate when the claim does."""
    joined = " ".join(sources)
    # Numbers as values: "1.55 billion" in the claim is "1.55bn" in the source, not a missing word.
    terms = meaning_terms(claim)
    present = set(meaning_terms(joined))
    asked = set(meaning_terms(question))
    new = [t for t in terms if t not in asked]
    return {
        "overlap": sum(t in present for t in terms) / len(terms) if terms else 0.0,
        "new_overlap": sum(t in present for t in new) / len(new) if new else 1.0,
        "negation_mismatch": float(bool(NEGATION.search(claim)) != bool(NEGATION.search(joined))),
    }


def value_overlap(a: str, b: str, question: str = "") -> float:
    """How much of the shorter of two short answers the longer one contains, leaving out the words that
    restate the question ("Freddie Mac restated its earnings by $4.4bn" against "... by $5bn": only the values
    count). 1: one contains the other, as "Tampa" and "Tampa, Florida"; 0: nothing in common, as
    "Tampa, Florida" and "Glendale, Arizona"."""
    asked = {fold(w) for w in tokens(question)}
    words_a = {fold(w) for w in tokens(MARKER.sub(" ", a))} - STOPWORDS - asked
    words_b = {fold(w) for w in tokens(MARKER.sub(" ", b))} - STOPWORDS - asked
    if not words_a or not words_b:
        return 1.0  # an empty answer is no evidence of disagreement
    return len(words_a & words_b) / min(len(words_a), len(words_b))




def disagreement_features(question: str, a: str, b: str) -> dict[str, float]:
    """How alike the two sentences are (near-copies that differ in one place are the usual disagreement) and
    whether they state different numbers or names."""
    words_a, words_b = [fold(w) for w in a.split()], [fold(w) for w in b.split()]
    names_a, names_b = proper_names(a), proper_names(b)
    nums_a, nums_b = numbers(a), numbers(b)
    return {
        "similarity": SequenceMatcher(a=words_a, b=words_b, autojunk=False).ratio(),
        "numbers_differ": float(bool(nums_a) and bool(nums_b) and nums_a != nums_b),
        "names_differ": float(bool(names_a ^ names_b)),
    }
