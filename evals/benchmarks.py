"""Public benchmarks, scored as their READMEs (in ``../shared/benchmarks``) describe. The data is read from
that folder, never copied into the repository; each benchmark's passages are indexed once into a cache folder.

- ``rgb``: RGB English counterfactual subset, pooled setting: every snippet (true and falsified) in one
  index; each query is asked. Correct = contains the true answer; flagged = a conflict is reported;
  misled = contains the planted answer but not the true one.
- ``squad2``: SQuAD 2.0 dev sample (100 answerable, 100 unanswerable), open retrieval over all 646
  paragraphs. Answerable: the SQuAD-normalized answer contains a normalized gold answer. Unanswerable: the
  assistant abstains.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import time
from pathlib import Path

from evals import metrics
from evals.common import BENCHMARKS
from rag.config import Config
from rag.errors import SettingsError
from rag.progress import Reporter

# Defaults of issue 16: 300 SQuAD questions end to end, 1,000 for the answerability decision alone.
DEFAULT_LIMITS = {"squad2": 300, "squad2-decision": 1000}


def squad_normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def rgb_found(answer_text: str, gold) -> bool:
    """RGB's rule: a string must appear; a list of lists needs one alternative of every inner list."""
    lowered = answer_text.lower()
    if isinstance(gold, str):
        return gold.lower() in lowered
    groups = [g if isinstance(g, list) else [g] for g in gold]
    return all(any(str(alt).lower() in lowered for alt in group) for group in groups)


