"""The NumPy dialect, backward blocks and input domains (issue 14): formulas written as
their sources write them parse safely, run with NumPy's exact semantics, and each
gradient is proven or refuted — right ones proven, plausible mistakes refuted, and a
refutation's arrays checked here against finite differences in plain NumPy (an oracle
that shares no code with derive)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.errors import FormulaError, SpecError
from derive.lang import formula as F
from derive.lang.program import parse_block
from derive.records import Verdict

ROOT = Path(__file__).resolve().parent.parent


def spec(tmp_path: Path, text: str) -> derive.Report:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return derive.load(path).report()


def verdicts(report: derive.Report) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in report.claims:
        out[f"{c.target}={c.formula}"] = c.verdict.value
    return out


# ------------------------------------------------------------------ parsing
@pytest.mark.parametrize("numpy, ours", [
    ("x_hat.sum(axis=0, keepdims=True)", "sum(x_hat, axis=0)"),
    ("dout.dot(W.T)", "dout @ W.T"),
    ("w.transpose()", "w.T"),
    ("t.copy()", "t"),
    ("np.divide(a, b)", "a / b"),
    ("np.int64(A > 0)", "relu_prime(A)"),
    ("(A > 0).astype(float)", "relu_prime(A)"),
    ("np.maximum(0, Z)", "relu(Z)"),
    ("torch.tanh(x)", "tanh(x)"),
    ("t.sum(0, keepdim=True)", "sum(t, axis=0)"),
    ("np.sqrt(v)", "v ** (1/2)"),
])
def test_spellings_mean_the_same(numpy: str, ours: str) -> None:
    assert F.unparse(F.parse(numpy)) == F.unparse(F.parse(ours))


def test_numpy_reductions_drop_the_axis_unless_keepdims() -> None:
    assert F.parse("np.sum(x, axis=0)").keyword("keepdims") is not None  # type: ignore[union-attr]
    assert F.parse("np.sum(x, axis=0, keepdims=True)").keyword("keepdims") is None  # type: ignore[union-attr]
    assert F.parse("sum(x, axis=0)").keyword("keepdims") is None  # type: ignore[union-attr]  # derive's own keeps it


@pytest.mark.parametrize("text, message", [
    ("x.var(0, keepdim=True)", "unbiased"),  # torch's default is the unbiased variance
    ("np.var(x, ddof=1)", "unbiased"),
    ("np.int64(x)", "masks only"),
    ("x.astype(int)", "masks only"),
    ("x.__class__", "may not start with '_'"),
    ("x.foo()", "method '.foo()' is not supported"),
    ("np.linalg.inv(W)", "np.linalg is not supported"),
    ("a and b", "not elementwise"),
    ("x[...]", "'...'"),
    ("x.sum(out=y)", "keyword argument 'out'"),
])
def test_dialect_refusals(text: str, message: str) -> None:
    with pytest.raises(FormulaError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace(".", r"\.").replace("*", r"\*")):
        F.parse(text)


@pytest.mark.parametrize("block, message", [
    ("import os", "line 1: import is not supported"),
    ("a = 1\nb = __import__('os')", "line 2: names may not start with '_'"),
    ("x = y = 1", "one '='"),
    ("def f():\n    pass", "def is not supported"),
    ("x.y = 1", "the left side must be"),
    ("for t in items:\n    x = 1", "range(T)"),
    ("if a:\n    b = 1", "if is not supported"),
])
def test_block_refusals(block: str, message: str) -> None:
    with pytest.raises(FormulaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_block(block)


# ------------------------------------------------------------------ blocks, end to end
BATCHNORM = """
network:
  equations: |
    mu = np.mean(x, axis=0, keepdims=True)
    x_hat = (x - mu) / np.sqrt(np.var(x, axis=0, keepdims=True) + eps)
    out = gamma * x_hat + beta
  parameters: [gamma, beta]
  shapes: {x: [4, 3], gamma: [1, 3], beta: [1, 3]}
  domains: {eps: positive}
upstream: {out: dout}
backward: |
  dbeta = dout.sum(axis=0, keepdims=True)
  dgamma = np.sum(dout * x_hat, axis=0, keepdims=True)
  dx_hat = dout * gamma
  dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) / np.sqrt(np.var(x, axis=0) + eps)
