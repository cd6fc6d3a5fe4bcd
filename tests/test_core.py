"""The fast exact core (derive.prove.core) and the proof steps around it (issue 19).

- Both cores (SymEngine and SymPy alone) give the same verdict, method and proof step on
  every rule and claim of every shipped derivation, and on claims right and wrong.
- A proof step whose difference is too large for SymPy is skipped, never the end of the
  proof: a written-out chain claim is proven by the step that unfolds the truth.
- The fast constructors build exactly what SymPy builds.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import sympy
from sympy import Matrix, Symbol

import derive
from derive.model.truth import AdjointSymbol
from derive.ops.matrices import kron, matmul, times, total
from derive.prove import core, zero
from derive.records import PROVEN, REFUTED

DERIVATIONS = sorted((Path(__file__).parent.parent / "derivations").glob("*.yaml"))
needs_symengine = pytest.mark.skipif(not core.available(), reason="symengine is not installed")


@pytest.fixture
def sympy_core() -> Iterator[None]:
    before = zero.current_core()
    zero.use_core("sympy")
    try:
        yield
    finally:
        zero.use_core(before)


def _verdicts(d: derive.Derivation, claims: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()) -> list[tuple[str, ...]]:
    report = d.report(jobs=1)
    checks = list(report.rules) + list(report.claims) + [d.check_claim(t, f) for t, f in claims]
    return [(c.target, c.formula, str(c.verdict), str(c.method), str(c.step)) for c in checks]


def _both(make: object, claims: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    assert callable(make)
    before = zero.current_core()
    try:
        zero.use_core("sympy")
        reference = _verdicts(make(), claims)
        zero.use_core("symengine")
        fast = _verdicts(make(), claims)
    finally:
        zero.use_core(before)
    return reference, fast


@needs_symengine
@pytest.mark.parametrize("path", DERIVATIONS, ids=[p.stem for p in DERIVATIONS])
def test_both_cores_agree_on_every_shipped_derivation(path: Path) -> None:
    reference, fast = _both(lambda: derive.load(path))
    assert fast == reference


def _tanh_net(batch: int = 2, activation: str = "tanh") -> derive.Derivation:
    return derive.from_dict({"name": "chain", "network": {
        "inputs": 2, "layers": [{"units": 3, "activation": activation}, {"units": 3, "activation": activation},
                                {"units": 2, "activation": "identity"}],
        "loss": "mse", "batch": batch}})


CHAIN = "((W2.T @ ((W3.T @ ((A3 - Y) / m)) * (1 - A2**2))) * (1 - A1**2))"
CLAIMS = [
    ("dW1", f"{CHAIN} @ X.T"),
    ("db1", f"sum({CHAIN}, axis=1)"),
    ("dX", f"W1.T @ {CHAIN}"),
    ("dW1", f"{CHAIN} @ X"),  # shape error
    ("dW1", f"2 * {CHAIN} @ X.T"),  # off by 2
    ("dW2", "((W3.T @ ((A3 - Y) / m)) * (1 - A2)) @ A1.T"),  # wrong derivative
    ("dZ2", "(W3.T @ dZ3) * (1 - A2**2)"),
    ("dZ2", "(W3.T @ dZ3) * (1 - A2)**2"),
]


@needs_symengine
def test_both_cores_agree_on_right_and_wrong_claims() -> None:
    reference, fast = _both(_tanh_net, CLAIMS)
    assert fast == reference
    verdicts = [v[2] for v in fast[-len(CLAIMS):]]
    assert verdicts[:3] == [str(PROVEN)] * 3
    assert verdicts[3:6] == [str(REFUTED)] * 3
    assert verdicts[6:] == [str(PROVEN), str(REFUTED)]


@needs_symengine
def test_both_cores_agree_on_a_relu_network() -> None:
    claims = [("dZ1", "(W2.T @ dZ2) * relu_prime(Z1)"), ("dZ1", "(W2.T @ dZ2) * (A1 > 0)"),
              ("dZ1", "W2.T @ dZ2"), ("dW1", "((W2.T @ dZ2) * relu_prime(Z1)) @ X.T")]
    reference, fast = _both(lambda: _tanh_net(activation="relu"), claims)
    assert fast == reference


HOSTILE = Path(__file__).parent / "hostile"


@needs_symengine
def test_both_cores_agree_when_an_early_step_is_too_large_to_expand() -> None:
    """sum(Z1)**64 − sum(W1 @ X + b1)**64 (the hostile spec) is 0 once Z1 is unfolded; as
    written its expansion would have about 10**22 terms.  A step whose expansion is too
    large is skipped, never the end of the proof, in both cores (before: SymPy proved it,
    SymEngine's estimate ended the proof with "unproven").  Changing one side by a
    factor makes it false: refuted by both."""
    spec = HOSTILE / "sum64.yaml"
    claims = [("dW1", "dZ1 @ X.T + (sum(Z1)**64 - sum(W1 @ X + b1)**64)"),
              ("dW1", "dZ1 @ X.T + (sum(Z1)**64 - sum(W1 @ X + 2 * b1)**64)"),
              ("dW1", "dZ1 @ X.T + (sum(Z1)**3 - sum(W1 @ X + b1)**3)"),
              ("dW1", "dZ1 @ X.T + (sum(Z1)**3 - sum(W1 @ X)**3)")]
    reference, fast = _both(lambda: derive.load(spec), claims)
    assert fast == reference
    verdicts = [v[2] for v in fast[-len(claims):]]
    assert verdicts == [str(PROVEN), str(REFUTED), str(PROVEN), str(REFUTED)], fast[-len(claims):]


@pytest.mark.parametrize("which", ["symengine", "sympy"])
def test_a_step_too_large_for_sympy_does_not_end_the_proof(which: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-chain-rule-step difference of a written-out claim is over MAX_OPS; the
    next step (the truth unfolded to the claim's gradients) proves it.  (Before: the
    first TooLarge ended the proof and the claim was "unproven".)"""
    if which == "symengine" and not core.available():
        pytest.skip("symengine is not installed")
    before = zero.current_core()
    zero.use_core(which)
    try:
        d = _tanh_net()
        monkeypatch.setattr(zero, "MAX_OPS", 40)
        for target, formula in CLAIMS[:3]:
            c = d.check_claim(target, formula)
            assert c.verdict == PROVEN, (target, c.verdict, c.method, c.detail)
    finally:
        zero.use_core(before)


@needs_symengine
def test_fast_zero_test() -> None:
    x, y, z = sympy.symbols("x y z", real=True)
    f = sympy.Function("f")
    assert core.is_zero(sympy.expand((x + y) ** 3) - (x + y) ** 3) is True
    assert core.is_zero((x + y) ** 2 - x**2 - y**2) is False  # a polynomial: final
    assert core.is_zero(x / y - x * y**-1) is True
    assert core.is_zero(1 / (x + 1) - 1 / (x + 1)) is True
    # a rational function: over common denominators in SymEngine (Fractions); a wrong one is not proven
    assert core.is_zero(1 / (x + 1) + 1 / (x - 1) - 2 * x / (x**2 - 1)) is True
    assert core.is_zero(1 / (x + 1) + 1 / (x - 1) - 2 * y / (x**2 - 1)) is False
    assert core.is_zero(f(x + y) - f(y + x)) is True
    assert core.is_zero(f(x) - f(y)) is None  # opaque subterms: not final
    assert core.is_zero(sympy.exp(x) * sympy.exp(y) - sympy.exp(x + y)) is None  # exp: SymPy's to decide
    assert zero.is_zero(sympy.exp(x) * sympy.exp(y) - sympy.exp(x + y))
    assert zero.is_zero(1 / (x + 1) + 1 / (x - 1) - 2 * x / (x**2 - 1))  # SymPy's together decides it
    assert not zero.is_zero(z * (x - y))


def test_fast_constructors_build_what_sympy_builds() -> None:
    rng = random.Random(19)
    syms = [Symbol(f"x{i}", real=True) for i in range(5)] + [AdjointSymbol(f"dZ1[{i},0]", real=True) for i in range(3)]
    syms += [Symbol("W1[0,1]", real=True), Symbol("W1[0,10]", real=True), Symbol("A1[10,2]", real=True),
             Symbol("x0"), Symbol("x1", positive=True), sympy.Dummy("t"), sympy.Dummy("t"), Symbol("J", real=True)]
    pool = syms + [sympy.Integer(0), sympy.Integer(2), sympy.Rational(1, 3), syms[0] + syms[1], syms[2] * syms[3]]
    for x in syms:
        for y in syms:
            p, q = times(x, y), x * y
            assert p == q and p.args == q.args and hash(p) == hash(q)
    for _ in range(300):
        terms = [times(rng.choice(syms), rng.choice(syms)) for _ in range(rng.randint(1, 6))] + [rng.choice(syms)]
        terms += [times(times(rng.choice(syms), rng.choice(syms)), times(rng.choice(syms), rng.choice(syms)))
                  for _ in range(rng.randint(0, 4))]
        for _ in range(4):
            u, v = rng.choice(terms), rng.choice(terms)
            assert times(u, v) == u * v and times(u, v).args == (u * v).args
        a, b = total(terms), sympy.Add(*terms)
        assert a == b and a.args == b.args
        r, k, c = rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 3)
        left = Matrix(r, k, [rng.choice(pool) for _ in range(r * k)])
        right = Matrix(k, c, [rng.choice(pool) for _ in range(k * c)])
        assert all(sympy.expand(u - v) == 0 for u, v in zip(matmul(left, right), left * right, strict=True))
        assert kron(left, right) == sympy.kronecker_product(left, right)


