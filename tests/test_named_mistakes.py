"""Named mistakes (issue 17): each common error gets a specific diagnosis, reported only
when the corrected statement is proven — in claims of a layer stack, in the notes'
scalar derivation (the path through the graph), and in backward blocks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import derive
from derive.records import DiagnosisCode, Verdict
from test_dialect import COURSE  # the course's 2-layer network, written as NumPy code

STACK = {"network": {"inputs": 2, "layers": [{"units": 3, "activation": "tanh"},
                                             {"units": 1, "activation": "sigmoid"}],
                     "loss": "bce", "batch": 2}}


@pytest.fixture(scope="module")
def stack() -> derive.Derivation:
    return derive.from_dict(STACK)  # type: ignore[return-value]


@pytest.mark.parametrize("target, formula, code, words", [
    ("dZ1", "dA1 / tanh_prime(Z1)", DiagnosisCode.DIVIDED_BY_FACTOR, "divides by tanh_prime(Z1)"),
    ("dZ1", "(W2.T @ dZ2) * A1", DiagnosisCode.WRONG_FACTOR, "A1 where tanh_prime(Z1) belongs"),
    ("dZ1", "(W2.T @ dZ2) * (1 - A1)", DiagnosisCode.WRONG_FACTOR, "1 - A1 where tanh_prime(Z1) belongs"),
    ("db2", "sum(dZ2, axis=0)", DiagnosisCode.WRONG_AXIS, "axis=1"),
    ("dZ1", "(W2.T @ dZ2) * tanh_prime(Z1) * A1", DiagnosisCode.EXTRA_FACTOR, "without the factor A1"),
])
def test_stack_mistakes_are_named(stack: derive.Derivation, target: str, formula: str, code: DiagnosisCode,
                                  words: str) -> None:
    c = stack.check_claim(target, formula)
    assert c.verdict == Verdict.REFUTED
    assert c.finding is not None and c.finding.code == code, c.diagnosis
    assert words in c.finding.message


def test_right_formulas_get_no_diagnosis(stack: derive.Derivation) -> None:
    for target, formula in (("dZ1", "(W2.T @ dZ2) * tanh_prime(Z1)"), ("db2", "sum(dZ2, axis=1)")):
        c = stack.check_claim(target, formula)
        assert c.verdict == Verdict.PROVEN and c.finding is None


NOTES = """
name: the notes' 2-2-1
network:
  equations: |
    z0 = w0*x0 + w1*x1 + b0
    a0 = sigmoid(z0)
    z1 = w2*x0 + w3*x1 + b1
    a1 = sigmoid(z1)
    z2 = w4*a0 + w5*a1 + b2
    a2 = sigmoid(z2)
    L = (y - a2)**2 / alpha
  parameters: [w0, w1, w2, w3, w4, w5, b0, b1, b2]
  loss: L
"""


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> derive.Derivation:
    path = tmp_path_factory.mktemp("notes") / "notes.yaml"
    path.write_text(textwrap.dedent(NOTES))
    return derive.load(path)  # type: ignore[return-value]


@pytest.mark.parametrize("latex, words", [
    # three names wrong (the notes take w1 as a weight from a0 into z1) and the 2/alpha missing
    (r"\frac{\partial L}{\partial w_1} = (a_2 - y)\sigma'(z_2) w_5 \sigma'(z_1) a_0",
     ["∂L/∂z1 · a0", "takes a0 into z1", "w1 takes x1 into z0 (equation 1)", "∂L/∂w1 = ∂L/∂z0 · x1", "alpha/2"]),
    # a0 where x0 belongs
    (r"\frac{\partial L}{\partial w_0} = \frac{2}{\alpha} (a_2 - y)\sigma'(z_2) w_4 \sigma'(z_0) a_0",
     ["∂L/∂z0 · a0", "w0 takes x0 into z0"]),
])
def test_notes_path_diagnosis(notes: derive.Derivation, latex: str, words: list[str]) -> None:
    c = notes.check_latex_claim(latex)
    assert c.verdict == Verdict.REFUTED
    assert c.finding is not None and c.finding.code == DiagnosisCode.WRONG_PATH, c.diagnosis
    for w in words:
        assert w in c.finding.message


def test_one_wrong_name_is_still_said_as_a_name(notes: derive.Derivation) -> None:
    c = notes.check_claim("dw4", "dz2 * a1")
    assert c.finding is not None and c.finding.code == DiagnosisCode.WRONG_NAME
    assert "a1 → a0" in c.finding.message


BLOCK = COURSE.split("backward: |")[0] + """backward: |
  dZ2 = (A2 - Y) / m
  dW2 = dZ2 @ A1.T
  db2 = np.sum(dZ2, axis=1, keepdims=True)
  dA1 = W2.T @ dZ2
  dZ1 = dA1 * tanh_prime(Z1)
  dW1 = dZ1 @ X.T
