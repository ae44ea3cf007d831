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


# --- trimming the passages read whole (``prompt_sentence_share``) ------------------------------------------------
def passage_sentences(*pairs: tuple[str, float, float]):
    """(sentence, score, coverage) triples of one article, numbered in reading order."""
    items = evidence_from(*(("doc.txt", text) for text, _, _ in pairs))
    return [dataclasses.replace(e, score=s, coverage=c) for e, (_, s, c) in zip(items, pairs, strict=True)]


def test_a_trimmed_passage_keeps_the_sentences_near_the_best_with_their_numbers():
    from rag.qa.gather import trimmed
    from rag.qa.question import parse

    sentences = passage_sentences(("The council met on Monday.", 0.3, 0.0),
                                  ("The council approved the new bridge plan.", 0.8, 0.6),
                                  ("Residents had opposed it for years.", 0.2, 0.0),
                                  ("Work starts next spring.", 0.5, 0.2))
    kept = trimmed(parse("What did the council approve?"), sentences, 0.5)
    assert [(e.n, e.text) for e in kept] == [(2, "The council approved the new bridge plan."),
                                             (4, "Work starts next spring.")]


def test_a_low_scoring_sentence_that_holds_the_kind_of_value_asked_is_kept():
    from rag.qa.gather import trimmed
    from rag.qa.question import parse

    question = parse("How much will the new bridge cost the council?")
    sentences = passage_sentences(("The council approved the new bridge plan.", 0.8, 0.6),
                                  ("The bridge will cost £12m, paid over ten years.", 0.3, 0.2),
                                  ("Residents had opposed it since 1998.", 0.2, 0.0))
    # The sentence with the amount shares a word with the question ("bridge"); the one with a year shares none.
    assert [e.text for e in trimmed(question, sentences, 0.5)] == [
        "The council approved the new bridge plan.", "The bridge will cost £12m, paid over ten years."]


def test_share_zero_reads_the_passages_whole():
    from rag.qa.gather import trimmed
    from rag.qa.question import parse

    sentences = passage_sentences(("One.", 0.9, 0.5), ("Two.", 0.1, 0.0))
    assert trimmed(parse("What happened?"), sentences, 0.0) == sentences
