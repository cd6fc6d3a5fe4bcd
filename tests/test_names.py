"""Names never collide (issue 12, items 6 and 10).

A gradient atom is its own symbol class, never a symbol spelled "d" + name; in formulas a
value of the network always wins over a gradient spelling, and ``d(V)`` reaches ∂J/∂V
whatever V is called; the cost atom is not the name ``J``; a free constant may not take a
layer size or a gradient name.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, net
from sympy import Symbol

import derive
from derive.check.claims import as_matrix
from derive.cli import main
from derive.errors import FormulaError, SpecError
from derive.lang import formula as F
from derive.testing import assert_claim, assert_refuted


def _eq(equations: str, parameters: list[str], strategy: str = "auto", claims: list | None = None,  # type: ignore[type-arg]
        **network: object) -> derive.Derivation:
    data: dict = {"name": "t", "network": {"equations": equations, "parameters": parameters, **network}}  # type: ignore[type-arg]
    if claims is not None:
        data["claims"] = claims
    return derive.from_dict(data, strategy=strategy)


# ------------------------------------------------------------ an input named dV
@pytest.mark.parametrize("base, value", [("x", "dx"), ("k", "dk")])
def test_an_input_named_like_a_gradient_is_not_the_gradient(base: str, value: str) -> None:
    equations = f"y = w*{base} + {value}\nL = y*y"
    for strategy in ("local", "global"):
        d = _eq(equations, ["w"], strategy)
        claimed = as_matrix(d.evaluator.evaluate(F.parse(f"{value} * {base} / w"), ""))
        true = as_matrix(d.evaluator.evaluate(F.parse("dw"), "dw"))
        # the prover alone "proved" it: the input's symbol was the adjoint atom of x
        assert d.judge.prove(claimed, true) is None, strategy
        assert_refuted(d, "dw", f"{value} * {base} / w")
        assert_claim(d, "dw", f"2 * y * {base}")


def test_gradient_atoms_are_their_own_class() -> None:
    from derive.model.truth import AdjointSymbol

    d = _eq("y = w*x + dx\nL = y*y", ["w"], "local")
    atoms = list(d.truth.adjoint_definitions)
    assert atoms and all(isinstance(a, AdjointSymbol) for a in atoms)
    dx_input = d.net.matrices["dx"][0]
    dx_grad = d.truth.grad("x")[0]
    assert dx_input.name == dx_grad.name == "dx" and dx_input != dx_grad
    assert type(dx_input) is Symbol and dx_grad.base == "x"


def test_the_gradient_of_a_shadowed_name_is_written_d_of_it() -> None:
    d = _eq("y = w*x + dx\nL = y*y", ["w", "x"], claims=[
        {"d(x)": "2 * y * w"}, {"dw": "d(y) * x"},
        {"target": "d(x)", "formula": "dx * w", "expect": "refuted"}])
    assert any("d(x)" in a and "'dx' is an input" in a for a in d.net.assumptions)
    rules = {r.target: r for r in d.rules()}
    assert rules["d(x)"].formula == "dy * w"  # dx is the input; the rule's target is the gradient
    report = d.report()
    assert report.ok, [(c.statement, c.verdict) for c in report.rules + report.claims]
    assert "d(x)" in d.evaluator.known_names() and "dx" in d.evaluator.known_names()
    assert_claim(d, "vec(d(x))", "2 * y * w")


def test_a_value_named_dv_is_not_a_claim_target() -> None:
    with pytest.raises(SpecError, match=r"claims\[0\]: 'dx' is an input of this network, not a gradient; "
                                        r"the gradient ∂J/∂x is written d\(x\)"):
        _eq("y = w*x + dx\nL = y*y", ["w", "x"], claims=[{"dx": "2 * y * w"}])
    d = _eq("y = w*x + dx\nL = y*y", ["w", "x"])
    with pytest.raises(FormulaError, match="not a gradient"):
        d.check_claim("dx", "2 * y * w")
    with pytest.raises(FormulaError, match=r"d\(V\) takes one name"):
        d.check_claim("d(x + w)", "1")
    with pytest.raises(FormulaError, match="targets"):
        net([(2, "tanh"), (1, "identity")]).check_claim("dA2", "d(Y)")


# ------------------------------------------------------------ the cost may be called J
LOGISTIC_J = {
    "name": "logistic regression, loss J",
    "network": {
        "equations": "Z = w.T @ X + b\nA = sigmoid(Z)\nJ = -sum(Y * log(A) + (1 - Y) * log(1 - A)) / 3",
        "parameters": ["w", "b"], "loss": "J",
        "shapes": {"w": [2, 1], "X": [2, 3], "Y": [1, 3]},
    },
    "claims": [{"dw": "X @ (A - Y).T / 3"}, {"db": "sum(A - Y) / 3"},
               {"target": "dw", "formula": "X @ (Y - A).T / 3", "expect": "refuted"}],
}


@pytest.mark.parametrize("strategy", ["global", "local"])
def test_the_cost_may_be_called_j(strategy: str) -> None:
    d = derive.from_dict(LOGISTIC_J, strategy=strategy)
    report = d.report()
    assert report.ok, [(c.statement, c.verdict, c.detail) for c in report.rules + report.claims]
    assert d.report(rules=False).ok  # the true claim alone: was refuted with "true 0.0"


def test_the_cost_may_be_called_j_from_the_cli(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import yaml

    spec = tmp_path / "j.yaml"
    spec.write_text(yaml.safe_dump(LOGISTIC_J))
    assert main(["check", "--no-rules", str(spec)]) == 0, capsys.readouterr()
    assert main(["check", str(spec)]) == 0, capsys.readouterr()


def test_an_equation_named_j_is_not_the_cost_atom() -> None:
    from derive.model.network import COST

    d = derive.from_dict(LOGISTIC_J)
    j = d.net.matrices["J"][0]
    assert j != COST and d.net.definitions[COST] == j


# ------------------------------------------------------------ reserved names of a layer stack
def _layer_stack(loss: object = "mse", slope: object = None) -> dict:  # type: ignore[type-arg]
    first = {"units": 3, "activation": "leaky_relu" if slope is not None else "tanh"}
    if slope is not None:
        first["slope"] = slope
    return {"name": "t", "network": {"inputs": 2, "layers": [first, {"units": 1, "activation": "identity"}],
                                     "loss": loss, "batch": 2}}


@pytest.mark.parametrize("loss, slope, name, meaning", [
    ({"type": "mse", "scale": "1/n1"}, None, "n1", "a layer size (n0 … nL)"),
    ({"type": "mse", "scale": "dA2/2"}, None, "dA2", "the gradient ∂J/∂A2"),
    ({"type": "mse", "scale": "1/(2*dW1)"}, None, "dW1", "the gradient ∂J/∂W1"),
    ("mse", "dZ1", "dZ1", "the gradient ∂J/∂Z1"),
    ("mse", "n0/10", "n0", "a layer size (n0 … nL)"),
])
def test_a_constant_may_not_shadow_a_size_or_a_gradient(loss: object, slope: object, name: str,
                                                         meaning: str) -> None:
    place = "network.layers[0].slope" if slope is not None else "network.loss.scale"
    with pytest.raises(SpecError) as info:
        derive.from_dict(_layer_stack(loss, slope))
    message = str(info.value)
    assert message.startswith(f"<dict>: {place}: '{name}' is {meaning}, not a free constant"), message
    assert "\n" not in message


def test_reserved_names_are_refused_from_the_cli(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import yaml

    spec = tmp_path / "scale.yaml"
    data = _layer_stack({"type": "mse", "scale": "dA2/2"})
    data["claims"] = [{"dA2": "dA2"}]
    spec.write_text(yaml.safe_dump(data))
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}: network.loss.scale: 'dA2' is the gradient ∂J/∂A2" in err.replace("\n", "")
    # free names are still free constants, and n1 is the layer size in derive's own rules
    d = derive.from_dict(_layer_stack({"type": "mse", "scale": "1/(2*alpha)"}, "beta/n"))
    assert all(c.verdict == "proven" for c in d.check_rules())
    assert d.evaluator.constants["n1"] == 3


def test_shipped_logistic_regression_renamed_to_j() -> None:
    text = (ROOT / "derivations" / "logistic_regression_equations.yaml").read_text()
    import yaml

    data = yaml.safe_load(text)
    data["network"]["equations"] = data["network"]["equations"].replace("L = ", "J = ")
    data["network"]["loss"] = "J"
    data.pop("claims_latex")  # written with ∂L
    report = derive.from_dict(data).report()
    assert report.ok, [(c.statement, c.verdict) for c in report.rules + report.claims]
