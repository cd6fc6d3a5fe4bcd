"""Records carry codes, not string protocols: verdicts, methods, proof steps and diagnoses
are str-valued enums (compare equal to, and serialise as, their text); tests assert codes,
messages stay free to change."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, net

import derive
from derive.prove.judge import Judge
from derive.records import (
    PROVEN,
    REFUTED,
    Check,
    Diagnosis,
    DiagnosisCode,
    Method,
    ProofStep,
    Verdict,
)
from derive.testing import assert_refuted


def test_codes_are_their_text() -> None:
    assert Verdict.PROVEN == "proven" and json.dumps(Verdict.REFUTED) == '"refuted"'
    assert json.dumps({"method": Method.TIMEOUT}) == '{"method": "timeout"}'
    assert str(DiagnosisCode.CONSTANT_FACTOR) == "constant factor"


def test_every_judge_step_has_a_code() -> None:
    """The judge labels its steps; ProofStep names each label, in the judge's order (a new
    step in prove/judge.py without a code here fails this test, never a check)."""
    d = net([(2, "relu"), (1, "sigmoid")], loss="binary_cross_entropy")
    labels = [label for label, _ in Judge(d.net, d.truth).unfold_steps()]
    assert labels == [str(s) for s in ProofStep]


def test_proven_claims_carry_method_and_step() -> None:
    d = derive.load(ROOT / "derivations" / "two_layer_classifier.yaml")
    c = d.check_claim("dW2", "dZ2 @ A1.T")
    assert (c.verdict, c.method) == (PROVEN, Method.EXACT)
    assert isinstance(c.step, ProofStep) and c.basis == d.truth.method
    relu = net([(2, "relu"), (1, "identity")], batch=1, strategy="local")
    c = relu.check_claim("dW2", "dZ2 @ (Z1 * relu_prime(Z1)).T")
    assert (c.method, c.step) == (Method.EXACT, ProofStep.SIGN_CASES)


def test_refutations_carry_their_arithmetic_as_a_code() -> None:
    d = derive.load(ROOT / "derivations" / "two_layer_classifier.yaml")
    c = d.check_claim("dZ2", "A2 - Y")
    assert c.verdict == REFUTED and c.counterexample is not None
    assert c.method == (Method.COUNTEREXAMPLE_EXACT if c.counterexample.exact else Method.COUNTEREXAMPLE_INTERVAL)
    assert d.check_claim("dW2", "dZ2 @ A1").method == Method.SHAPES


def test_undefined_on_an_open_set_is_its_own_method() -> None:
    """relu′(Z1) is 0 wherever Z1 < 0: dividing by it is undefined on an open set (the
    code, not the counterexample's text, is what renderers branch on)."""
    d = net([(3, "relu"), (1, "sigmoid")], loss="binary_cross_entropy")
    c = d.check_claim("dA1", "dZ1 / relu_prime(Z1)")
    assert c.verdict == REFUTED and c.method.undefined, c
    assert c.method in (Method.UNDEFINED_EXACT, Method.UNDEFINED_INTERVAL)
    assert not Method.COUNTEREXAMPLE_EXACT.undefined


@pytest.mark.parametrize("target, formula, code", [
    ("dZ2", "A2 - Y", DiagnosisCode.PER_EXAMPLE),
    ("dW2", "2 * dZ2 @ A1.T", DiagnosisCode.CONSTANT_FACTOR),  # (m = 3 would be PER_EXAMPLE)
    ("dW2", "-dZ2 @ A1.T", DiagnosisCode.OPPOSITE_SIGN),
    ("dW2", "(dZ2 @ A1.T) / m", DiagnosisCode.EXTRA_1_OVER_M),
    ("dW2", "A1 @ dZ2.T", DiagnosisCode.TRANSPOSE),
    ("dZ1", "W2.T @ dZ2", DiagnosisCode.MISSING_ACTIVATION_DERIVATIVE),
])
def test_diagnoses_are_codes(target: str, formula: str, code: DiagnosisCode) -> None:
    d = derive.load(ROOT / "derivations" / "two_layer_classifier.yaml")
    c = d.check_claim(target, formula)
    assert c.verdict == REFUTED and c.finding is not None, c
    assert c.finding.code == code, c.finding
    assert c.diagnosis == c.finding.message  # the message, as text (JSON, README)


def test_a_fix_outranks_a_factor_of_symbols() -> None:
    """claimed = x1/x2 × true is proven, but "x1 → x2" names the mistake: the higher priority wins."""
    d = derive.load(ROOT / "derivations" / "logistic_regression_equations.yaml")
    c = assert_refuted(d, "dw2", "(a - y) * x1")
    assert c.finding is not None and c.finding.code == DiagnosisCode.WRONG_NAME


def test_factor_condition_and_layout_codes() -> None:
    d = net([(2, "sigmoid"), (1, "identity")], loss={"type": "mse", "scale": "1/alpha"}, batch=1)
    c = assert_refuted(d, "dA2", "A2 - Y")  # alpha/2 × true: a factor of symbols (and a condition)
    assert c.finding is not None and c.finding.code == DiagnosisCode.SYMBOLIC_FACTOR
    c = assert_refuted(d, "dA2", "2 * (A2 - Y) / alpha + (alpha - 2) * Y")  # no factor: only a condition
    assert c.finding is not None and c.finding.code == DiagnosisCode.CONDITION, c.finding
    den = net([(3, "sigmoid"), (2, "sigmoid")], inputs=2, batch=1, layout="denominator")
    c = assert_refuted(den, "J(Z2, A1)", "W2")
    assert c.finding is not None and c.finding.code == DiagnosisCode.LAYOUT


def test_check_is_frozen_plain_data() -> None:
    c = Check("claim", "dW1", "dZ1 @ X.T", PROVEN, Method.EXACT, 4, 0.1,
              finding=Diagnosis(DiagnosisCode.WRONG_NAME, "true if a → b"))
    assert c.ok and c.diagnosis == "true if a → b" and str(c.finding) == "true if a → b"
    with pytest.raises(AttributeError):
        c.verdict = REFUTED  # type: ignore[misc]
