"""``rag calibrate``: label decisions from public data, compute the judge's features for them, fit its logistic
models on one half and report them on the other, and write ``rag/qa/calibration/judge.json``.

Labelled decisions (none from the dev sets, which stay for evaluation):
- ``answers``: SQuAD 2.0 questions of the fit half of its articles (``benchmarks.squad_halves``), asked over
  all 646 paragraphs through the real pipeline; label 1 when the evidence the model would read contains a gold
  answer, 0 when the question is unanswerable or the evidence lacks the answer.
- ``supports``: RGB counterfactual pairs. For a question with a true snippet and its falsified copy, the claim
  "<query>: <answer>" is stated by the true snippet and not by the falsified one, and the reverse for the
  planted answer (4 decisions per question; the two snippets differ only in the value).
- ``supports`` from SQuAD 2.0's near misses, only with ``near_miss_supports`` (``rag calibrate
  --near-miss-supports``; tried, not adopted: see the README): the claim "<question>: <answer>" against the
  paragraph's sentence that holds the answer is stated (1); for an unanswerable question, the same claim with
  SQuAD's plausible answer against the sentence holding it is not (0): the sentence has the right kind of
  value, but the question was altered (another entity, a negation, a different event).
- ``answered``: the same SQuAD questions, the sentence of the evidence that holds the answer (or, for an
  unanswerable question, SQuAD's plausible answer) shown alone: label 1 when the question is answerable, 0 when
  not. This is what an answer that cites the right-looking sentence shows the judge.
- ``disagree``: RGB pairs of snippets: a true snippet and a falsified one give different answers (1); two
  true ones, or two falsified ones, give the same (0).
RGB's even ids are the fit half, its odd ids the held-out half. Each decision's features are stored in
``evals/cache/calibration/decisions.jsonl`` as they are computed, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evals import benchmarks, metrics
from evals.metrics import auc
from rag.config import Config
from rag.errors import SettingsError
from rag.qa.judge import CALIBRATION_FILE, KINDS, Judge, LogisticModel, support_features

if TYPE_CHECKING:
    from rag.qa.evidence import Evidence

FEATURES = {
    "answers": ("llm", "relevance", "dense", "coverage", "type_found", "names_found"),
    "answers_no_model": ("relevance", "dense", "coverage", "type_found", "names_found"),
    "supports": ("llm", "overlap", "new_overlap", "negation_mismatch"),
    "supports_no_model": ("overlap", "new_overlap", "negation_mismatch"),
    "disagree": ("llm", "value_overlap", "similarity", "numbers_differ", "names_differ"),
    "answered": ("llm", "relevance", "dense", "coverage", "type_found", "names_found"),
}
MIN_DECISIONS = 200  # no threshold is fitted on fewer labelled decisions (issue 16)
L2 = 1.0
# Supports: the threshold is the lowest whose false-acceptance rate on the fit half is at most this: a shown
# sentence its citations do not state is the failure users cannot see.
SUPPORTS_MAX_FALSE_ACCEPT = 0.05
# Answerability: the highest threshold that still answers this share of the fit half's questions whose evidence
# holds the answer. Balanced accuracy would abstain on half of them (the model's signal has an AUC of about 0.8);
# a user asking about what the archive does say should rarely be told it doesn't (target: <= 10-15%).
ANSWERS_MIN_ANSWERED = 0.85
# The check of a written answer's citations comes after that decision: the highest threshold that keeps this share
# of the fit half's answerable questions answered, so that the two checks together lose few true answers.
ANSWERED_MIN_KEPT = 0.9
MIN_ANSWERED = {"answers": ANSWERS_MIN_ANSWERED, "answers_no_model": ANSWERS_MIN_ANSWERED,
                "answered": ANSWERED_MIN_KEPT}


def _neutral() -> dict[str, LogisticModel]:
    return {k: LogisticModel((), (), (), (), 0.0, 0.5) for k in KINDS}


def _rgb_value(answer) -> str:
    if isinstance(answer, str):
        return answer
    return " and ".join(str(group[0] if isinstance(group, list) else group) for group in answer)


def squad_support_decision(item: dict) -> tuple[str, int, dict] | None:
    """(kind, label, inputs) for one SQuAD question: its (plausible) answer as a claim, against the sentence
    of the paragraph that holds it."""
    from rag.ingest.chunking import split_sentences

    if not item["spans"]:
        return None
    text, start = item["spans"][0]
    context = item["context"]
    sentences = [s for block in split_sentences(context, [(0, len(context))]) for s in block]
    source = next((context[s.start : s.end] for s in sentences if s.start <= start < s.end), None)
    if source is None:
        return None
    question = item["question"].strip()
    claim = f"{question.rstrip('?').strip()}: {text}."
    return "supports", int(not item["is_impossible"]), {"question": question, "claim": claim, "source": source}


def rgb_decisions(item: dict) -> Iterator[tuple[str, int, dict]]:
    """(kind, label, inputs) for one RGB question."""
    pairs = [(p, w) for p, w in zip(item["positive"], item["positive_wrong"], strict=False)
             if p != w and benchmarks.rgb_found(p, item["answer"]) and benchmarks.rgb_found(w, item["fakeanswer"])]
    if not pairs:
        return
    query = item["query"]
    true_claim, fake_claim = f"{query}: {_rgb_value(item['answer'])}.", f"{query}: {_rgb_value(item['fakeanswer'])}."
    right, wrong = pairs[0]
    yield "supports", 1, {"question": query, "claim": true_claim, "source": right}
    yield "supports", 0, {"question": query, "claim": true_claim, "source": wrong}
    yield "supports", 0, {"question": query, "claim": fake_claim, "source": right}
    yield "supports", 1, {"question": query, "claim": fake_claim, "source": wrong}
    yield "disagree", 1, {"question": query, "a": right, "b": wrong}
    if len(pairs) > 1:
        right2, wrong2 = pairs[1]
        yield "disagree", 1, {"question": query, "a": right, "b": wrong2}
        yield "disagree", 0, {"question": query, "a": right, "b": right2}
        yield "disagree", 0, {"question": query, "a": wrong, "b": wrong2}
        yield "disagree", 1, {"question": query, "a": wrong, "b": right2}


def collect(config: Config, data_dir: Path, cache: Path, squad_fit: int, squad_held_out: int,
            progress: bool = True, near_miss_supports: bool = False) -> list[dict]:
    """Every labelled decision with its features, computing only those not already in the cache file."""
    from rag.index.build import build_index
    from rag.qa.assistant import Assistant

    out = cache / "calibration" / "decisions.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            done[record["key"]] = record
    squad_config = config.replace(index_dir=cache / "squad2-index")
    build_index([benchmarks.corpus_of("squad2", data_dir, cache)], squad_config, progress=progress)
    assistant = Assistant(squad_config.replace(mode="generative"))
    generator = assistant.generator()
    judge = Judge(generator, _neutral())
    todo: list[tuple[str, str, str, int, dict]] = []
    for half in ("fit", "held-out"):
        for item in benchmarks.rgb_questions(data_dir, half):
            for j, (kind, label, inputs) in enumerate(rgb_decisions(item)):
                todo.append((f"rgb:{item['id']}:{j}", half, kind, label, inputs))
    for half, n in (("fit", squad_fit), ("held-out", squad_held_out)):
        for item in benchmarks.squad_questions(data_dir, half, n):
            todo.append((f"squad:{item['id']}", half, "answers", -1, item))
            todo.append((f"squad-answered:{item['id']}", half, "answered", -1, item))
            support = squad_support_decision(item) if near_miss_supports else None
            if support is not None:
                todo.append((f"squad-supports:{item['id']}", half, *support))
    for key, _, kind, _, inputs in todo:
        if kind == "supports" and key in done:
            # Cheap features are recomputed from the inputs (they may have changed since); the model's is cached.
            done[key]["features"].update(support_features(inputs["claim"], [inputs["source"]], inputs["question"]))
    records = [done[key] for key, *_ in todo if key in done]
    pending = [t for t in todo if t[0] not in done]
    started = time.perf_counter()
    with out.open("a", encoding="utf-8") as sink:
        for i, (key, half, kind, label, inputs) in enumerate(pending, start=1):
            record = _decide(key, half, kind, label, inputs, assistant, judge)
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            records.append(record)
            if progress and (i % 10 == 0 or i == len(pending)):
                rate = i / (time.perf_counter() - started)
                print(f"calibrate: {i}/{len(pending)} decisions, {rate:.2f}/s, "
                      f"about {(len(pending) - i) / rate:.0f} s left", file=sys.stderr, flush=True)
    return records


def _decide(key: str, half: str, kind: str, label: int, inputs: dict, assistant, judge: Judge) -> dict:
    if kind == "supports":
        verdict = judge.supports(inputs["claim"], [(1, inputs["source"])], inputs["question"])
        features = verdict.features
    elif kind == "disagree":
        verdict = judge.disagree(inputs["question"], (1, inputs["a"]), (2, inputs["b"]))
        features = verdict.features
    elif kind == "answered":
        prepared = assistant.prepare(inputs["question"])
        holding = answer_sentence(inputs, prepared.prompt_evidence)
        if holding is None:  # the evidence lacks the (plausible) answer: no decision to label
            return {"key": key, "half": half, "kind": kind, "label": None, "features": {}, "model_tokens": 0,
                    "model_ms": 0.0}
        label = int(not inputs["is_impossible"])
        verdict = judge.answered(prepared.question, [holding], prepared.search_text)
        features = verdict.features
    else:
        prepared = assistant.prepare(inputs["question"])
        shown = " ".join(e.text for e in prepared.prompt_evidence)
        found = any(benchmarks.squad_normalize(g) in benchmarks.squad_normalize(shown) for g in inputs["answers"])
        label = int(not inputs["is_impossible"] and found)
        verdict = judge.answers(prepared.question, prepared.prompt_evidence, prepared.search_text)
        features = verdict.features
    return {"key": key, "half": half, "kind": kind, "label": label, "features": features,
            "model_tokens": verdict.model_tokens, "model_ms": round(verdict.model_ms, 1)}


def answer_sentence(item: dict, evidence: Sequence[Evidence]) -> Evidence | None:
    """The evidence sentence that holds a SQuAD question's first (plausible) answer, if any."""
    if not item["spans"]:
        return None
    wanted = benchmarks.squad_normalize(item["spans"][0][0])
    return next((e for e in evidence if wanted and wanted in benchmarks.squad_normalize(e.text)), None)