def corpus_of(name: str, data_dir: Path, cache: Path) -> Path:
    """Write the benchmark's passages as JSON records the indexer reads (text and title only)."""
    out = cache / f"{name}-corpus"
    out.mkdir(parents=True, exist_ok=True)
    target = out / "passages.jsonl"
    if target.exists():
        return out
    records = []
    if name == "rgb":
        lines = (data_dir / "rgb_en_fact" / "passages.jsonl").read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, start=1):
            # Text only: the doc_id names the snippet's kind (true or falsified), which must not leak.
            records.append({"text": json.loads(line)["text"], "title": f"Snippet {n}"})
    else:
        for line in (data_dir / "squad2_dev_cs224n" / "passages.jsonl").read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            records.append({"text": item["text"], "title": item["title"].replace("_", " ")})
    target.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def squad_halves(data_dir: Path) -> tuple[list[str], list[str]]:
    """SQuAD 2.0's 16 articles split in two by the SHA-256 of their titles: the judge is calibrated on the
    first half ("fit") and every SQuAD figure is reported on the second ("held-out")."""
    data = json.loads((data_dir / "squad2_dev_cs224n" / "dev-v2.0.json").read_text(encoding="utf-8"))["data"]
    titles = sorted((a["title"] for a in data), key=_sha)
    return titles[: len(titles) // 2], titles[len(titles) // 2 :]


def squad_questions(data_dir: Path, half: str, n: int | None = None) -> list[dict]:
    """Questions of one half ("fit" or "held-out"), ordered by the SHA-256 of their ids (as the dataset's own
    sample is drawn), answerable and unanswerable interleaved so that any prefix is half of each."""
    fit, held_out = squad_halves(data_dir)
    wanted = set(fit if half == "fit" else held_out)
    data = json.loads((data_dir / "squad2_dev_cs224n" / "dev-v2.0.json").read_text(encoding="utf-8"))["data"]
    items = []
    for article in data:
        if article["title"] not in wanted:
            continue
        for number, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                answers = list(dict.fromkeys(a["text"] for a in qa["answers"]))
                items.append({"id": qa["id"], "question": qa["question"], "answers": answers,
                              "is_impossible": qa["is_impossible"], "pid": f"{article['title']}#{number}",
                              "title": article["title"], "context": paragraph["context"],
                              # where the (gold, or for an unanswerable question plausible) answer stands
                              "spans": [(a["text"], a["answer_start"]) for a in
                                        qa["answers"] or qa.get("plausible_answers", [])]})
    items.sort(key=lambda i: _sha(i["id"]))
    answerable = [i for i in items if not i["is_impossible"]]
    impossible = [i for i in items if i["is_impossible"]]
    mixed = [x for pair in zip(answerable, impossible, strict=False) for x in pair]
    return mixed[:n] if n else mixed


def rgb_questions(data_dir: Path, half: str | None = None) -> list[dict]:
    """RGB's 100 questions; ``half`` "fit" keeps the even ids (the judge's calibration), "held-out" the odd."""
    lines = (data_dir / "rgb_en_fact" / "en_fact.json").read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    if half is None:
        return items
    return [i for i in items if (i["id"] % 2 == 0) == (half == "fit")]


def _questions(name: str, data_dir: Path) -> list[dict]:
    if name == "rgb":
        return rgb_questions(data_dir)
    # End to end on the held-out half only: the judge was calibrated on the other.
    return squad_questions(data_dir, "held-out")


def run(name: str, config: Config, mode: str, data_dir: str | Path, out_dir: str | Path, limit: int | None = None,
        cache_dir: str | Path = "evals/cache", progress: bool | Reporter = True) -> dict:
    from rag.index.build import build_index
    from rag.qa.assistant import Assistant

    if name not in BENCHMARKS:
        raise SettingsError(f"unknown benchmark '{name}' (choose from {', '.join(BENCHMARKS)})")
    data = Path(data_dir)
    if not data.is_dir():
        raise SettingsError(f"{data}: benchmark data folder not found (give --benchmarks-dir)")
    cache = Path(cache_dir)
    base = "squad2" if name.startswith("squad2") else name
    corpus = corpus_of(base, data, cache)
    index_config = config.replace(index_dir=cache / f"{base}-index")
    limit = limit or DEFAULT_LIMITS.get(name)
    started = time.perf_counter()
    report = build_index([corpus], index_config, progress=progress)
    index_seconds = time.perf_counter() - started
    assistant = Assistant(index_config.replace(mode=mode))
    if mode == "generative":
        assistant.generator()
    assistant.ask("warm-up question", mode="extractive")
    items = _questions(base, data)[:limit]
    records = []
    for item in Reporter.of(progress, prefix="rag eval").iterate(items, f"{name} {mode}", unit="question"):
        question = item["query"] if name == "rgb" else item["question"]
        if name == "squad2-decision":
            records.append(_decide(assistant, item, mode))
            continue
        answer = assistant.ask(question, mode=mode)
        records.append(_score(name, item, answer))
    summary, intervals = _summarize(name, records)
    result = {"benchmark": name, "mode": mode, "judge": config.judge,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "model": next((r["model"] for r in records if r["model"]), None),
              "questions": len(records), "index": {"documents": report.documents, "chunks": report.chunks,
                                                   "seconds": round(index_seconds, 1)},
              "summary": summary, "intervals": intervals, "items": records}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    lines = [f"# {name} ({mode}, model {result['model'] or 'none'}), {len(records)} questions", "",
             "| metric | value [95% CI] (k/n) |", "| --- | --- |"]
    lines += [f"| {k} | {metrics.format_rate(intervals[k]) if k in intervals else metrics_fmt(v)} |"
              for k, v in summary.items()]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return result


def metrics_fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _score(name: str, item: dict, answer) -> dict:
    text = answer.answer
    base = {"question": item.get("query") or item.get("question"), "answer": text, "abstained": answer.abstained,
            "conflicts": len(answer.conflicts), "total_ms": answer.timings["total_ms"], "model": answer.model,
            "prompt_tokens": answer.prompt_tokens,
            # The fitted decision's probability and signals, as `rag eval` records them: a refitted decision can
            # then be applied to this run's questions before anything is rerun.
            "checked": answer.checked.to_dict() if answer.checked is not None else None}
    if name == "rgb":
        correct = not answer.abstained and rgb_found(text, item["answer"])
        planted = not answer.abstained and rgb_found(text, item["fakeanswer"])
        return dict(base, correct=correct, misled=planted and not correct,
                    flagged=bool(answer.conflicts) or "disagree" in text.lower())
    if item["is_impossible"]:
        return dict(base, answerable=False, correct=answer.abstained)
    normalized = squad_normalize(text)
    found = any(squad_normalize(g) and squad_normalize(g) in normalized for g in item["answers"])
    return dict(base, answerable=True, correct=not answer.abstained and found)


def _decide(assistant, item: dict, mode: str) -> dict:
    """The answerability decision alone: would the assistant answer this question from what it retrieved?"""
    started = time.perf_counter()
    prepared = assistant.prepare(item["question"])
    decision = assistant.decide(prepared, mode)
    answered = decision.answerable
    probability = decision.judgement.probability if decision.judgement is not None else None
    shown = squad_normalize(" ".join(e.text for e in prepared.prompt_evidence))
    found = any(squad_normalize(g) in shown for g in item["answers"])
    return {"question": item["question"], "answerable": not item["is_impossible"], "abstained": not answered,
            "correct": answered != item["is_impossible"], "answer_in_evidence": found, "probability": probability,
            "total_ms": (time.perf_counter() - started) * 1000, "model": None, "prompt_tokens": 0}


def _summarize(name: str, records: list[dict]) -> tuple[dict, dict]:
    """Rates (with their 95% Wilson intervals, returned beside them) and latency."""
    latency = [r["total_ms"] for r in records]
    prompted = [r["prompt_tokens"] for r in records if r["prompt_tokens"]]
    intervals: dict[str, dict] = {}

    def rate(key: str, rows: list[dict], field: str) -> float | None:
        intervals[key] = metrics.rate(sum(bool(r[field]) for r in rows), len(rows))
        return intervals[key]["value"]

    if name == "rgb":
        summary = {
            "correct": rate("correct", records, "correct"),
            "conflict_flagged": rate("conflict_flagged", records, "flagged"),
            "misled_to_planted_value": rate("misled_to_planted_value", records, "misled"),
            "abstained": rate("abstained", records, "abstained"),
        }
    else:
        answerable = [r for r in records if r["answerable"]]
        impossible = [r for r in records if not r["answerable"]]
        summary = {
            "answerable_correct" if name == "squad2" else "answerable_answered": rate(
                "answerable_correct" if name == "squad2" else "answerable_answered", answerable, "correct"),
            "answerable_abstained": rate("answerable_abstained", answerable, "abstained"),
            "unanswerable_abstained": rate("unanswerable_abstained", impossible, "correct"),
            "overall": rate("overall", records, "correct"),
        }
        if name == "squad2-decision":

            scored = [r for r in records if r["probability"] is not None]
            summary["judge_auc"] = metrics.auc([r["probability"] for r in scored],
                                               [int(r["answerable"]) for r in scored])
    summary["total_ms_p50"] = round(metrics.mid(latency), 1)
    if prompted:
        summary["prompt_tokens_p50"] = round(metrics.mid(prompted), 1)
    return summary, intervals