"""


@pytest.mark.parametrize("line, wrong, code", [
    ("dZ1 = dA1 * tanh_prime(Z1)", "dZ1 = dA1 / tanh_prime(Z1)", DiagnosisCode.DIVIDED_BY_FACTOR),
    ("dZ1 = dA1 * tanh_prime(Z1)", "dZ1 = dA1 * (1 - A1)", DiagnosisCode.WRONG_FACTOR),
    ("db2 = np.sum(dZ2, axis=1, keepdims=True)", "db2 = np.sum(dZ2, axis=0, keepdims=True)",
     DiagnosisCode.WRONG_AXIS),
])
def test_block_mistakes_are_named(tmp_path: Path, line: str, wrong: str, code: DiagnosisCode) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(textwrap.dedent(BLOCK).replace(line, wrong))
    report = derive.load(path).report()
    target = wrong.split("=")[0].strip()
    c = next(c for c in report.claims if c.target == target)
    assert c.verdict == Verdict.REFUTED
    assert c.finding is not None and c.finding.code == code, c.diagnosis
    path.write_text(textwrap.dedent(BLOCK))
    assert derive.load(path).report().ok


def test_a_wrong_name_and_a_missing_factor_at_once(notes: derive.Derivation) -> None:
    c = notes.check_claim("dw4", "(a2 - y) * sigmoid_prime(z2) * a1")
    assert c.verdict == Verdict.REFUTED
    assert c.finding is not None and "a1 → a0" in c.finding.message and "2/alpha" in c.finding.message


@pytest.mark.parametrize("formula, code, words", [
    ("diag(A1)", DiagnosisCode.MISSING_FACTOR, "− s sᵀ term of the softmax Jacobian is missing"),
    ("diag(A1) + A1 @ A1.T", DiagnosisCode.OPPOSITE_SIGN, "+ s sᵀ where"),
])
def test_softmax_jacobian_mistakes(formula: str, code: DiagnosisCode, words: str) -> None:
    d = derive.from_dict({"network": {"inputs": 2, "layers": [{"units": 3, "activation": "softmax"}],
                                      "loss": "cross_entropy"}})
    assert d.check_claim("J(A1, Z1)", "diag(A1) - A1 @ A1.T").verdict == Verdict.PROVEN
    c = d.check_claim("J(A1, Z1)", formula)
    assert c.verdict == Verdict.REFUTED
    assert c.finding is not None and c.finding.code == code and words in c.finding.message


def test_attention_mistakes_are_named() -> None:
    """Q and K swapped: a wrong name; the 1/√d forgotten: a missing factor (blocks)."""
    from pathlib import Path

    report = derive.load(Path(__file__).resolve().parent.parent / "derivations" / "attention.yaml").report()
    wrong = {c.formula: c for c in report.claims if c.verdict == Verdict.REFUTED}
    codes = {c.finding.code for c in wrong.values() if c.finding is not None}
    assert codes == {DiagnosisCode.WRONG_NAME, DiagnosisCode.MISSING_FACTOR}, [c.diagnosis for c in wrong.values()]
    assert any("K → Q" in (c.diagnosis or "") for c in wrong.values())
