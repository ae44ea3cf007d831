"""Composing an answer from typed claims: no model, a real index on disk."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from evidence_helpers import evidence_from

from rag.qa.assistant import Assistant
from rag.qa.compose import compose, extractive_claims, name_every_one
from rag.qa.question import parse
from rag.qa.verification import VerifiedClaim


@pytest.fixture(scope="module")
def assistant(bundled_index, embedder) -> Assistant:
    return Assistant(bundled_index.replace(mode="extractive"), embedder=embedder)


def test_markers_are_renumbered_in_order_of_appearance_and_each_points_at_its_sentence(assistant, articles_dir):
    prepared = assistant.prepare("What deadline did Trump give Maduro to leave Venezuela?")
    last, first = prepared.evidence[-1], prepared.evidence[0]
    assert last.n != 1, "the test needs evidence numbered beyond 1"
    claims = [VerifiedClaim("A claim citing the last sentence.", (last.n,), 1.0),
              VerifiedClaim("One citing the first and the last.", (first.n, last.n), 1.0)]
    composed = compose(replace(prepared, conflicts=[], hostile=()), claims)
    assert re.findall(r"\[(\d+)\]", composed.text) == ["1", "2", "1"]
    assert [c.n for c in composed.citations] == [1, 2]
    assert [c.quote for c in composed.citations] == [last.text, first.text]
    for citation in composed.citations:
        original = (articles_dir / citation.doc).read_text(encoding="utf-8")
        assert original[citation.start : citation.end] == citation.quote


def test_a_number_is_shown_as_the_cited_article_writes_it(assistant):
    prepared = assistant.prepare("What deadline did Trump give Maduro to leave Venezuela?")
    source = next(e for e in prepared.evidence if re.search(r"\b(?:one|two|three|four|five|six|seven|eight|nine)\b",
                                                             e.text, re.IGNORECASE))
    word = re.search(r"\b(one|two|three|four|five|six|seven|eight|nine)\b", source.text, re.IGNORECASE).group()
    digit = str("one two three four five six seven eight nine".split().index(word.lower()) + 1)
    composed = compose(replace(prepared, conflicts=[], hostile=()),
                       [VerifiedClaim(f"It was about {digit} of them.", (source.n,), 1.0)])
    assert composed.text.startswith(f"It was about {word.lower()} of them.")
    assert composed.sentences[0].text == f"It was about {word.lower()} of them."


def test_a_disagreement_leads_the_answer_and_its_values_cite_their_own_sentences(assistant):
    prepared = assistant.prepare("How did the United States classify the Cartel de los Soles?")
    assert prepared.conflicts, "the seed articles disagree about the label"
    composed = compose(prepared, extractive_claims(prepared))
    assert composed.text.startswith("The sources disagree: ")
    by_n = {c.n: c for c in composed.citations}
    for reported in composed.conflicts:
        for value in reported.values:
            assert value.citations and all(n in by_n for n in value.citations)
            assert any(value.value in " ".join(by_n[n].quote.split()) for n in value.citations)


MEN = ("Moazzam Begg, from Birmingham, and Martin Mubanga, Richard Belmar and Feroz Abbasi, from London, have been "
       "held by the US for almost three years.")
OTHER_TWO = ("It is not known whether the other two men released in January - Richard Belmar and Moazzam Begg - have "
             "written.")


def test_an_answer_that_names_fewer_than_the_number_asked_for_gets_the_sentence_that_lists_them(assistant):
    evidence = evidence_from(("a.txt", OTHER_TWO), ("b.txt", MEN))
    prepared = replace(assistant.prepare("What deadline did Trump give Maduro to leave Venezuela?"),
                       question=parse("Name the four British men whose release the US agreed to in January."),
                       evidence=evidence, prompt_evidence=evidence)
    partial = [VerifiedClaim("The four men are Richard Belmar and Moazzam Begg.", (1,), 1.0)]
    assert name_every_one(prepared, partial) == partial + [VerifiedClaim(f"“{MEN}”", (2,), 1.0)]
    # Four names given: nothing is added.
    whole = [VerifiedClaim("They are Moazzam Begg, Martin Mubanga, Richard Belmar and Feroz Abbasi.", (2,), 1.0)]
    assert name_every_one(prepared, whole) == whole
    # A question that does not ask for a number of things is answered as written.
    one = replace(prepared, question=parse("Who was released from the camp in January?"))
    assert name_every_one(one, partial) == partial
