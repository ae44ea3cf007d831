"""``rag calibrate --decision``: fit the one decision to answer on news questions.

The fit set (``bbc_fit_qa.jsonl``, never a set that is reported) is run through the assistant with the fitted
decision left out, so every question past the relevance floor is answered and every signal is recorded
(``Answer.checked``). Each answer is scored by the eval's alias rule; the label is whether the shown answer is
right (for a question the articles do not answer, no answer is right). A logistic model over the signals
(``rag.qa.decide.DECISION_SIGNALS``, the set among ``CANDIDATES`` with the best out-of-fold AUC) gives the
probability that the articles answer the question, and two operating points
are chosen on out-of-fold probabilities (five folds, so that a question never scores its own fit). The model
learns whether the articles answer the question; whether the shown answer is right sets the verified tier:

- **abstain** below the highest threshold that keeps false abstention on the fit set's answerable questions
  at or below ``MAX_FALSE_ABSTENTION`` (the relevance floor's abstentions count too);
- **verified** from the lowest threshold at which the answers shown are right at least ``MIN_VERIFIED_PRECISION``
  of the time (with at least ``MIN_VERIFIED`` answers above it).

The coefficients are then fitted on every question and written into the calibration file under
``fitted_decisions``, beside the command, the fit set's name and its figures.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from evals import metrics
from evals.calibrate import fit_logistic
from evals.metrics import auc
from evals.runner import load_dataset
from rag.config import Config
from rag.errors import SettingsError
from rag.progress import Reporter
from rag.qa.decide import DECISION_SIGNALS, DECISION_SIGNALS_NO_MODEL
from rag.qa.judge import CALIBRATION_FILE, DECISION_KINDS, LogisticModel

MAX_FALSE_ABSTENTION = 0.10
MIN_VERIFIED_PRECISION = 0.95
MIN_VERIFIED = 10
FOLDS = 5
# Fewer rows than this and no decision is fitted: the signals outnumber what the data can weigh.
MIN_ROWS = 60
# A decision that tells right answers from wrong ones no better than this (out-of-fold AUC) has no confident
# "no" to give: it never abstains past the relevance floor, and verifies nothing.
MIN_AUC = 0.6
SIGNALS = {"decision": DECISION_SIGNALS, "decision_no_model": DECISION_SIGNALS_NO_MODEL}
# The sets of signals the fit chooses among (by out-of-fold AUC): the judge's reading of the evidence alone; with
# its checks of the written answer; and every signal.
CANDIDATES = {
    "decision": (("answers_llm",), ("answers_llm", "supports", "claims_stated", "answered_llm"), DECISION_SIGNALS),
    "decision_no_model": (DECISION_SIGNALS_NO_MODEL,),
}
MODES = {"decision": "generative", "decision_no_model": "extractive"}
# Stronger than the judge's: about a hundred questions, a dozen signals.
L2 = 4.0


def collect(dataset: Path, config: Config, kind: str, out: Path, progress: bool = True) -> list[dict]:
    """Every fit question's signals and label, with the decision left out (so nothing past the floor abstains)."""
    from rag.qa.assistant import Assistant

    items = load_dataset(dataset)
    mode = MODES[kind]
    assistant = Assistant(config.replace(mode=mode))
    judge = assistant.judge(with_model=mode == "generative")
    for k in DECISION_KINDS:
        # Collecting for a fit: the signals are read before any fitted decision could act on them.
        judge.calibration.pop(k, None)
    rows = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as sink:
        for item in Reporter.of(progress, prefix="rag calibrate").iterate(items, f"{mode} answers", unit="question"):
            answer = assistant.ask(item["question"], id=item["id"], mode=mode)
            record = answer.to_dict()
            answerable = item.get("answer") is not None
            row = {"id": item["id"], "type": item.get("type"), "answerable": answerable,
                   "floor": answer.abstained,  # the relevance floor abstained: no signals
                   "label": int(answerable and not answer.abstained and metrics.answer_correct(item, record)),
                   "signals": answer.checked.signals if answer.checked is not None else None,
                   "answer": answer.answer[:300]}
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            rows.append(row)
    return rows


