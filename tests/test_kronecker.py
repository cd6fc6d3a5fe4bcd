"""vec/Kronecker: the identities proven for all sizes, wrong variants refuted, the
per-layer vec rules, and Jacobians in both layouts with the layout diagnosis."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sympy
from conftest import ROOT, net

from derive.ops.matrices import kron, kron_index, vec, vec_index
from derive.rules import identities as kronecker
from derive.testing import assert_claim, assert_refuted


def test_general_identities_proven_for_all_sizes() -> None:
    results = {r.name: r for r in kronecker.identities()}
    for name in ("vec(ABC)", "(x⊗I)δ", "(xᵀ⊗I)vec(W)"):
        assert results[name].verdict == kronecker.ALL_SIZES
        assert len(results[name].steps) >= 4


def test_wrong_variants_refuted() -> None:
    wrong = kronecker.wrong_variants()
    assert [r.name for r in wrong] == ["vec(ABC) with C ⊗ Aᵀ", "vec(ABC) with row-major vec", "(I ⊗ xᵀ) vec(W)"]
    for r in wrong:
        assert r.verdict == "refuted" and r.counterexample


def test_index_maps_match_the_concrete_operations() -> None:
    # the all-sizes proof uses vec_index/kron_index; vec() and kron() are built from them
    m = sympy.Matrix(2, 3, lambda i, j: 10 * i + j)
    assert list(vec(m)) == [0, 10, 1, 11, 2, 12]                    # column-major
    assert vec_index(1, 2, 2) == 5 and kron_index(1, 0, 3) == 3
    a, b = sympy.Matrix([[1, 2], [3, 4]]), sympy.Matrix([[0, 5], [6, 7]])
    assert kron(a, b) == sympy.Matrix([[0, 5, 0, 10], [6, 7, 12, 14], [0, 15, 0, 20], [18, 21, 24, 28]])


def test_check_sizes_evidence() -> None:
    counts = kronecker.check_sizes(2)
    assert counts == {"vec(ABC)": 16, "(x⊗I)δ": 4, "(xᵀ⊗I)vec(W)": 4}


def test_identities_command() -> None:
    r = subprocess.run([sys.executable, "-m", "derive.cli", "identities", "--json"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    verdicts = [i["verdict"] for i in doc["identities"]]
    assert verdicts == ["proven for all sizes"] * 3 + ["refuted"] * 3


@pytest.mark.parametrize("layout", ["columns", "rows"])
def test_vec_rules_in_the_table(layout: str) -> None:
    d = net([(3, "tanh"), (2, "sigmoid")], batch=2, batch_layout=layout)
    checks = [c for c in d.check_rules() if c.rule and c.rule.startswith("vec")]
    assert {c.rule for c in checks} == {"vec(Z)", "vec(dW)", "vec(ABC)"}
    assert len(checks) == 6 and all(c.verdict == "proven" for c in checks)


def test_vec_claims() -> None:
    d = net([(3, "tanh"), (2, "sigmoid")], batch=2)
    assert_claim(d, "vec(dW2)", "kron(A1, eye(n2)) @ vec(dZ2)")
    assert_claim(d, "vec(dW2)", "vec(dZ2 @ A1.T)")
    assert_refuted(d, "vec(dW2)", "kron(eye(n2), A1) @ vec(dZ2)")      # factors swapped
    assert_refuted(d, "vec(dW2)", "kron(A1.T, eye(n2)) @ vec(dZ2)")    # shape error


DENOM = dict(layout="denominator")


@pytest.mark.parametrize("target, numerator, denominator", [
    ("J(A1, Z1)", "diag(sigmoid_prime(Z1))", "diag(sigmoid_prime(Z1))"),
    ("J(Z1, b1)", "eye(n1)", "eye(n1)"),
    ("J(Z2, A1)", "W2", "W2.T"),
    ("J(Z1, vec(W1))", "kron(X.T, eye(n1))", "kron(X, eye(n1))"),
    ("J(L, A2)", "(A2 - Y).T", "A2 - Y"),
    ("J(Z2, Z1)", "W2 @ diag(sigmoid_prime(Z1))", "diag(sigmoid_prime(Z1)) @ W2.T"),
])
def test_jacobians_in_both_layouts(target: str, numerator: str, denominator: str) -> None:
    num = net([(3, "sigmoid"), (2, "sigmoid")], inputs=2, batch=1)
    den = net([(3, "sigmoid"), (2, "sigmoid")], inputs=2, batch=1, **DENOM)
    assert_claim(num, target, numerator)
    assert_claim(den, target, denominator)


def test_layout_diagnosis() -> None:
    den = net([(3, "sigmoid"), (2, "sigmoid")], inputs=2, batch=1, **DENOM)
    assert_refuted(den, "J(Z2, A1)", "W2", "this is the numerator-layout Jacobian")
    num = net([(3, "sigmoid"), (2, "sigmoid")], inputs=2, batch=1)
    assert_refuted(num, "J(Z2, A1)", "W2.T", "this is the denominator-layout Jacobian")


def test_jacobian_of_one_example_and_chain_rule() -> None:
    d = net([(3, "tanh"), (2, "identity")], inputs=2, batch=3)
    # example k = 1 of a batch of 3: ∂A1[:,1]/∂Z1[:,1] = diag(1 − A1[:,1]²)
    from derive.lang.formula import parse
    jac = d.evaluator.evaluate(parse("J(A1, Z1, 1)"), "J(A1, Z1, 1)")
    a = d.net.matrices["A1"]
    assert jac == sympy.diag(*[1 - a[i, 1] ** 2 for i in range(3)])
    # numerator layout: ∂L/∂vec(W1) = (∂L/∂Z1)(∂Z1/∂vec(W1)) for one example
    one = net([(3, "tanh"), (2, "identity")], inputs=2, batch=1)
    assert_claim(one, "J(L, vec(W1))", "J(L, Z1) @ J(Z1, vec(W1))")
    assert_claim(one, "J(L, vec(W1))", "vec(dW1).T")


def test_jacobian_argument_errors() -> None:
    from derive.errors import FormulaError
    d = net([(3, "tanh"), (2, "identity")], inputs=2, batch=3)
    with pytest.raises(FormulaError, match="k must be an example from 0 to 2"):
        d.check_claim("J(A1, Z1, 5)", "eye(3)")
    with pytest.raises(FormulaError, match="x must be a value of the network"):
        d.check_claim("J(A1, 2 * Z1)", "eye(3)")
