"""``rag eval``: run a question set through the assistant and write report.json, report.md and a chart."""

from __future__ import annotations

import json
import time
from pathlib import Path

from evals import metrics
from rag.config import MODES, Config
from rag.errors import BadInput
from rag.progress import Reporter
from rag.qa.question import read_questions

RECALL_K = 5
# The naive baseline (evals/naive.py) answers too, for comparison; it is not a mode of the assistant.
EVAL_MODES = (*MODES, "naive")


def load_dataset(path: str | Path) -> list[dict]:
    items = []
    for line_no, item in read_questions(str(path)):
        if isinstance(item, str):
            raise BadInput(f"{path}: line {line_no}: {item}")
        item.setdefault("id", f"q{line_no}")
        items.append(item)
    return items


def run(dataset: str | Path, config: Config, mode: str, out_dir: str | Path, corpus_dir: str | Path | None = None,
        limit: int | None = None, progress: bool | Reporter = True) -> dict:
    from rag.qa.assistant import Assistant

    if mode not in EVAL_MODES:
        raise BadInput(f"unknown mode '{mode}' (choose from {', '.join(EVAL_MODES)})")
    items = load_dataset(dataset)[:limit]
    assistant = Assistant(config.replace(mode="extractive" if mode == "naive" else mode))
    retriever = assistant.retriever
    reader = retriever.reader
    corpus = Path(corpus_dir) if corpus_dir else None
    naive = None
    if mode == "naive":
        from evals.naive import NaiveAssistant

        naive = NaiveAssistant(config, retriever)
    # Load every model before the clock starts: latency is per question, not start-up.
    if mode == "generative":
        assistant.generator()
    assistant.ask("warm-up question", mode="extractive")

    records = []
    for item in Reporter.of(progress, prefix="rag eval").iterate(items, f"{mode} answers", unit="question"):
        passages = retriever.search(item["question"], RECALL_K)
        passage_dicts = [dict(p.to_dict(), doc_text=reader.document_text(p.doc)) for p in passages]
        if naive is not None:
            answer = naive.ask(item["question"], id=item["id"])
        else:
            result = assistant.ask(item["question"], id=item["id"], mode=mode)
            answer = dict(result.to_dict(), prompt_tokens=result.prompt_tokens, fallback=result.fallback,
                          judge_tokens=result.judge_tokens, draft=result.draft)
        records.append(_judge(item, answer, passage_dicts, reader, corpus))
    report = summarize(records, mode=mode, dataset=str(dataset), model=_model_name(records), config=config)
    write_report(report, Path(out_dir))
    return report


def _judge(item: dict, answer: dict, passages: list[dict], reader, corpus: Path | None) -> dict:
    texts = {}
    for c in answer["citations"]:
        if c["doc"] not in texts:
            try:
                stored = reader.document_text(c["doc"])
            except KeyError:
                stored = None
            texts[c["doc"]] = metrics.original_text(c["doc"], corpus, stored)
    supporting, attached, backed, claims = metrics.citation_precision_recall(answer)
    answerable = item.get("answer") is not None
    rank = metrics.retrieval_hits(item, passages) if answerable and item.get("supporting") else None
    return {
        "id": item["id"],
        "type": item.get("type", "unknown"),
        "answerable": answerable,
        "question": item["question"],
        "answer": answer["answer"],
        "correct": metrics.answer_correct(item, answer),
        "abstained": answer["abstained"],
        "must_not_violations": metrics.must_not_violations(item, answer),
        "citations": len(answer["citations"]),
        # What each marker points at, so that a reader can check the shown sentences by hand.
        "cited": [{"n": c["n"], "doc": c["doc"], "quote": c["quote"]} for c in answer["citations"]],
        "citations_valid": sum(metrics.citation_valid(c, texts[c["doc"]]) for c in answer["citations"]),
        "citations_in_prose": sum(metrics.citation_in_prose(c, texts[c["doc"]]) for c in answer["citations"]),
        "citations_precise": supporting,
        "citations_attached": attached,
        "claims_backed": backed,
        "claims": claims,
        "conflicts_reported": len(answer["conflicts"]),
        "retrieval_rank": rank,
        "retrieval_scored": answerable and bool(item.get("supporting")),
        "timings": answer["timings"],
        "prompt_tokens": answer.get("prompt_tokens", 0),
        "judge_tokens": answer.get("judge_tokens", 0),
        "fallback": answer.get("fallback", False),
        # The model's text before the checks, scored by the same rule: what the checks kept, lost or mended.
        "draft": answer.get("draft", ""),
        "draft_correct": metrics.draft_correct(item, answer["draft"]) if answer.get("draft") else None,
        "model": answer.get("model"),
        "verified": bool(answer.get("verified")),
        # Each sentence shown, with whether the checks found it stated by what it cites (the verified tier's
        # condition besides the decision's operating point).
        "sentences": answer.get("sentences", []),
        # The fitted decision's probability, operating points and signals (what ``rag calibrate --decision``
        # fits on), where one was made.
        "checked": answer.get("checked"),
    }



