"""The layer-type registry (derive.ops.layer_types, rules in derive.rules.layer_rules):
``dense`` is its first entry, ``type: dense`` is the default, an unknown type is a one-line
spec error, and a new type is one registration (shown with a bias-free dense layer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import net
from sympy import Matrix

import derive
from derive.lang.formula import parse
from derive.ops import layer_types
from derive.ops.layer_types import LAYER_TYPES, LayerType, Parameter
from derive.ops.matrices import matmul as matrix_product
from derive.rules import layer_rules as R


def test_every_layer_type_has_its_rules() -> None:
    assert "dense" in LAYER_TYPES and layer_types.DEFAULT_LAYER_TYPE == "dense"
    assert set(R.LAYER_RULES) == set(LAYER_TYPES)
    for t in LAYER_TYPES.values():
        assert t.parameters and "units" in t.keys
        assert len({p.prefix for p in t.parameters}) == len(t.parameters)


@pytest.mark.parametrize("layout", ["columns", "rows"])
def test_the_forward_statement_of_each_type_is_its_forward_pass(layout: str) -> None:
    for kind in LAYER_TYPES.values():
        d = derive.from_dict({"network": {
            "inputs": 2, "loss": "mse", "batch": 2, "batch_layout": layout,
            "layers": [{"units": 3, "activation": "tanh", "type": kind.name},
                       {"units": 2, "activation": "sigmoid", "type": kind.name}]}})
        for l in (1, 2):
            text = kind.statement(l, "X" if l == 1 else f"A{l - 1}", layout == "rows")
            value = d.evaluator.evaluate(parse(text), text)
            z = d.net.matrices[f"Z{l}"]
            assert value.shape == z.shape
            assert all((v - d.net.definitions[e]).expand() == 0 for v, e in zip(value, z, strict=True))


def _layers(*layers: dict) -> dict:  # type: ignore[type-arg]
    return {"name": "t", "network": {"inputs": 2, "layers": list(layers), "loss": "mse", "batch": 2}}


def test_type_dense_is_the_default() -> None:
    plain = derive.from_dict(_layers({"units": 3, "activation": "tanh"}, {"units": 2}))
    typed = derive.from_dict(_layers({"units": 3, "activation": "tanh", "type": "dense"},
                                     {"units": 2, "type": "dense"}))
    assert [layer.type for layer in typed.spec.layers] == ["dense", "dense"]
    assert plain.spec.layers == typed.spec.layers
    assert [r.formula for r in plain.rules()] == [r.formula for r in typed.rules()]
    assert list(plain.net.matrices) == list(typed.net.matrices)
    assert typed.spec.parameters == 3 * 2 + 3 + 2 * 3 + 2


@pytest.mark.parametrize("layer, message", [
    ("{units: 2, type: capsule}",  # conv2d, pooling, flatten: tensor stacks (derive/spec/stack.py)
     "network.layers[0].type: unknown layer type 'capsule' (expected one of: dense, affine)"),
    ("{units: 2, type: dens}",
     "network.layers[0].type: unknown layer type 'dens' (expected one of: dense, affine); did you mean 'dense'?"),
    ("{units: 2, type: dense, kernel: 3}",
     "network.layers[0].kernel: unknown key 'kernel' (expected one of: type, units, activation"),
])
def test_an_unknown_layer_type_is_a_one_line_spec_error(tmp_path: Path, layer: str, message: str) -> None:
    p = tmp_path / "net.yaml"
    p.write_text(f"network: {{inputs: 2, layers: [{layer}], loss: mse}}\n")
    with pytest.raises(derive.SpecError) as info:
        derive.load(p)
    assert message in str(info.value)
    assert str(info.value).startswith(str(p)) and "\n" not in str(info.value)


# ------------------------------------------------------- a new type is one registration


def _nobias_forward(params: dict[str, Matrix], prev: Matrix, m: int, rows: bool) -> Matrix:
    w = params["W"]
    return matrix_product(prev, w.T) if rows else matrix_product(w, prev)


def _nobias_rules(spec, l: int, kronecker: bool) -> list[R.Rule]:  # type: ignore[no-untyped-def]
    dz, w, prev = R.name(f"dZ{l}"), R.name(f"W{l}"), R.name("X" if l == 1 else f"A{l - 1}")
    out = [R.dz_rule(spec, l), R.Rule.of(l, "dW", f"dW{l}", R.matmul(dz, R.T(prev)))]
    if l > 1:
        out.append(R.Rule.of(l, "dA", f"dA{l - 1}", R.matmul(R.T(w), dz)))
    return out


def test_a_new_layer_type_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    nobias = LayerType("nobias", ("units", "activation"),
                       (Parameter("W", lambda n, k: (n, k), decayed=True),),
                       _nobias_forward, lambda l, a, rows: f"W{l} @ {a}")
    monkeypatch.setitem(LAYER_TYPES, "nobias", nobias)
    monkeypatch.setitem(R.LAYER_RULES, "nobias", _nobias_rules)
    d = derive.from_dict(_layers({"units": 3, "activation": "tanh", "type": "nobias"},
                                 {"units": 2, "activation": "sigmoid"}))
    assert "b1" not in d.net.matrices and "b2" in d.net.matrices
    assert d.spec.parameters == 3 * 2 + 2 * 3 + 2
    checks = d.check_rules()
    assert {c.target for c in checks} >= {"dZ1", "dW1", "dZ2", "dW2", "db2", "dA1"}
    assert all(c.verdict == "proven" for c in checks), [(c.statement, c.verdict) for c in checks]
    assert d.check_claim("dW1", "((W2.T @ dZ2) * (1 - A1**2)) @ X.T").verdict == "proven"


def test_a_layer_type_without_rules_is_a_named_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LAYER_TYPES, "norules", LAYER_TYPES["dense"])
    d = derive.from_dict(_layers({"units": 2, "type": "norules"}))
    with pytest.raises(R.RuleConstructionError, match="norules has no rules in LAYER_RULES"):
        d.rules()


# ------------------------------------------------------- log_softmax, a composite output


@pytest.mark.parametrize("layout", ["columns", "rows"])
def test_a_log_softmax_output_has_its_dz_rule_proven(layout: str) -> None:
    d = net([(2, "tanh"), (3, "log_softmax")], loss="mse", batch=2, batch_layout=layout)
    rules = {r.target: r.formula for r in d.rules() if r.rule == "dZ"}
    assert rules["dZ2"] == f"dA2 - softmax(Z2) * sum(dA2, axis={1 if layout == 'rows' else 0})"
    bad = [(c.statement, c.verdict) for c in d.check_rules() if c.verdict != "proven"]
    assert not bad, bad
    assert d.check_claim("dZ2", "dA2 * (1 - softmax(Z2))").verdict == "refuted"  # the diagonal only


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_affine_layers_weights_inputs_by_units(layout: str) -> None:
    """``type: affine`` (CS231n's affine layer, Keras' Dense): W1 is inputs × units, b1 a row;
    its rules are proven in either batch layout, CS231n's backward lines are proven, and the
    other convention's lines are refuted (a transposed weight), never proven."""
    d = derive.from_dict({"name": "a", "network": {
        "inputs": 3, "batch": 2, "batch_layout": layout, "loss": "cross_entropy",
        "layers": [{"type": "affine", "units": 4, "activation": "tanh"},
                   {"type": "affine", "units": 2, "activation": "softmax"}]}})
    assert d.net.matrices["W1"].shape == (3, 4) and d.net.matrices["b1"].shape == (1, 4)
    assert str(d.net.matrices["b1"][0, 2]) == "b1[2]"
    report = d.report(jobs=1)
    assert report.rules and all(c.verdict.value == "proven" for c in report.rules), \
        [(c.target, c.verdict.value) for c in report.rules]
    rows = layout == "rows"
    right = {"dW2": "A1.T.dot(dZ2)" if rows else "A1 @ dZ2.T",
             "db2": "np.sum(dZ2, axis=0)" if rows else "np.sum(dZ2, axis=1).T",
             "dA1": "dZ2.dot(W2.T)" if rows else "W2 @ dZ2",
             "dW1": "X.T @ (dA1 * (1 - A1**2))" if rows else "X @ (dA1 * (1 - A1**2)).T"}
    wrong = {"dA1": "dZ2.dot(W2)" if rows else "W2.T @ dZ2",  # the dense convention's line
             "dW2": "dZ2.T @ A1" if rows else "dZ2 @ A1.T"}  # dW2ᵀ
    for target, formula in right.items():
        assert d.check_claim(target, formula).verdict.value == "proven", (target, formula)
    for target, formula in wrong.items():
        assert d.check_claim(target, formula).verdict.value == "refuted", (target, formula)