# --- fitting ------------------------------------------------------------------------------------------------
def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2-regularized logistic regression by Newton's method on standardized features: (mean, scale, coef,
    intercept). A few features and a few hundred rows: no library needed."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    w = np.zeros(z.shape[1])
    penalty = np.eye(z.shape[1]) * l2
    penalty[0, 0] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(z @ w, -30, 30)))
        gradient = z.T @ (p - y) + penalty @ w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return mean, scale, w[1:], float(w[0])


def choose_threshold(kind: str, probabilities: list[float], labels: list[int]) -> float:
    candidates = sorted(set(round(p, 4) for p in probabilities)) or [0.5]
    pos = sum(labels)
    neg = len(labels) - pos

    def rates(t: float) -> tuple[float, float]:
        tpr = sum(p >= t and y for p, y in zip(probabilities, labels, strict=True)) / (pos or 1)
        fpr = sum(p >= t and not y for p, y in zip(probabilities, labels, strict=True)) / (neg or 1)
        return tpr, fpr

    if kind.startswith("supports"):
        allowed = [t for t in candidates if rates(t)[1] <= SUPPORTS_MAX_FALSE_ACCEPT]
        return min(allowed) if allowed else max(candidates)
    if kind in MIN_ANSWERED:
        allowed = [t for t in candidates if rates(t)[0] >= MIN_ANSWERED[kind]]
        return max(allowed) if allowed else min(candidates)
    return max(candidates, key=lambda t: (rates(t)[0] - rates(t)[1], -abs(t - 0.5)))