"""


def test_issue_example_batchnorm_block_is_proven(tmp_path: Path) -> None:
    report = spec(tmp_path, BATCHNORM)
    got = {c.target: c.verdict for c in report.claims}
    assert got == {"dbeta": Verdict.PROVEN, "dgamma": Verdict.PROVEN, "dx_hat": Verdict.PROVEN,
                   "dx": Verdict.PROVEN}


@pytest.mark.parametrize("line, why", [
    ("dx = (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=0)) / np.sqrt(np.var(x, axis=0) + eps)", "no dmean term"),
    ("dx = (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)) / np.sqrt(np.var(x, axis=0))",
     "eps left out"),
    ("dx = dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0)", "no 1/σ"),
])
def test_batchnorm_mistakes_are_refuted(tmp_path: Path, line: str, why: str) -> None:
    text = BATCHNORM.replace(BATCHNORM.strip().splitlines()[-1], "  " + line)
    report = spec(tmp_path, text)
    got = {c.target: c for c in report.claims}
    assert got["dx"].verdict == Verdict.REFUTED, why
    assert got["dx"].counterexample is not None
    assert got["dbeta"].verdict == Verdict.PROVEN


def test_wrong_axis_sum_is_a_shape_refutation(tmp_path: Path) -> None:
    text = BATCHNORM.replace("dbeta = dout.sum(axis=0, keepdims=True)", "dbeta = dout.sum(axis=1, keepdims=True)")
    got = {c.target: c for c in spec(tmp_path, text).claims}
    assert got["dbeta"].verdict == Verdict.REFUTED


def _numeric_grad(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


def test_batchnorm_counterexample_is_real_in_float64(tmp_path: Path) -> None:
    """The refutation's arrays, run through plain NumPy: the claimed dx and a finite
    difference of Σ out ⊙ dout differ at the named entry."""
    line = "dx = (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=0)) / np.sqrt(np.var(x, axis=0) + eps)"
    text = BATCHNORM.replace(BATCHNORM.strip().splitlines()[-1], "  " + line)
    c = {c.target: c for c in spec(tmp_path, text).claims}["dx"]
    ns = {"np": np}
    values = {k: eval(v, ns) for k, v in c.counterexample.values.items()}  # our own output: np.array(...)
    x, gamma, beta, eps, dout = (np.asarray(values[k], dtype=float) for k in ("x", "gamma", "beta", "eps", "dout"))

    def loss(xx: np.ndarray) -> float:
        mu = xx.mean(axis=0, keepdims=True)
        xh = (xx - mu) / np.sqrt(xx.var(axis=0, keepdims=True) + eps)
        return float(np.sum((gamma * xh + beta) * dout))

    x_hat = (x - x.mean(axis=0, keepdims=True)) / np.sqrt(x.var(axis=0, keepdims=True) + eps)
    dx_hat = dout * gamma
    claimed = (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=0)) / np.sqrt(np.var(x, axis=0) + eps)
    true = _numeric_grad(loss, x)
    i, j = c.counterexample.entry
    assert abs(claimed[i, j] - true[i, j]) > 1e-4
    assert abs(float(c.counterexample.true.split()[0]) - true[i, j]) < 1e-5


SOFTMAX = """
network:
  equations: |
    N = x.shape[0]
    probs = np.exp(x) / np.sum(np.exp(x), axis=1, keepdims=True)
    loss = -np.sum(np.log(probs[np.arange(N), y])) / N
  shapes: {x: [2, 3], y: [2]}
  domains: {y: labels}
  loss: loss
backward: |
  dx = probs.copy()
  dx[np.arange(N), y] -= 1
  dx /= N
