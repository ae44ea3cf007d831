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

import json
import re
import string
import sys
import time
from pathlib import Path

from evals import metrics
from rag.config import Config

BENCHMARKS = ("rgb", "squad2")


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


def _corpus(name: str, data_dir: Path, cache: Path) -> Path:
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


def _questions(name: str, data_dir: Path) -> list[dict]:
    if name == "rgb":
        lines = (data_dir / "rgb_en_fact" / "en_fact.json").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    lines = (data_dir / "squad2_dev_cs224n" / "sample_200.jsonl").read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    # Interleave answerable and unanswerable so that --limit keeps both kinds.
    answerable = [i for i in items if not i["is_impossible"]]
    impossible = [i for i in items if i["is_impossible"]]
    return [x for pair in zip(answerable, impossible, strict=False) for x in pair]


def run(name: str, config: Config, mode: str, data_dir: str | Path, out_dir: str | Path, limit: int | None = None,
        cache_dir: str | Path = "evals/cache", progress: bool = True) -> dict:
    from rag.indexing import build_index
    from rag.pipeline import Assistant

    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark '{name}' (choose from {', '.join(BENCHMARKS)})")
    data = Path(data_dir)
    if not data.is_dir():
        raise ValueError(f"{data}: benchmark data folder not found (give --benchmarks-dir)")
    cache = Path(cache_dir)
    corpus = _corpus(name, data, cache)
    index_config = config.replace(index_dir=cache / f"{name}-index")
    started = time.perf_counter()
    report = build_index([corpus], index_config, progress=progress)
    index_seconds = time.perf_counter() - started
    assistant = Assistant(index_config.replace(mode=mode))
    if mode == "generative":
        assistant.generator()
    assistant.ask("warm-up question", mode="extractive")
    items = _questions(name, data)[:limit]
    records = []
    bar = items
    if progress:
        from tqdm import tqdm

        bar = tqdm(items, desc=f"{name} {mode}", unit="q", file=sys.stderr)
    for item in bar:
        question = item["query"] if name == "rgb" else item["question"]
        answer = assistant.ask(question, mode=mode)
        records.append(_score(name, item, answer))
    summary = _summarize(name, records)
    result = {"benchmark": name, "mode": mode, "model": next((r["model"] for r in records if r["model"]), None),
              "questions": len(records), "index": {"documents": report.documents, "chunks": report.chunks,
                                                   "seconds": round(index_seconds, 1)},
              "summary": summary, "items": records}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    lines = [f"# {name} ({mode}, model {result['model'] or 'none'}), {len(records)} questions", "",
             "| metric | value |", "| --- | --- |"] + [f"| {k} | {metrics_fmt(v)} |" for k, v in summary.items()]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return result


def metrics_fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _score(name: str, item: dict, answer) -> dict:
    text = answer.answer
    base = {"question": item.get("query") or item.get("question"), "answer": text, "abstained": answer.abstained,
            "conflicts": len(answer.conflicts), "total_ms": answer.timings["total_ms"], "model": answer.model,
            "prompt_tokens": answer.prompt_tokens}
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


def _summarize(name: str, records: list[dict]) -> dict:
    n = len(records) or 1
    latency = [r["total_ms"] for r in records]
    prompted = [r["prompt_tokens"] for r in records if r["prompt_tokens"]]
    prompt = {"prompt_tokens_p50": round(metrics.mid(prompted), 1)} if prompted else {}
    if name == "rgb":
        return {
            "correct": round(sum(r["correct"] for r in records) / n, 3),
            "conflict_flagged": round(sum(r["flagged"] for r in records) / n, 3),
            "misled_to_planted_value": round(sum(r["misled"] for r in records) / n, 3),
            "abstained": round(sum(r["abstained"] for r in records) / n, 3),
            "total_ms_p50": round(metrics.mid(latency), 1), **prompt,
        }
    answerable = [r for r in records if r["answerable"]]
    impossible = [r for r in records if not r["answerable"]]
    return {
        "answerable_correct": round(sum(r["correct"] for r in answerable) / (len(answerable) or 1), 3),
        "answerable_abstained": round(sum(r["abstained"] for r in answerable) / (len(answerable) or 1), 3),
        "unanswerable_abstained": round(sum(r["correct"] for r in impossible) / (len(impossible) or 1), 3),
        "overall": round(sum(r["correct"] for r in records) / n, 3),
        "total_ms_p50": round(metrics.mid(latency), 1), **prompt,
    }
