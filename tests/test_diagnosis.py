"""Diagnoses of refuted claims: a constant factor is named at every batch size, found
exactly (never through a float), and only when the corrected statement is proven."""

from __future__ import annotations

import random
from fractions import Fraction

from conftest import net
from mpmath import iv, libmp

EXTRA_1_OVER_M = "an extra factor 1/m"


def classifier(m: int):  # type: ignore[no-untyped-def]
    """two_layer_classifier.yaml's network (tanh, sigmoid output, averaged BCE) at batch m."""
    return net([(4, "tanh"), (1, "sigmoid")], loss="binary_cross_entropy", batch=m, average=True)


def test_extra_one_over_m_is_named_at_every_batch_size() -> None:
    """Was named at m = 2, 4, 8 only: 1/3 etc. were compared through a float."""
    named = {}
    for m in range(2, 9):
        d = classifier(m)
        c = d.check_claim("dW2", "(1/m) * np.dot(dZ2, A1.T)")
        assert c.verdict == "refuted", m
        named[m] = EXTRA_1_OVER_M in (c.diagnosis or "")
        assert d.check_claim("dW2", "np.dot(dZ2, A1.T)").verdict == "proven", m
    assert named == {m: True for m in range(2, 9)}


def test_extra_one_over_m_behind_softmax() -> None:
    named = {}
    for m in (2, 3, 5, 6, 7):
        d = net([(3, "tanh"), (3, "softmax")], inputs=2, loss="cross_entropy", batch=m)
        c = d.check_claim("dW1", "dZ1 @ X.T / m")
        assert c.verdict == "refuted", m
        named[m] = EXTRA_1_OVER_M in (c.diagnosis or "")
    assert named == {m: True for m in (2, 3, 5, 6, 7)}


def test_constant_factors() -> None:
    """Each constant factor is named (not 1/m: m = 5, 7); a ratio that varies is not."""
    for m in (5, 7):
        d = classifier(m)
        for formula, factor in [("2 * dZ2 @ A1.T", "2"), ("dZ2 @ A1.T / 3", "1/3"),
                                ("dZ2 @ A1.T * 3 / 7", "3/7"), ("-dZ2 @ A1.T / 2", "-1/2")]:
            c = d.check_claim("dW2", formula)
            assert c.verdict == "refuted", (m, formula)
            assert f"claimed = {factor} × true" in (c.diagnosis or ""), (m, formula, c.diagnosis)
        c = d.check_claim("dW2", "dZ2 @ (A1 * A1).T")
        assert c.verdict == "refuted"
        assert "× true" not in (c.diagnosis or "")  # a ratio that varies is no constant factor
        assert c.diagnosis == "true without the factor A1"  # (the structural search names it)


def _exact_endpoints(x) -> tuple[Fraction, Fraction]:  # type: ignore[no-untyped-def]
    lo, hi = (Fraction(*libmp.to_rational(e)) for e in x._mpi_)
    return lo, hi


def test_simplest_rational_at_200_bits() -> None:
    from derive.prove.numeric import simplest_rational

    iv.prec = 200
    e = iv.exp(iv.mpf(1))
    for p, q in [(1, 3), (-1, 7), (2, 1), (5, 6), (1, 1_000_003), (0, 1)]:
        lo, hi = _exact_endpoints(e * p / q / e)  # p/q in a 200-bit interval, not a binary float
        assert lo < hi or p == 0
        assert simplest_rational(lo, hi) == Fraction(p, q)
    assert simplest_rational(*_exact_endpoints(e)) is None  # an irrational: no small denominator


def test_simplest_rational_against_brute_force() -> None:
    from derive.prove.numeric import simplest_rational

    def brute(lo: Fraction, hi: Fraction) -> Fraction:
        for q in range(1, 100):
            inside = [Fraction(p, q) for p in range(-800, 801) if lo <= Fraction(p, q) <= hi]
            if inside:
                return min(inside, key=abs)
        raise AssertionError("no rational found")

    rng = random.Random(7)
    for _ in range(200):
        lo = Fraction(rng.randint(-60, 60), rng.randint(1, 12))
        hi = lo + Fraction(rng.randint(0, 9), rng.randint(1, 100))
        assert simplest_rational(lo, hi) == brute(lo, hi)