"""


def test_labels_domain_proves_the_softmax_gradient(tmp_path: Path) -> None:
    c = {c.target: c for c in spec(tmp_path, SOFTMAX).claims}["dx"]
    assert c.verdict == Verdict.PROVEN
    assert c.basis and "declared domain" in c.basis


def test_labels_mistake_gives_integer_labels(tmp_path: Path) -> None:
    c = {c.target: c for c in spec(tmp_path, SOFTMAX.replace("  dx /= N\n", "")).claims}["dx"]
    assert c.verdict == Verdict.REFUTED
    y = c.counterexample.values["y"]
    assert re.fullmatch(r"np\.array\(\[\d+(, \d+)*\]\)", y), y  # integer labels, as the user's code sees them


def test_one_hot_claim_refuted_without_domain_and_diagnosed(tmp_path: Path) -> None:
    text = """
    network:
      equations: |
        A = np.exp(Z) / np.sum(np.exp(Z), axis=1, keepdims=True)
        L = -np.sum(Y * np.log(A)) / 2
      shapes: {Z: [2, 3], Y: [2, 3]}
      loss: L
    backward: |
      dZ = (A - Y) / 2
    """
    c = spec(tmp_path, text).claims[0]
    assert c.verdict == Verdict.REFUTED
    assert c.diagnosis and "true if Y is one-hot" in c.diagnosis
    declared = text.replace("      loss: L", "      loss: L\n      domains: {Y: one_hot}")
    assert spec(tmp_path, declared).claims[0].verdict == Verdict.PROVEN


def test_binary_mask_domain(tmp_path: Path) -> None:
    text = """
    network:
      equations: |
        out = x * keep / p
      shapes: {x: [2, 2], keep: [2, 2]}
      domains: {keep: binary, p: probability}
    upstream: {out: dout}
    backward: |
      dx = dout * keep ** 3 / p
    claims:
      - target: dx
        formula: dout * keep
        expect: refuted
    """
    got = spec(tmp_path, text).claims
    assert got[0].verdict == Verdict.PROVEN and "declared domain" in (got[0].basis or "")
    assert got[1].verdict == Verdict.REFUTED
    keep = got[1].counterexample.values["keep"]
    assert set(keep.replace("np.array(", "").replace("[", "").replace("]", "").replace(")", "").split(", ")) <= {
        "0.0", "1.0"}


def test_masked_assignment_and_clip(tmp_path: Path) -> None:
    text = """
    network:
      equations: |
        h = np.maximum(0, x)
        c = np.clip(x, -1, 1)
        out = h + c
      shapes: {x: [2, 3]}
    upstream: {out: dout}
    backward: |
      dh = dout
      dc = dout
      dx = dh.copy()
      dx[x <= 0] = 0
      dx += dc * ((x > -1) & (x < 1))
    """
    got = {c.target: c.verdict for c in spec(tmp_path, text).claims}
    assert got == {"dh": Verdict.PROVEN, "dc": Verdict.PROVEN, "dx": Verdict.PROVEN}
    wrong = text.replace("dx[x <= 0] = 0", "dx[x < 0] = 0").replace("dx += dc * ((x > -1) & (x < 1))",
                                                                       "dx += dc")
    assert {c.target: c.verdict for c in spec(tmp_path, wrong).claims}["dx"] == Verdict.REFUTED


def test_slices_and_hstack(tmp_path: Path) -> None:
    text = """
    network:
      equations: |
        H = h.shape[1]
        a = x.dot(W)
        i = sigmoid(a[:, :H])
        g = np.tanh(a[:, H:2*H])
        out = i * g
      parameters: [W]
      shapes: {x: [1, 2], h: [1, 2], W: [2, 4]}
    upstream: {out: dout}
    backward: |
      da = np.hstack((dout * g * i * (1 - i), dout * i * (1 - g ** 2)))
      dW = x.T.dot(da)
      dx = da.dot(W.T)
    """
    got = {c.target: c.verdict for c in spec(tmp_path, text).claims}
    assert got == {"da": Verdict.PROVEN, "dW": Verdict.PROVEN, "dx": Verdict.PROVEN}
    swapped = text.replace("np.hstack((dout * g * i * (1 - i), dout * i * (1 - g ** 2)))",
                           "np.hstack((dout * i * (1 - g ** 2), dout * g * i * (1 - i)))")
    got = {c.target: c.verdict for c in spec(tmp_path, swapped).claims}
    assert got["da"] == Verdict.REFUTED and got["dW"] == Verdict.REFUTED


def test_loop_accumulates(tmp_path: Path) -> None:
    text = """
    network:
      equations: |
        out = x * w
      parameters: [w]
      shapes: {x: [3]}
    upstream: {out: dout}
    backward: |
      dw = 0 * w
      for t in range(3):
          dw += dout[t] * x[t]
    """
    assert spec(tmp_path, text).claims[0].verdict == Verdict.PROVEN
    wrong = text.replace("range(3)", "range(2)")
    assert spec(tmp_path, wrong).claims[0].verdict == Verdict.REFUTED


@pytest.mark.parametrize("patch, place, message", [
    ("upstream: {out: dout}", "upstream.nope", "not assigned by the equations"),
    ("domains: {eps: positive}", "network.domains.eps", "unknown domain"),
    ("backward: |", "backward", "line 2"),
])
def test_spec_errors_name_the_place(tmp_path: Path, patch: str, place: str, message: str) -> None:
    text = BATCHNORM
    if place == "upstream.nope":
        text = text.replace(patch, "upstream: {nope: dout}")
    elif place == "network.domains.eps":
        text = text.replace(patch, "domains: {eps: sometimes}")
    else:
        text = text.replace("  dgamma = np.sum", "  dgamma = = np.sum")
    with pytest.raises(SpecError) as info:
        spec(tmp_path, text)
    assert place in str(info.value) and message in str(info.value)


def test_shipped_worked_examples() -> None:
    """The five worked examples: every gradient proven, each shipped mistake refuted."""
    for name in ("batchnorm_staged", "softmax_loss_labels", "dropout_inverted", "two_layer_l2", "lstm_step"):
        report = derive.load(ROOT / "derivations" / f"{name}.yaml").report()
        assert report.ok, [(c.target, c.verdict) for c in report.claims if not c.ok]
        assert any(c.verdict == Verdict.REFUTED for c in report.claims), name
        assert sum(c.verdict == Verdict.PROVEN for c in report.claims) >= 1


# ------------------------------------------------------------------ the chain (issue 17, in blocks)
COURSE = """
network:
  equations: |
    Z1 = W1 @ X + b1
    A1 = np.tanh(Z1)
    Z2 = W2 @ A1 + b2
    A2 = sigmoid(Z2)
    m = X.shape[1]
    J = -np.sum(Y * np.log(A2) + (1 - Y) * np.log(1 - A2)) / m
  parameters: [W1, b1, W2, b2]
  shapes: {X: [2, 2], Y: [1, 2], W1: [2, 2], b1: [2, 1], W2: [1, 2], b2: [1, 1]}
  loss: J
  domains: {Y: binary}
