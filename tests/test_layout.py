"""The tree shows the layers: the contracts in pyproject.toml hold, and no module of rag or evals imports itself
back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_layer_contracts_hold():
    """app > qa > index > ingest | models > progress > config | text > errors; commands > bench | decision_fit >
    calibrate | runner > benchmarks | naive > metrics > common in evals; and rag never imports evals."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("package", ["rag", "evals"])
def test_no_module_is_part_of_an_import_cycle(package):
    """Imports inside functions count too: a lazy import still ties the two modules together."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=True)
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycles.append((module, *back))
    assert cycles == []
