"""The loss registry (derive.ops.losses): every loss is one registration with all of its
facets, each new loss (huber, mae, hinge, nll on log_softmax) has its built-in rules proven
on a 2-layer network, right claims proven and mutated claims refuted; and the L2 weight
decay (``weight_decay:``) adds λ W_l to every dW_l."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
from conftest import net

import derive
from derive.model.network import COST
from derive.ops import losses as registry
from derive.ops.activations import Relu
from derive.ops.layer_types import LAYER_ACTIVATIONS
from derive.rules.layer_rules import COMBINED_DZ, LOSS_GRADIENTS

# ------------------------------------------------------------------ completeness


def test_every_loss_has_its_output_gradient_and_combined_rules() -> None:
    assert set(LOSS_GRADIENTS) == set(registry.LOSSES)
    declared = {(name, act) for name, loss in registry.LOSSES.items() for act in loss.combined}
    assert set(COMBINED_DZ) == declared
    for loss in registry.LOSSES.values():
        assert loss.formula and loss.targets in (registry.FREE, registry.PROBABILITY, registry.ONE_HOT)
        for act in loss.outputs + loss.combined:
            assert act in LAYER_ACTIVATIONS, (loss.name, act)
        for alias in loss.aliases:
            assert registry.LOSS_ALIASES[alias] == loss.name


def test_an_unknown_loss_is_a_named_error() -> None:
    with pytest.raises(registry.UnknownLoss, match="no loss is registered as 'focal'.*huber"):
        registry.loss("focal")


def _example(name: str, a: list[sympy.Expr], y: list[sympy.Expr], **params: sympy.Expr) -> sympy.Expr:
    entry = registry.loss(name)
    values = {p.key: p.default for p in entry.parameters} | params
    return entry.example(a, y, values)


def _relu_free(e: sympy.Expr) -> sympy.Expr:
    return e.replace(Relu, lambda u: sympy.Max(u, 0))


@pytest.mark.parametrize("u", [sympy.Rational(-7, 2), -2, -1, sympy.Rational(-1, 3), 0, sympy.Rational(1, 2), 1, 3])
def test_huber_and_mae_values_are_the_textbook_ones(u: sympy.Expr) -> None:
    a, y = sympy.Symbol("a"), sympy.Rational(1, 5)
    d = sympy.Rational(3, 2)
    huber = _relu_free(_example("huber", [a], [y], delta=d)).subs(a, y + u)
    want = u**2 / 2 if abs(u) <= d else d * (abs(u) - d / 2)
    assert sympy.simplify(huber - want) == 0
    mae = _relu_free(_example("mae", [a], [y])).subs(a, y + u)
    assert mae == abs(u)


def test_hinge_is_the_multiclass_svm_loss_at_one_hot_targets() -> None:
    s = [sympy.Rational(1, 2), sympy.Rational(-3, 2), sympy.Rational(9, 10)]
    for c in range(3):
        y = [sympy.Integer(int(j == c)) for j in range(3)]
        want = sum(max(0, s[j] - s[c] + 1) for j in range(3) if j != c)
        assert _relu_free(_example("hinge", s, y)) == want


# ------------------------------------------------------------------ spec


def _load(tmp_path: Path, network: str) -> derive.Derivation:
    p = tmp_path / "net.yaml"
    p.write_text(f"network: {network}\n")
    return derive.load(p)


@pytest.mark.parametrize("network, message", [
    ("{inputs: 2, layers: [{units: 1}], loss: {type: huber, scale: 2}}",
     "network.loss.scale: a scale is only for mse, not huber"),
    ("{inputs: 2, layers: [{units: 1}], loss: {type: mse, delta: 2}}",
     "network.loss.delta: a delta is only for huber, not mse"),
    ("{inputs: 2, layers: [{units: 1}], loss: {type: huber, delta: 0}}",
     "network.loss.delta: huber's delta of 0 makes every gradient 0"),
    ("{inputs: 2, layers: [{units: 1}], loss: {type: huber, delta: -1}}",
     "network.loss.delta: huber's delta must be positive, got -1"),
    ("{inputs: 2, layers: [{units: 1}], loss: {type: huber, delta: 1/m}}",
     "network.loss.delta: 'm' is a name of the network, not a free constant"),
    ("{inputs: 2, layers: [{units: 2, activation: softmax}], loss: nll}",
     "network.loss: nll needs a log-probability output: the last layer is softmax, expected log_softmax"),
    ("{inputs: 2, layers: [{units: 2, activation: log_softmax}, {units: 2}], loss: mse}",
     "network.layers[0].activation: log_softmax is supported on the output layer only"),
    ("{inputs: 2, layers: [{units: 1, activation: log_softmax}], loss: nll}",
     "network.layers[0].units: log_softmax needs at least 2 units"),
    ("{inputs: 2, layers: [{units: 2}], loss: {type: mae, delta: 1}}",
     "network.loss.delta: a delta is only for huber, not mae"),
    ("{inputs: 2, layers: [{units: 2}], loss: {type: huber, deltta: 1}}",
     "network.loss.deltta: unknown key 'deltta' (expected one of: type, delta); did you mean 'delta'?"),
    ("{inputs: 2, layers: [{units: 1}], loss: mse, weight_decay: -1/10}",
     "network.weight_decay: a weight decay must not be negative, got -1/10"),
    ("{inputs: 2, layers: [{units: 1}], loss: mse, weight_decay: lambd/X}",
     "network.weight_decay: 'X' is a name of the network, not a free constant"),
    ("{inputs: 2, layers: [{units: 1}], loss: mse, weight_decay: true}",
     "network.weight_decay: expected a number or an expression such as 1/alpha"),
])
def test_spec_errors_come_from_the_registration(tmp_path: Path, network: str, message: str) -> None:
    with pytest.raises(derive.SpecError) as info:
        _load(tmp_path, network)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_loss_parameters_reach_the_spec() -> None:
    d = net([(2, "identity")], loss={"type": "huber", "delta": "delta"})
    assert d.spec.loss.values["delta"] == sympy.Symbol("delta", real=True)
    assert str(d.spec.loss.values["delta"]) in d.net.constants
    assert net([(2, "identity")], loss="huber").spec.loss.values["delta"] == 1


# ------------------------------------------------------------------ rules and claims

LOSS_NETWORKS = [
    # (layers, loss, batch layout)
    ([(3, "tanh"), (2, "identity")], {"type": "huber", "delta": 1}, "columns"),
    ([(3, "relu"), (2, "identity")], {"type": "huber", "delta": "delta"}, "rows"),
    ([(3, "tanh"), (2, "identity")], "mae", "columns"),
    ([(2, "sigmoid"), (2, "identity")], "mae", "rows"),
    ([(3, "tanh"), (3, "identity")], "hinge", "columns"),
    ([(2, "tanh"), (3, "identity")], "hinge", "rows"),
    ([(3, "tanh"), (3, "log_softmax")], "nll", "columns"),
    ([(2, "relu"), (3, "log_softmax")], "nll", "rows"),
]


@pytest.mark.parametrize("strategy", ["global", "local"])
@pytest.mark.parametrize("layers, loss, layout", LOSS_NETWORKS)
def test_the_built_in_rules_of_each_new_loss_are_proven(strategy: str, layers, loss, layout) -> None:  # type: ignore[no-untyped-def]
    d = net(layers, inputs=2, loss=loss, batch=2, batch_layout=layout, strategy=strategy)
    checks = d.check_rules()
    assert any(c.target == "dA2" and c.layer == 2 for c in checks)
    bad = [(c.statement, c.verdict) for c in checks if c.verdict != "proven"]
    assert not bad, bad


HUBER = "((A2 - Y) - relu(A2 - Y - {d}) + relu(Y - A2 - {d}))"
SIGN = "(np.heaviside(A2 - Y, 0) - np.heaviside(Y - A2, 0))"
HINGE_H = "(1 - Y) * relu_prime(A2 - sum(Y * A2, axis=0) + 1)"
HINGE = f"({HINGE_H} - Y * sum({HINGE_H}, axis=0))"

CLAIMS = [
    # (layers, loss, target, formula, verdict)
    ([(3, "tanh"), (2, "identity")], "huber", "dA2", HUBER.format(d=1) + " / m", "proven"),
    ([(3, "tanh"), (2, "tanh")], "huber", "dZ1",
     f"(W2.T @ ((1 - A2**2) * {HUBER.format(d=1)} / m)) * (1 - A1**2)", "proven"),
    ([(3, "tanh"), (2, "identity")], "huber", "dA2", "(A2 - Y) / m", "refuted"),  # ignores the clipping
    ([(3, "tanh"), (2, "identity")], "huber", "dA2", HUBER.format(d=1), "refuted"),  # dropped 1/m
    ([(3, "tanh"), (2, "identity")], "huber", "dA2", "-" + HUBER.format(d=1) + " / m", "refuted"),  # sign
    ([(3, "tanh"), (2, "identity")], "huber", "dA2", HUBER.format(d=2) + " / m", "refuted"),  # wrong δ
    ([(3, "tanh"), (2, "identity")], {"type": "huber", "delta": "delta"}, "dA2",
     HUBER.format(d="delta") + " / m", "proven"),
    ([(3, "tanh"), (2, "identity")], {"type": "huber", "delta": "delta"}, "dA2", "(A2 - Y) / m", "refuted"),
    ([(3, "tanh"), (2, "identity")], "mae", "dA2", SIGN + " / m", "proven"),
    ([(3, "tanh"), (2, "identity")], "mae", "dW2", f"({SIGN} / m) @ A1.T", "proven"),
    ([(3, "tanh"), (2, "identity")], "mae", "dA2", SIGN, "refuted"),  # dropped 1/m
    ([(3, "tanh"), (2, "identity")], "mae", "dA2", "-" + SIGN + " / m", "refuted"),  # wrong sign
    ([(3, "tanh"), (2, "identity")], "mae", "dA2", "(A2 - Y) / m", "refuted"),  # the mse gradient
    ([(3, "tanh"), (3, "identity")], "hinge", "dA2", HINGE + " / m", "proven"),
    ([(3, "tanh"), (3, "identity")], "hinge", "dA2", HINGE, "refuted"),  # dropped 1/m
    ([(3, "tanh"), (3, "identity")], "hinge", "dA2", "-" + HINGE + " / m", "refuted"),  # wrong sign
    ([(3, "tanh"), (3, "identity")], "hinge", "dA2", HINGE_H + " / m", "refuted"),  # forgot the true class
    ([(3, "tanh"), (3, "log_softmax")], "nll", "dZ2", "(softmax(Z2) - Y) / m", "proven"),
    ([(3, "tanh"), (3, "log_softmax")], "nll", "dZ2", "(exp(A2) - Y) / m", "proven"),
    ([(3, "tanh"), (3, "log_softmax")], "nll", "dA2", "-Y / m", "proven"),
    ([(3, "tanh"), (3, "log_softmax")], "nll", "dW2", "(softmax(Z2) - Y) @ A1.T / m", "proven"),
    ([(3, "tanh"), (3, "log_softmax")], "nll", "dZ2", "softmax(Z2) - Y", "refuted"),  # dropped 1/m
    ([(3, "tanh"), (3, "log_softmax")], "nll", "dZ2", "(Y - softmax(Z2)) / m", "refuted"),  # wrong sign
    ([(3, "tanh"), (3, "log_softmax")], "nll", "dZ2", "(A2 - Y) / m", "refuted"),  # log-probabilities, not p
]


@pytest.mark.parametrize("layers, loss, target, formula, verdict", CLAIMS)
def test_claims_on_the_new_losses(layers, loss, target, formula, verdict) -> None:  # type: ignore[no-untyped-def]
    d = net(layers, inputs=2, loss=loss, batch=2)
    check = d.check_claim(target, formula)
    assert check.verdict == verdict, (check.statement, check.method, check.detail)
    if verdict == "refuted":
        assert check.counterexample is not None


def test_a_whole_chain_through_the_huber_kinks_of_an_identity_output() -> None:
    # the local engine keeps Z2 an atom inside relu(Z2 − Y − 1) on both sides; the global
    # engine composes it into W2 @ A1 + b2 in the truth only (unproven there, never refuted)
    claim = f"(W2.T @ ({HUBER.format(d=1)} / m)) * (1 - A1**2)"
    d = net([(3, "tanh"), (2, "identity")], inputs=2, loss="huber", batch=2, strategy="local")
    assert d.check_claim("dZ1", claim).verdict == "proven"
    assert d.check_claim("dZ1", claim.replace("- 1)", "- 2)")).verdict == "refuted"
    g = net([(3, "tanh"), (2, "identity")], inputs=2, loss="huber", batch=2, strategy="global")
    assert g.check_claim("dZ1", claim).verdict in ("proven", "unproven")


def test_targets_are_stated() -> None:
    hinge = net([(3, "identity")], loss="hinge").report()
    assert any("one-hot" in a and "sums to 1" in a for a in hinge.assumptions)
    nll = net([(3, "log_softmax")], loss="nll")
    assert any("sums to 1" in a for a in nll.report().assumptions)
    assert not nll.net.matrices["Y"][2, 0].is_Symbol  # the eliminated entry
    assert net([(2, "identity")], loss="mae").report().assumptions == []


# ------------------------------------------------------------------ weight decay


@pytest.mark.parametrize("decay, spelled", [("1/10", "1/10"), ("lambd", "lambd"), ("lambd/m", "lambd / m")])
@pytest.mark.parametrize("layout", ["columns", "rows"])
def test_weight_decay_adds_lambda_w_to_dw(decay: str, spelled: str, layout: str) -> None:
    d = net([(3, "tanh"), (2, "sigmoid")], inputs=2, loss="mse", batch=2, batch_layout=layout,
            weight_decay=decay)
    bad = [(c.statement, c.verdict) for c in d.check_rules() if c.verdict != "proven"]
    assert not bad, bad
    plain = "dZ1 @ X.T" if layout == "columns" else "dZ1.T @ X"
    assert d.check_claim("dW1", f"{plain} + {spelled} * W1").verdict == "proven"
    for wrong in (plain, f"{plain} + 2 * {spelled} * W1", f"{plain} + {spelled} * W1 / m",
                  f"{plain} - {spelled} * W1"):
        check = d.check_claim("dW1", wrong)
        assert check.verdict == "refuted", wrong
        assert check.counterexample is not None
    # biases are not decayed
    db = "sum(dZ1, axis=1)" if layout == "columns" else "sum(dZ1, axis=0).T"
    assert d.check_claim("db1", db).verdict == "proven"
    assert any("weight decay" in a for a in d.report().assumptions)


def test_weight_decay_over_m_is_the_course_convention() -> None:
    d = net([(2, "sigmoid")], inputs=2, loss="binary_cross_entropy", batch=3, weight_decay="lambd/m")
    lambd = sympy.Symbol("lambd", real=True)
    assert d.net.constants["lambd"] == lambd and "m" not in {str(s) for s in d.net.free_constants}
    decay = d.net.definitions[COST] - net([(2, "sigmoid")], inputs=2, loss="binary_cross_entropy",
                                          batch=3).net.definitions[COST]
    w = d.net.matrices["W1"]
    assert w.shape == (2, 2)
    assert sympy.expand(decay - lambd / 6 * sum(e**2 for e in w)) == 0  # (λ/m)/2 ‖W1‖², m = 3
    assert d.check_claim("dW1", "(A1 - Y) @ X.T / m + lambd / m * W1").verdict == "proven"
    assert d.check_claim("dW1", "(A1 - Y) @ X.T / m + lambd * W1").verdict == "refuted"


def test_hinge_is_refuted_only_at_one_hot_targets() -> None:
    # the course's SVM gradient uses y·a = a_c and relu′(m_c) = relu′(1) = 1, true only for
    # one-hot y: derive proves over every y that sums to 1, so it cannot prove this form, but
    # it must not refute it at a target the loss is never given (sample points are one-hot)
    d = derive.from_dict({"name": "svm", "network": {
        "inputs": 2, "layers": [{"units": 3, "activation": "identity"}], "loss": "hinge", "batch": 2}})
    margins = "(A1 - sum(Y * A1, axis=0) + 1)"
    one_hot_only = f"(relu_prime({margins}) - Y - Y * (sum(relu_prime({margins}), axis=0) - 1)) / m"
    assert d.check_claim("dA1", one_hot_only).verdict != "refuted"
    general = f"((1 - Y) * relu_prime({margins}) - Y * sum((1 - Y) * relu_prime({margins}), axis=0)) / m"
    assert d.check_claim("dA1", general).verdict == "proven"
    wrong = f"((1 - Y) * relu_prime({margins})) / m"  # the class's own score term dropped
    assert d.check_claim("dA1", wrong).verdict == "refuted"


def test_the_report_shows_the_loss_parameters_and_the_weight_decay() -> None:
    d = derive.from_dict({"name": "hub", "network": {
        "inputs": 2, "layers": [{"units": 2, "activation": "tanh"}, {"units": 1, "activation": "identity"}],
        "loss": {"type": "huber", "delta": 2}, "batch": 2, "weight_decay": "lambd/m"}})
    report = d.report(rules=False)
    assert report.conventions["delta"] == "2" and report.conventions["weight_decay"] == "lambd/m"
    from derive.render import words
    assert "δ = 2" in words.conventions(report)[0]


def test_keras_categorical_crossentropy_is_cross_entropy() -> None:
    """Keras' name (a sum over the classes, as derive's cross_entropy) checks the same network;
    its binary_crossentropy and mean_squared_error average over the output units, so they
    are not aliases (a wrong factor would refute right formulas): only suggested."""
    def rules(loss: str) -> list[tuple[str, str]]:
        d = derive.from_dict({"name": "k", "network": {"inputs": 2, "batch": 2, "loss": loss, "layers": [
            {"units": 2, "activation": "tanh"}, {"units": 3, "activation": "softmax"}]}})
        return [(c.target, c.verdict.value) for c in d.report(jobs=1).rules]

    assert rules("categorical_crossentropy") == rules("cross_entropy")
    assert "binary_crossentropy" not in registry.LOSS_ALIASES and "mean_squared_error" not in registry.LOSS_ALIASES
