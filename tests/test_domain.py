"""Where a claim is defined is part of its verdict (derive.prove.domain, README "Safety").

A claim is proven only if it equals the truth wherever the truth is defined and is itself
defined almost everywhere; undefined on a set of positive measure is refuted, with a
point of that set.  SymPy cancels ``u/u`` while it builds, so each of these used to be a
false "proven": the conditions are recorded before the cancellation.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import pytest
import sympy

import derive
from derive.check import claims as claims_module
from derive.ops.activations import Relu, ReluPrime, Sigmoid
from derive.prove.domain import NONNEGATIVE, NONZERO, POSITIVE, Condition, Conditions, Ranges

ROOT = Path(__file__).resolve().parent.parent

NET = {"inputs": 2, "layers": [{"units": 3, "activation": "relu"}, {"units": 1, "activation": "sigmoid"}],
       "loss": "binary_cross_entropy", "batch": 2}


@pytest.fixture(scope="module", params=["local", "global"])
def relu_net(request: pytest.FixtureRequest) -> derive.Derivation:
    return derive.from_dict({"name": "relu", "network": NET}, strategy=request.param)


@pytest.mark.parametrize("target, formula", [
    ("dA1", "dZ1 / relu_prime(Z1)"),                     # was PROVEN: 0/0 wherever Z1 <= 0
    ("dA1", "dZ1 / (Z1 > 0)"),
    ("dA1", "dZ1 / np.heaviside(Z1, 0)"),
    ("dA1", "dZ1 / relu_prime(Z1) * relu_prime(Z1)"),
    ("dZ1", "dA1 / relu_prime(Z1)"),                     # a student's dz = da / g'(z)
    ("dW1", "(dZ1 * A1 / A1) @ X.T"),                    # A1 = relu(Z1) is 0 on an open set
    ("dA2", "exp(log(A2 - Y)) / m"),                     # log of a negative number on an open set
])
def test_undefined_on_an_open_set_is_refuted(relu_net: derive.Derivation, target: str, formula: str) -> None:
    check = relu_net.check_claim(target, formula)
    assert check.verdict == "refuted", (formula, check.verdict, check.detail)
    ce = check.counterexample
    assert ce is not None and ce.claimed.startswith("undefined (")
    assert "denominator" in ce.claimed or "log" in ce.claimed
    # the point is a real point of the input space: every leaf has a value
    assert {"W1[0,0]", "X[0,0]", "b1[0]"} <= set(ce.values)


def test_the_undefined_point_is_where_the_denominator_vanishes(relu_net: derive.Derivation) -> None:
    check = relu_net.check_claim("dA1", "dZ1 / relu_prime(Z1)")
    ce = check.counterexample
    assert ce is not None
    v = {k: Fraction(x) for k, x in ce.values.items()}
    i, j = ce.entry
    z = v[f"W1[{i},0]"] * v[f"X[0,{j}]"] + v[f"W1[{i},1]"] * v[f"X[1,{j}]"] + v[f"b1[{i}]"]
    assert z <= 0  # relu′(z) = 0 there: the claim divides by zero at this entry
    assert f"relu_prime(Z1[{i},{j}]) = 0 in a denominator" in ce.claimed


@pytest.mark.parametrize("target, formula", [
    ("dZ1", "dA1 * relu_prime(Z1)"),
    ("dZ1", "dA1 * A1 / Z1"),                # 0/0 only where Z1 = 0: a set of measure zero
    ("dZ2", "(A2 - Y) / m * A2 / A2"),       # σ is never 0
    ("dZ2", "(A2 - Y) / (m * A2 * (1 - A2)) * A2 * (1 - A2)"),
    ("dW1", "(dZ1 * Z1 / Z1) @ X.T"),        # Z1 = W1 X + b1 vanishes on a null set only
    ("dA2", "-(Y / A2 - (1 - Y) / (1 - A2)) / m"),
])
def test_defined_almost_everywhere_is_proven(relu_net: derive.Derivation, target: str, formula: str) -> None:
    check = relu_net.check_claim(target, formula)
    assert check.verdict == "proven", (formula, check.verdict, check.detail)


def test_the_shipped_three_layer_mistake_is_refuted() -> None:
    d = derive.load(ROOT / "derivations" / "three_layer_softmax.yaml")
    check = d.check_claim("dA2", "dZ2 / (Z2 > 0)")
    assert check.verdict == "refuted"
    assert check.counterexample is not None and "undefined" in check.counterexample.claimed


def test_a_symbolic_slope_is_taken_positive() -> None:
    d = derive.from_dict({"name": "leaky", "network": {
        "inputs": 2, "batch": 2, "loss": "mse",
        "layers": [{"units": 2, "activation": "leaky_relu", "slope": "beta"}, {"units": 1, "activation": "identity"}]}})
    # leaky_relu′ is 1 or β: never 0 for β > 0, the stated assumption on free constants
    check = d.check_claim("dA1", "dZ1 / leaky_relu_prime(Z1, beta)")
    assert check.verdict == "proven", check.detail
    assert any("positive" in a for a in d.report(rules=False).assumptions)


# ------------------------------------------------------------ the parts, directly

def test_static_ranges() -> None:
    z, y, eps = sympy.symbols("z y eps", real=True)
    a = sympy.Symbol("a", real=True)
    defs = {a: Sigmoid(z)}
    r = Ranges(defs, positive=[eps])
    assert r(1 - a).positive() and r(a).positive() and not r(a - y).nonzero()
    assert r(z**2 + eps).positive() and r(z**2).nonnegative() and not r(z**2).positive()
    assert r(Relu(z)).nonnegative() and not r(Relu(z)).positive()
    assert not r(ReluPrime(z)).nonzero() and r(ReluPrime(z) + 1).positive()
    assert r((z**2 + eps) ** sympy.Rational(-1, 2)).positive()
    assert not r(z - 1).nonzero()


def _conditions(defs: dict, leaves: list, positive: list = ()) -> Conditions:  # type: ignore[type-arg]
    from derive.prove.numeric import Evaluator, ExactContext, IntervalContext

    points = []
    for k, vals in enumerate([(Fraction(1, 2), Fraction(-3, 4)), (Fraction(-2, 3), Fraction(1, 5)),
                              (Fraction(-1, 3), Fraction(-1, 2))]):
        leaf_values = dict(zip(leaves, vals))

        def at(exact: bool, lv: dict = leaf_values) -> Evaluator:  # type: ignore[type-arg]
            if exact:
                return Evaluator(ExactContext(), lv, defs)
            ctx = IntervalContext()
            return Evaluator(ctx, {s: ctx.number(sympy.Rational(v.numerator, v.denominator))
                                   for s, v in lv.items()}, defs)
        points.append((leaf_values, at))
    return Conditions(defs, leaves, positive, lambda: points)


def test_a_free_leaf_makes_a_denominator_nonzero_almost_everywhere() -> None:
    w, b = sympy.symbols("w b", real=True)
    z = sympy.Symbol("z", real=True)
    c = _conditions({z: w * b + b}, [w, b])
    assert c.judge([Condition(NONZERO, z, "in a denominator")]).ok


def test_a_step_function_that_vanishes_on_an_open_set_is_a_violation() -> None:
    w, x = sympy.symbols("w x", real=True)
    verdict = _conditions({}, [w, x]).judge([Condition(NONZERO, ReluPrime(w * x), "in a denominator")])
    assert not verdict.ok and verdict.violation is not None
    leaves = verdict.violation.leaves
    assert leaves[w] * leaves[x] < 0


def test_a_zero_at_a_point_only_is_not_a_violation() -> None:
    w, x = sympy.symbols("w x", real=True)
    # w + x is 0 nowhere at these points; w*x + w is analytic: certified nonzero somewhere
    verdict = _conditions({}, [w, x]).judge([Condition(NONZERO, w * x + w, "in a denominator")])
    assert verdict.ok


@pytest.mark.parametrize("kind", [POSITIVE, NONNEGATIVE])
def test_a_negative_base_on_an_open_set_is_a_violation(kind: str) -> None:
    w, x = sympy.symbols("w x", real=True)
    verdict = _conditions({}, [w, x]).judge([Condition(kind, w - x, "as the argument of log")])
    assert verdict.violation is not None


def test_unknown_is_never_ok() -> None:
    w, x = sympy.symbols("w x", real=True)
    # positive at every sample point, but not provably positive: unknown, not ok
    verdict = _conditions({}, [w, x]).judge([Condition(POSITIVE, w**2 + x**2 - sympy.Rational(1, 100), "log")])
    assert not verdict.ok and verdict.violation is None and verdict.unknown


# ------------------------------------------------------------ honest text, budgets

def test_unproven_text_counts_the_points_it_evaluated(relu_net: derive.Derivation,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from derive.prove import judge as equality

    def nothing(self, point, claimed, true):  # type: ignore[no-untyped-def]
        self._note_skip("cannot be evaluated (test)")
        return None
    monkeypatch.setattr(equality.Judge, "_refute_at", nothing)
    monkeypatch.setattr(equality.Judge, "prove", lambda self, c, t, cheap=False: None)
    check = relu_net.check_claim("dW2", "dZ2 @ A1.T * 2")
    assert check.verdict == "unproven"
    assert "no random point could be evaluated" in (check.detail or "")
    assert "random exact points showed no difference" not in (check.detail or "")


def test_a_refutation_never_waits_for_its_diagnosis(relu_net: derive.Derivation,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(30)
    monkeypatch.setattr(claims_module, "diagnose", slow)
    monkeypatch.setattr(claims_module, "DIAGNOSIS_SECONDS", 0.5)
    start = time.monotonic()
    check = relu_net.check_claim("dW2", "dZ2 @ A1.T * 2")
    assert time.monotonic() - start < 10
    assert check.verdict == "refuted" and check.counterexample is not None
    assert check.diagnosis is None


def test_a_batch_of_one_says_it_hides_factors_of_m() -> None:
    one = derive.from_dict({"name": "one", "network": {**NET, "batch": 1}})
    assert one.check_claim("dW2", "(1/m) * dZ2 @ A1.T").verdict == "proven"  # 1/m = 1: a true identity
    assert any("m = 1" in a and "1/m" in a for a in one.report(rules=False).assumptions)
    two = derive.from_dict({"name": "two", "network": NET})
    assert two.check_claim("dW2", "(1/m) * dZ2 @ A1.T").verdict == "refuted"
    assert not any("m = 1" in a for a in two.report(rules=False).assumptions)