def decision_scores(records: list[dict]) -> list[float] | None:
    """Each question's fitted probability that the articles answer it (0 where it was abstained on before the
    decision was reached: the relevance floor); None when a mechanism without the fitted decision answered."""
    scores = []
    for r in records:
        checked = r.get("checked")
        if checked is None and not r["abstained"]:
            return None
        scores.append(float(checked["probability"]) if checked is not None else 0.0)
    return scores if records else None


def summarize(records: list[dict], mode: str, dataset: str, model: str | None, config: Config) -> dict:
    intervals: dict[str, dict] = {}

    def _ratio(key: str, numerator: float, denominator: float) -> float | None:
        # Each rate's count and 95% Wilson interval go to ``intervals`` under the metric's name.
        intervals[key] = metrics.rate(int(numerator), int(denominator))
        return intervals[key]["value"]

    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    conflict = [r for r in records if r["type"] == "conflict"]
    injection = [r for r in records if r["type"] == "injection"]
    scored = [r for r in records if r["retrieval_scored"]]
    by_type: dict[str, list[dict]] = {}
    for r in records:
        by_type.setdefault(r["type"], []).append(r)
    stages = {stage: [r["timings"].get(stage, 0.0) for r in records] for stage in ("retrieve_ms", "judge_ms",
                                                                                    "generate_ms", "total_ms")}
    answered_prompts = [r["prompt_tokens"] for r in records if r["prompt_tokens"]]
    said = [r for r in records if not r["abstained"]]
    verified = [r for r in said if r["verified"]]
    no_conflict = [r for r in records if r["type"] != "conflict"]
    summary = {
        "questions": len(records),
        "answer_accuracy": _ratio("answer_accuracy", _count(records, "correct"), len(records)),
        "answerable_accuracy": _ratio("answerable_accuracy", _count(answerable, "correct"), len(answerable)),
        "abstention_on_unanswerable": _ratio("abstention_on_unanswerable", _count(unanswerable, "abstained"),
                                             len(unanswerable)),
        "false_abstention_on_answerable": _ratio("false_abstention_on_answerable", _count(answerable, "abstained"),
                                                 len(answerable)),
        "must_not_violations": sum(bool(r["must_not_violations"]) for r in records),
        "conflicts_reported": _ratio("conflicts_reported", sum(r["correct"] and r["conflicts_reported"] > 0
                                                               for r in conflict), len(conflict)),
        "false_conflicts": _ratio("false_conflicts", sum(not r["abstained"] and r["conflicts_reported"] > 0
                                                         for r in no_conflict), len(no_conflict)),
        "verified_answers": _ratio("verified_answers", len(verified), len(said)),
        "verified_wrong": _ratio("verified_wrong", sum(not r["correct"] for r in verified), len(verified)),
        "injections_resisted": _ratio("injections_resisted", _count(injection, "correct"), len(injection)),
        "citation_validity": _ratio("citation_validity", _count(records, "citations_valid"),
                                    _count(records, "citations")),
        "citations_in_prose": _ratio("citations_in_prose", _count(records, "citations_in_prose"),
                                     _count(records, "citations")),
        "citation_precision": _ratio("citation_precision", _count(records, "citations_precise"),
                                     _count(records, "citations_attached")),
        "citation_recall": _ratio("citation_recall", _count(said, "claims_backed"), _count(said, "claims")),
        f"retrieval_recall@{RECALL_K}": _ratio(f"retrieval_recall@{RECALL_K}",
                                               sum(r["retrieval_rank"] is not None for r in scored), len(scored)),
        f"retrieval_mrr@{RECALL_K}": round(sum(1 / r["retrieval_rank"] for r in scored if r["retrieval_rank"])
                                           / len(scored), 4) if scored else None,
        "extractive_fallbacks": sum(bool(r["fallback"]) for r in records),
        "prompt_tokens_p50": metrics.mid(answered_prompts),
        "prompt_tokens_p95": metrics.percentile(answered_prompts, 95),
        "judge_tokens_p50": metrics.mid([r["judge_tokens"] for r in records]),
    }
    scores = decision_scores(records)
    if scores is not None:
        # How well the decision's probability separates this set's answerable questions from the rest, and the
        # most unanswerable ones any threshold on it could abstain on at 10% false abstention (a ceiling).
        labels = [r["answerable"] for r in records]
        summary["decision_auc"] = metrics.auc(scores, labels)
        ceiling = metrics.abstention_ceiling(scores, labels)
        if ceiling is not None:
            summary["abstention_ceiling_at_10pct_false"] = _ratio("abstention_ceiling_at_10pct_false", *ceiling)
    if any(r.get("draft") for r in records):
        summary["drafts_right"] = _ratio("drafts_right", sum(bool(r.get("draft_correct")) for r in answerable),
                                         len(answerable))
        summary["lost_by_the_checks"] = metrics.draft_vs_final(records)["right_lost"]
    summary["quoted_fallbacks_wrong"] = sum(bool(r["fallback"]) and not r["correct"] for r in records)
    for stage, values in stages.items():
        summary[f"{stage}_p50"] = round(metrics.mid(values), 1)
        summary[f"{stage}_p95"] = round(metrics.percentile(values, 95), 1)
    return {
        "mode": mode,
        "model": model,
        # Which build of llama.cpp's kernels answered (rag.models.llama_cpu); None when no model ran.
        "llama_build": _llama_build(),
        "dataset": dataset,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": {"judge": config.judge, "k": config.k, "evidence_sentences": config.evidence_sentences,
                   "prompt_relevance": config.prompt_relevance, "prompt_passages": config.prompt_passages,
                   "prompt_sentence_share": config.prompt_sentence_share,
                   "abstain_threshold": config.abstain_threshold, "support_threshold": config.support_threshold},
        "summary": summary,
        "intervals": intervals,
        "by_type": {t: {"n": len(rs), **_by_type_rate(rs)}
                    for t, rs in sorted(by_type.items())},
        "draft_vs_final": metrics.draft_vs_final(records),
        "items": records,
    }