def _fold(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % FOLDS


def _model(names: tuple[str, ...], rows: list[dict], threshold: float = 0.5, verified: float | None = None
           ) -> LogisticModel:
    x = np.array([[r["signals"][f] for f in names] for r in rows], dtype=float)
    # What the decision learns is whether the articles answer the question: abstaining on a question they answer
    # is a false abstention even when the draft is wrong. Whether the shown answer is right ("label") sets the
    # verified operating point.
    y = np.array([float(r["answerable"]) for r in rows], dtype=float)
    mean, scale, coef, intercept = fit_logistic(x, y, L2)
    return LogisticModel(names, tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in scale),
                         tuple(round(float(v), 6) for v in coef), round(intercept, 6), threshold, verified)


def out_of_fold(names: tuple[str, ...], rows: list[dict]) -> list[float]:
    """Each row's probability from a model fitted on the other folds."""
    probabilities = [0.0] * len(rows)
    for fold in range(FOLDS):
        train = [r for r in rows if _fold(r["id"]) != fold]
        model = _model(names, train)
        for i, r in enumerate(rows):
            if _fold(r["id"]) == fold:
                probabilities[i] = model.probability(r["signals"])
    return probabilities


def operating_points(rows: list[dict], probabilities: list[float], floor_abstained: int, answerable: int
                     ) -> tuple[float, float | None]:
    """(abstain threshold, verified threshold) as the module docstring says."""
    candidates = sorted(set(probabilities)) + [1.01]
    allowed = 0.0
    for t in candidates:
        abstained = floor_abstained + sum(p < t and r["answerable"] for p, r in zip(probabilities, rows, strict=True))
        if abstained / max(answerable, 1) <= MAX_FALSE_ABSTENTION:
            allowed = t
    verified = None
    for t in sorted(set(probabilities), reverse=True):
        above = [r["label"] for p, r in zip(probabilities, rows, strict=True) if p >= t]
        if len(above) >= MIN_VERIFIED and sum(above) / len(above) >= MIN_VERIFIED_PRECISION:
            verified = t
        elif len(above) >= MIN_VERIFIED:
            break
    return allowed, verified


def figures(rows: list[dict], probabilities: list[float], threshold: float, verified: float | None,
            floor_rows: list[dict]) -> dict:
    """The fit set's figures at the operating points (out-of-fold probabilities)."""
    answerable = [r for r in rows if r["answerable"]] + [r for r in floor_rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]] + [r for r in floor_rows if not r["answerable"]]
    shown = [(p, r) for p, r in zip(probabilities, rows, strict=True) if p >= threshold]
    verified_rows = [r for p, r in shown if verified is not None and p >= verified]
    abstained_answerable = len([r for r in floor_rows if r["answerable"]]) + sum(
        p < threshold and r["answerable"] for p, r in zip(probabilities, rows, strict=True))
    abstained_unanswerable = len([r for r in floor_rows if not r["answerable"]]) + sum(
        p < threshold and not r["answerable"] for p, r in zip(probabilities, rows, strict=True))
    right = sum(r["label"] for _, r in shown) + abstained_unanswerable
    return {
        "questions": len(rows) + len(floor_rows),
        "auc_answerable": auc(probabilities, [int(r["answerable"]) for r in rows]),
        "auc_right_answer": auc(probabilities, [r["label"] for r in rows]),
        "best_precision_of_10_or_more": _best_precision(rows, probabilities),
        "accuracy": metrics.rate(right, len(rows) + len(floor_rows)),
        "false_abstention": metrics.rate(abstained_answerable, len(answerable)),
        "unanswerable_abstained": metrics.rate(abstained_unanswerable, len(unanswerable)),
        "verified_wrong": metrics.rate(sum(1 - r["label"] for r in verified_rows), len(verified_rows)),
        "verified_share": metrics.rate(len(verified_rows), len(shown)),
    }


def choose_signals(kind: str, rows: list[dict]) -> tuple[str, ...]:
    """Among the candidate sets of signals (``CANDIDATES``), the one whose out-of-fold AUC on the fit set is
    highest (ties: the smaller set): about a hundred questions cannot weigh a dozen signals at once."""
    def score(names: tuple[str, ...]) -> float:
        return auc(out_of_fold(names, rows), [int(r["answerable"]) for r in rows]) or 0.0

    return max(CANDIDATES[kind], key=lambda names: (score(names), -len(names)))