backward: |
  dZ2 = A2 - Y
  dW2 = (1 / m) * dZ2 @ A1.T
  db2 = (1 / m) * np.sum(dZ2, axis=1, keepdims=True)
  dZ1 = W2.T @ dZ2 * (1 - A1 ** 2)
  dW1 = (1 / m) * dZ1 @ X.T
  db1 = (1 / m) * np.sum(dZ1, axis=1, keepdims=True)
"""


def test_course_chain_is_right_under_the_per_example_convention(tmp_path: Path) -> None:
    report = spec(tmp_path, COURSE)
    assert report.ok
    by = {c.target.split()[0]: c for c in report.claims}
    assert by["dZ2"].diagnosis and "2·∂L/∂Z2" in by["dZ2"].diagnosis
    assert by["dZ2"].finding is not None and by["dZ2"].finding.code == "per-example"
    assert by["dW2"].verdict == Verdict.PROVEN and by["db1"].verdict == Verdict.PROVEN
    assert any("per-example convention" in n for n in report.conventions["notes"])


def test_chain_with_a_forgotten_factor_is_not_a_convention(tmp_path: Path) -> None:
    """dW2 without its 1/m: the per-example dZ2 is then not undone, so it is wrong, and
    dW2 is right *given the true dZ2* — the report says where the chain breaks."""
    report = spec(tmp_path, COURSE.replace("dW2 = (1 / m) * dZ2 @ A1.T", "dW2 = dZ2 @ A1.T"))
    by = {c.target.split()[0]: c for c in report.claims}
    assert by["dZ2"].verdict == Verdict.REFUTED
    assert "constant factor 2" in (by["dZ2"].diagnosis or "")
    assert by["dW2"].verdict == Verdict.REFUTED
    assert "mistake is upstream" in (by["dW2"].detail or "")
    assert any("first line wrong on its own" in n and "dZ2" in n for n in report.conventions["notes"])


def test_line_wrong_on_its_own_is_named(tmp_path: Path) -> None:
    text = COURSE.replace("dZ1 = W2.T @ dZ2 * (1 - A1 ** 2)", "dZ1 = W2.T @ dZ2 * (1 - A1)").replace(
        "dZ2 = A2 - Y", "dZ2 = (A2 - Y) / m").replace("(1 / m) * ", "")
    report = spec(tmp_path, text)
    by = {c.target.split()[0]: c for c in report.claims}
    assert by["dZ2"].verdict == Verdict.PROVEN and by["dW2"].verdict == Verdict.PROVEN
    assert by["dZ1"].verdict == Verdict.REFUTED and "wrong even given" in (by["dZ1"].detail or "")
    assert by["dW1"].verdict == Verdict.REFUTED and "upstream" in (by["dW1"].detail or "")
    assert any("dZ1" in n and "first line wrong" in n for n in report.conventions["notes"])


def test_tanh_written_through_sigmoid_is_used_through_its_definition(tmp_path: Path) -> None:
    text = """
    network:
      equations: |
        z = w * x
        a = sigmoid(2*z) - sigmoid(-2*z)
        L = (a - y)**2 / 2
      parameters: [w]
      loss: L
      domains: {}
    claims:
      - dz: (a - y) * (1 - a**2)
      - dw: (a - y) * (1 - np.tanh(z)**2) * x
      - target: dw
        formula: (a - y) * (1 - a) * x
        expect: refuted
    """
    report = spec(tmp_path, text)
    assert report.ok, [(c.target, c.verdict) for c in report.claims]


def test_python_api_for_block_specs() -> None:
    from derive.testing import assert_claim, assert_refuted

    d = derive.load(ROOT / "derivations" / "dropout_inverted.yaml")
    assert assert_claim(d, "dx", "dout * keep / p").verdict == Verdict.PROVEN  # type: ignore[arg-type]
    c = assert_refuted(d, "dx", "dout * keep", "1/p is missing")  # type: ignore[arg-type]
    assert c.finding is not None and c.finding.code == "missing factor"
    with pytest.raises(AssertionError, match=r"true:    dx\[0,0\] = dout\[0,0\]\*keep\[0,0\]/p"):
        assert_claim(d, "dx", "dout * keep")  # type: ignore[arg-type]


@pytest.mark.parametrize("block, place, message", [
    ("  dx = dout * 2\n  dy = dq @ dx\n", "backward", "line 2: unknown name 'dq'"),
    ("  dx = np.ones((100000, 100000))\n", "backward", "larger than the limit"),
    ("  dx = dout\n  for t in range(1000):\n      dx = dx + 0\n", "backward", "the loop runs 1000 steps"),
])
def test_block_errors_are_one_line_with_the_place(tmp_path: Path, block: str, place: str, message: str) -> None:
    text = "network:\n  equations: |\n    out = x * 2\n  shapes: {x: [2]}\nupstream: {out: dout}\nbackward: |\n" + block
    with pytest.raises(SpecError) as info:
        spec(tmp_path, text)
    assert f": {place}: " in str(info.value) and message in str(info.value)
    assert "\n" not in str(info.value)


def test_l1_loss_abs_sign_and_joins(tmp_path: Path) -> None:
    """abs and sign (an L1 loss), vstack,
    ones_like, len and np.minimum in one block; the wrong sign is refuted."""
    text = """
    network:
      equations: |
        N = len(x)
        both = np.vstack((x, z))
        L = np.sum(np.abs(both - t)) / N + np.sum(np.minimum(x, 0))
      shapes: {x: [2, 2], z: [1, 2], t: [3, 2]}
      loss: L
    backward: |
      dboth = np.sign(both - t) / N
      dx = dboth[:2, :] + np.ones_like(x) * (x < 0)
      dz = dboth[2:, :]
    """
    got = {c.target: c for c in spec(tmp_path, text).claims}
    assert {k: c.verdict for k, c in got.items()} == {"dboth": Verdict.PROVEN, "dx": Verdict.PROVEN,
                                                      "dz": Verdict.PROVEN}
    # (|u|' is sign(u) exactly, 0 at the kink too: derive's relu'(0) = 0 convention on both sides)
    wrong = text.replace("dz = dboth[2:, :]", "dz = -dboth[2:, :]")
    got = {c.target: c for c in spec(tmp_path, wrong).claims}
    assert got["dz"].verdict == Verdict.REFUTED and got["dz"].finding is not None
    assert got["dz"].finding.code == "opposite sign"


# ------------------------------------------------------------------ sizes read off a value
SHAPES_NET = """
    name: sizes
    network:
      inputs: 2
      layers:
        - {units: 3, activation: tanh}
        - {units: 1, activation: sigmoid}
      loss: binary_cross_entropy
      batch: 3
    claims:
      - dZ2: (A2 - Y) / Y.shape[1]
      - dW2: 1 / X.shape[1] * np.dot(A2 - Y, A1.T)
      - db2: np.sum(A2 - Y, axis=1, keepdims=True) / A2.size
      - dW1: np.dot(np.dot(W2.T, A2 - Y) * (1 - A1**2), X.T) / X.shape[-1]
      - target: dZ2
        formula: (A2 - Y) / Y.shape[0]
        expect: refuted
      - target: dW2
        formula: np.dot(A2 - Y, A1.T) / X.shape[0]
        expect: refuted
