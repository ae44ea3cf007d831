"""Compose: an :class:`Answer`'s text, citations and reported disagreements from typed claims.

Every marker in the text is renumbered 1..m in order of appearance and points at a :class:`Citation`, an
exact span of an original file. Nothing here runs a model; the claims come verified (``check``) or quoted
from the evidence (``extractive_claims``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rag.qa import conflicts
from rag.qa.answers import AnswerSentence, Citation, ReportedConflict, ReportedValue
from rag.qa.evidence import Evidence, nearly_as_relevant
from rag.qa.gather import Prepared, names_someone_new, refers_back
from rag.qa.lexicon import REFERRING, SEVERAL_ASKED
from rag.qa.question import (
    VALUE_KINDS,
    Question,
    answers_asked,
    around_the_question,
    holds_expected_value,
    says_more_than,
)
from rag.qa.verification import VerifiedClaim, numbers_as_cited
from rag.text import (
    ORDINAL_WORDS,
    STOPWORDS,
    TITLES,
    british,
    double_quoted,
    has_specific_date,
    meaning_terms,
    name_runs,
    name_words,
    normal_words,
    quantities,
    tokens,
    values,
    without_possessives,
    without_values,
)

# Extractive answers quote the best sentence, and a second one when it scores at least this share of the best.
EXTRACTIVE_SECOND_SENTENCE = 0.9
# An abstention names this many of the closest articles, for the reader to look at.
CLOSEST_SHOWN = 3


@dataclass(frozen=True)
class Composed:
    """The parts of an :class:`Answer` that its claims decide."""

    text: str
    citations: tuple[Citation, ...]
    conflicts: tuple[ReportedConflict, ...]
    sentences: tuple[AnswerSentence, ...] = ()
    verified: bool = False


def compose(prepared: Prepared, claims: list[VerifiedClaim], verified: bool = False, lead: int | None = None
            ) -> Composed:
    """Answer text with markers renumbered 1..m in order of appearance, and the matching citations: first a
    warning for each document that addresses the assistant, then each disagreement between sources, then the
    claims. A claim's sentence is verified when the answer is and the judge found it stated by its citations."""
    by_n = {e.n: e for e in prepared.evidence}
    by_n.update({h.claim.n: h.claim for h in prepared.hostile if h.claim is not None})
    renumber: dict[int, int] = {}

    def markers(ns) -> str:
        out = []
        for n in ns:
            renumber.setdefault(n, len(renumber) + 1)
            out.append(f"[{renumber[n]}]")
        return "".join(out)

    parts = []
    reported = []
    for source in prepared.hostile:
        # The order itself is not repeated: echoing an injected instruction is what it wants.
        parts.append(f"Warning: {source.doc} (“{source.title}”) addresses the assistant with instructions; it is "
                     f"not used as evidence, and what it claims is shown beside the other sources.")
    for conflict in prepared.conflicts + _hostile_conflicts(prepared):
        clauses = []
        for value in conflict.values:
            # The articles by headline, as a reader knows them (the file names are in the citations).
            titles = list(dict.fromkeys(f"“{by_n[n].title}”" for n in value.evidence))
            verb = "say" if len(titles) > 1 else "says"
            clauses.append(f"{' and '.join(titles)} {verb} “{value.value}” {markers(value.evidence)}")
        parts.append("The sources disagree: " + "; ".join(clauses) + ".")
        reported.append(conflict)
    # Each number as the cited articles write it.
    claims = [replace(c, text=numbers_as_cited(c.text, [by_n[n].text for n in c.cited]))
              for c in claims]
    for claim in claims:
        parts.append(f"{claim.text.rstrip()} {markers(claim.cited)}")
    verified = verified and verifiable(prepared, claims, lead)
    sentences = tuple(AnswerSentence(c.text.rstrip(), tuple(renumber[n] for n in c.cited), verified, c.stated)
                      for c in claims)
    cited = tuple(
        Citation(new, by_n[old].doc, by_n[old].title, by_n[old].text, by_n[old].sentence.start,
                 by_n[old].sentence.end, by_n[old].score)
        for old, new in sorted(renumber.items(), key=lambda item: item[1])
    )
    conflicts_out = tuple(
        ReportedConflict(c.about, tuple(ReportedValue(v.value, tuple(renumber[n] for n in v.evidence))
                                        for v in c.values))
        for c in reported
    )
    return Composed(" ".join(parts), cited, conflicts_out, sentences, verified)


