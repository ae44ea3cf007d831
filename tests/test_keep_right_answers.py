"""A right draft is kept: checks compare what sentences state (values, units, names), not how they are spelled,
find the citation a sentence lacks, and never put a quoted sentence that does not answer in place of a draft that
does; a sentence that restates the question is no answer. End to end with the default model (Qwen2.5-1.5B) as the
judge, over the bundled articles and three written for this test; drafts are given to ``Assistant.check``, the
way an answer written elsewhere is checked, so that each states the answer in the form under test."""

from __future__ import annotations

import pytest
from index_helpers import index_with_extra_files

from rag.qa.assistant import Assistant

pytestmark = pytest.mark.slow

ARTICLES = {
    "harbour_fund.txt": (
        "Baltic ports approve harbour fund\n\n"
        "The Baltic Ports Authority approved a $120m fund to rebuild the harbour at Klaipeda on Tuesday, officials "
        "said. Work on the new quays is expected to start in the spring and to take three years.\n"),
    "polar_rover.txt": (
        "Solar rover crosses Antarctic ice\n\n"
        "A solar-powered rover built by engineers at Dartmouth College crawls across the ice at 3km/h, short of a "
        "walking pace. It takes the rover three hours to cross the test valley near the Halley research station, "
        "where it is being tried out this winter.\n"),
    "harbour_post.txt": (
        "Klaipeda names harbour commissioner\n\n"
        "The first harbour commissioner of Klaipeda has been appointed, the city council said on Friday. Lina "
        "Petraityte, a former port engineer, will take up the new post in May.\n"),
}


@pytest.fixture(scope="module")
def assistant(tmp_path_factory, articles_dir, embedder) -> Assistant:
    config = index_with_extra_files(tmp_path_factory.mktemp("keep-right"), articles_dir, embedder, ARTICLES)
    return Assistant(config.replace(mode="generative"), embedder=embedder)


def test_a_draft_whose_amount_is_written_another_way_is_kept_and_found_stated(assistant):
    answer = assistant.check("How big is the fund the Baltic Ports Authority approved to rebuild Klaipeda harbour?",
                             "The Baltic Ports Authority approved a fund of $120 million to rebuild the harbour. [1]")
    assert not answer.abstained and not answer.fallback, answer.answer
    assert "$120m" in answer.answer, "the figure as the article writes it"
    # Its value, names and words are found in the sentence it cites: the verified tier's condition on sentences
    # (the tier itself waits for a decision that reaches 0.95 precision on held-out questions).
    assert [s.stated for s in answer.sentences] == [True]
    assert "harbour_fund.txt" in {c.doc for c in answer.citations}


def test_a_draft_sentence_without_a_marker_is_cited_to_the_sentence_that_states_it(assistant):
    answer = assistant.check("How fast does the Dartmouth solar-powered rover move across the ice?",
                             "The rover crawls across the ice at 3 kilometers per hour.")
    assert not answer.abstained and not answer.fallback, answer.answer
    assert answer.citations and "3km/h" in answer.citations[0].quote
    assert "three hours" not in answer.answer


def test_an_echo_of_the_question_is_not_accepted_as_an_answer(assistant):
    answer = assistant.check("Who has been appointed as the first harbour commissioner of Klaipeda?",
                             "The first harbour commissioner of Klaipeda has been appointed. [1]")
    assert answer.abstained or "Petraityte" in answer.answer, answer.answer
    assert not answer.answer.startswith("The first harbour commissioner of Klaipeda has been appointed")


def test_a_quote_that_does_not_state_what_is_asked_never_replaces_the_model_s_answer(assistant):
    answer = assistant.ask("How fast does the Dartmouth solar-powered rover move across the ice?")
    assert not (answer.fallback and "three hours" in answer.answer), answer.answer
    assert answer.abstained or "3" in answer.answer, answer.answer
