"""Claims: right formulas proven, each mistake of MATH.md §7 refuted with its diagnosis,
and every counterexample confirmed by an independent mpmath oracle."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
from conftest import net
from oracle import gradient

import derive
from derive.records import Method, ProofStep
from derive.testing import assert_claim, assert_refuted


def test_issue_claims_are_proven(classifier: derive.Derivation) -> None:
    for target, formula in [
        ("dZ2", "(A2 - Y) / m"),
        ("dW2", "dZ2 @ A1.T"),
        ("db2", "sum(dZ2, axis=1)"),
        ("dZ1", "(W2.T @ dZ2) * (1 - A1**2)"),
        ("dW1", "dZ1 @ X.T"),
        ("dW1", "((W2.T @ ((A2 - Y) / m)) * tanh_prime(Z1)) @ X.T"),  # fully written out
        ("dZ1", "(W2.T @ dZ2) * g1_prime(Z1)"),
        ("db1", "dZ1 @ ones(m, 1)"),
    ]:
        assert_claim(classifier, target, formula)


def test_course_formula_is_off_by_m(classifier: derive.Derivation) -> None:
    # dZ2 = A2 − Y is the per-example gradient; J here is averaged over m = 3.
    c = assert_refuted(classifier, "dZ2", "A2 - Y", "off by a factor 1/m")
    assert "per-example" in (c.diagnosis or "")
    ce = c.counterexample
    assert ce is not None
    # claimed = m × true at the counterexample
    assert mpmath.almosteq(mpmath.mpf(ce.claimed), 3 * mpmath.mpf(ce.true), 1e-12)


@pytest.mark.parametrize("strategy", ["global", "local"])
@pytest.mark.parametrize(
    "target, formula, diagnosis",
    [
        ("dZ1", "W2.T @ dZ2", "tanh′(Z1) is missing"),           # dropped g′
        ("dZ2", "-(A2 - Y) / m", "opposite sign"),               # y − a for a − y
        ("dZ2", "(A2 - Y) / m**2", "applied twice"),     # doubled 1/m
        ("dW2", "A1 @ dZ2.T", "transpose"),                      # stray transpose (shape)
        ("dW1", "2 * dZ1 @ X.T", "claimed = 2 × true"),           # a stray factor
        ("dZ1", "(W2.T @ dZ2) * A1", None),                       # g′ evaluated as g
        ("dZ1", "(W2.T @ dZ2) * (1 - A1)**2", None),              # wrong derivative
        ("dA1", "W2 @ dZ2", None),                                # shape error inside
    ],
)
def test_mistakes_are_refuted(strategy: str, target: str, formula: str, diagnosis: str | None) -> None:
    d = derive.load("derivations/two_layer_classifier.yaml", strategy=strategy)
    c = d.check_claim(target, formula)
    assert c.verdict == "refuted", c
    if diagnosis:
        assert diagnosis in (c.diagnosis or ""), c.diagnosis


def test_square_transpose_is_silent_error_but_refuted() -> None:
    # W2 is 3×3: a stray transpose has the right shape and must still be refuted.
    d = net([(3, "tanh"), (3, "sigmoid")], inputs=3, batch=1)
    assert_claim(d, "dA1", "W2.T @ dZ2")
    c = assert_refuted(d, "dA1", "W2 @ dZ2")
    assert c.counterexample is not None


def test_square_transpose_diagnosed() -> None:
    d = net([(3, "tanh"), (3, "sigmoid")], inputs=3, batch=3)
    c = assert_refuted(d, "dW2", "A1 @ dZ2.T", "transpose")
    assert c.counterexample is not None


def test_scale_alpha_condition() -> None:
    d = net([(2, "sigmoid"), (1, "identity")], loss={"type": "mse", "scale": "1/alpha"}, batch=1)
    assert_claim(d, "dA2", "2 * (A2 - Y) / alpha")
    c = assert_refuted(d, "dA2", "A2 - Y", "holds only when alpha = 2")
    assert c.counterexample is not None and "alpha" in c.counterexample.values


def test_sum_cost_extra_m() -> None:
    d = net([(2, "tanh"), (1, "sigmoid")], loss="binary_cross_entropy", batch=3, average=False)
    assert_claim(d, "dZ2", "A2 - Y")
    assert_refuted(d, "dZ2", "(A2 - Y) / m", "plain sum")


def test_wrong_index_refuted_with_exact_counterexample() -> None:
    # identity network: everything rational, so the counterexample is exact.
    d = net([(2, "identity"), (1, "identity")], batch=1)
    c = assert_refuted(d, "dW1", "dZ1 @ A1.T")  # A1 where the input X belongs
    assert c.counterexample is not None and c.counterexample.exact
    Fraction(c.counterexample.claimed), Fraction(c.counterexample.true)  # exact rationals


@pytest.mark.parametrize("strategy", ["global", "local"])
def test_counterexample_true_value_matches_oracle(strategy: str) -> None:
    d = derive.load("derivations/two_layer_classifier.yaml", strategy=strategy)
    c = d.check_claim("dW1", "dZ1 @ X.T * 2")
    ce = c.counterexample
    assert c.verdict == "refuted" and ce is not None
    i, j = ce.entry
    g = gradient(d.spec, ce.values, f"W1[{i},{j}]")
    assert mpmath.almosteq(g, mpmath.mpf(ce.true), 1e-12)
    assert not mpmath.almosteq(g, mpmath.mpf(ce.claimed), 1e-12)


def test_relu_dropped_derivative_is_refuted() -> None:
    # MATH.md §8: at points where every ReLU is active, dropping relu′ changes nothing.
    d = net([(4, "relu"), (2, "identity")], inputs=3, batch=2, strategy="local")
    assert_claim(d, "dZ1", "(W2.T @ dZ2) * relu_prime(Z1)")
    assert_refuted(d, "dZ1", "W2.T @ dZ2", "relu′(Z1) is missing")


def test_target_must_be_a_gradient(classifier: derive.Derivation) -> None:
    with pytest.raises(derive.FormulaError, match="target must be a gradient"):
        classifier.check_claim("W2", "dZ2 @ A1.T")


def test_unknown_name_lists_known(classifier: derive.Derivation) -> None:
    with pytest.raises(derive.FormulaError, match=r"unknown name 'A9'.*known: .*W1"):
        classifier.check_claim("dW2", "dZ2 @ A9.T")


def test_shape_mismatch_reports_both_shapes(classifier: derive.Derivation) -> None:
    c = classifier.check_claim("dW2", "dZ2")
    assert c.verdict == "refuted"
    assert "claimed 1×3" in (c.detail or "") and "1×4" in (c.detail or "")


def test_assert_claim_message_shows_everything(classifier: derive.Derivation) -> None:
    with pytest.raises(AssertionError) as info:
        assert_claim(classifier, "dZ2", "A2 - Y")
    text = str(info.value)
    assert "claimed: dZ2 = A2 - Y" in text
    assert "true:    dZ2 = (A2 - Y) / m   (proven rule)" in text
    assert "counterexample" in text and "diagnosis: off by a factor 1/m" in text


def test_relu_identity_is_proven_by_cases_not_by_polynomials() -> None:
    # relu(z) = z·relu′(z) holds everywhere but not as a polynomial identity in the atoms:
    # only the split at the kink proves it (and nothing may refute it)
    d = net([(2, "relu"), (1, "identity")], batch=1, strategy="local")
    c = d.check_claim("dW2", "dZ2 @ (Z1 * relu_prime(Z1)).T")
    assert c.counterexample is None
    assert c.verdict == "proven" and (c.method, c.step) == (Method.EXACT, ProofStep.SIGN_CASES)


def test_fully_composed_claim_is_proven_and_its_mutation_refuted() -> None:
    # a chain written out through dZ3 meets the truth unfolded to dZ3 (three layers)
    d = net([(3, "sigmoid"), (3, "tanh"), (2, "sigmoid")], inputs=2, batch=2, strategy="local")
    right = "((W2.T @ ((W3.T @ dZ3) * (1 - A2**2))) * A1 * (1 - A1)) @ X.T"
    c = assert_claim(d, "dW1", right)
    assert c.step in (ProofStep.TRUTH_TO_CLAIM, ProofStep.ADJOINTS_UNFOLDED)
    assert_refuted(d, "dW1", right.replace("(1 - A2**2)", "A2"))


def test_constant_factor_named_on_a_deep_softmax_chain() -> None:
    # the factor comes from the sample points; cancel() of this chain took minutes
    d = net([(2, "sigmoid"), (3, "sigmoid"), (3, "softmax")], inputs=3, loss="cross_entropy", batch=3,
            strategy="local")
    right = "((W2.T @ ((W3.T @ ((A3 - Y) / m)) * sigmoid_prime(Z2))) * sigmoid_prime(Z1)) @ X.T"
    assert_claim(d, "dW1", right)
    assert_refuted(d, "dW1", f"2 * ({right})", diagnosis="claimed = 2 × true")
    assert_refuted(d, "dW1", f"m * ({right})", diagnosis="off by a factor 1/m")


@pytest.mark.parametrize("strategy", ["global", "local"])
@pytest.mark.parametrize("target, formula, verdict", [
    ("dZ2", "dA2 * exp(-Z2) / (1 + exp(-Z2))**2", "proven"),       # σ′ written through exp
    ("dZ2", "dA2 * sigmoid(Z2) * sigmoid(-Z2)", "proven"),          # σ(z)σ(−z) = σ′(z)
    ("dZ1", "dA1 * 4 / (exp(Z1) + exp(-Z1))**2", "proven"),         # tanh′ = sech²
    ("dZ2", "dA2 * exp(Z2) / (1 + exp(-Z2))**2", "refuted"),        # a sign slip inside exp
    ("dZ1", "dA1 * 4 / (exp(Z1) + exp(-Z1))", "refuted"),           # the square forgotten
])
def test_activations_written_through_exp(strategy: str, target: str, formula: str, verdict: str) -> None:
    d = derive.load("derivations/two_layer_classifier.yaml", strategy=strategy)
    c = d.check_claim(target, formula)
    assert c.verdict == verdict, c
    if verdict == "proven":
        assert (c.method, c.step) == (Method.EXACT, ProofStep.THROUGH_EXP)