def test_derivative_of_a_power_of_a_linear_form_is_sympys() -> None:
    from derive.model.truth import _diff

    x, y, z = sympy.symbols("x y z", real=True)
    rng = random.Random(5)
    for _ in range(200):
        c = sympy.Rational(rng.randint(-5, 5), rng.randint(1, 7))
        base = sum((rng.choice([0, 1, -1, 2, sympy.Rational(1, 3)]) * s for s in (x, y, z)), sympy.Integer(0))
        e = c * (base + rng.randint(-2, 2)) ** rng.randint(1, 4)
        for v in (x, y, z):
            assert sympy.expand(_diff(e, v) - sympy.diff(e, v)) == 0


@needs_symengine
def test_sigmoid_chains_fold_and_both_cores_agree() -> None:
    """σ′ = A(1 − A) is two factors of a flattened product: folded as a pair."""
    def net() -> derive.Derivation:
        return derive.from_dict({"name": "sigmoid chain", "network": {
            "inputs": 2, "layers": [{"units": 3, "activation": "sigmoid"}, {"units": 2, "activation": "sigmoid"}],
            "loss": "mse", "batch": 2}})
    dz2 = "(((A2 - Y) / m) * A2 * (1 - A2))"
    claims = [("dW1", f"((W2.T @ {dz2}) * A1 * (1 - A1)) @ X.T"),
              ("dX", f"W1.T @ ((W2.T @ {dz2}) * (A1 * (1 - A1)))"),
              ("db1", f"sum((W2.T @ {dz2}) * A1 * (1 - A1), axis=1)"),
              ("dW1", f"((W2.T @ {dz2}) * A1 * (1 + A1)) @ X.T"),  # σ′ wrong
              ("dW1", f"((W2 @ {dz2}.T) * A1 * (1 - A1)) @ X.T")]  # shapes
    reference, fast = _both(net, claims)
    assert fast == reference
    assert [v[2] for v in fast[-5:]] == [str(PROVEN)] * 3 + [str(REFUTED)] * 2


