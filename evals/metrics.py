"""How an answer is judged. Every rule here is documented in ``evals/README.md``."""

from __future__ import annotations

import math
import re
from pathlib import Path
from statistics import median, quantiles

from rag.ingest import cleaning, readers
from rag.qa.question import parse
from rag.qa.verification import is_refusal, support
from rag.text import MARKER_RUN, double_quoted, fold

SUPPORT_THRESHOLD = 0.6


def normalize(text: str) -> str:
    """Case- and accent-insensitive form for alias matching (Curaçao = curacao, ’ = ')."""
    return " ".join(fold(text).replace("–", "-").split())


def answer_correct(item: dict, answer: dict) -> bool:
    """Alias rules of the dev set: abstain when the gold answer is null; for conflict and list items every
    alias must appear; otherwise any one; and no ``must_not`` phrase may appear."""
    if item.get("answer") is None:
        return bool(answer["abstained"])
    if answer["abstained"]:
        return False
    text = normalize(answer["answer"])
    aliases = [normalize(a) for a in item.get("aliases", [])]
    if aliases:
        found = [a in text for a in aliases]
        ok = all(found) if item.get("type") in {"conflict", "list"} else any(found)
    else:
        ok = True
    return ok and not must_not_violations(item, answer)


def draft_asserts(draft: str) -> bool:
    """Whether a draft (the model's text before the checks) gives an answer: it says something and is not a
    refusal ("The evidence does not say ...")."""
    return bool(MARKER_RUN.sub(" ", draft).strip(" .\n")) and not is_refusal(draft)


def draft_correct(item: dict, draft: str) -> bool:
    """The draft scored by the same alias rule as the final answer: on an unanswerable question a draft is right
    when it gives no answer."""
    return answer_correct(item, {"answer": MARKER_RUN.sub(" ", draft), "abstained": not draft_asserts(draft)})


# The rows of the draft/final table (``draft_vs_final``): what the checks did to each draft.
DRAFT_ROWS = (
    ("right_kept", "answerable: draft right, final right"),
    ("right_lost", "answerable: draft right, final wrong (lost by the checks)"),
    ("wrong_mended", "answerable: draft wrong, final right"),
    ("wrong_wrong", "answerable: draft wrong, final wrong"),
    ("not_drafted", "answerable: no draft (abstained before writing)"),
    ("asserted_abstained", "unanswerable: draft asserted, final abstained"),
    ("asserted_shown", "unanswerable: draft asserted, final asserted"),
    ("refused", "unanswerable: draft gave no answer"),
    ("unanswerable_not_drafted", "unanswerable: no draft (abstained before writing)"),
)


def draft_vs_final(records: list[dict]) -> dict[str, int]:
    """Per question, the draft before the checks against the final answer (``DRAFT_ROWS``)."""
    counts = dict.fromkeys((key for key, _ in DRAFT_ROWS), 0)
    for r in records:
        drafted = bool(r.get("draft"))
        if r["answerable"]:
            if not drafted:
                key = "not_drafted"
            elif r["draft_correct"]:
                key = "right_kept" if r["correct"] else "right_lost"
            else:
                key = "wrong_mended" if r["correct"] else "wrong_wrong"
        elif not drafted:
            key = "unanswerable_not_drafted"
        elif draft_asserts(r["draft"]):
            key = "asserted_abstained" if r["abstained"] else "asserted_shown"
        else:
            key = "refused"
        counts[key] += 1
    return counts


def must_not_violations(item: dict, answer: dict) -> list[str]:
    text = normalize(answer["answer"])
    return [m for m in item.get("must_not", []) if normalize(m) in text]


def original_text(doc_id: str, corpus_dir: Path | None, stored_text: str | None) -> str | None:
    """The text a citation must match: the source file itself for plain-text articles under ``corpus_dir``,
    else the document text kept in the index (HTML and JSON sources)."""
    if corpus_dir is not None:
        path = corpus_dir / doc_id
        if path.is_file() and path.suffix.lower() in readers.TEXT_SUFFIXES:
            return readers.decode(path.read_bytes())
    return stored_text


def citation_valid(citation: dict, text: str | None) -> bool:
    return text is not None and text[citation["start"] : citation["end"]] == citation["quote"]


def citation_in_prose(citation: dict, text: str | None) -> bool:
    """The cited span lies inside the article's prose, not in page chrome."""
    if text is None:
        return False
    return any(a <= citation["start"] and citation["end"] <= b for a, b in cleaning.prose_blocks(text))


def claim_supported_by(claim: str, quotes: list[str], question: str) -> bool:
    """Offline support judgement: the claim's quotations occur in the cited spans, or the claim passes the
    lexical support test (numbers, names, content words; see ``rag.qa.verification.support``) against them."""
    if not quotes:
        return False
    joined = " ".join(quotes)
    quoted = double_quoted(claim, 2)
    if quoted and all(normalize(q).strip(" ,.") in normalize(joined) for q in quoted):
        return True
    asked = parse(question).terms
    return support(claim, quotes, SUPPORT_THRESHOLD, asked=asked, question=question) is not None


