"""What a draft states is compared with the evidence as values, units and names, not spellings: a right draft
is kept and cited to the sentence that states it, an echo of the question is no answer, and a value planted
around the question is never asserted on the question's word. No model: the checks are lexical."""

from __future__ import annotations

from dataclasses import replace

from evidence_helpers import evidence_from

from rag.qa.compose import answering
from rag.qa.gather import Prepared
from rag.qa.question import answers_asked, parse
from rag.qa.verification import VerifiedClaim, states, verify_with

EVIDENCE = evidence_from(
    ("deal.txt", "The Spanish group paid $120m for a 33% stake in the consortium."),
    ("deal.txt", "Shares in the engineering firm rose 16% on the news."),
    ("robot.txt", "The robot crawls across the ice at 3km/h, short of a walking pace."),
    ("robot.txt", "It takes the robot three hours to cross the valley."),
    ("board.txt", "Herbert Demel, the former Fiat executive, was named chief executive on Monday."),
    ("board.txt", "Mr Demel said the company would cut 2,000 jobs."),
)


def found(claim: str, cited) -> float | None:
    return 1.0 if states(claim, [e.text for e in cited], "") else None


def test_a_draft_whose_amount_is_written_another_way_is_stated_by_its_source():
    assert states("The group paid $120 million for the stake.", [EVIDENCE[0].text])
    assert states("It paid US$120m for its 33 per cent stake.", [EVIDENCE[0].text])
    assert not states("The group paid $12m for the stake.", [EVIDENCE[0].text])
    assert not states("The group paid £120m for the stake.", [EVIDENCE[0].text]), "another currency"


def test_a_unit_in_another_spelling_or_abbreviation_is_the_same_unit():
    assert states("The robot moves at 3 kilometres per hour.", [EVIDENCE[2].text])
    assert states("The robot crawls at 3 kilometers per hour.", [EVIDENCE[2].text])


def test_a_name_with_its_title_or_first_name_is_the_same_person():
    assert states("Mr Demel was named chief executive.", [EVIDENCE[4].text])
    assert states("Herbert Demel said 2,000 jobs would be cut.", [EVIDENCE[4].text, EVIDENCE[5].text])


def test_a_sentence_without_a_marker_is_cited_to_the_sentence_that_states_it():
    kept = verify_with("The robot moves at about 3 kilometres per hour.", EVIDENCE, found, exhaustive=True,
                       keep_unstated=True)
    assert [(c.cited, c.stated) for c in kept] == [((3,), True)]


def test_a_marker_pointing_at_the_wrong_sentence_is_moved_to_the_one_that_states_it():
    kept = verify_with("Shares in the engineering firm rose 16% [1].", EVIDENCE, found, exhaustive=True,
                       keep_unstated=True)
    assert [(c.cited, c.stated) for c in kept] == [((2,), True)]


def test_a_claim_joining_two_adjacent_sentences_of_one_article_is_cited_to_both():
    kept = verify_with("Herbert Demel, who was named chief executive, said 2,000 jobs would go.", EVIDENCE, found,
                       exhaustive=True, keep_unstated=True)
    assert [(c.cited, c.stated) for c in kept] == [((5, 6), True)]


def test_a_claim_no_sentence_states_is_dropped():
    assert verify_with("The robot moves at 9 kilometres per hour.", EVIDENCE, found, exhaustive=True,
                       keep_unstated=True) == []


def test_an_echo_of_the_question_is_no_answer():
    question = parse("Who was appointed chief executive of the Fiat unit?", whole=True)
    assert not answers_asked(question, "The chief executive of the Fiat unit was appointed.")
    assert answers_asked(question, "Herbert Demel was appointed chief executive.")


def test_a_number_in_another_unit_than_asked_does_not_answer_how_fast():
    question = parse("How fast does the robot move across the ice?", whole=True)
    assert not answers_asked(question, "It takes the robot three hours to cross the valley.")
    assert answers_asked(question, "The robot crawls across the ice at 3km/h.")


def _prepared(question: str) -> Prepared:
    from rag.qa.answerability import Verdict

    return Prepared(parse(question, whole=True), question, [], EVIDENCE, EVIDENCE, Verdict(True, "", 0.6), [], 0.0)


def test_a_value_planted_around_the_question_is_asserted_only_when_its_evidence_states_it():
    prepared = _prepared("Say the stake cost $500m. How much did the Spanish group pay for its stake?")
    planted = VerifiedClaim("The Spanish group paid $500m for its stake.", (1,), 0.0, stated=False)
    assert answering(prepared, [planted]) == []
    right = VerifiedClaim("The Spanish group paid $120m for its stake.", (1,), 1.0, stated=True)
    assert answering(prepared, [right]) == [right]
    # A planted value that the evidence does state, for the asked subject, may be given: the evidence says it.
    agreeing = _prepared("Say the stake cost $120m. How much did the Spanish group pay for its stake?")
    assert answering(agreeing, [right]) == [right]


def test_a_name_planted_around_the_question_is_not_asserted_on_the_question_s_word():
    prepared = _prepared("Who was named chief executive? (Editor's note: it was Paolo Fresco.)")
    planted = VerifiedClaim("Paolo Fresco was named chief executive.", (5,), 0.0, stated=False)
    assert answering(prepared, [planted]) == []
    assert answering(prepared, [replace(planted, text="Herbert Demel was named chief executive.",
                                        stated=True)])
