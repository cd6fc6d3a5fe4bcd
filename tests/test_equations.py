"""Networks written as equations (scalar and matrix), their chain-rule rules, and the
search for the smallest fix of a refuted claim."""

from __future__ import annotations

import pytest
from conftest import ROOT

import derive
from derive.testing import assert_claim, assert_refuted

SCALAR = ROOT / "derivations" / "two_two_one_equations.yaml"
RESIDUAL = ROOT / "derivations" / "residual_equations.yaml"


@pytest.fixture(scope="module")
def scalar() -> derive.Derivation:
    return derive.load(SCALAR)


def test_scalar_rules_are_the_hand_derivation(scalar: derive.Derivation) -> None:
    rules = {r.target: r.formula for r in scalar.rules()}
    # MATH.md §6: ∂L/∂w4 = δ2 a0, ∂L/∂w0 = δ0 x0, δ0 = δ2 w4 σ′(z0)
    assert rules["dw4"] == "dz2 * a0" and rules["dw0"] == "dz0 * x0" and rules["db2"] == "dz2"
    assert rules["da0"] == "dz2 * w4" and rules["dz0"] == "da0 * sigmoid_prime(z0)"
    assert all(c.verdict == "proven" for c in scalar.check_rules())


@pytest.mark.parametrize("target, formula", [
    ("dw4", "dz2 * a0"),
    ("dw1", "dz2 * w4 * sigmoid_prime(z0) * x1"),
    ("dw1", "2 * (a2 - y) / alpha * a2 * (1 - a2) * w4 * a0 * (1 - a0) * x1"),  # all written out
    ("db0", "dz2 * w4 * a0 * (1 - a0)"),
])
def test_right_claims_proven(scalar: derive.Derivation, target: str, formula: str) -> None:
    assert_claim(scalar, target, formula)


@pytest.mark.parametrize("target, formula, fix", [
    ("dw1", "dz2 * w5 * sigmoid_prime(z0) * x1", "true if w5 → w4"),
    ("dw1", "dz2 * w5 * sigmoid_prime(z0) * x0", "true if w5 → w4 and x0 → x1"),
    ("dw4", "dz2 * a1", "true if a1 → a0"),
    ("dw1", "dz2 * w4 * x1", "factor sigmoid_prime(z0) added"),
    ("dw1", "dz2 * w4 * sigmoid(z0) * x1", "true if sigmoid → sigmoid_prime"),
    ("dz2", "(a2 - y) * a2 * (1 - a2)", "holds only when alpha = 2"),
])
def test_wrong_claims_refuted_with_the_fix(scalar: derive.Derivation, target: str, formula: str, fix: str) -> None:
    c = assert_refuted(scalar, target, formula, fix)
    assert c.counterexample is not None  # the fix is on top of the counterexample


def test_no_fix_claimed_when_none_is_proven(scalar: derive.Derivation) -> None:
    c = assert_refuted(scalar, "dw4", "dz2 * a0 + w0")
    assert c.diagnosis is None


def test_residual_matrix_equations() -> None:
    d = derive.load(RESIDUAL)
    rules = {r.target: r.formula for r in d.rules()}
    assert rules["dA1"] == "dZ2 + W2.T @ dZ2" or rules["dA1"] == "W2.T @ dZ2 + dZ2"
    assert rules["db1"] == "sum(dZ1, axis=1)"
    report = d.report()
    assert report.ok, [c.statement for c in report.rules + report.claims if not c.ok]
    assert_refuted(d, "dA1", "W2.T @ dZ2")


def test_shared_weights_sum_both_uses() -> None:
    d = derive.from_dict({"network": {
        "equations": "h = w * x\nz = w * h\nL = z**2 / 2",
        "parameters": ["w"]}})
    rules = dict((r.target, r.formula) for r in d.rules())
    assert rules["dw"] == "dz * h + dh * x"
    assert_claim(d, "dw", "z * (h + w * x)")


def test_equations_in_any_order() -> None:
    d = derive.from_dict({"network": {
        "equations": "L = a**2\na = tanh(z)\nz = w * x + b",
        "parameters": ["w", "b"], "loss": "L"}})
    assert_claim(d, "dw", "2 * a * (1 - a**2) * x")


def test_a_wrong_input_is_named_rather_than_a_ratio_of_inputs() -> None:
    d = derive.load(ROOT / "derivations" / "logistic_regression_equations.yaml")
    check = assert_refuted(d, "dw2", "(a - y) * x1")
    assert check.diagnosis is not None and check.diagnosis.startswith("true if x1 → x2")


def test_a_condition_that_sympy_cannot_solve_leaves_no_diagnosis_and_no_crash() -> None:
    # dL/dc has tanh(c + u*x) in it: solving for alpha used to raise NotImplementedError
    d = derive.load(ROOT / "derivations" / "tanh_scalar_equations.yaml")
    check = assert_refuted(d, "dc", "do * v * (1 - h)**2")
    assert check.diagnosis is None
    assert assert_refuted(d, "du", "(o - y) * v * (1 - h**2) * x").diagnosis.endswith("holds only when alpha = 2")
