"""The pytest plugin, run in a sandboxed pytest (pytester)."""

from __future__ import annotations

import pytest

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