"""


def test_sizes_read_off_a_value_are_numbers(tmp_path: Path) -> None:
    """Course code divides by ``Y.shape[1]`` or ``X.shape[1]`` (m, the batch): a number read
    off the value's shape; the wrong axis is another number (1 here, or the layer width),
    and refuted."""
    report = spec(tmp_path, SHAPES_NET)
    got = [c.verdict.value for c in report.claims]
    assert got == ["proven"] * 4 + ["refuted"] * 2, verdicts(report)
    assert "1/m" in str(report.claims[4].diagnosis)  # Y.shape[0] is 1: the per-example gradient


@pytest.mark.parametrize("formula, message", [
    ("(A2 - Y) / Y.shape[2]", "needs k = 0 or 1"),
    ("(A2 - Y) / m.shape[0]", "scalar"),
])
def test_a_size_that_does_not_exist_is_a_shape_refutation(tmp_path: Path, formula: str, message: str) -> None:
    """As a product of mismatched shapes is: the formula as written is not the gradient."""
    text = SHAPES_NET.split("    claims:")[0] + f"    claims:\n      - dZ2: {formula}\n"
    report = spec(tmp_path, text)
    c = report.claims[0]
    assert c.verdict.value == "refuted" and "shape error" in c.detail and message in c.detail, c.detail


PLANAR = """
    name: planar data classification
    network:
      equations: |
        Z1 = np.dot(W1, X) + b1
        A1 = np.tanh(Z1)
        Z2 = np.dot(W2, A1) + b2
        A2 = 1 / (1 + np.exp(-Z2))
        m = Y.shape[1]
        cost = -np.sum(np.multiply(np.log(A2), Y) + np.multiply(np.log(1 - A2), 1 - Y)) / m
      loss: cost
      parameters: [W1, b1, W2, b2]
      shapes: {X: [2, 3], Y: [1, 3], W1: [4, 2], b1: [4, 1], W2: [1, 4], b2: [1, 1]}
      domains: {Y: binary}
    backward: |
      m = X.shape[1]
      dZ2 = A2 - Y
      dW2 = (1 / m) * np.dot(dZ2, A1.T)
      db2 = (1 / m) * np.sum(dZ2, axis=1, keepdims=True)
      dZ1 = np.multiply(np.dot(W2.T, dZ2), 1 - np.power(A1, 2))
      dW1 = (1 / m) * np.dot(dZ1, X.T)
      db1 = (1 / m) * np.sum(dZ1, axis=1, keepdims=True)