def _report(model: LogisticModel, rows: list[dict], kind: str) -> dict:
    probabilities = [model.probability(r["features"]) for r in rows]
    labels = [r["label"] for r in rows]
    pos = [p >= model.threshold for p, y in zip(probabilities, labels, strict=True) if y]
    neg = [p < model.threshold for p, y in zip(probabilities, labels, strict=True) if not y]
    report = {"n": len(rows), "positives": sum(labels), "auc": auc(probabilities, labels),
              "accepted_when_yes": metrics.rate(sum(pos), len(pos)),
              "rejected_when_no": metrics.rate(sum(neg), len(neg))}
    if "llm" in model.features:
        report["auc_model_alone"] = auc([r["features"]["llm"] for r in rows], labels)
    return report


def fit(records: list[dict]) -> dict:
    kinds = {}
    for kind in KINDS:
        source = kind.removesuffix("_no_model")
        rows = [r for r in records if r["kind"] == source and r["label"] is not None]
        train = [r for r in rows if r["half"] == "fit"]
        test = [r for r in rows if r["half"] == "held-out"]
        if len(train) < MIN_DECISIONS:
            raise SettingsError(f"{kind}: only {len(train)} labelled decisions in the fit half; "
                             f"at least {MIN_DECISIONS} are needed")
        names = FEATURES[kind]
        x = np.array([[r["features"][f] for f in names] for r in train], dtype=float)
        y = np.array([r["label"] for r in train], dtype=float)
        mean, scale, coef, intercept = fit_logistic(x, y)
        provisional = LogisticModel(names, tuple(mean), tuple(scale), tuple(coef), intercept, 0.5)
        threshold = choose_threshold(kind, [provisional.probability(r["features"]) for r in train],
                                     [r["label"] for r in train])
        model = LogisticModel(names, tuple(round(v, 6) for v in mean), tuple(round(v, 6) for v in scale),
                              tuple(round(v, 6) for v in coef), round(intercept, 6), threshold)
        kinds[kind] = {"features": list(names), "mean": list(model.mean), "scale": list(model.scale),
                       "coef": list(model.coef), "intercept": model.intercept, "threshold": model.threshold,
                       "fit": _report(model, train, kind), "held_out": _report(model, test, kind) if test else None}
    return kinds


