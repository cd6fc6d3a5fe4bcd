"""Networks with fractional powers (sqrt, (v + eps) ** -0.5, x ** 1.5): right claims are
proven and wrong ones are *refuted* with a certified counterexample, never "unproven".

Claims are checked with ``check_claim`` (no derived rules): the bases of the powers are
positive by construction (``x**2 + eps``, ``v + eps``, ``sqrt(d)``), with ``eps``, ``v``
and ``d`` scalar inputs, which derive samples as positive constants.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
from test_cli import run

import derive
from derive.errors import FormulaError
from derive.lang import formula as F
from derive.records import PROVEN, REFUTED


def check(d: derive.Derivation, target: str, formula: str) -> derive.records.Check:
    return d.check_claim(target, formula)


def assert_proven(d: derive.Derivation, target: str, formula: str) -> None:
    c = check(d, target, formula)
    assert c.verdict == PROVEN, (target, formula, c.verdict, c.detail)


def assert_refuted(d: derive.Derivation, target: str, formula: str) -> None:
    c = check(d, target, formula)
    assert c.verdict == REFUTED, (target, formula, c.verdict, c.detail)
    assert c.counterexample is not None  # certified at a point, not a shape error


def test_exponents_are_constant_expressions_folded_exactly() -> None:
    half = sympy.Rational(1, 2)
    trees = {t: F.parse(t) for t in ("x ** 0.5", "x ** (1/2)", "sqrt(x)", "np.sqrt(x)", "np.power(x, 0.5)")}
    assert {F.unparse(t) for t in trees.values()} == {"x ** (1/2)"}
    assert all(t.right == F.Num(half, t.right.col) for t in trees.values())  # type: ignore[union-attr]
    assert F.parse("x ** (-1/2)").right.value == -half  # type: ignore[union-attr]
    assert F.parse("x ** 1.5").right.value == 3 * half  # type: ignore[union-attr]
    assert F.parse("(v + eps) ** -(3/2)").right.value == -3 * half  # type: ignore[union-attr]
    # the folded text parses again (derive's own rules print exponents as (1/2))
    assert F.unparse(F.parse(F.unparse(F.parse("v ** -0.5")))) == "v ** (-1/2)"
    for text in ("x ** (y / 2)", "x ** (1 / n)", "x ** -y"):  # a name is never an exponent
        with pytest.raises(FormulaError, match="exponent must be a literal number"):
            F.parse(text)
    with pytest.raises(FormulaError, match="needs a whole exponent"):  # √2 is no rational exponent
        F.parse("x ** sqrt(2)")


def scalar_network() -> derive.Derivation:
    return derive.from_dict({"network": {
        "equations": "y = w * x / (v + eps) ** 0.5\nL = (y - t)**2 / 2",
        "parameters": ["w"]}})


def test_scalar_inverse_square_root() -> None:
    d = scalar_network()
    assert_proven(d, "dw", "(y - t) * x / (v + eps) ** 0.5")
    assert_proven(d, "dw", "(y - t) * x / sqrt(v + eps)")
    assert_proven(d, "dv", "-(y - t) * w * x / 2 * (v + eps) ** -1.5")
    assert_refuted(d, "dw", "(y - t) * x / (v + eps)")  # the square root forgotten
    assert_refuted(d, "dw", "(y - t) * x * (v + eps) ** 0.5")  # the wrong sign of the exponent
    assert_refuted(d, "dv", "-(y - t) * w * x * (v + eps) ** -1.5")  # the factor 1/2 forgotten
    assert_refuted(d, "dv", "-(y - t) * w * x / 2 * (v + eps) ** -0.5")  # exponent not lowered


def test_three_halves_power() -> None:
    d = derive.from_dict({"network": {
        "equations": "s = x**2 + eps\ny = w * s ** 1.5\nL = (y - t)**2 / 2",
        "parameters": ["w"]}})
    assert_proven(d, "ds", "(y - t) * w * 1.5 * s ** 0.5")
    assert_proven(d, "dx", "(y - t) * w * 3 * x * np.sqrt(s)")
    assert_refuted(d, "ds", "(y - t) * w * s ** 0.5")  # the factor 3/2 forgotten
    assert_refuted(d, "dx", "(y - t) * w * 1.5 * s ** 0.5")  # the chain through x**2 forgotten


BATCH_NORM = {
    "equations": """
        mu = mean(X, axis=1)
        D = X - mu
        v = mean(D**2, axis=1)
        Y = D * (v + eps) ** -0.5
        Z = g * Y + b
        L = sum((Z - T)**2) / 2
    """,
    "parameters": ["g", "b"],
    "shapes": {"X": [2, "m"], "T": [2, "m"], "g": [2, 1], "b": [2, 1]},
    "batch": 3,
}
BN_DX = "(v + eps) ** -0.5 / m * (m * dY - sum(dY, axis=1) - Y * sum(dY * Y, axis=1))"


def test_batch_norm() -> None:
    d = derive.from_dict({"network": BATCH_NORM})
    assert_proven(d, "dg", "sum(dZ * Y, axis=1)")
    assert_proven(d, "dv", "sum(dY * D, axis=1) * (-1/2) * (v + eps) ** -1.5")
    assert_proven(d, "dX", BN_DX)
    assert_proven(d, "dX", BN_DX.replace("(v + eps) ** -0.5", "1 / np.sqrt(v + eps)"))
    assert_refuted(d, "dv", "sum(dY * D, axis=1) * (-1) * (v + eps) ** -1.5")  # 1/2 forgotten
    assert_refuted(d, "dX", "(v + eps) ** -0.5 * dY")  # mean and variance treated as constants
    assert_refuted(d, "dX", BN_DX.replace("(v + eps) ** -0.5", "np.sqrt(v + eps)"))
    assert_refuted(d, "dX", BN_DX.replace("- Y * sum", "- sum"))


def test_attention_scaled_by_the_square_root_of_d() -> None:
    d = derive.from_dict({"network": {
        "equations": """
            S = (Q.T @ K) / sqrt(d)
            A = softmax(S, axis=-1)
            O = V @ A.T
            L = sum((O - T)**2) / 2
        """,
        "parameters": ["Q", "K", "V"],
        "shapes": {"Q": [2, 2], "K": [2, 2], "V": [2, 2], "T": [2, 2]}}})
    assert_proven(d, "dS", "A * (dA - sum(A * dA, axis=-1))")
    assert_proven(d, "dQ", "K @ dS.T / np.sqrt(d)")
    assert_proven(d, "dK", "Q @ dS / d ** 0.5")
    assert_refuted(d, "dQ", "K @ dS.T")  # the 1/√d forgotten
    assert_refuted(d, "dQ", "K @ dS.T / d")  # 1/d for 1/√d
    assert_refuted(d, "dS", "A * (dA - sum(A * dA, axis=0))")  # the softmax's axis mixed up


def test_cli_refutes_a_wrong_batch_norm_claim(tmp_path: Path) -> None:
    spec = tmp_path / "bn.yaml"
    lines = "\n".join("    " + line.strip() for line in BATCH_NORM["equations"].strip().splitlines())  # type: ignore[union-attr]
    spec.write_text(
        "network:\n  equations: |\n" + lines + "\n"
        "  parameters: [g, b]\n  shapes: {X: [2, m], T: [2, m], g: [2, 1], b: [2, 1]}\n  batch: 3\n"
        "claims:\n"
        f"  - dX: {BN_DX}\n"
        "  - dv: sum(dY * D, axis=1) * (v + eps) ** -1.5\n"
    )
    r = run("check", "--no-rules", str(spec))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "2 claims: 1 proven, 1 refuted." in r.stdout, r.stdout
