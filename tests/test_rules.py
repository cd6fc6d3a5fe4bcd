"""Every rule of every layer is proven, on several shapes, activations, losses, both batch
layouts and both truth engines; planted wrong rules are not."""

from __future__ import annotations

import pytest
from conftest import net

from derive.records import Method
from derive.rules.layer_rules import Rule

CASES = [
    # (layers, inputs, loss, batch, extra)
    ([(3, "sigmoid"), (2, "sigmoid")], 2, "mse", 2, {}),
    ([(2, "tanh"), (1, "sigmoid")], 3, "binary_cross_entropy", 3, {}),
    ([(3, "relu"), (3, "softmax")], 2, "cross_entropy", 2, {}),
    ([(2, "leaky_relu", "1/10"), (2, "identity")], 2, "mse", 2, {}),
    ([(2, "leaky_relu", "beta"), (1, "identity")], 2, "mse", 1, {}),   # symbolic slope
    ([(3, "softplus"), (2, "tanh")], 2, {"type": "mse", "scale": "1/alpha"}, 2, {}),
    ([(2, "identity")], 3, "mse", 4, {"average": False}),
    ([(3, "tanh"), (2, "sigmoid")], 2, "mse", 2, {"batch_layout": "rows"}),
    ([(2, "relu"), (3, "softmax")], 2, "cross_entropy", 2, {"batch_layout": "rows"}),
    ([(2, "sigmoid"), (3, "softmax")], 2, {"type": "mse", "scale": 1}, 1, {}),  # softmax + mse
]


@pytest.mark.parametrize("strategy", ["global", "local"])
@pytest.mark.parametrize("layers, inputs, loss, batch, extra", CASES)
def test_every_rule_proven(strategy: str, layers, inputs, loss, batch, extra) -> None:  # type: ignore[no-untyped-def]
    d = net(layers, inputs=inputs, loss=loss, batch=batch, strategy=strategy, **extra)
    checks = d.check_rules()
    L = len(layers)
    # each layer has dZ, dW, db; every layer but the first has dA_{l-1}; the loss adds dA_L
    assert len(checks) >= 3 * L + (L - 1) + 1
    bad = [c.statement for c in checks if c.verdict != "proven"]
    assert not bad, bad
    for c in checks:
        if not c.rule.startswith("vec"):  # type: ignore[union-attr]
            assert c.entries == len(d.net.matrices[c.target[1:]])


def test_rows_layout_rules_are_transposed() -> None:
    d = net([(3, "tanh"), (2, "sigmoid")], batch=2, batch_layout="rows")
    formulas = {r.target: r.formula for r in d.rules()}
    assert formulas["dW2"] == "dZ2.T @ A1"
    assert formulas["dA1"] == "dZ2 @ W2"
    assert d.net.shape("X") == (2, 2) and d.net.shape("Z1") == (2, 3)
    # and the column-layout forms are refuted there (X is 2×2: the shapes even fit)
    assert d.check_claim("dW1", "dZ1 @ X.T").verdict == "refuted"


@pytest.mark.parametrize("strategy", ["global", "local"])
@pytest.mark.parametrize(
    "rule",
    [
        Rule(1, "dZ", "dZ1", "dA1"),                          # dropped g′
        Rule(2, "dZ", "dZ2", "A2 - Y"),                       # dropped 1/m
        Rule(2, "dW", "dW2", "dZ2 @ A1.T / m"),               # doubled 1/m
        Rule(1, "db", "db1", "sum(dZ1, axis=0).T"),           # wrong axis (square batch)
    ],
)
def test_planted_wrong_rule_not_proven(strategy: str, rule: Rule) -> None:
    d = net([(2, "tanh"), (1, "sigmoid")], inputs=2, loss="binary_cross_entropy", batch=2,
            strategy=strategy)
    check = d.check_rule(rule)
    assert check.verdict == "refuted"
    assert check.counterexample is not None


def test_cross_entropy_assumption_is_stated() -> None:
    d = net([(3, "softmax")], inputs=2, loss="cross_entropy", batch=2)
    report = d.report()
    assert any("sums to 1" in a for a in report.assumptions)
    # the constraint is used: the eliminated target entry is an expression, not a symbol
    assert not d.net.matrices["Y"][2, 0].is_Symbol


def test_engines_agree_on_gradients() -> None:
    # the local chain rule and sympy.diff of the whole cost give the same ∂J/∂θ
    spec_layers = [(2, "sigmoid"), (2, "softmax")]
    g = net(spec_layers, loss="cross_entropy", batch=2, strategy="global")
    loc = net(spec_layers, loss="cross_entropy", batch=2, strategy="local")
    from derive.prove.judge import is_zero
    for name in ("W1", "b1", "W2", "Z1", "A1"):
        a, b = g.truth.grad(name), loc.truth.grad(name)
        for x, y in zip(a, b, strict=True):
            assert is_zero(loc.truth.unfold(y) - x)


@pytest.mark.parametrize("layout", ["columns", "rows"])
def test_vec_rules_over_the_size_limit_are_instances_never_refuted(layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # 16-32-32-16 at m ≥ 32 has Kronecker factors over 10⁶ entries: the vec rules were
    # "refuted" (shapes). The same, small: lower the limit instead of growing the network.
    from derive.model import evaluate

    d = net([(3, "tanh"), (2, "sigmoid")], inputs=2, batch=2, batch_layout=layout)
    monkeypatch.setattr(evaluate, "MAX_ENTRIES", 20)  # the factors have 36 and 24 entries
    checks = {(c.layer, c.rule): c for c in d.check_rules()}
    assert all(c.verdict == "proven" for c in checks.values()), [(c.statement, c.verdict) for c in checks.values()]
    for layer in (1, 2):
        for rule in ("vec(Z)", "vec(dW)", "vec(ABC)"):
            c = checks[(layer, rule)]
            assert c.method == Method.INSTANCE and (c.basis or "").startswith("vec(A B C) = (Cᵀ ⊗ A) vec(B)")
        assert "more than the limit of 20" in (checks[(layer, "vec(Z)")].detail or "")


def test_a_rule_that_hits_the_size_limit_is_unproven_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from derive.model import evaluate

    d = net([(3, "tanh"), (2, "sigmoid")], inputs=2, batch=2)
    monkeypatch.setattr(evaluate, "MAX_ENTRIES", 5)  # dW1, dA1 and every vec factor are larger
    checks = d.check_rules()
    assert not [c.statement for c in checks if c.verdict == "refuted"]
    limited = {c.target: c for c in checks if c.method == Method.LIMIT}
    assert {"dW1", "dA1", "vec(Z1)", "vec(dW1)"} <= set(limited)
    assert all(c.verdict == "unproven" and "limit" in (c.detail or "") for c in limited.values())
    assert "MAX_ENTRIES" in (limited["dW1"].detail or "")
    # the rules that fit are still proven
    assert {c.target for c in checks if c.verdict == "proven"} >= {"dZ1", "db1", "dZ2", "db2"}
