"""LaTeX claims: each construct people write, read into the formula language; rejected
input gets a clear error; the result is checked like any claim."""

from __future__ import annotations

import pytest
from conftest import ROOT

import derive
from derive.errors import FormulaError
from derive.lang.latex_reader import parse_latex_claim
from derive.records import Method, Verdict

SHAPES = {"W2": (1, 4), "Z2": (1, 3), "A1": (4, 3), "X": (2, 3), "Z1": (4, 3), "W1": (4, 2)}


def shape_of(name: str) -> tuple[int, int] | None:
    return SHAPES.get(name[1:] if name.startswith("d") else name)


@pytest.mark.parametrize("latex, target, formula", [
    (r"\frac{\partial L}{\partial w_4} = \frac{\partial L}{\partial z_2} a_0", "dw4", "dz2 * a0"),
    (r"\frac{dL}{dq_2} = q_2 - y", "dq2", "q2 - y"),
    (r"\frac{d L}{d w_{4}} = a_{0}", "dw4", "a0"),
    (r"\frac{\partial L}{\partial w_1} = (a_2 - y)\sigma'(z_2) w_4 \sigma'(z_0) x_1", "dw1",
     "(a2 - y) * sigmoid_prime(z2) * w4 * sigmoid_prime(z0) * x1"),
    (r"\frac{\partial L}{\partial w_1} = \sigma^\prime(z_0) \times x_1", "dw1", "sigmoid_prime(z0) * x1"),
    (r"\frac{\partial L}{\partial w_1} = \sigma^{\prime}(z_0) \cdot x_1", "dw1", "sigmoid_prime(z0) * x1"),
    (r"\frac{\partial L}{\partial w_1} = \sigma(z_0)", "dw1", "sigmoid(z0)"),
    (r"\frac{\partial L}{\partial w_1} = \tanh(z) + \exp(z) - \log(a)", "dw1", "tanh(z) + exp(z) - log(a)"),
    (r"\frac{\partial L}{\partial W^{[2]}} = \frac{\partial L}{\partial Z^{[2]}} A^{[1]T}", "dW2", "dZ2 @ A1.T"),
    (r"\frac{\partial L}{\partial W_1} = \frac{\partial L}{\partial Z_1} X^T", "dW1", "dZ1 @ X.T"),
    (r"\frac{\partial L}{\partial W_1} = \frac{\partial L}{\partial Z_1} X^\top", "dW1", "dZ1 @ X.T"),
    (r"\frac{\partial L}{\partial Z_1} = W_2^T \frac{\partial L}{\partial Z_2} \odot \tanh'(Z_1)", "dZ1",
     "W2.T @ dZ2 * tanh_prime(Z1)"),
    (r"\frac{\partial L}{\partial z} = \frac{a - y}{m}", "dz", "(a - y) / m"),
    (r"\frac{\partial L}{\partial z} = \tfrac12 (a - y)", "dz", "1 / 2 * (a - y)"),
    (r"\frac{\partial L}{\partial z} = \left( a - y \right) a", "dz", "(a - y) * a"),
    (r"\frac{\partial L}{\partial w} = x \otimes \delta", "dw", "kron(x, delta)"),
    (r"\operatorname{vec}(\frac{\partial L}{\partial W_1}) = \mathrm{diag}(v) u", "vec(dW1)", "diag(v) * u"),
    (r"\frac{\partial L}{\partial z} = (a - y)^2", "dz", "(a - y) ** 2"),
])
def test_constructs(latex: str, target: str, formula: str) -> None:
    assert parse_latex_claim(latex, shape_of) == (target, formula)


@pytest.mark.parametrize("latex, message", [
    (r"\frac{\partial L}{\partial w_1} = \foo(x)", "unsupported or malformed LaTeX at column"),
    (r"\frac{\partial L}{\partial w_1} =", "unsupported or malformed LaTeX"),
    (r"\frac{\partial z}{\partial w_1} = x", "only derivatives of the loss"),
    (r"w_1 = x", "the left side must be a derivative"),
    (r"\frac{\partial L}{\partial w_1} = \input{/etc/passwd}", "unsupported or malformed LaTeX"),
    (r"\frac{\partial L}{\partial w_1} = x^{1/2}", "unsupported or malformed LaTeX"),
    ("", "empty LaTeX claim"),
])
def test_rejected(latex: str, message: str) -> None:
    with pytest.raises(FormulaError, match=message.replace("(", r"\(")):
        parse_latex_claim(latex, shape_of)