def _count(records: list[dict], field: str) -> int:
    return sum(int(r[field]) for r in records)


def _by_type_rate(records: list[dict]) -> dict:
    r = metrics.rate(sum(x["correct"] for x in records), len(records))
    return {"accuracy": r["value"], "ci95": r["ci95"]}


def _model_name(records: list[dict]) -> str | None:
    return next((r["model"] for r in records if r.get("model")), None)


def write_report(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    _chart(report, out_dir / "by_type.png")


def render_markdown(report: dict) -> str:
    s = report["summary"]
    lines = [f"# Evaluation: {report['dataset']} ({report['mode']}, model {report['model'] or 'none'})", "",
             "| metric | value |", "| --- | --- |"]
    intervals = report.get("intervals", {})
    lines[2:4] = ["| metric | value [95% CI] (k/n) |", "| --- | --- |"]
    lines += [f"| {k} | {metrics.format_rate(intervals[k]) if k in intervals else _fmt(v)} |" for k, v in s.items()]
    lines += ["", "| type | n | accuracy |", "| --- | --- | --- |"]
    lines += [f"| {t} | {v['n']} | {_fmt(v['accuracy'])} {v.get('ci95') or ''} |" for t, v in report["by_type"].items()]
    if any(r.get("draft") for r in report["items"]):
        lines += ["", draft_table(report)]
    lines += ["", "| id | type | correct | abstained | answer |", "| --- | --- | --- | --- | --- |"]
    for r in report["items"]:
        text = " ".join(r["answer"].split()).replace("|", "\\|")
        lines.append(f"| {r['id']} | {r['type']} | {r['correct']} | {r['abstained']} | {text[:160]} |")
    return "\n".join(lines) + "\n"


def draft_table(report: dict) -> str:
    """The draft before the checks against the final answer, question by question, as counts."""
    counts = report.get("draft_vs_final") or metrics.draft_vs_final(report["items"])
    rows = ["| draft → final | questions |", "| --- | --- |"]
    return "\n".join(rows + [f"| {label} | {counts.get(key, 0)} |" for key, label in metrics.DRAFT_ROWS])


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1 else f"{value:.0f}"
    return str(value)


def _chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types = list(report["by_type"])
    values = [report["by_type"][t]["accuracy"] or 0 for t in types]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(types, values, color="#3b6ea5")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"Accuracy by question type ({report['mode']})")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compare(a: str | Path, b: str | Path) -> str:
    """Metric deltas from report A to report B (each a report.json, or the folder ``rag eval --out`` wrote)."""
    first, second = _summary(a), _summary(b)
    lines = [f"{'metric':34} {'A':>10} {'B':>10} {'B-A':>10}"]
    for key in first:
        x, y = first.get(key), second.get(key)
        delta = f"{y - x:+.3f}" if isinstance(x, int | float) and isinstance(y, int | float) else ""
        lines.append(f"{key:34} {_fmt(x):>10} {_fmt(y):>10} {delta:>10}")
    return "\n".join(lines)


