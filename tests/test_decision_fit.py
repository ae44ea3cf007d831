"""Fitting the one decision to answer (evals/decision_fit.py): reproducible from the committed signals, and its
operating points keep the promises the calibration file states."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from shared_data import SHARED

from evals import decision_fit
from rag.qa.judge import CALIBRATION_FILE, DECISION_KINDS, load_calibration

ROOT = Path(__file__).resolve().parent.parent
FIT_SET = Path("bbc_fit_qa.jsonl")
SHARED_FIT_SET = SHARED / "evals" / FIT_SET


@pytest.mark.parametrize("kind", DECISION_KINDS)
def test_refitting_the_committed_signals_gives_the_committed_decision(kind):
    committed = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))["fitted_decisions"][kind]
    rows = decision_fit.read_signals(decision_fit.signals_file(kind, FIT_SET))
    refitted = decision_fit.fit(kind, rows)
    assert {k: committed[k] for k in refitted} == json.loads(json.dumps(refitted))


def test_the_abstention_threshold_keeps_false_abstention_within_the_bound():
    rows = [{"id": f"q{i}", "answerable": i % 4 != 0, "label": int(i % 4 != 0 and i % 3 != 0)} for i in range(40)]
    probabilities = [0.9 if r["label"] else (0.3 if r["answerable"] else 0.1) for r in rows]
    threshold, verified = decision_fit.operating_points(rows, probabilities, floor_abstained=1, answerable=31)
    answerable_below = sum(p < threshold and r["answerable"] for p, r in zip(probabilities, rows, strict=True))
    assert (1 + answerable_below) / 31 <= decision_fit.MAX_FALSE_ABSTENTION
    # Every unanswerable question scores below every answerable one here: all of them are abstained on.
    assert all(p < threshold for p, r in zip(probabilities, rows, strict=True) if not r["answerable"])
    shown = [r["label"] for p, r in zip(probabilities, rows, strict=True) if verified is not None and p >= verified]
    assert shown and sum(shown) / len(shown) >= decision_fit.MIN_VERIFIED_PRECISION


@pytest.mark.skipif(not SHARED_FIT_SET.is_file(), reason="needs ../shared/evals")
def test_rag_calibrate_refits_writes_a_file_that_loads_to_the_committed_decisions(tmp_path):
    committed = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    out = tmp_path / "judge.json"
    out.write_text(json.dumps({k: v for k, v in committed.items() if k not in ("fitted_decisions",
                                                                             "decision_command")}))
    command = [sys.executable, "-m", "rag.app.cli", "calibrate", "--decision", "--refit", "--out", str(out),
               "--decision-dataset", str(SHARED_FIT_SET)]
    written = []
    for _ in range(2):
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr
        assert "abstain below" in done.stdout
        written.append({k: {f: v for f, v in d.items() if f != "created"}
                        for k, d in json.loads(out.read_text())["fitted_decisions"].items()})
    assert written[0] == written[1], "refitting twice writes the same decisions"
    loaded, expected = load_calibration(out), load_calibration()
    for kind in DECISION_KINDS:
        assert loaded[kind] == expected[kind], kind