def verifiable(prepared: Prepared, claims: list[VerifiedClaim], lead: int | None) -> bool:
    """The verified tier's rule, chosen on the news fit set (docs/notes/2026-12-07-keep-the-right-answers.md):
    every sentence is stated by what it cites (its values, names and words found there: ``states``); together
    they answer what is asked (a value of the kind asked, not an echo); they cite the extractive lead (``lead``:
    the sentence retrieval ranks first for the asked kind, so the model and retrieval agree); the cited sentences
    name every name the interrogative sentence gives (no entity swapped); and no disagreement is reported (the
    sources do not agree, so neither value is verified)."""
    if not claims or prepared.conflicts or prepared.hostile or not all(c.stated for c in claims):
        return False
    if lead is None or not any(lead in c.cited for c in claims):
        return False
    if not answers_asked(prepared.question, " ".join(c.text for c in claims)):
        return False
    if prepared.question.kind == "quote" and not any(_quotes_words(c.text) for c in claims):
        return False  # what someone said is verified in their words, never in a paraphrase of them
    by_n = {e.n: e for e in prepared.evidence}
    cited = set(normal_words(" ".join(by_n[n].text for c in claims for n in c.cited if n in by_n)))
    return name_words(prepared.question.asked) <= cited


def _quotes_words(text: str) -> bool:
    """Whether a claim quotes someone's words (a quoted evidence sentence's own outer quotes aside)."""
    inner = text.strip()
    if inner[:1] in "“\"" and inner[-1:] in "”\"":
        inner = inner[1:-1]
    return bool(double_quoted(inner, 3))


def abstention_text(prepared: Prepared, reason: str) -> str:
    """What an abstention says: what was checked and found wanting, never that the articles lack the answer
    (what was not verified may still be there): how much was searched, why no answer, the closest articles,
    and any document that gave orders."""
    closest = list(dict.fromkeys(f"“{p.chunk.title}” ({p.doc})" for p in prepared.passages))[:CLOSEST_SHOWN]
    shown = f" The closest: {'; '.join(closest)}." if closest else ""
    warnings = "".join(f" Warning: {h.doc} (“{h.title}”) addresses the assistant with instructions; it was not "
                       f"used as evidence." for h in prepared.hostile)
    return (f"I found no passage that I could check states the answer. I searched {len(prepared.passages)} "
            f"passages, but {reason}.{shown}{warnings}")


def answering(prepared: Prepared, claims: list[VerifiedClaim]) -> list[VerifiedClaim]:
    """The claims that answer the question: those that say something it does not (an echo such as "The first
    commissioner has been appointed" is dropped), and none unless together they hold a value of the kind asked
    (``question.answers_asked``). Where sources disagree the disagreement is the answer, and the claims beside it
    stand as they are."""
    claims = [c for c in claims if not _planted(prepared, c)]
    if prepared.conflicts or prepared.hostile:
        return claims
    question = prepared.question
    saying = [c for c in claims if says_more_than(question, c.text)]
    return saying if saying and answers_asked(question, " ".join(c.text for c in saying)) else []


def _capitalized_words(text: str) -> set[str]:
    """Every capitalized word of ``text``, a sentence's first included, folded, titles and values aside."""
    return {british(w) for run in name_runs(without_possessives(without_values(text)), initial=True) for w in run
            if w not in TITLES}


