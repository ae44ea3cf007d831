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


MERGER = ("SSL was formed by a three-way merger between Seton Healthcare, footwear specialists Scholl and "
          "condom-maker London International Group.")


def test_an_answer_that_names_part_of_the_list_asked_for_gets_its_cited_sentence_whole(assistant):
    evidence = evidence_from(("a.txt", MERGER))
    prepared = replace(assistant.prepare("What deadline did Trump give Maduro to leave Venezuela?"),
                       question=parse("Which three businesses merged to form SSL International?"),
                       evidence=evidence, prompt_evidence=evidence)
    partial = [VerifiedClaim("Seton Healthcare and Scholl merged to form SSL.", (1,), 1.0)]
    assert name_every_one(prepared, partial) == partial + [VerifiedClaim(f"“{MERGER}”", (1,), 1.0)]
    # Every name of the cited sentence already given: nothing is added.
    whole = [VerifiedClaim("Seton Healthcare, Scholl and London International Group merged.", (1,), 1.0)]
    assert name_every_one(prepared, whole) == whole
    # A question asking for one thing is answered as written.
    one = replace(prepared, question=parse("Which business did SSL buy last year?"))
    assert name_every_one(one, partial) == partial
