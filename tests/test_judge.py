"""The judge: the model's yes/no read from its logits, the calibrated logistic models, and the fitting code.
SmolLM2 for the mechanics (fast); the default model's behaviour is checked end to end in test_trust.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from evidence_helpers import evidence_from

from evals import calibrate, decision_fit, metrics
from rag.errors import SettingsError
from rag.models import weights
from rag.models.llm import Generator
from rag.qa.judge import (
    CALIBRATION_FILE,
    DECISION_KINDS,
    KINDS,
    Judge,
    LogisticModel,
    load_calibration,
    support_features,
    value_overlap,
)
from rag.qa.question import parse

EVIDENCE = [
    (1, "The call, reportedly brokered by Brazil, Qatar, and Turkey, was a final attempt at a peaceful exit."),
    (2, "Maduro was asked to resign and leave the country by Friday."),
]
QUESTION = "Who brokered the call?"


@pytest.fixture(scope="module")
def small_model() -> Generator:
    return Generator("smollm2-135m")


def test_the_model_answers_a_check_with_finite_log_odds_and_rereads_only_the_check(small_model):
    first = small_model.yes_no(QUESTION, EVIDENCE, "Does the evidence state the answer?")
    second = small_model.yes_no(QUESTION, EVIDENCE, "Does evidence [2] say who brokered it?")
    # Log-odds read from the logits: finite, and each check's own.
    assert math.isfinite(first.log_odds) and first.log_odds != second.log_odds
    # The instruction, evidence and question are in llama.cpp's cache: the second check reads only its own words.
    assert second.new_tokens < first.new_tokens / 2
    assert second.new_tokens < 30


def test_the_same_check_gives_the_same_answer_whatever_was_asked_in_between(small_model):
    check = "Does the evidence state the answer?"
    before = small_model.yes_no(QUESTION, EVIDENCE, check).log_odds
    small_model.generate("What was Maduro asked to do?", EVIDENCE[1:])
    after = small_model.yes_no(QUESTION, EVIDENCE, check).log_odds
    assert after == pytest.approx(before, abs=1e-3)


def test_the_committed_calibration_has_every_kind_fitted_on_enough_decisions():
    data = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    assert data["command"].startswith("rag calibrate")
    # The log-odds it weighs are the default model's: another model's would fall elsewhere.
    assert data["model"] == weights.DEFAULT_MODEL
    for kind in KINDS:
        fitted = data["kinds"][kind]
        assert fitted["fit"]["n"] >= calibrate.MIN_DECISIONS
        assert 0 < fitted["threshold"] < 1
        assert fitted["held_out"]["n"] > 0
    models = load_calibration()
    assert set(models) == set(KINDS) | set(DECISION_KINDS)


def test_the_committed_decision_to_answer_was_fitted_on_the_news_fit_set_only():
    data = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    assert data["decision_command"].startswith("rag calibrate --decision")
    for kind in DECISION_KINDS:
        fitted = data["fitted_decisions"][kind]
        assert fitted["fit_set"] == "bbc_fit_qa.jsonl"
        figures = fitted["fit_out_of_fold"]
        assert figures["questions"] == 100
        # The operating point: false abstention on the fit set's answerable questions at most 0.10.
        assert figures["false_abstention"]["value"] <= decision_fit.MAX_FALSE_ABSTENTION
        if fitted["verified"] is not None:
            assert figures["verified_wrong"]["value"] <= 1 - decision_fit.MIN_VERIFIED_PRECISION


def test_the_judge_gives_probabilities_and_counts_what_the_model_read(small_model):
    judge = Judge(small_model)
    verdict = judge.supports("Brazil, Qatar and Turkey brokered the call.", EVIDENCE[:1], QUESTION, EVIDENCE)
    # The probability is the fitted model's on these features, the model's own log-odds among them.
    assert verdict.probability == pytest.approx(judge.calibration["supports"].probability(verdict.features))
    assert verdict.model_tokens > 0 and verdict.kind == "supports"
    assert set(verdict.features) == {"llm", "overlap", "new_overlap", "negation_mismatch"}
    assert verdict.features["llm"] != 0.0
    disagreement = judge.disagree(QUESTION, EVIDENCE[0], EVIDENCE[1], EVIDENCE)
    assert disagreement.probability == pytest.approx(
        judge.calibration["disagree"].probability(disagreement.features))
    assert disagreement.model_tokens > 0


def test_without_a_model_the_judge_still_decides_answerability_from_cheap_features(bundled_retriever, embedder):
    from rag.qa import evidence
    from rag.qa.question import parse

    judge = Judge(None)
    on_topic = parse("In which region has the US concentrated its naval build-up?", whole=True)
    off_topic = parse("Who won the 2022 football World Cup final?", whole=True)
    scores = []
    for question in (on_topic, off_topic):
        vector = embedder.embed_one(question.focus)
        passages = bundled_retriever.search(question.focus, 8, query_vector=vector)
        scored = evidence.score_sentences(question, vector, passages, bundled_retriever.reader)
        chosen = evidence.select(scored, 6)
        verdict = judge.answers(question, chosen)
        assert verdict.kind == "answers_no_model" and verdict.model_tokens == 0
        scores.append(verdict.probability)
    assert scores[0] > scores[1]


def test_a_logistic_model_is_the_sigmoid_of_its_standardized_features():
    model = LogisticModel(("a", "b"), (1.0, 0.0), (2.0, 1.0), (1.0, -2.0), 0.5, 0.5)
    z = 0.5 + 1.0 * (3.0 - 1.0) / 2.0 - 2.0 * 0.25
    assert model.probability({"a": 3.0, "b": 0.25}) == pytest.approx(1 / (1 + math.exp(-z)))


def test_fitting_recovers_the_direction_of_a_signal_and_ignores_noise():
    rng = np.random.default_rng(0)
    signal = rng.normal(size=400)
    noise = rng.normal(size=400)
    labels = (signal + 0.3 * rng.normal(size=400) > 0).astype(float)
    mean, scale, coef, _ = calibrate.fit_logistic(np.column_stack([signal, noise]), labels)
    assert coef[0] > 2 and abs(coef[1]) < 0.5
    assert metrics.auc(list(signal), list(labels.astype(int))) > 0.9


def test_the_supports_threshold_keeps_false_acceptance_within_its_budget():
    probabilities = [0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9, 0.95] * 30
    labels = [0, 0, 0, 0, 1, 1, 1, 1] * 30
    threshold = calibrate.choose_threshold("supports", probabilities, labels)
    false_accepts = sum(p >= threshold and not y for p, y in zip(probabilities, labels, strict=True))
    assert false_accepts / labels.count(0) <= calibrate.SUPPORTS_MAX_FALSE_ACCEPT
    assert threshold == pytest.approx(0.7)


def test_fitting_on_too_few_decisions_is_refused_with_the_count():
    records = [{"kind": k, "half": "fit", "label": i % 2, "features": dict.fromkeys(
        ("llm", "relevance", "dense", "coverage", "type_found", "names_found", "overlap", "new_overlap",
         "negation_mismatch", "similarity", "numbers_differ", "names_differ", "value_overlap"), float(i % 2))}
        for k in ("answers", "supports", "disagree") for i in range(20)]
    with pytest.raises(SettingsError, match="only 20 labelled decisions"):
        calibrate.fit(records)


def test_a_claim_that_adds_words_its_source_lacks_scores_lower_overlap():
    source = ["Maduro was asked to resign and leave the country by Friday."]
    stated = support_features("Maduro was asked to resign.", source, "What was Maduro asked?")
    invented = support_features("Maduro fled to Cuba with his family.", source, "What was Maduro asked?")
    assert stated["overlap"] > invented["overlap"] and stated["new_overlap"] > invented["new_overlap"]


def test_rates_carry_wilson_intervals_that_are_honest_at_small_counts():
    assert metrics.wilson(15, 15) == (0.796, 1.0)
    assert metrics.wilson(0, 10) == (0.0, 0.278)
    assert metrics.rate(0, 0)["value"] is None
    assert metrics.format_rate(metrics.rate(8, 10)) == "0.80 [0.49, 0.94] (8/10)"


def test_a_bad_calibration_file_is_one_clear_error_naming_it(tmp_path):
    bad = tmp_path / "judge.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(SettingsError, match=f"{bad}: the judge's calibration is not valid JSON"):
        load_calibration(bad)
    with pytest.raises(SettingsError, match="cannot read"):
        load_calibration(tmp_path / "missing.json")


@pytest.mark.parametrize("a, b, expected", [
    ("Tampa, Florida", "Tampa", 1.0),
    ("Tampa, Florida", "Glendale, Arizona", 0.0),
    ("$27.5bn", "$27bn", 0.0),
    ("", "Glendale", 1.0),
])
def test_two_short_answers_overlap_when_one_contains_the_other(a, b, expected):
    assert value_overlap(a, b) == expected


def test_disagreement_reads_each_sources_answer_in_a_few_words(small_model):
    judge = Judge(small_model)
    tampa = (1, "The game was played at Raymond James Stadium in Tampa, Florida.")
    differing = judge.disagree("Where was Super Bowl 2021 played?", tampa,
                               (2, "The game was played at Raymond James Stadium in Glendale, Arizona."))
    same = judge.disagree("Where was Super Bowl 2021 played?", tampa, (2, tampa[1]))
    assert {"llm", "value_overlap", "similarity"} <= set(differing.features)
    # The two answers read from the sentences share fewer words when the sentences give different places.
    assert same.features["value_overlap"] == 1.0
    assert differing.features["value_overlap"] < same.features["value_overlap"]
    assert differing.model_ms > 0 and differing.model_tokens > 0


def test_a_squad_near_miss_makes_a_claim_its_sentence_does_not_state():
    """SQuAD 2.0's unanswerable questions are altered copies of answerable ones: the plausible answer stands
    in the paragraph, in a sentence about something else, so the claim built from it is labelled unstated."""
    context = "Stage 1 is the first stage of the bill. Stage 3 is the final stage of the bill and is debated."
    item = {"question": "Stage 4 is the final stage of what?", "context": context, "is_impossible": True,
            "spans": [("the bill", context.index("the bill and"))]}
    kind, label, inputs = calibrate.squad_support_decision(item)
    assert (kind, label) == ("supports", 0)
    assert inputs["source"] == "Stage 3 is the final stage of the bill and is debated."
    assert inputs["claim"] == "Stage 4 is the final stage of what: the bill."
    answerable = {**item, "question": "Stage 3 is the final stage of what?", "is_impossible": False}
    assert calibrate.squad_support_decision(answerable)[1] == 1


def test_the_answer_check_reads_only_the_sentences_an_answer_cites(small_model):
    """After the answer is written, its cited sentences alone are asked whether they answer the question."""
    evidence = evidence_from(("a.txt", EVIDENCE[0][1]), ("a.txt", EVIDENCE[1][1]))
    question = parse(QUESTION, whole=True)
    verdict = Judge(small_model).answered(question, evidence[1:], QUESTION)
    assert verdict is not None and verdict.kind == "answered"
    assert verdict.model_tokens > 0
    assert {"llm", "relevance", "coverage", "type_found", "names_found"} <= set(verdict.features)
    assert verdict.probability == pytest.approx(Judge(small_model).calibration["answered"].probability(
        verdict.features))
    # Without a model there is no check of a written answer: the model-free fit is too weak to overrule one.
    assert Judge(None).answered(question, evidence[1:]) is None


def test_the_answer_check_is_calibrated_on_the_sentence_holding_squads_answer():
    """For an unanswerable SQuAD question, the sentence holding its plausible answer is the near miss an answer
    would cite; a question whose answer the evidence lacks gives no decision."""
    evidence = evidence_from(("p.txt", "Stage 1 is the first stage of the bill."),
                             ("p.txt", "Stage 3 is the final stage of the bill and is debated."))
    item = {"spans": [("the final stage", 0)], "is_impossible": True}
    assert calibrate.answer_sentence(item, evidence) is evidence[1]
    assert calibrate.answer_sentence({"spans": [("the Senate", 0)]}, evidence) is None
    assert calibrate.answer_sentence({"spans": []}, evidence) is None
