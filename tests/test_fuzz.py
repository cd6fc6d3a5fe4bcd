"""Property tests: arbitrary text and structures give a result or a DeriveError, never
another exception; a few hundred examples each."""

from __future__ import annotations

import string

from conftest import net
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derive
from derive.errors import DeriveError
from derive.lang import formula as F

FORMULA_ALPHABET = string.ascii_letters + string.digits + " _.,()[]{}+-*/@%^&|<>=!~:;'\"\\#$`?\n\t"
TOKENS = ["X", "Y", "W1", "W2", "b1", "b2", "Z1", "Z2", "A1", "A2", "dZ1", "dZ2", "dA1", "dW1", "m",
          "n1", "@", "*", "+", "-", "/", "**", "2", "0.5", "(", ")", ".T", ",", "axis=", "1", "0",
          "sum(", "sigmoid(", "tanh_prime(", "ones(", "eye(", "diag(", "vec(", "kron(", "J(", "exp(",
          "log(", "relu_prime(", "softmax(", "g1_prime(", "__class__", "lambda", "[", "]"]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.text(alphabet=FORMULA_ALPHABET, max_size=80))
def test_parser_total_on_text(text: str) -> None:
    try:
        F.parse(text)
    except DeriveError:
        pass


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))
def test_evaluation_total_on_token_soup(text: str) -> None:
    d = _NET
    try:
        d.check_claim("dW2", text)
    except DeriveError:
        pass


_NET = net([(2, "tanh"), (1, "sigmoid")], inputs=2, loss="binary_cross_entropy", batch=2, strategy="local")

YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2000) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(["inputs", "layers", "loss", "batch", "average", "batch_layout", "layout", "units",
                        "activation", "type", "scale", "slope", "network", "claims", "name"])


def structures() -> st.SearchStrategy[object]:
    layer = st.dictionaries(st.sampled_from(["units", "activation", "slope"]),
                            st.integers(-2, 5) | st.sampled_from(["tanh", "relu", "softmax", "sigmoid", "x", "1/a"]),
                            max_size=3)
    network = st.fixed_dictionaries({}, optional={
        "inputs": st.integers(-1, 4) | st.text(max_size=3),
        "layers": st.lists(layer, max_size=3) | YAML_VALUES,
        "loss": st.sampled_from(["mse", "binary_cross_entropy", "cross_entropy", "hinge"])
        | st.dictionaries(st.sampled_from(["type", "scale"]), st.sampled_from(["mse", "1/alpha", 0, "__x"])),
        "batch": st.integers(-1, 3) | YAML_VALUES,
        "batch_layout": st.sampled_from(["columns", "rows", "diagonal"]),
    })
    claims = st.dictionaries(st.sampled_from(["dW1", "db1", "dZ1", "W1", "vec(dW1)", "dQ"]),
                             st.sampled_from(["dZ1 @ X.T", "dZ1", "A1 @", "__import__('os')", "1"]), max_size=2)
    return st.fixed_dictionaries({}, optional={"network": network, "claims": claims}) | YAML_VALUES | \
        st.dictionaries(KEYS, YAML_VALUES, max_size=4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structures())
def test_spec_loader_total(data: object) -> None:
    try:
        d = derive.from_dict(data, strategy="local")  # type: ignore[arg-type]
    except DeriveError:
        return
    assert d.net.parameter_count > 0


LATEX_TOKENS = [r"\frac{\partial L}{\partial w_1}", r"\frac{dL}{dz}", "=", "a_2", "w_{4}", "W^{[2]}", "A^{[1]T}",
                r"\sigma", r"\sigma'", r"\sigma^\prime", r"\tanh", r"\exp", r"\log", "(", ")", r"\left(", r"\right)",
                r"\times", r"\cdot", r"\odot", r"\otimes", "^T", r"^\top", r"\operatorname{vec}", r"\mathrm{diag}",
                r"\frac{1}{m}", r"\tfrac12", "+", "-", "{", "}", "x_1", "y", "2", r"\input{x}", "\\", "_", "^"]


@SETTINGS
@given(st.lists(st.sampled_from(LATEX_TOKENS), max_size=12).map(" ".join) | st.text(max_size=60))
def test_latex_parser_total(text: str) -> None:
    from derive.lang.latex_reader import parse_latex_claim

    try:
        target, formula = parse_latex_claim(text, lambda name: None)
    except DeriveError:
        return
    F.parse(target)  # whatever it produced is valid formula language
    F.parse(formula)