def test_an_activation_class_is_differentiated_once_with_sympys_result() -> None:
    from derive.model.truth import _derivative_of, _diff
    from derive.ops.activations import ACTIVATIONS

    z = sympy.Symbol("Z1[0,0]", real=True)
    checked = 0
    for entry in ACTIVATIONS.values():
        for cls in [v for v in vars(entry).values() if isinstance(v, type) and issubclass(v, sympy.Function)]:
            try:
                expected = _diff(cls(z), z)
            except (TypeError, ValueError):
                continue
            assert _derivative_of(cls(z), z) == expected
            checked += 1
    assert checked >= 5


def test_symengine_expansion_too_large_is_refused_before_it_starts() -> None:
    """SymEngine's C++ answers neither the time budget nor a memory limit politely: an
    expansion estimated over the limit is not started (unproven), and sizes are estimated
    from the expression (a power of a sum: its monomials)."""
    import sympy

    from derive.prove import core
    from derive.prove.zero import TooLarge

    if not core.available():
        pytest.skip("symengine not installed")
    xs = sympy.symbols("x0:6")
    se = core._symengine()
    big = se.Add(*[se.Symbol(str(x)) for x in xs]) ** 64  # C(69, 64) ≈ 1.1e7 terms
    with pytest.raises(TooLarge):
        core.expand(big)
    small = se.Add(*[se.Symbol(str(x)) for x in xs[:2]]) ** 3
    assert core._terms(small) == 4 and core.expand(small) == se.expand(small)