def _best_precision(rows: list[dict], probabilities: list[float]) -> float | None:
    """The highest share of right answers among the answers scored at or above any threshold (at least
    ``MIN_VERIFIED`` of them): what a verified tier could promise on the fit set."""
    best = None
    for t in set(probabilities):
        above = [r["label"] for p, r in zip(probabilities, rows, strict=True) if p >= t]
        if len(above) >= MIN_VERIFIED:
            best = max(best or 0.0, sum(above) / len(above))
    return round(best, 3) if best is not None else None


def fit(kind: str, rows: list[dict]) -> dict:
    # Abstentions that no fit can move: the relevance floor's, and a question asking for a kind of value the
    # evidence holds none of (``rag.qa.decide.conclude``).
    fixed = [r for r in rows if r["floor"] or r["signals"] is None or r["signals"].get("missing_type")]
    usable = [r for r in rows if r not in fixed]
    floor_rows = fixed
    if len(usable) < MIN_ROWS:
        raise SettingsError(f"{kind}: only {len(usable)} fit questions past the relevance floor; at least "
                            f"{MIN_ROWS} are needed")
    names = choose_signals(kind, usable)
    probabilities = out_of_fold(names, usable)
    threshold, verified = operating_points(usable, probabilities, sum(r["answerable"] for r in floor_rows),
                                           sum(r["answerable"] for r in rows))
    if (auc(probabilities, [int(r["answerable"]) for r in usable]) or 0.0) < MIN_AUC:
        threshold, verified = 0.0, None
    model = _model(names, usable, round(threshold, 4), round(verified, 4) if verified is not None else None)
    # The range each signal took on the fit set: a check whose answer cannot move the outcome within it is skipped.
    ranges = {f: [round(float(np.percentile([r["signals"][f] for r in usable], q)), 4) for q in (5, 95)]
              for f in names}
    return {"features": list(model.features), "mean": list(model.mean), "scale": list(model.scale),
            "coef": list(model.coef), "intercept": model.intercept, "threshold": model.threshold,
            "verified": model.verified, "ranges": ranges,
            "fit_out_of_fold": figures(usable, probabilities, threshold, verified, floor_rows)}


# The signals collected on the fit set are kept in the repository, so that a fresh clone refits the committed
# decision exactly (``rag calibrate --decision --refit``; tests/test_decision_fit.py).
SIGNALS_DIR = Path(__file__).resolve().parent / "decision_signals"


def signals_file(kind: str, dataset: Path, folder: Path = SIGNALS_DIR) -> Path:
    return folder / f"{kind}-{dataset.stem}.jsonl"


def read_signals(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run(config: Config, dataset: str | Path, signals_dir: Path = SIGNALS_DIR, out: Path = CALIBRATION_FILE,
        refit: bool = False, kinds: tuple[str, ...] = DECISION_KINDS, progress: bool = True) -> dict:
    dataset = Path(dataset)
    if not dataset.is_file():
        raise SettingsError(f"{dataset}: fit set not found (give --decision-dataset)")
    data = json.loads(out.read_text(encoding="utf-8"))
    fitted = data.setdefault("fitted_decisions", {})
    for kind in kinds:
        kept = signals_file(kind, dataset, signals_dir)
        rows = read_signals(kept) if refit and kept.is_file() else collect(dataset, config, kind, kept, progress)
        fitted[kind] = {**fit(kind, rows), "fit_set": dataset.name,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    data["decision_command"] = (f"rag calibrate --decision --decision-dataset {dataset.name} "
                                "--decision-index <its index>")
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return fitted


def render(fitted: dict) -> str:
    lines = []
    for kind, f in fitted.items():
        figs = f["fit_out_of_fold"]
        lines.append(f"  {kind:17} abstain below {f['threshold']}, verified from {f['verified']}; fit set "
                     f"({f['fit_set']}, out of fold, signals {', '.join(f['features'])}): auc {figs['auc_answerable']},"
                     f" accuracy "
                     f"{metrics.format_rate(figs['accuracy'])}, false abstention "
                     f"{metrics.format_rate(figs['false_abstention'])}, unanswerable abstained "
                     f"{metrics.format_rate(figs['unanswerable_abstained'])}, verified wrong "
                     f"{metrics.format_rate(figs['verified_wrong'])}")
    return "\n".join(lines)