def test_latex_claims_in_a_spec() -> None:
    d = derive.load(ROOT / "derivations" / "two_two_one_equations.yaml")
    latex = [c for c in d.check_claims() if c.latex]
    assert len(latex) == 6
    assert [c.verdict for c in latex] == ["proven", "proven", "proven", "refuted", "refuted", "refuted"]
    assert all(c.ok for c in latex)
    assert all(c.diagnosis for c in latex if c.verdict == "refuted")  # the notes' mistakes, each named


def test_latex_claim_api() -> None:
    d = derive.load(ROOT / "derivations" / "two_two_one_equations.yaml")
    c = d.check_latex_claim(r"\frac{\partial L}{\partial w_5} = \frac{\partial L}{\partial z_2} a_0")
    assert c.verdict == "refuted" and "a0 → a1" in (c.diagnosis or "")


def test_bad_latex_in_a_spec_is_bad_input(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "n.yaml"
    p.write_text("network: {equations: [z = w*x, L = z**2], parameters: [w]}\n"
                 "claims_latex: ['\\frac{\\partial L}{\\partial w} = \\bogus{x}']\n")
    with pytest.raises(derive.SpecError, match=r"claims_latex\[0\]: unsupported or malformed LaTeX"):
        derive.load(p)


# --------------------------------------------------------------- products as textbooks read them
DZ2, DZ1, DA1, DW2 = (rf"\frac{{\partial L}}{{\partial {v}}}" for v in ("Z_2", "Z_1", "A_1", "W_2"))


def test_products_read_as_textbooks() -> None:
    """Juxtaposition/⋅/× of two matrices is @ whatever their sizes (a wrong order is then a
    shape error, not a broadcast); a scalar times a matrix stays *; ⊙ binds looser."""
    cases = [
        (rf"{DA1} = {DZ2} W_2^T", "dZ2 @ W2.T"),  # 1×3 · 1×4: was dZ2 * W2.T (an outer product)
        (rf"{DA1} = {DZ2} \cdot W_2^T", "dZ2 @ W2.T"),
        (rf"{DA1} = {DZ2} \times W_2^T", "dZ2 @ W2.T"),
        (rf"{DA1} = W_2^T {DZ2}", "W2.T @ dZ2"),
        (rf"{DZ1} = \sigma'(Z_1) \odot W_2^T {DZ2}", "sigmoid_prime(Z1) * (W2.T @ dZ2)"),
        (rf"{DZ1} = \sigma'(Z_1) \odot W_2^T \cdot {DZ2}", "sigmoid_prime(Z1) * (W2.T @ dZ2)"),
        (rf"{DZ1} = W_2^T {DZ2} \odot \sigma'(Z_1) \odot A_1", "W2.T @ dZ2 * sigmoid_prime(Z1) * A1"),
        (rf"{DW2} = \frac{{1}}{{m}} {DZ2} A_1^T", "1 / m * dZ2 @ A1.T"),
        (rf"{DW2} = \alpha \, 2 \, {DZ2} A_1^T", "alpha * 2 * dZ2 @ A1.T"),
        (rf"{DZ1} = -W_2^T {DZ2} \odot \sigma'(Z_1)", "(-W2.T) @ dZ2 * sigmoid_prime(Z1)"),
    ]
    got = [parse_latex_claim(latex, shape_of)[1] for latex, _ in cases]
    assert got == [formula for _, formula in cases]


def test_odot_refuses_an_outer_product() -> None:
    """⊙ may broadcast one side (γ ⊙ X̂), but a row ⊙ a column is not what anyone means."""
    with pytest.raises(FormulaError, match=r"\\odot needs matrices of the same size, got 1×3 and 4×1"):
        parse_latex_claim(rf"{DA1} = {DZ2} \odot W_2^T", shape_of)
    assert parse_latex_claim(rf"{DZ1} = {DZ1} \odot W_2^T", shape_of)[1] == "dZ1 * W2.T"  # 4×3 ⊙ 4×1


def one_output(batch: int = 4) -> derive.Derivation:
    """A sigmoid-output classifier with one output unit: dZ2 is a row, W2ᵀ a column."""
    return derive.from_dict({"network": {"inputs": 2, "layers": [
        {"units": 3, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
        "loss": "binary_cross_entropy", "batch": batch}})


def two_outputs(batch: int = 4) -> derive.Derivation:
    return derive.from_dict({"network": {"inputs": 2, "layers": [
        {"units": 3, "activation": "sigmoid"}, {"units": 2, "activation": "softmax"}],
        "loss": "cross_entropy", "batch": batch}})


def test_wrong_order_is_refuted_as_a_shape_error() -> None:
    """∂L/∂Z2 W2ᵀ (the wrong order) was read as a broadcast outer product and proven."""
    d = one_output()
    for op in ("", r"\cdot", r"\times"):
        c = d.check_latex_claim(rf"{DA1} = {DZ2} {op} W_2^T")
        assert (c.verdict, c.method) == (Verdict.REFUTED, Method.SHAPES), op
        assert "cannot multiply 1×4 @ 3×1" in (c.detail or "")
    assert d.check_latex_claim(rf"{DA1} = W_2^T {DZ2}").verdict == "proven"
    assert d.check_latex_claim(rf"{DW2} = {DZ2} A_1^T").verdict == "proven"
    with pytest.raises(FormulaError, match="odot needs matrices of the same size"):
        d.check_latex_claim(rf"{DA1} = {DZ2} \odot W_2^T")  # the same outer product, spelled ⊙


def test_juxtaposition_binds_tighter_than_odot() -> None:
    """σ'(Z1) ⊙ W2ᵀ ∂L/∂Z2 is σ'(Z1) ⊙ (W2ᵀ dZ2): proven (it was (σ' ⊙ W2ᵀ) dZ2, refuted)."""
    d = two_outputs()
    for op in ("", r"\cdot", r"\times"):
        c = d.check_latex_claim(rf"{DZ1} = \sigma'(Z_1) \odot W_2^T {op} {DZ2}")
        assert c.verdict == "proven", (op, c.method, c.detail)
    assert d.check_latex_claim(rf"{DZ1} = W_2^T {DZ2} \odot \sigma'(Z_1)").verdict == "proven"
    # wrong formulas in the same reading are refuted by a counterexample, not a misreading
    for wrong in (rf"\sigma(Z_1) \odot W_2^T {DZ2}", rf"\sigma'(Z_1) \odot W_2^T {DZ2} \odot A_1",
                  rf"\frac{{1}}{{m}} \sigma'(Z_1) \odot W_2^T {DZ2}"):
        c = d.check_latex_claim(rf"{DZ1} = {wrong}")
        assert c.verdict == "refuted" and c.method in (Method.COUNTEREXAMPLE_EXACT, Method.COUNTEREXAMPLE_INTERVAL), \
            (wrong, c.method)
    c = d.check_latex_claim(rf"{DZ1} = \sigma'(Z_1) \odot {DZ2} W_2^T")  # wrong order inside ⊙
    assert (c.verdict, c.method) == (Verdict.REFUTED, Method.SHAPES)


# ---------------------------------------------------------------- ŷ, δ, \dfrac, ∂L/∂w inline, \mathbf
NOTES = {"yhat": (1, 1), "z2": (1, 1), "z1": (1, 1), "a1": (1, 1), "w2": (1, 1), "x": (1, 1), "y": (1, 1),
         "x_hat": (4, 3), "Z3": (1, 3), "W3": (1, 4), "A2": (4, 3)}


def notes_shape(name: str) -> tuple[int, int] | None:
    return NOTES.get(name) or NOTES.get(name[1:]) if name.startswith("d") else NOTES.get(name)


@pytest.mark.parametrize("latex, target, formula", [
    (r"\frac{\partial L}{\partial w_2} = (\hat{y} - y) a_1", "dw2", "(yhat - y) * a1"),
    (r"\frac{\partial L}{\partial w_2} = (\hat y - y) a_1", "dw2", "(yhat - y) * a1"),
    (r"\frac{\partial L}{\partial \gamma} = \hat{x}", "dgamma", "x_hat"),  # the network's own spelling
    (r"\frac{\partial L}{\partial w_2} = \bar{y}", "dw2", "y_bar"),  # unknown: validation names it
    (r"\dfrac{\partial L}{\partial w_2} = \dfrac{a_1}{2}", "dw2", "a1 / 2"),
    (r"\partial L / \partial w_2 = \delta_2 a_1", "dw2", "dz2 * a1"),  # δ₂ is ∂L/∂z₂ (no delta2)
    (r"\frac{\partial L}{\partial W^{[3]}} = \delta^{[3]} A^{[2]T}", "dW3", "dZ3 @ A2.T"),
    (r"\frac{\partial L}{\partial \mathbf{W}^{[3]}} = \boldsymbol{\delta}^{[3]} \mathbf{A}^{[2]T}", "dW3",
     "dZ3 @ A2.T"),
    (r"\frac{\partial L}{\partial w} = \delta_7", "dw", "delta7"),  # no z7: a name of its own
])
def test_notation_of_notes(latex: str, target: str, formula: str) -> None:
    assert parse_latex_claim(latex, notes_shape) == (target, formula)


def test_notation_of_notes_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ŷ, δ₂ and the inline ∂L/∂w read into claims that are proven, and their slips refuted."""
    path = tmp_path / "notes.yaml"
    path.write_text(r"""
name: 1-1-1 with yhat
network:
  equations: |
    z1 = w1*x + b1
    a1 = sigmoid(z1)
    z2 = w2*a1 + b2
    yhat = sigmoid(z2)
    L = (yhat - y)**2 / 2
  parameters: [w1, b1, w2, b2]
claims_latex:
  - '\frac{\partial L}{\partial w_2} = (\hat{y} - y)\hat{y}(1 - \hat{y}) a_1'
  - '\partial L / \partial w_1 = \delta_2 w_2 \sigma''(z_1) x'
  - '\dfrac{\partial L}{\partial b_1} = \delta_1'
  - latex: '\frac{\partial L}{\partial w_2} = (\hat{y} - y) a_1'
    expect: refuted
  - latex: '\partial L / \partial w_1 = \delta_1 w_2 \sigma''(z_1) x'
    expect: refuted
""")
    report = derive.load(path).report(rules=False)
    assert [c.verdict for c in report.claims] == [Verdict.PROVEN] * 3 + [Verdict.REFUTED] * 2


@pytest.mark.parametrize("latex, target, formula", [
    (r"dZ^{[2]} = A^{[2]} - Y", "dZ2", "A2 - Y"),  # the course's dV for ∂L/∂V
    (r"dW^{[2]} = \frac{1}{m} dZ^{[2]} A^{[1]T}", "dW2", "1 / m * dZ2 @ A1.T"),
    (r"dZ^{[1]} = W^{[2]T} dZ^{[2]} \odot g^{[1]\prime}(Z^{[1]})", "dZ1", "W2.T @ dZ2 * g1_prime(Z1)"),
    (r"dZ^{[1]} = W^{[2]T} dZ^{[2]} \odot g^{[1]}'(Z^{[1]})", "dZ1", "W2.T @ dZ2 * g1_prime(Z1)"),
    (r"\frac{\partial L}{\partial w} = g_1'(z)", "dw", "g1_prime(z)"),  # (was: unknown function ')
    (r"\frac{\partial L}{\partial w} = g_1(z)", "dw", "g1(z)"),  # (was: an IndexError)
    (r"\frac{dL}{dw_1} = dx", "dw1", "dx"),  # \frac{dL}{dw} stays a derivative
])
def test_course_gradient_names(latex: str, target: str, formula: str) -> None:
    shapes = {"W2": (1, 4), "Z2": (1, 3), "A2": (1, 3), "Y": (1, 3), "A1": (4, 3), "Z1": (4, 3)}

    def course_shape(name: str) -> tuple[int, int] | None:
        return shapes.get(name[1:] if name.startswith("d") and len(name) > 1 else name)

    assert parse_latex_claim(latex, course_shape) == (target, formula)


def test_d_named_by_the_network_is_a_product() -> None:
    """Where the network has a value d (a dimension, √d in attention), ``d k`` is d times k."""
    assert parse_latex_claim(r"\frac{\partial L}{\partial w} = d k", lambda n: (1, 1) if n in ("d", "k") else None) \
        == ("dw", "d * k")


def test_course_names_checked() -> None:
    """Under derive's convention dZ2 is ∂J/∂Z2 of the averaged cost: the course's per-example
    dZ2 = A2 − Y is refuted (and named), the averaged forms proven."""
    d = derive.from_dict({"name": "c", "network": {"inputs": 2, "batch": 3, "loss": "binary_cross_entropy",
                                                   "layers": [{"units": 4, "activation": "tanh"},
                                                              {"units": 1, "activation": "sigmoid"}]}})
    assert d.check_latex_claim(r"dZ^{[2]} = \frac{1}{m}(A^{[2]} - Y)").verdict == Verdict.PROVEN
    assert d.check_latex_claim(r"dW^{[2]} = dZ^{[2]} A^{[1]T}").verdict == Verdict.PROVEN
    assert d.check_latex_claim(r"dZ^{[1]} = W^{[2]T} dZ^{[2]} \odot g^{[1]\prime}(Z^{[1]})").verdict == Verdict.PROVEN
    wrong = d.check_latex_claim(r"dZ^{[2]} = A^{[2]} - Y")
    assert wrong.verdict == Verdict.REFUTED and "1/m" in str(wrong.diagnosis)