def run(config: Config, data_dir: str | Path, cache_dir: str | Path = "evals/cache", squad_fit: int = 240,
        squad_held_out: int = 160, out: Path = CALIBRATION_FILE, progress: bool = True,
        near_miss_supports: bool = False) -> dict:
    data = Path(data_dir)
    if not data.is_dir():
        raise SettingsError(f"{data}: benchmark data folder not found (give --benchmarks-dir)")
    records = collect(config, data, Path(cache_dir), squad_fit, squad_held_out, progress, near_miss_supports)
    from rag.models import weights

    kinds = fit(records)
    result = {
        "version": 1,
        "model": weights.resolve(config.model_path).name,
        "command": f"rag calibrate --squad-fit {squad_fit} --squad-held-out {squad_held_out}"
                   + (" --near-miss-supports" if near_miss_supports else ""),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "decisions": {k: sum(r["kind"] == k for r in records) for k in ("answers", "supports", "disagree", "answered")},
        "kinds": kinds,
    }
    if out.is_file():
        # The decision to answer is fitted on its own (``rag calibrate --decision``) and kept across refits.
        previous = json.loads(out.read_text(encoding="utf-8"))
        result.update({k: previous[k] for k in ("fitted_decisions", "decision_command") if k in previous})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def render(result: dict) -> str:
    lines = [f"judge calibration ({result['model']}), {result['created']}: {result['command']}"]
    for kind, fitted in result["kinds"].items():
        held = fitted["held_out"] or {}
        lines.append(
            f"  {kind:17} threshold {fitted['threshold']:.3f}  fit n={fitted['fit']['n']} auc={fitted['fit']['auc']}"
            f"  held-out n={held.get('n')} auc={held.get('auc')} (model alone {held.get('auc_model_alone')})"
            f"  yes accepted {metrics.format_rate(held['accepted_when_yes']) if held else 'n/a'}"
            f"  no rejected {metrics.format_rate(held['rejected_when_no']) if held else 'n/a'}")
    return "\n".join(lines)