def _planted(prepared: Prepared, claim: VerifiedClaim) -> bool:
    """Whether the claim asserts a value, name or ordinal that the user typed outside the interrogative sentence
    (an instruction or a claim around the question: "Say the fee was £60m.") without the checks having found it
    stated, for the asked subject, by the sentence it cites: a value the question supplies is never its own
    evidence."""
    question = prepared.question
    around = around_the_question(question.text)
    if not around:
        return False
    asked_values = values(question.asked)
    given_values = [v for v in values(around) if not any(v.same_as(a) for a in asked_values)]
    asked_words = set(normal_words(question.asked))
    # Every capitalized word counts, a sentence's first included: "Switzerland brokered the call." asserts it.
    given_names = _capitalized_words(around) - asked_words - STOPWORDS
    given_ordinals = (ORDINAL_WORDS & set(tokens(around))) - asked_words
    carried_values = [g for g in given_values if any(v.same_as(g) for v in values(claim.text))]
    carried_names = _capitalized_words(claim.text) & given_names
    carried_ordinals = given_ordinals & set(tokens(claim.text))
    if not (carried_values or carried_names or carried_ordinals):
        return False
    by_n = {e.n: e for e in prepared.evidence}
    cited = [by_n[n] for n in claim.cited if n in by_n]
    text = " ".join(e.text for e in cited)
    # What the claim takes from around the question must be in the sentences it cites (a name may be in their
    # article: the subject a context sentence names, "David Blunkett's guide dog"), and those sentences must be
    # about what the interrogative sentence asks (a word of it besides the planted ones): "£60m" in a sentence
    # about another deal is not the fee asked for. The question's other words, its context's too, say what that is.
    stated_values = values(text)
    words = set(normal_words(text))
    article_words = set(normal_words(" ".join(prepared.articles.get(e.doc, "") for e in cited)))
    planted = set(meaning_terms(" ".join([*carried_names, *carried_ordinals]))) | {
        t for g in carried_values for t in meaning_terms(around[g.start:g.end])}
    about = set(meaning_terms(question.text)) - planted
    found = (all(any(g.same_as(v) for v in stated_values) for g in carried_values)
             and carried_names <= words | article_words and carried_ordinals <= set(tokens(text)))
    # A name alone, found in the cited article, is the subject that article is about (no word need repeat).
    about_it = bool(about & set(meaning_terms(text))) or not (carried_values or carried_ordinals)
    return not (cited and found and about_it)


def closest_passage(prepared: Prepared, best: Evidence | None) -> str:
    """The closest evidence sentence, quoted with its article's headline, for an abstention to name."""
    if best is None:
        return ""
    return f"the closest passage (“{best.title}”) says: “{' '.join(best.text.split())}”"


def extractive_claims(prepared: Prepared, best: Evidence | None = None) -> list[VerifiedClaim]:
    """The best evidence sentence (``best``, else ``extractive_best``), quoted, and the next one when it is
    nearly as relevant (from another article if one qualifies); for "who" questions, the sentence that names
    the person."""
    best = best or extractive_best(prepared)
    ranked = [best] + sorted((e for e in prepared.evidence if e is not best), key=lambda e: -e.score)
    close = [e for e in ranked[1:] if e.score >= EXTRACTIVE_SECOND_SENTENCE * best.score]
    chosen = [best] + sorted(close, key=lambda e: e.doc == best.doc)[:1]
    if prepared.question.kind == "person" and refers_back(best.text, prepared.question):
        naming = _naming_sentence_before(best, prepared)
        if naming is not None:
            chosen.insert(0, naming)
    return [VerifiedClaim(_quoted(e.text), (e.n,), 1.0) for e in chosen]


def extractive_best(prepared: Prepared) -> Evidence:
    """The sentence an extractive answer leads with: the most relevant, or for "when" and "how many" questions
    a nearly as relevant one that holds a date or a number."""
    ranked = sorted(prepared.evidence, key=lambda e: -e.score)
    return _best_of_the_expected_kind(prepared.question, ranked) or ranked[0]


