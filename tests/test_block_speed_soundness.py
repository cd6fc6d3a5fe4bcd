"""The fast paths of the block judge (SymEngine over common denominators, refutation
before the slow proofs, the memoised chain rule of the truth) give the verdicts the
slow ones gave: right formulas proven, the shipped mistakes refuted, at sizes larger
than the worked derivations'.  Verdicts only: the times are bench/layers.py's."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import pytest
import sympy as sp

import derive
from derive.ops.activations import Sigmoid, Tanh
from derive.prove import core
from derive.records import Verdict

DERIVATIONS = Path(__file__).resolve().parent.parent / "derivations"

pytestmark = pytest.mark.skipif(not core.available(), reason="the fast core needs symengine")


def _resized(tmp_path: Path, file: str, shapes: str, claims: str | None = None) -> Path:
    lines = (DERIVATIONS / file).read_text().splitlines()
    out = []
    for line in lines:
        if line.startswith("  shapes:"):
            line = f"  shapes: {shapes}"
        if claims is not None and line.startswith("claims:"):
            break
        out.append(line)
    if claims is not None:
        out.append(claims)
    path = tmp_path / file
    path.write_text("\n".join(out) + "\n")
    return path


def _verdicts(path: Path) -> dict[str, Verdict]:
    report = derive.load(path).report(timeout=240)
    out: dict[str, Verdict] = {}
    for c in report.claims:
        key = c.target if c.target not in out else f"{c.target}#claim"
        out[key] = c.verdict
    return out


def test_batchnorm_bigger_right_proven_wrong_refuted(tmp_path: Path) -> None:
    claims = """claims:
  - target: dx
    formula: dxhat * ivar + 2 * xmu * dsq + dmu / N
  - target: dx
    formula: dxhat * ivar + 2 * xmu * dsq
    expect: refuted
  - target: dx
    formula: (1. / N) * gamma * ivar * (N * dout - np.sum(dout, axis=0) - xhat * np.sum(dout * xhat, axis=0))
  - target: dx
    formula: (1. / N) * gamma * ivar * (N * dout - np.sum(dout, axis=0) - xhat * np.sum(dout * xmu, axis=0))
    expect: refuted
"""
    path = _resized(tmp_path, "batchnorm_staged.yaml", "{x: [4, 3], gamma: [3], beta: [3]}", claims)
    report = derive.load(path).report(timeout=240)
    got = [c.verdict for c in report.claims if c.formula in (
        "dxhat * ivar + 2 * xmu * dsq + dmu / N", "dxhat * ivar + 2 * xmu * dsq",
        "(1. / N) * gamma * ivar * (N * dout - np.sum(dout, axis=0) - xhat * np.sum(dout * xhat, axis=0))",
        "(1. / N) * gamma * ivar * (N * dout - np.sum(dout, axis=0) - xhat * np.sum(dout * xmu, axis=0))")]
    assert got == [Verdict.PROVEN, Verdict.REFUTED, Verdict.PROVEN, Verdict.REFUTED]
    assert all(c.verdict == Verdict.PROVEN for c in report.claims if c.formula not in (
        "dxhat * ivar + 2 * xmu * dsq",
        "(1. / N) * gamma * ivar * (N * dout - np.sum(dout, axis=0) - xhat * np.sum(dout * xmu, axis=0))"))


def test_attention_bigger_swapped_refuted_right_proven(tmp_path: Path) -> None:
    claims = """claims:
  - target: dK
    formula: dS.T.dot(K) / np.sqrt(d)
    expect: refuted
  - target: dK
    formula: dS.T.dot(Q) / np.sqrt(d)
  - target: dQ
    formula: dS.dot(K)
    expect: refuted
