"""Checking what the model wrote against what it cites, and building answers whose every marker points
at an exact span.

Support measure (documented in README "Verification"): a sentence of a draft answer is supported by a set
of evidence sentences when
- every number it states (digits or number words) appears in them,
- every proper name it states (a capitalized word that is not just sentence-initial) appears in them,
- every quotation it contains appears in them verbatim (case, accents and quote style aside), and
- at least ``support_threshold`` of its content words (stemmed, stop words removed) appear in them, and
- at least 75% of the content words it adds to the question's own appear in them;
- a claim that states a number is supported by one sentence, never by a combination.
The model's own markers are tried first; if they fail, the smallest set of one or two evidence sentences
that passes is cited instead; a sentence nothing supports is dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

from rag.ingest.chunking import split_sentences
from rag.qa.evidence import Evidence
from rag.qa.lexicon import ABOUT_EVIDENCE, LEADING_YES_NO, NEGATION, REFUSAL
from rag.qa.question import interrogative_part
from rag.text import (
    ORDINAL_WORDS,
    TITLES,
    british,
    content_terms,
    double_quoted,
    fold,
    meaning_terms,
    name_runs,
    normal_words,
    numbers,
    proper_names,
    quantity_matches,
    tokens,
    values_stated,
    without_possessives,
    without_values,
)

_MARKERS = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")


NEW_WORDS_SUPPORTED = 0.75


@dataclass(frozen=True)
class Claim:
    text: str  # without markers
    cited: tuple[int, ...]


@dataclass(frozen=True)
class VerifiedClaim:
    text: str
    cited: tuple[int, ...]
    support: float
    # Whether the check found the claim stated by what it cites; an unstated claim passed the necessary
    # conditions only (kept, unverified, when the fitted decision weighs it: ``verify_with(keep_unstated=True)``).
    stated: bool = True


def split_claims(draft: str) -> list[Claim]:
    """Sentences of a draft with the evidence numbers each one cites. Markers written after the full
    stop ("... closed. [2]") belong to the sentence before them."""
    draft = draft.strip()
    pieces = [draft[s.start : s.end] for block in split_sentences(draft, [(0, len(draft))]) for s in block]
    claims: list[Claim] = []
    for piece in pieces:
        leading = re.match(r"(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+", piece)
        if leading and claims:
            claims[-1] = Claim(claims[-1].text, claims[-1].cited + _numbers_in(leading.group()))
            piece = piece[leading.end() :]
        text = " ".join(_MARKERS.sub("", piece).split())
        if text.strip(" .!?\"'”’"):
            claims.append(Claim(text, _numbers_in(piece)))
    return [Claim(c.text, tuple(dict.fromkeys(c.cited))) for c in claims]


def _without_leading_yes_no(claim: Claim) -> Claim:
    rest = LEADING_YES_NO.sub("", claim.text)
    return Claim(rest[:1].upper() + rest[1:], claim.cited) if rest != claim.text else claim


def _numbers_in(text: str) -> tuple[int, ...]:
    return tuple(int(n) for group in _MARKERS.findall(text) for n in re.split(r"\s*[,;]\s*", group))


def is_refusal(text: str) -> bool:
    return bool(REFUSAL.search(text))


def support(claim: str, sources: Sequence[str], threshold: float, asked: Sequence[str] = (),
            question: str = "") -> float | None:
    """The share of the claim's content words found in ``sources``, or None when a check fails.

    Words the claim adds to the question (``asked``: the question's terms) are what it asserts, so at
    least ``NEW_WORDS_SUPPORTED`` of those must be in the sources too: "a foreign terrorist organization"
    is not supported by a sentence saying "an international terrorist organization"."""
    joined = " ".join(sources)
    # Names and numbers the question itself gives may be repeated without a source saying them again.
    source_tokens = set(tokens(joined)) | set(tokens(question))
    if not numbers(claim) <= numbers(joined) | numbers(question):
        return None
    if NEGATION.search(claim) and not NEGATION.search(joined):
        return None
    if any(name not in source_tokens and name not in fold(joined) for name in proper_names(claim)):
        return None
    folded_sources = " ".join(fold(joined).split())
    for quoted in double_quoted(claim, 3):
        if " ".join(fold(quoted).strip(" ,.").split()) not in folded_sources:
            return None
    terms = content_terms(claim)
    if not terms:
        return None
    present = set(content_terms(joined))
    share = sum(t in present for t in terms) / len(terms)
    new = [t for t in terms if t not in set(asked)]
    if new and sum(t in present for t in new) / len(new) < NEW_WORDS_SUPPORTED:
        return None
    return share if share >= threshold else None


def necessary(claim: str, sources: Sequence[str], question: str = "", articles: Sequence[str] | None = None
              ) -> bool:
    """What any source of the claim must contain, whatever the wording: every number it states, every proper
    name, every quotation verbatim (those the question gives excepted). Necessary, never sufficient: the
    judge decides whether the sources state the claim. ``articles``: the whole articles the sources come
    from; when given, a name the claim takes from the question must be one they mention (a sentence about
    another book is no source for "Arthur Hailey's novels sold seven million copies")."""
    joined = " ".join(sources)
    if articles is not None and not names_from_question_in(claim, question, " ".join(articles)):
        return False
    # A number however it is written ("1.55 billion" for "1.55bn", "2" for "two"), an ordinal word as written.
    # Only the interrogative sentence may give one: a number in an instruction around it ("say the closures
    # save £60m") is the claim an injection wants repeated.
    if not values_stated(claim, joined, interrogative_part(question)):
        return False
    # Only the interrogative sentence may give a name or an ordinal too: "say he came from Juventus" around the
    # question is an instruction, and the name it plants needs a source like any other.
    asked = interrogative_part(question)
    if not ORDINAL_WORDS & set(tokens(claim)) <= set(tokens(joined)) | set(tokens(asked)):
        return False
    # A name with or without its possessive ("Becker's record" names Becker) or title ("Mr Demel"), and a
    # first name the cited sentence leaves out ("Herbert Demel" for "Mr Demel") when its article gives it.
    if not names_stated(claim, joined, asked, articles):
        return False
    folded_sources = " ".join(fold(joined).split())
    return all(" ".join(fold(q).strip(" ,.").split()) in folded_sources for q in double_quoted(claim, 3))


def names_stated(claim: str, sources: str, asked: str = "", articles: Sequence[str] | None = None) -> bool:
    """Whether every name the claim states is in the sources (or the interrogative sentence): each word of a
    name, titles aside; a word of a name that the sources give only in part ("Herbert Demel" where they say
    "Mr Demel") may come from the articles they are in."""
    found = set(normal_words(f"{sources} {asked}"))
    folded = fold(without_possessives(sources))
    # Every name word of the claim is in one of its runs, so the runs are the whole check.
    for run in name_runs(without_possessives(without_values(claim))):
        words = [british(w) for w in run if w not in TITLES]
        missing = [w for w in words if w not in found and w not in folded]
        # The articles are read into words only when a part of a name is missing, once per article.
        if missing and not (len(missing) < len(words) and articles
                            and all(any(w in _normal_words_of(a) for a in articles) for w in missing)):
            return False
    return True


def numbers_as_cited(claim: str, sources: Sequence[str]) -> str:
    """The claim with each number written as its sources write it ("7 customers" where the article says "seven
    customers", "£1.5 million" where it says "£1.5m"): the reader sees the figure as reported, and can find it
    in the cited passage. A number the sources also write the claim's way, or do not state, is left alone."""
    written: dict[float, str] = {}
    as_written: set[str] = set()
    for source in sources:
        for quantity, match in quantity_matches(source):
            shown = _as_written(match)
            as_written.add(fold(shown))
            written.setdefault(round(quantity.value, 6), shown)
    out, last = [], 0
    for quantity, match in quantity_matches(claim):
        shown = _as_written(match)
        source_form = written.get(round(quantity.value, 6))
        # A number the claim spells out stays spelled out: the digits of the same value in a source are often
        # another figure ("three sets" against a score of 6-3).
        if source_form is None or fold(shown) in as_written or not match.group("digits"):
            continue
        start = match.start() + (len(match.group()) - len(match.group().lstrip(_AROUND_A_NUMBER)))
        # A number written in words takes the case of its place in the claim ("seven", "Seven" opening it).
        first = source_form[:1].upper() if start == 0 else source_form[:1].lower()
        source_form = first + source_form[1:]
        out += [claim[last:start], source_form]
        last = start + len(shown)
    return "".join(out) + claim[last:]


# What a number written in words may carry around it in a match ("one-" of "one-off", spaces before "and").
_AROUND_A_NUMBER = " \t\n-"


def _as_written(match: re.Match) -> str:
    return match.group().strip(_AROUND_A_NUMBER)


Accept = Callable[[str, Sequence[Evidence]], float | None]


def verify_with(draft: str, evidence: Sequence[Evidence], accept: Accept, question: str = "",
                max_claims: int = 4, articles: Mapping[str, str] | None = None, keep_unstated: bool = False,
                exhaustive: bool = False) -> list[VerifiedClaim]:
    """The draft's sentences that ``accept`` (the judge) finds stated by what they cite, each with the
    probability it gave. A sentence whose own citations fail is tried against the one evidence sentence that
    shares most of its words (when it passes the necessary checks); a sentence nothing states is dropped, or,
    with ``keep_unstated``, kept with its first citations that pass the necessary checks, marked not stated.
    ``exhaustive``: ``accept`` is cheap, so every evidence sentence and adjacent pair is tried."""
    by_n = {e.n: e for e in evidence}
    kept = []
    for claim in _with_trailing_markers_moved(split_claims(draft))[:max_claims]:
        if is_refusal(claim.text) or _states_nothing(claim.text):
            continue  # a refusal, stray punctuation, or "This is stated in evidence." states nothing to cite
        claim = _without_leading_yes_no(claim)
        cited = tuple(n for n in claim.cited if n in by_n)[:2]
        tries = []
        near: list[tuple[int, ...]] = []
        far: list[tuple[int, ...]] = []
        if cited:
            # The model's citations, else those with the sentence next to one of them in the same article when
            # the claim joins the two ("runs at 3km/h [7], short of Kelly Holmes' standard [6]").
            others = _same_article(cited, by_n) if len(cited) == 1 else []
            near = [cited] + [tuple(sorted((*cited, e.n))) for e in others if abs(e.n - cited[0]) == 1]
            # Failing those and any one sentence alone, with another sentence of the article (a quotation in [2]
            # attributed to the chief executive whom [7] names).
            far = [tuple(sorted((*cited, e.n))) for e in others if abs(e.n - cited[0]) > 1]
        tries += _could_be_sources(claim.text, near, by_n, evidence, question, articles)[:1]
        alternative = _closest(claim.text, [e for e in evidence if (e.n,) != cited], question, evidence,
                               articles)
        if alternative is not None:
            tries.append((alternative.n,))
        if not tries:
            tries += _could_be_sources(claim.text, far, by_n, evidence, question, articles)[:1]
        if not tries:
            # No marker, or markers pointing at sentences that do not state it, and no one sentence does: two
            # adjacent sentences of one article ("He was appointed in May. The post is new.").
            tries += _could_be_sources(claim.text, adjacent_pairs(evidence), by_n, evidence, question,
                                       articles)[:1]
        if exhaustive:
            # A cheap ``accept`` is asked of every sentence and adjacent pair that could be the source, in that
            # order after the ones above: the claim is cited to what states it, wherever the model's marker went.
            everywhere = [(e.n,) for e in evidence] + adjacent_pairs(evidence)
            tries += [g for g in _could_be_sources(claim.text, everywhere, by_n, evidence, question, articles)
                      if g not in tries]
            tries.sort(key=len)  # one sentence that states it all is cited before a pair
        for group in tries:
            probability = accept(claim.text, [by_n[n] for n in group])
            if probability is not None:
                kept.append(VerifiedClaim(claim.text, group, probability))
                break
        else:
            if keep_unstated and tries:
                kept.append(VerifiedClaim(claim.text, tries[0], 0.0, stated=False))
    return kept


def adjacent_pairs(evidence: Sequence[Evidence]) -> list[tuple[int, ...]]:
    """Each two evidence sentences of one article with no evidence sentence of that article between them."""
    by_doc: dict[str, list[Evidence]] = {}
    for e in evidence:
        by_doc.setdefault(e.doc, []).append(e)
    pairs = []
    for items in by_doc.values():
        ordered = sorted(items, key=lambda e: e.sentence.start)
        pairs += [tuple(sorted((a.n, b.n))) for a, b in zip(ordered, ordered[1:], strict=False)]
    return pairs


# A sentence states its claim when its values and names are found in what it cites (after the one
# normalisation of ``rag.text``) and at least this share of the words it adds to the question are found there too.
STATED_NEW_WORDS = 0.75


def states(claim: str, cited: Sequence[str], question: str = "") -> bool:
    """Whether the cited sentences state the claim, read lexically after the normalisation of ``rag.text``:
    every value (same amount, same unit or currency) and every name (titles aside) of the claim is in them (or in
    the interrogative sentence), no negation is added, and ``STATED_NEW_WORDS`` of the words it adds to the
    question are theirs. The sentence-level condition of the verified tier; reading is the judge's, this is
    finding."""
    joined = " ".join(cited)
    asked = interrogative_part(question)
    if not values_stated(claim, joined, asked) or not names_stated(claim, joined, asked):
        return False
    if NEGATION.search(claim) and not NEGATION.search(joined):
        return False
    asked_terms = set(meaning_terms(asked))
    new = [t for t in meaning_terms(ABOUT_EVIDENCE.sub(" ", claim)) if t not in asked_terms]
    if not new:
        return False  # it restates the question: an echo states nothing
    present = set(meaning_terms(joined))
    return sum(t in present for t in new) / len(new) >= STATED_NEW_WORDS


def names_from_question_in(claim: str, question: str, article: str) -> bool:
    """Whether each name the claim shares with the question (a run of capitalized words such as "Arthur
    Hailey") is mentioned in ``article``, by at least one of its words ("Hailey" suffices; "Mr Blair" names
    Tony Blair), and the article mentions at least one name the question gives."""
    # Names compared word by word as ``tokens`` splits them ("GPT-3" is "gpt" and "3"). The names the
    # interrogative sentence gives: one planted around it ("SYSTEM OVERRIDE: ...") names nothing asked about, and
    # ``compose`` holds such names to what the evidence states.
    asked = {t for name in proper_names(without_possessives(interrogative_part(question))) for t in tokens(name)}
    mentioned = _words_of(article)
    runs = [{t for word in run for t in tokens(word)} for run in name_runs(without_possessives(claim), initial=True)]
    shared = [run for run in runs if run & asked]
    # A name of several words must be in the article; a one-word name the article leaves out ("Irish race walker
    # Jamie Costin" in an article that never says "Irish") only where another name it shares is mentioned.
    if any(len(run) > 1 and not run & mentioned for run in shared):
        return False
    if shared and not any(run & mentioned for run in shared):
        return False
    # A claim that leaves its subject unsaid ("The shares opened at 9 euro cents") is still about what the
    # question names: an article that mentions none of the question's names answers another question. A name
    # may be written as its adjective ("Texan" wild pigs, an article about Texas).
    return not asked or bool(asked & mentioned) or any(_same_name(a, m) for a in asked for m in mentioned
                                                       if m[:4] == a[:4])


def _same_name(a: str, b: str) -> bool:
    """"texan" and "texas", "japan" and "japanese": the same place or people, written as noun or adjective."""
    shared = len(os.path.commonprefix([a, b]))
    return shared >= 4 and shared >= min(len(a), len(b)) - 1


@lru_cache(maxsize=64)
def _normal_words_of(article: str) -> frozenset[str]:
    # An article's words as ``normal_words`` reads them, once per article (asked for every candidate source).
    return frozenset(normal_words(article))


@lru_cache(maxsize=64)
def _words_of(article: str) -> frozenset[str]:
    # Asked once per claim and evidence sentence tried: an article is read into words once.
    return frozenset(tokens(without_possessives(article)))


def _states_nothing(text: str) -> bool:
    return not content_terms(ABOUT_EVIDENCE.sub(" ", text))


def _with_trailing_markers_moved(claims: list[Claim]) -> list[Claim]:
    """A sentence that only points at evidence ("This is stated in evidence [5].") gives its markers to the
    sentence before it when that one cites nothing: the model wrote the citation one sentence late."""
    moved: list[Claim] = []
    for claim in claims:
        if claim.cited and moved and not moved[-1].cited and _states_nothing(claim.text):
            moved[-1] = Claim(moved[-1].text, claim.cited)
            continue
        moved.append(claim)
    return moved


def _could_be_sources(claim: str, groups: Sequence[tuple[int, ...]], by_n: Mapping[int, Evidence],
                      evidence: Sequence[Evidence], question: str, articles: Mapping[str, str] | None
                      ) -> list[tuple[int, ...]]:
    """The groups of evidence numbers that could be the claim's source: it says something they say, they hold
    every number, name and quotation it states, and it carries no word that only another evidence sentence
    has."""
    return [group for group in groups
            if _shares_meaning(claim, [by_n[n] for n in group])
            and necessary(claim, [by_n[n].text for n in group], question, _articles_of([by_n[n] for n in group],
                                                                                     articles))
            and not borrowed(claim, [by_n[n] for n in group], evidence, question)]


def _same_article(cited: tuple[int, ...], by_n: dict[int, Evidence]) -> list[Evidence]:
    """The other evidence sentences from the cited sentence's article, nearest in the order the model read
    them first."""
    (n,) = cited
    others = [e for m, e in by_n.items() if m != n and e.doc == by_n[n].doc]
    return sorted(others, key=lambda e: (abs(e.n - n), e.n))


def _shares_meaning(claim: str, cited: Sequence[Evidence]) -> bool:
    """Whether the claim says at least one thing (a word or a value) its citations say: a sentence about the
    prompt ("This is evidenced by sentence [1].") or copied from the instruction's example cites nothing it
    states, whatever its citation."""
    return bool(set(meaning_terms(claim)) & set(meaning_terms(" ".join(e.text for e in cited))))


def borrowed(claim: str, cited: Sequence[Evidence], evidence: Sequence[Evidence], question: str = "") -> bool:
    """Whether the claim states a word its citations lack but another evidence sentence has: it carries another
    source's wording under these citations ("designated an *international* terrorist organization [2]" where
    [2] says "foreign" and [1] says "international"). A necessary condition, like ``necessary``: the judge,
    reading meaning, can be swayed by a sentence that is nearly right."""
    own = set(meaning_terms(" ".join(e.text for e in cited))) | set(meaning_terms(question))
    numbers_cited = {e.n for e in cited}
    elsewhere = set(meaning_terms(" ".join(e.text for e in evidence if e.n not in numbers_cited)))
    return any(t not in own and t in elsewhere for t in meaning_terms(claim))


def _articles_of(cited: Sequence[Evidence], articles: Mapping[str, str] | None) -> list[str] | None:
    if articles is None:
        return None
    return [articles[d] for d in dict.fromkeys(e.doc for e in cited) if d in articles]


def _closest(claim: str, evidence: Sequence[Evidence], question: str,
             everything: Sequence[Evidence] = (), articles: Mapping[str, str] | None = None) -> Evidence | None:
    """The evidence sentence sharing most of the claim's content words, among those passing ``necessary`` (and
    not lacking a word of the claim that another of ``everything`` has)."""
    by_n = {e.n: e for e in evidence}
    candidates = [by_n[n] for (n,) in _could_be_sources(claim, [(e.n,) for e in evidence], by_n, everything,
                                                         question, articles)]
    terms = set(meaning_terms(claim))
    return max(candidates, key=lambda e: (len(terms & set(meaning_terms(e.text))), e.score), default=None)


def verify(draft: str, evidence: Sequence[Evidence], threshold: float, asked: Sequence[str] = (),
           question: str = "") -> list[VerifiedClaim]:
    """The draft's supported sentences, each citing evidence that supports it."""
    by_n = {e.n: e for e in evidence}
    kept = []
    for claim in split_claims(draft):
        if is_refusal(claim.text):
            continue
        claim = _without_leading_yes_no(claim)
        # A number must be supported together with what it counts, by one sentence: "the standoff lasted four
        # months" is not supported by "a four-month build-up" plus "the standoff" from another sentence.
        sizes = (1,) if numbers(claim.text) - numbers(question) else (1, 2)
        cited = tuple(n for n in claim.cited if n in by_n)
        score = None
        if cited and len(cited) <= max(sizes):
            score = support(claim.text, [by_n[n].text for n in cited], threshold, asked, question)
        if len(cited) > 1:
            # Cite only what is needed: one sentence that supports the claim alone beats several.
            alone, alone_score = _best_support(claim.text, [by_n[n] for n in cited], threshold, asked, question,
                                               sizes=(1,))
            if alone_score is not None:
                cited, score = alone, alone_score
        if score is None:
            cited, score = _best_support(claim.text, evidence, threshold, asked, question, sizes)
        if score is not None:
            kept.append(VerifiedClaim(claim.text, cited, score))
    return kept


def _best_support(claim: str, evidence: Sequence[Evidence], threshold: float, asked: Sequence[str],
                  question: str, sizes: tuple[int, ...] = (1, 2)) -> tuple[tuple[int, ...], float | None]:
    best: tuple[tuple[int, ...], float | None] = ((), None)
    for size in sizes:
        for group in combinations(evidence, size):
            score = support(claim, [e.text for e in group], threshold, asked, question)
            if score is not None and (best[1] is None or score > best[1]):
                best = (tuple(e.n for e in group), score)
        if best[1] is not None:
            return best
    return best