def name_the_person(prepared: Prepared, claims: list[VerifiedClaim]) -> list[VerifiedClaim]:
    """A "who" answer that only says "the US President wrote it" gets the evidence sentence naming him."""
    question = prepared.question
    if question.kind != "person" or not claims:
        return claims
    if not any(REFERRING.search(c.text) for c in claims) and any(names_someone_new(c.text, question) for c in claims):
        return claims
    cited = {n for c in claims for n in c.cited}
    by_n = {e.n: e for e in prepared.evidence}
    for n in sorted(cited):
        naming = _naming_sentence_before(by_n[n], prepared)
        if naming is not None:
            return claims + [VerifiedClaim(_quoted(naming.text), (naming.n,), 1.0)]
    return claims


def name_every_one(prepared: Prepared, claims: list[VerifiedClaim]) -> list[VerifiedClaim]:
    """An answer to a question that asks for several things by their number ("Which four men ...") that names
    fewer gets the most relevant evidence sentence naming as many, the answer's names among them, quoted: small
    models name two of four names they read in one sentence, and the reader is owed the list as an article
    gives it."""
    wanted = several_asked(prepared.question)
    if not claims or wanted is None:
        return claims
    asked = set(tokens(without_possessives(prepared.question.asked)))

    def names_in(text: str) -> list[tuple[str, ...]]:
        return [run for run in name_runs(without_possessives(text)) if not set(run) <= asked]

    given = names_in(" ".join(c.text for c in claims))
    if len(given) >= wanted:
        return claims
    for item in sorted(prepared.evidence, key=lambda e: -e.score):
        words = set(tokens(without_possessives(item.text)))
        if len(names_in(item.text)) >= wanted and all(set(run) & words for run in given):
            quoted = VerifiedClaim(_quoted(item.text), (item.n,), 1.0)
            return claims if any(c.text == quoted.text for c in claims) else claims + [quoted]
    return claims


def several_asked(question: Question) -> int | None:
    """How many things the question asks for by number ("Which three businesses" → 3), or None."""
    match = SEVERAL_ASKED.search(question.asked)
    if match is None:
        return None
    return int(quantities(match.group("count"))[0].value)


def _hostile_conflicts(prepared: Prepared) -> list[conflicts.Conflict]:
    """What a hostile document claims, set beside what the best evidence from the other articles says."""
    if not prepared.prompt_evidence:
        return []
    best = prepared.prompt_evidence[0]
    about = prepared.question.focus.rstrip("?").strip()
    return [conflicts.Conflict(about, (conflicts.ConflictValue(" ".join(best.text.split()), (best.n,)),
                                       conflicts.ConflictValue(" ".join(h.claim.text.split()), (h.claim.n,))))
            for h in prepared.hostile if h.claim is not None]


def _best_of_the_expected_kind(question: Question, ranked: list[Evidence]) -> Evidence | None:
    """For "when" and "how many" questions, the most relevant sentence that holds a date (a calendar date
    first) or a number, among those nearly as relevant as the best."""
    if question.kind not in VALUE_KINDS:
        return None
    close = nearly_as_relevant(ranked)
    specific = [e for e in close if has_specific_date(e.text)] if question.kind == "date" else []
    return next(iter(specific), None) or next((e for e in close if holds_expected_value(question, e.text)), None)


def _naming_sentence_before(item: Evidence, prepared: Prepared) -> Evidence | None:
    """The closest evidence sentence before ``item`` in its article that names someone the question does not."""
    earlier = [e for e in prepared.evidence if e.doc == item.doc and e.sentence.end <= item.sentence.start
               and names_someone_new(e.text, prepared.question)]
    return max(earlier, key=lambda e: e.sentence.start) if earlier else None


def _quoted(text: str) -> str:
    text = " ".join(text.split())
    return text if text.startswith(("“", '"')) else f"“{text}”"
