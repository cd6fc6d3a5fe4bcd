"""The pytest plugin, run in a sandboxed pytest (pytester)."""

from __future__ import annotations

import pytest

# The plugin loads derive's machinery only when a spec file is collected.  pytester's
# in-process runs drop every module first imported inside them, and a second copy of
# SymPy or of derive's op registry would then meet the first one in later tests: load it
# all here, before any run, as a user's own conftest would.
import derive.testing  # noqa: F401
from derive.render import formats  # noqa: F401

GOOD = """
network: {inputs: 2, layers: [{units: 2, activation: tanh}, {units: 1, activation: sigmoid}],
          loss: binary_cross_entropy, batch: 2}
claims:
  dZ2: (A2 - Y) / m
  dW1: dZ1 @ X.T
"""

WRONG = """
network: {inputs: 2, layers: [{units: 2, activation: tanh}, {units: 1, activation: sigmoid}],
          loss: binary_cross_entropy, batch: 2}
claims:
  dZ2: A2 - Y
"""


def test_collects_rules_and_claims(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"derivations/net": GOOD})
    result = pytester.runpytest("derivations", "-v")
    result.assert_outcomes(passed=15 + 2)  # 15 rules (9 backprop + 6 vec), 2 claims
    result.stdout.fnmatch_lines(["*rule L1 dW1 = dZ1 @ Xᵀ PASSED*", "*claim dZ2 = (A2 - Y) / m PASSED*"])


def test_failure_reads_like_a_refutation(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"derivations/wrong": WRONG})
    result = pytester.runpytest("derivations")
    result.assert_outcomes(passed=15, failed=1)
    result.stdout.fnmatch_lines([
        "*claim dZ2 = A2 - Y is refuted*",
        "*claimed: dZ2 = A2 - Y*",
        "*true:    dZ2 = (A2 - Y) / m   (proven rule)*",
        "*diagnosis: off by a factor 1/m*",
        "*counterexample*",
    ])


def test_glob_is_configurable(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"notes/net": GOOD, "derivations/other": WRONG})
    pytester.makeini("[pytest]\nderive_files = notes/*.yaml\n")
    result = pytester.runpytest("notes", "derivations")
    result.assert_outcomes(passed=17)


def test_bad_spec_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"derivations/bad": "network: {inputs: 0, layers: [], loss: mse}"})
    result = pytester.runpytest("derivations")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*network.inputs: expected a number of inputs from 1 to 1000, got 0*"])


def test_assert_claim_in_a_test_module(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", net=GOOD)
    pytester.makepyfile(
        """
        import derive
        from derive.testing import assert_claim

        def test_right():
            assert_claim(derive.load("net.yaml"), "dW2", "dZ2 @ A1.T")

        def test_wrong():
            assert_claim(derive.load("net.yaml"), "dW2", "dZ2 @ A1.T * 3")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*diagnosis: off by a constant factor: claimed = 3 × true*"])


def _imported(code: str) -> tuple[set[str], int]:
    """The modules ``code`` imports (python -X importtime) and its own cumulative µs."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    modules, own = set(), 0
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split("|"))
        if cumulative.isdigit():
            modules.add(name)
            if name.startswith("derive"):
                own = max(own, int(cumulative))
    return modules, own


def test_importing_the_plugin_is_cheap() -> None:
    """Every pytest run where derive is installed imports the plugin: no SymPy, no grammar,
    no rich until a spec file is collected (times printed, not asserted: machines differ)."""
    modules, micros = _imported("import pytest; import derive.pytest_plugin")
    print(f"derive.pytest_plugin on top of pytest: {micros / 1000:.1f} ms")
    heavy = {m for m in modules if m.split(".")[0] in ("sympy", "lark", "rich", "mpmath", "yaml")}
    assert not heavy, sorted(heavy)[:10]
    modules, micros = _imported("import derive")
    print(f"import derive: {micros / 1000:.1f} ms")
    assert "sympy" not in modules and "derive.check.session" not in modules


def test_items_run_within_the_ini_budget(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"derivations/net": GOOD})
    pytester.makeini("[pytest]\nderive_timeout = 0.002\n")
    result = pytester.runpytest_subprocess("derivations")  # its own process: its alarms stay there
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1
    result.stdout.fnmatch_lines(["*is unproven*", "*no verdict within the time budget (raise it with the ini options "
                                 "derive_timeout / derive_timeout_run)*", "*method: timeout*"])


def test_a_bad_budget_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"derivations/net": GOOD})
    pytester.makeini("[pytest]\nderive_timeout = soon\n")
    result = pytester.runpytest("derivations")
    result.stderr.fnmatch_lines(["*ini option derive_timeout: expected a number of seconds or 'none', got 'soon'*"])


def test_options_are_in_a_named_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["derive: backprop derivations as tests:", "*--derive-strategy*",
                                 "*--derive-timeout*"])
    result.stdout.fnmatch_lines(["*derive_timeout *", "*derive_timeout_run *"])


def test_the_plugin_offers_the_cli_strategies() -> None:
    """The plugin spells the strategies out (importing them would load SymPy): keep them equal."""
    from derive import pytest_plugin
    from derive.check.session import STRATEGIES

    assert pytest_plugin.STRATEGIES == STRATEGIES


def test_derive_backward_fixture_checks_backward_code(pytester: pytest.Pytester) -> None:
    # the fixture is assert_backward: a right relu backward passes, a wrong one fails with arrays
    pytester.makepyfile(test_relu='''
import numpy as np

def forward(x):
    return np.maximum(x, 0)

def test_right(derive_backward):
    derive_backward(forward, lambda dout, x: dout * (x > 0), shapes={"x": (2, 3)})

def test_wrong(derive_backward):
    derive_backward(forward, lambda dout, x: dout * (x >= 0) * 2, shapes={"x": (2, 3)})
''')
    result = pytester.runpytest("test_relu.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*x = np.array(*"])