"""


@pytest.mark.parametrize("wrong, right", [
    (None, None),
    ("dW1 = np.dot(dZ1, X.T)", "dW1 = (1 / m) * np.dot(dZ1, X.T)"),  # the 1/m forgotten
    ("db1 = (1 / m) * np.sum(dZ1, axis=0, keepdims=True)", "db1 = (1 / m) * np.sum(dZ1, axis=1, keepdims=True)"),
])
def test_course_block_with_m_read_off_a_shape(tmp_path: Path, wrong: str | None, right: str | None) -> None:
    """A column-batch course solution (m = X.shape[1]): right as written, under the
    per-example convention for dZ; each classic slip refuted; the header gives the inputs'
    shapes (which axis is the batch is the code's business), not a guessed batch."""
    text = PLANAR if wrong is None else PLANAR.replace(right, wrong)
    report = spec(tmp_path, text)
    got = {c.target.split(" ")[0]: c.verdict.value for c in report.claims}  # ("dZ2 (as 3·∂L/∂Z2)")
    target = None if wrong is None else wrong.split(" =")[0]
    assert set(got) == {"dZ2", "dW2", "db2", "dZ1", "dW1", "db1"}
    if target is None:
        assert set(got.values()) == {"proven"}, got
    else:  # (the dZ then are judged as ∂L/∂Z: no consistent per-example convention is left)
        assert got[target] == "refuted" and got["dW2"] == got["db2"] == "proven", got
    from derive.render.words import header
    assert "inputs X 2×3, Y 1×3" in header(report) and "batch" not in header(report)