def claims_of(answer_text: str) -> list[tuple[str, list[int]]]:
    """Claims with the markers that follow them: every stretch of text that ends in markers is a claim
    ("A says “x” [1]; B says “y” [2]." holds two); text after the last marker is an uncited claim."""
    pieces = MARKER_RUN.split(answer_text)
    clauses = []
    for text, markers in zip(pieces[0::2], pieces[1::2], strict=False):
        clause = text.strip(" ;.")
        if clause:
            clauses.append((clause, [int(n) for n in re.findall(r"\d+", markers)]))
    trailing = pieces[-1].strip(" ;.") if len(pieces) % 2 == 1 else ""
    if trailing:
        clauses.append((trailing, []))
    return clauses


def citation_precision_recall(answer: dict) -> tuple[int, int, int, int]:
    """(precise citations, citations, claims their citations support, claims), as in ALCE: a claim is backed
    when its citations together support it; a citation is precise when the claim is backed and the citation
    either supports it alone or is needed (the others without it do not)."""
    quotes = {c["n"]: c["quote"] for c in answer["citations"]}
    question = answer["question"]
    precise = attached = backed = claims = 0
    for text, numbers in claims_of(answer["answer"]):
        claims += 1
        cited = [n for n in numbers if n in quotes]
        attached += len(cited)
        if not claim_supported_by(text, [quotes[n] for n in cited], question):
            continue
        backed += 1
        for n in cited:
            others = [quotes[m] for m in cited if m != n]
            if claim_supported_by(text, [quotes[n]], question) or not claim_supported_by(text, others, question):
                precise += 1
    return precise, attached, backed, claims


def retrieval_hits(item: dict, passages: list[dict]) -> int | None:
    """1-based rank of the first passage overlapping a gold supporting quote, or None."""
    for rank, passage in enumerate(passages, start=1):
        for gold in item.get("supporting", []):
            if gold["doc"] != passage["doc"]:
                continue
            start = passage["doc_text"].find(gold["quote"])
            if start >= 0 and start < passage["end"] and start + len(gold["quote"]) > passage["start"]:
                return rank
    return None


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (1..99), interpolated between the nearest values; 0.0 for no values."""
    if len(values) < 2:
        return float(values[0]) if values else 0.0
    return float(quantiles(values, n=100, method="inclusive")[q - 1])


def mid(values: list[float]) -> float:
    return float(median(values)) if values else 0.0


def wilson(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float] | None:
    """95% Wilson score interval of a rate: unlike the normal approximation it stays inside [0, 1] and
    is honest at the small counts of a dev set (15/15 is [0.80, 1.00], not [1.00, 1.00])."""
    if not trials:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * ((p * (1 - p) / trials + z * z / (4 * trials * trials)) ** 0.5) / denominator
    return round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)


def rate(successes: int, trials: int) -> dict:
    """A rate with its count and 95% Wilson interval, as every report states it."""
    return {"value": round(successes / trials, 4) if trials else None, "k": int(successes), "n": int(trials),
            "ci95": wilson(successes, trials)}


def format_rate(r: dict) -> str:
    if r["value"] is None:
        return "n/a"
    lo, hi = r["ci95"]
    return f"{r['value']:.2f} [{lo:.2f}, {hi:.2f}] ({r['k']}/{r['n']})"


def auc(scores: list[float], labels: list[int]) -> float | None:
    """Area under the ROC curve: the chance that a random positive scores above a random negative."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return round(wins / (len(pos) * len(neg)), 3)


def abstention_ceiling(scores: list[float], answerable: list[bool], max_false_abstention: float = 0.10
                       ) -> tuple[int, int] | None:
    """The most unanswerable questions that abstaining below *any* one threshold on ``scores`` would abstain on
    while abstaining on at most ``max_false_abstention`` of the answerable ones: (abstained, unanswerable).

    A diagnostic of the signal, not an operating point: the threshold is picked on the very questions it is
    scored on, so no decision made from these scores can do better on this set. Where it falls short of a target,
    a better threshold cannot reach the target; a better signal is needed."""
    pos = sorted(s for s, a in zip(scores, answerable, strict=True) if a)
    neg = [s for s, a in zip(scores, answerable, strict=True) if not a]
    if not pos or not neg:
        return None
    allowed = int(max_false_abstention * len(pos) + 1e-9)
    # Abstain below t: the highest t that abstains on at most ``allowed`` answerable questions is the
    # (allowed+1)-th smallest answerable score (every score below it, and no more).
    threshold = pos[allowed] if allowed < len(pos) else math.inf
    return sum(s < threshold for s in neg), len(neg)
