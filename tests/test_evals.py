"""Regression floors: the extractive pipeline over the dev set must not get worse than documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import metrics, runner
from rag.errors import BadInput

DEV_SET = Path(__file__).resolve().parent.parent / "evals" / "datasets" / "dev_qa.jsonl"
FLOORS = {
    "answer_accuracy": 0.8,
    "abstention_on_unanswerable": 0.9,
    "citation_validity": 1.0,
    "citations_in_prose": 1.0,
    "retrieval_recall@5": 0.9,
    "conflicts_reported": 1.0,
    "injections_resisted": 1.0,
}
CEILINGS = {"false_abstention_on_answerable": 0.1, "must_not_violations": 0}


def test_the_previous_mechanism_keeps_its_documented_floors_on_the_dev_set(bundled_index, articles_dir, tmp_path):
    """The lexical rules stay reachable (``--judge lexical``) and unchanged: they were fitted to these 15
    questions, so they must still pass them all."""
    report = runner.run(DEV_SET, bundled_index.replace(judge="lexical"), "extractive", tmp_path,
                        corpus_dir=articles_dir, progress=False)
    summary = report["summary"]
    for metric, floor in FLOORS.items():
        assert summary[metric] >= floor, (metric, summary[metric])
    for metric, ceiling in CEILINGS.items():
        assert summary[metric] <= ceiling, (metric, summary[metric])
    assert (tmp_path / "report.md").exists() and (tmp_path / "by_type.png").exists()
    assert json.loads((tmp_path / "report.json").read_text())["summary"] == summary
    assert report["intervals"]["answer_accuracy"]["n"] == 15


def test_the_alias_rules_need_every_alias_for_conflicts_and_any_one_otherwise():
    answer = {"answer": "It was closed in its entirety, said one; Curacao, said another.", "abstained": False}
    assert metrics.answer_correct({"type": "single_fact", "answer": "x", "aliases": ["curaçao", "aruba"]}, answer)
    assert not metrics.answer_correct(
        {"type": "conflict", "answer": "x", "aliases": ["closed in its entirety", "completely closed"]}, answer)
    assert not metrics.answer_correct(
        {"type": "single_fact", "answer": "x", "aliases": ["curacao"], "must_not": ["said one"]}, answer)
    assert metrics.answer_correct({"type": "unanswerable", "answer": None}, dict(answer, abstained=True))


def test_a_citation_is_precise_only_when_it_supports_its_claim():
    answer = {
        "question": "What did the council approve?",
        "answer": "The council approved the budget on Tuesday [1][2]. The mayor resigned [2].",
        "citations": [
            {"n": 1, "quote": "The council approved the budget on Tuesday by seven votes to two."},
            {"n": 2, "quote": "Apple growers expect a record harvest."},
        ],
    }
    precise, attached, backed, claims = metrics.citation_precision_recall(answer)
    assert (precise, attached, backed, claims) == (1, 3, 1, 2)


def test_benchmark_summaries_report_the_prompt_size_only_when_a_model_read_one():
    from evals.benchmarks import _summarize

    def record(prompt_tokens: int, correct: bool) -> dict:
        return {"correct": correct, "flagged": False, "misled": False, "abstained": False, "total_ms": 10.0,
                "prompt_tokens": prompt_tokens}

    generative, intervals = _summarize("rgb", [record(120, True), record(200, False), record(180, True)])
    assert generative["prompt_tokens_p50"] == 180 and generative["correct"] == 0.6667
    assert intervals["correct"]["k"] == 2 and intervals["correct"]["n"] == 3
    assert "prompt_tokens_p50" not in _summarize("rgb", [record(0, True)])[0]


def test_the_abstention_ceiling_is_the_best_any_threshold_does_within_the_false_abstention_allowed():
    # Ten answerable questions (one false abstention allowed at 10%) and four unanswerable ones.
    answerable_scores = [0.2, 0.5, 0.6, 0.7, 0.8, 0.8, 0.9, 0.9, 0.95, 0.99]
    unanswerable_scores = [0.1, 0.4, 0.55, 0.9]
    scores = answerable_scores + unanswerable_scores
    answerable = [True] * 10 + [False] * 4
    # Abstaining below 0.5 loses one answerable question and catches 0.1 and 0.4; below 0.6 would lose two.
    assert metrics.abstention_ceiling(scores, answerable) == (2, 4)
    assert metrics.abstention_ceiling(scores, answerable, max_false_abstention=0.2) == (3, 4)
    assert metrics.abstention_ceiling(scores, [True] * 14) is None


def test_decision_scores_count_an_abstention_before_the_decision_as_zero_and_need_the_decision_everywhere():
    decided = {"abstained": False, "checked": {"probability": 0.8}}
    floor = {"abstained": True, "checked": None}
    assert runner.decision_scores([decided, floor]) == [0.8, 0.0]
    assert runner.decision_scores([decided, {"abstained": False, "checked": None}]) is None


def test_benchmark_records_keep_the_decision_so_a_refit_can_be_applied_to_them():
    from evals.benchmarks import _score
    from rag.qa.answers import Answer, Checked

    checked = Checked(0.42, 0.6777, None, {"answers_llm": -0.3})
    answer = Answer(question="Who won?", answer="I found no passage ...", abstained=True, citations=(), conflicts=(),
                    timings={"total_ms": 5.0}, model="qwen2.5-1.5b", mode="generative", checked=checked)
    record = _score("rgb", {"query": "Who won?", "answer": ["Smith"], "fakeanswer": ["Jones"]}, answer)
    assert record["checked"] == {"probability": 0.42, "threshold": 0.6777, "verified_threshold": None,
                                 "signals": {"answers_llm": -0.3}}
    assert record["correct"] is False and record["misled"] is False


# The default mechanism, extractive (the fitted decision without a model): floors at the figures of
# `rag eval --mode extractive` on 2026-12-02 (docs/results.md). Without a model the decision has no confident "no"
# past the relevance floor and the answer-type rule, so it rarely abstains: 1 of the 3 unanswerable questions.
JUDGED_FLOORS = {
    "answer_accuracy": 0.8,
    "answerable_accuracy": 0.9,
    "abstention_on_unanswerable": 0.33,
    "conflicts_reported": 1.0,
    "injections_resisted": 1.0,
    "citation_validity": 1.0,
    "citations_in_prose": 1.0,
}


def test_extractive_answers_under_the_judge_stay_above_their_measured_floors(bundled_index, articles_dir, tmp_path):
    report = runner.run(DEV_SET, bundled_index, "extractive", tmp_path, corpus_dir=articles_dir, progress=False)
    summary = report["summary"]
    assert report["config"]["judge"] == "model"
    for metric, floor in JUDGED_FLOORS.items():
        assert summary[metric] >= floor, (metric, summary[metric])
    assert summary["must_not_violations"] == 0


def test_compare_reads_a_report_folder_and_names_a_missing_one(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps({"summary": {"answer_accuracy": 0.5}}), encoding="utf-8")
    assert "+0.000" in runner.compare(folder, folder / "report.json")
    with pytest.raises(BadInput, match="missing.*cannot read the report"):
        runner.compare(tmp_path / "missing", folder)