def _summary(path: str | Path) -> dict:
    return _report(path)["summary"]


def _report(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        report["summary"]  # noqa: B018 (a report has a summary)
        return report
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the report ({exc.strerror})") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BadInput(f"{path}: not a rag eval report") from exc


def print_summary(report: dict) -> None:
    print(f"{report['mode']} ({report['model'] or 'no model'}) on {report['dataset']}")
    intervals = report.get("intervals", {})
    for key, value in report["summary"].items():
        shown = metrics.format_rate(intervals[key]) if key in intervals else _fmt(value)
        print(f"  {key:34} {shown}")
    if any(r.get("draft") for r in report["items"]):
        print("  draft before the checks → final answer:")
        counts = report["draft_vs_final"]
        for key, label in metrics.DRAFT_ROWS:
            print(f"    {label:62} {counts[key]}")


# The rows of ``rag eval --table``: (metric, label), rates shown with their count and 95% interval.
TABLE_ROWS = (
    ("answer_accuracy", "accuracy (right answer or right abstention)"),
    ("answerable_accuracy", "answerable: answered correctly"),
    ("false_abstention_on_answerable", "answerable: abstained on (false abstention)"),
    ("abstention_on_unanswerable", "unanswerable: abstained on"),
    ("conflicts_reported", "disagreements reported (both values)"),
    ("false_conflicts", "a disagreement reported where there is none"),
    ("injections_resisted", "injections resisted"),
    ("must_not_violations", "must_not violations"),
    ("drafts_right", "answerable: draft right before the checks"),
    ("lost_by_the_checks", "answerable: draft right, final wrong (lost by the checks)"),
    ("extractive_fallbacks", "answers made of a quoted evidence sentence"),
    ("quoted_fallbacks_wrong", "of those, wrong"),
    ("verified_answers", "answers shown as verified"),
    ("verified_wrong", "verified answers wrong"),
    ("citation_validity", "citations that are exact spans"),
    ("judge_tokens_p50", "judge tokens p50"),
    ("total_ms_p50", "total ms p50"),
    ("total_ms_p95", "total ms p95"),
)


def command_of(report: dict) -> str:
    """The ``rag eval`` command that wrote ``report`` (its dataset, mode and judge)."""
    judge = report.get("config", {}).get("judge", "model")
    dataset = report["dataset"]
    bbc = "bbc" in Path(dataset).name
    where = " --corpus ../shared/corpus/bbc --index-dir bbc-index" if bbc else ""
    return (f"rag eval --dataset {dataset}{where} --mode {report['mode']}"
            + (" --judge lexical" if judge == "lexical" and report["mode"] != "naive" else ""))


def table(folders: list[str]) -> str:
    """A Markdown table of report folders side by side, each column's command under the table, so that no
    figure stands without the command that regenerates it."""
    reports = [_report(f) for f in folders]
    heads = [f"({i}) {Path(r['dataset']).stem}, {r['mode']}"
             + (f", {r['config'].get('judge')}" if r["mode"] != "naive" else "") for i, r in enumerate(reports, 1)]
    lines = ["| | " + " | ".join(heads) + " |", "| --- |" + " --- |" * len(reports)]
    for key, label in TABLE_ROWS:
        cells = []
        for r in reports:
            interval = r.get("intervals", {}).get(key)
            value = r["summary"].get(key)
            cells.append(metrics.format_rate(interval) if interval else ("n/a" if value is None else f"{value:g}"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"({i}) `{command_of(r)}`" + ("  " if i < len(reports) else "") for i, r in enumerate(reports, 1)]
    return "\n".join(lines)


def _llama_build() -> str | None:
    from rag.models import llama_cpu

    return llama_cpu.loaded()
