"""Every run ends: each costly case of issue 20, run as a user runs it with a small budget,
ends within its budget + 2 s, under a memory cap set here (``resource.setrlimit``), with
one line of stderr at most and the exit code of a limit (1: not checked / unproven) or of
bad input (2) — never a traceback, never a refutation.

The specs are in ``tests/hostile/`` (valid but costly); the broken ones in ``tests/bad_inputs/``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

HOSTILE = ROOT / "tests" / "hostile"
BAD = ROOT / "tests" / "bad_inputs"
MEMORY_CAP = 3 * 1024 ** 3  # bytes of address space for the whole process
BUDGET = ["--timeout", "2", "--timeout-run", "3"]

CASES = [  # (id, argv, budget in seconds, allowed exit codes)
    ("load_99_100_batch_100", ["check", *BUDGET, str(HOSTILE / "net99.yaml")], 3, {1}),
    ("softmax_500_classes", ["check", *BUDGET, str(HOSTILE / "softmax500.yaml")], 3, {1}),
    ("chain_of_1000_equations", ["check", "--json", *BUDGET, str(HOSTILE / "chain1000.yaml")], 3, {1}),
    ("latex_of_1000_equations", ["latex", *BUDGET, str(HOSTILE / "chain1000.yaml"), "-o", "{tmp}/c.tex"], 3, {0, 1}),
    ("sixty_latex_claims", ["check", *BUDGET, str(HOSTILE / "latex60.yaml")], 3, {0, 1}),
    # (true: proven once Z1 is unfolded, without expanding the 64th powers; issue 19)
    ("sum_to_the_64th", ["check", "--json", *BUDGET, str(HOSTILE / "sum64.yaml")], 3, {0, 1}),
    ("twenty_nested_exp", ["check", *BUDGET, str(HOSTILE / "nested_exp.yaml")], 3, {0, 1}),
    ("identities_up_to_5", ["identities", "--check-sizes", "5", "--timeout-run", "2"], 2, {0, 1}),
    ("dev_zero", ["check", *BUDGET, "/dev/zero"], 3, {2}),
    ("alias_expansion", ["check", *BUDGET, str(BAD / "alias_expansion.yaml")], 3, {2}),
    ("power_tower_scale", ["check", *BUDGET, str(BAD / "scale_power_tower.yaml")], 3, {2}),
    ("input_of_a_million_symbols", ["check", *BUDGET, str(BAD / "symbols_huge.yaml")], 3, {2}),
]


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@pytest.mark.parametrize("argv, budget, codes", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_costly_case_ends_within_its_budget(argv: list[str], budget: float, codes: set[int],
                                                 tmp_path: Path) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "derive.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                       preexec_fn=_cap, timeout=budget + 60)
    elapsed = time.monotonic() - start
    assert elapsed <= budget + 2, f"{elapsed:.1f} s for a budget of {budget} s"
    assert r.returncode in codes, r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("wrote ")]
    assert len(lines) <= 1, r.stderr
    if argv[:2] == ["check", "--json"]:  # what was checked is reported; a limit is never a refutation
        doc = json.loads(r.stdout)
        assert doc["summary"]["refuted"] == 0 and (doc["summary"]["unproven"] > 0 or r.returncode == 0)
