"""Which evidence the model reads: the sentences near the best one's relevance, never fewer than two."""

from __future__ import annotations

import dataclasses

from evidence_helpers import evidence_from

from rag.qa.evidence import for_prompt


def scored(*scores: float):
    items = evidence_from(*((f"doc{n}.txt", f"Sentence number {n}.") for n in range(len(scores))))
    return [dataclasses.replace(e, score=s) for e, s in zip(items, scores, strict=True)]


def test_sentences_far_below_the_best_are_not_sent_to_the_model():
    chosen = scored(0.8, 0.7, 0.5, 0.47, 0.3, 0.2)
    assert [e.n for e in for_prompt(chosen, 0.6)] == [1, 2, 3]


def test_the_best_two_are_always_sent_even_when_the_second_scores_far_lower():
    chosen = scored(0.9, 0.3, 0.2)
    assert [e.n for e in for_prompt(chosen, 0.6)] == [1, 2]


def test_numbers_and_order_are_kept_so_citations_still_point_at_the_same_sentences():
    chosen = scored(0.8, 0.2, 0.1, 0.79)
    shown = for_prompt(chosen, 0.6)
    assert [(e.n, e.text) for e in shown] == [(1, "Sentence number 0."), (2, "Sentence number 1."),
                                              (4, "Sentence number 3.")]


def test_relevance_zero_sends_everything_and_no_evidence_sends_nothing():
    chosen = scored(0.8, 0.1, 0.05)
    assert for_prompt(chosen, 0.0) == chosen
    assert for_prompt([], 0.6) == []