"""
    path = _resized(tmp_path, "attention.yaml", "{Q: [4, 3], K: [4, 3], V: [4, 3]}", claims)
    report = derive.load(path).report(timeout=240)
    by_formula = {c.formula: c.verdict for c in report.claims}
    assert by_formula["dS.T.dot(K) / np.sqrt(d)"] == Verdict.REFUTED
    assert by_formula["dS.T.dot(Q) / np.sqrt(d)"] == Verdict.PROVEN
    assert by_formula["dS.dot(K)"] == Verdict.REFUTED
    for name in ("dV", "dA", "dS", "dQ", "dK"):
        assert [c.verdict for c in report.claims if c.target == name][0] == Verdict.PROVEN, name


def test_lstm_three_steps_proven(tmp_path: Path) -> None:
    path = _resized(tmp_path, "lstm_bptt.yaml", "{x: [1, 3, 2], h0: [1, 2], Wx: [2, 8], Wh: [2, 8], b: [8]}")
    report = derive.load(path).report(timeout=240)
    assert {c.target: c.verdict for c in report.claims} == {n: Verdict.PROVEN for n in ("dx", "dWx", "dWh", "db", "dh0")}


# ------------------------------------------------------------------ the rational zero test itself
X, Y, Z, E = sp.symbols("x y z e", real=True)
V = X**2 + Y**2

IDENTITIES = [
    1 / (X + Y) + 1 / (X - Y) - 2 * X / ((X + Y) * (X - Y)),
    1 / sp.sqrt(V + E) ** 3 - 1 / (V + E) / sp.sqrt(V + E),
    (V + E) ** sp.Rational(-3, 2) - (V + E) ** sp.Rational(-1, 2) / (X**2 + Y**2 + E),
    sp.exp(X * (Y + Z)) - sp.exp(X * Y + X * Z),
    sp.exp(X) / (sp.exp(X) + sp.exp(Y)) + sp.exp(Y) / (sp.exp(X) + sp.exp(Y)) - 1,
    sp.exp(X * Y / sp.sqrt(2)) ** 2 - sp.exp(sp.sqrt(2) * X * Y),
    Sigmoid(X) * (1 - Sigmoid(X)) - Sigmoid(X) + Sigmoid(X) ** 2,
    1 / (1 + sp.exp(-X)) - sp.exp(X) / (1 + sp.exp(X)),
    (X + 1) ** -2 - 1 / (X**2 + 2 * X + 1),
    Tanh(X * (Y + 1)) ** 2 - Tanh(X * Y + X) ** 2,
]

NOT_IDENTITIES = [
    1 / (X + Y) + 1 / (X - Y) - 2 * Y / ((X + Y) * (X - Y)),
    (V + E) ** sp.Rational(-3, 2) - (V + E) ** sp.Rational(-1, 2) / (X**2 + Y**2 + 2 * E),
    sp.exp(X / 3) - sp.exp(X) ** 3,
    sp.exp(X) / (sp.exp(X) + sp.exp(Y)) - sp.exp(Y) / (sp.exp(X) + sp.exp(Y)),
    Sigmoid(X) * (1 - Sigmoid(X)) - Sigmoid(X) ** 2,
    sp.exp(2 * X * Y / sp.sqrt(3)) - sp.exp(X * Y / sp.sqrt(3)),
    1 / sp.sqrt(X**2 + 1) - 1 / (X**2 + 1),
]


@pytest.mark.parametrize("expr", IDENTITIES)
def test_rational_zero_proves_identities(expr: sp.Expr) -> None:
    assert core.rational_is_zero(expr) is True


@pytest.mark.parametrize("expr", NOT_IDENTITIES)
def test_rational_zero_never_proves_a_nonidentity(expr: sp.Expr) -> None:
    assert core.rational_is_zero(expr) is not True
    rng = random.Random(1)  # and the expression is really nonzero somewhere (the test can fail)
    values = {s: sp.Rational(Fraction(rng.randint(1, 9), rng.randint(2, 5))) for s in expr.free_symbols}
    plain = expr.replace(lambda e: isinstance(e, (Sigmoid, Tanh)), lambda e: type(e).through_exp(e.args[0]))
    assert abs(float(plain.xreplace(values).evalf(30))) > 1e-12


def test_sharing_gives_the_same_answers() -> None:
    with core.sharing():
        got = [core.rational_is_zero(e) for e in IDENTITIES + NOT_IDENTITIES]
    assert got[: len(IDENTITIES)] == [True] * len(IDENTITIES)
    assert all(g is not True for g in got[len(IDENTITIES):])
