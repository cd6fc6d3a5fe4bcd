"""The layer mistakes courses warn about, named (issue 15): a backward block that forgets a
path (batch norm's dmean, the LSTM's next_h path, BPTT's carry, a residual block's skip),
a convolution's gradient without the 180° kernel flip, max pooling's gradient spread over
the window.  For each: the right block is proven, the mutated block refuted *with* the
named mistake.  A wrong block whose error is not a forgotten path must not be told it
forgot one.  Three blocks of our own (a weight shared by two layers, a gated unit
x·σ(x), a softmax) check that the path diagnosis is general, not tuned to the shipped
derivations.  The named fix is checked here in plain NumPy too: the refuted gradient
plus the missing path's share (finite differences of the forward pass with that reading
held constant) is the finite-difference gradient — an oracle that shares no code with
derive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_tensor_layers import STACK  # the tiny convnet stack, written once

import derive
from derive.records import DiagnosisCode, Verdict

ROOT = Path(__file__).resolve().parent.parent
PATHS = {DiagnosisCode.MISSING_PATH, DiagnosisCode.EXTRA_PATH, DiagnosisCode.PATH_SIGN}


def report(tmp_path: Path, text: str) -> derive.Report:
    path = tmp_path / "block.yaml"
    path.write_text(text)
    return derive.load(path).report()


def shipped(name: str) -> str:
    text = (ROOT / "derivations" / f"{name}.yaml").read_text()
    return text.split("\nclaims:")[0] + "\n"  # the block alone: its shipped claims are judged elsewhere


def mutate(text: str, line: str, wrong: str) -> str:
    assert line in text, line
    return text.replace(line, wrong, 1)


def verdict_of(r: derive.Report, target: str) -> derive.Check:
    return next(c for c in r.claims if c.target == target)


def assert_named(r: derive.Report, target: str, code: DiagnosisCode, *words: str) -> None:
    c = verdict_of(r, target)
    assert c.verdict == Verdict.REFUTED, (target, c.verdict)
    assert c.finding is not None and c.finding.code == code, (target, c.diagnosis)
    for w in words:
        assert w in c.finding.message, (w, c.finding.message)


# ------------------------------------------------------------------ the shipped layers, as blocks
@pytest.mark.parametrize("name, line, wrong, target, code, words", [
    ("batchnorm_staged", "dx = dx1 + dx2", "dx = dx1", "dx", DiagnosisCode.MISSING_PATH, ("through mu",)),
    ("lstm_step", "dc = dnext_c + dnext_h * o * (1 - np.tanh(next_c) ** 2)", "dc = dnext_c", "dprev_c",
     DiagnosisCode.MISSING_PATH, ("from next_c into next_h",)),
    ("residual_block", "dx = da.dot(W1.T) + dout", "dx = da.dot(W1.T)", "dx", DiagnosisCode.MISSING_PATH,
     ("skip connection",)),
    ("residual_block", "dx = da.dot(W1.T) + dout", "dx = da.dot(W1.T) + dout + dout", "dx", DiagnosisCode.EXTRA_PATH,
     ("through out",)),
    ("residual_block", "dx = da.dot(W1.T) + dout", "dx = da.dot(W1.T) - dout", "dx", DiagnosisCode.PATH_SIGN,
     ("through out",)),
    ("rnn_bptt", "da = (dh[:, t, :] + dh_next) * (1 - hs[:, t + 1, :] ** 2)", "da = dh[:, t, :] * (1 - hs[:, t + 1, :] ** 2)",
     "dWh", DiagnosisCode.MISSING_PATH, ("carry", "prev_h")),
    ("lstm_bptt", "dh_t = dh[:, t, :] + dh_next", "dh_t = dh[:, t, :]", "dWh", DiagnosisCode.MISSING_PATH,
     ("carry", "prev_h")),
    ("lstm_bptt", "dc_t = dc_next + dh_t * oo[:, t, :] * (1 - tc ** 2)", "dc_t = dh_t * oo[:, t, :] * (1 - tc ** 2)",
     "dWx", DiagnosisCode.MISSING_PATH, ("carry", "prev_c")),
    ("conv2d_naive", "+= w[f] * dout[n, f, i, j]", "+= np.flip(w[f], axis=(1, 2)) * dout[n, f, i, j]", "dx",
     DiagnosisCode.KERNEL_FLIP, ("np.flip(w, axis=(2, 3))",)),
    ("layernorm", "D * dxhat - dxhat.sum(axis=1, keepdims=True) - xhat", "D * dxhat - xhat", "dx",
     DiagnosisCode.MISSING_PATH, ("the path through mu",)),
    ("layernorm", "dx = (1. / D) / std * (D * dxhat - dxhat.sum(axis=1, keepdims=True) - xhat * np.sum(dxhat * xhat, "
                  "axis=1, keepdims=True))", "dx = dxhat / std", "dx", DiagnosisCode.MISSING_PATH,
     ("missing two of the paths", "through mu", "from xmu into var")),
    ("gru_step", "dprev_h = dnext_h * (1 - z) + drh * r", "dprev_h = drh * r", "dprev_h", DiagnosisCode.MISSING_PATH,
     ("the path through next_h",)),
    ("gru_step", "dx = dah.dot(Wh.T) + daz.dot(Wz.T) + dar.dot(Wr.T)", "dx = dah.dot(Wh.T) + daz.dot(Wz.T)", "dx",
     DiagnosisCode.MISSING_PATH, ("the path through r",)),
    ("attention", "dS = A * (dA - np.sum(dA * A, axis=1, keepdims=True))", "dS = A * dA", "dQ",
     DiagnosisCode.MISSING_PATH, ("from E into A, through sum(E, axis=1)",)),
    ("maxpool_naive", "+= mask * dout[n, c, i, j]", "+= dout[n, c, i, j]", "dx", DiagnosisCode.POOL_ROUTING,
     ("every entry",)),
    ("maxpool_naive", "+= mask * dout[n, c, i, j]", "+= dout[n, c, i, j] / 4", "dx", DiagnosisCode.POOL_ROUTING,
     ("spread evenly",)),
])
def test_a_shipped_layer_block_and_its_classic_mistake(tmp_path: Path, name: str, line: str, wrong: str,
                                                      target: str, code: DiagnosisCode, words: tuple[str, ...]) -> None:
    right = shipped(name)
    assert report(tmp_path, right).ok
    assert_named(report(tmp_path, mutate(right, line, wrong)), target, code, *words)


def test_the_shipped_claims_are_named() -> None:
    """Each derivation's shipped mistake gets its name (the claims as written, true gradients on the right)."""
    expected = {"batchnorm_staged": DiagnosisCode.MISSING_PATH, "lstm_step": DiagnosisCode.MISSING_PATH,
                "rnn_bptt": DiagnosisCode.MISSING_PATH, "residual_block": DiagnosisCode.MISSING_PATH,
                "conv2d_naive": DiagnosisCode.KERNEL_FLIP, "maxpool_naive": DiagnosisCode.POOL_ROUTING,
                "attention_heads": DiagnosisCode.MISSING_PATH}
    for name, code in expected.items():
        r = derive.load(ROOT / "derivations" / f"{name}.yaml").report()
        wrong = [c for c in r.claims if c.expect == "refuted"]
        assert wrong and all(c.verdict == Verdict.REFUTED for c in wrong), name
        assert {c.finding.code if c.finding else None for c in wrong} == {code}, (name, [c.diagnosis for c in wrong])


def test_multi_head_attention_names_the_two_projections_left_out() -> None:
    r = derive.load(ROOT / "derivations" / "attention_heads.yaml").report()
    c = next(c for c in r.claims if c.expect == "refuted")
    assert c.finding is not None and "missing 2 of the 3 paths" in c.finding.message, c.diagnosis
    assert "K = X.dot(Wk)" in c.finding.message and "V = X.dot(Wv)" in c.finding.message


def test_attention_swapped_q_and_k_is_still_a_wrong_name(tmp_path: Path) -> None:
    right = shipped("attention")
    wrong = mutate(right, "dK = dS.T.dot(Q) / np.sqrt(d)", "dK = dS.T.dot(K) / np.sqrt(d)")
    assert_named(report(tmp_path, wrong), "dK", DiagnosisCode.WRONG_NAME, "K → Q")


# ------------------------------------------------------------------ not a path: no path named
@pytest.mark.parametrize("name, line, wrong, target", [
    ("residual_block", "dx = da.dot(W1.T) + dout", "dx = da.dot(W1.T) + 0.5 * dout", "dx"),
    ("residual_block", "dx = da.dot(W1.T) + dout", "dx = da.dot(W1.T) + dout + 0.25", "dx"),
    ("residual_block", "dx = da.dot(W1.T) + dout", "dx = -(da.dot(W1.T) + dout)", "dx"),
    ("batchnorm_staged", "dx = dx1 + dx2", "dx = dx1 + dx2 + 0.1", "dx"),
    ("batchnorm_staged", "dx = dx1 + dx2", "dx = dx1 + 3 * dx2", "dx"),
    ("lstm_step", "dprev_c = dc * f", "dprev_c = dc * i", "dprev_c"),
    ("conv2d_naive", "dx = dx_pad[:, :, pad:-pad, pad:-pad]", "dx = dx_pad[:, :, pad:-pad, pad:-pad] * 2", "dx"),
])
def test_a_mistake_that_is_no_forgotten_path_is_not_called_one(tmp_path: Path, name: str, line: str, wrong: str,
                                                                target: str) -> None:
    c = verdict_of(report(tmp_path, mutate(shipped(name), line, wrong)), target)
    assert c.verdict == Verdict.REFUTED
    assert c.finding is None or c.finding.code not in PATHS | {DiagnosisCode.KERNEL_FLIP,
                                                                DiagnosisCode.POOL_ROUTING}, c.diagnosis


def test_a_sign_error_is_a_sign_error(tmp_path: Path) -> None:
    wrong = mutate(shipped("residual_block"), "dx = da.dot(W1.T) + dout", "dx = -(da.dot(W1.T) + dout)")
    c = verdict_of(report(tmp_path, wrong), "dx")
    assert c.finding is not None and c.finding.code == DiagnosisCode.OPPOSITE_SIGN, c.diagnosis


# ------------------------------------------------------------------ blocks of our own (generality)
SHARED = """\
name: a weight shared by two layers
network:
  equations: |
    h = np.tanh(x.dot(W))
    out = h.dot(W)
  parameters: [W]
  shapes: {x: [2, 2], W: [2, 2]}
upstream: {out: dout}
backward: |
  dh = dout.dot(W.T)
  dpre = dh * (1 - h ** 2)
  dx = dpre.dot(W.T)
  dW = x.T.dot(dpre) + h.T.dot(dout)
"""

GATED = """\
name: a gated unit x * sigmoid(x)
network:
  equations: |
    y = x * sigmoid(x)
  parameters: []
  shapes: {x: [2, 3]}
upstream: {y: dy}
backward: |
  s = sigmoid(x)
  dx = dy * (s + x * s * (1 - s))
"""

SOFTMAX = """\
name: softmax, staged
network:
  equations: |
    e = np.exp(z)
    p = e / np.sum(e, axis=1, keepdims=True)
  parameters: []
  shapes: {z: [2, 3]}
upstream: {p: dp}
backward: |
  dz = p * (dp - np.sum(dp * p, axis=1, keepdims=True))
"""

SOFTMAX_ONE_LINE = SOFTMAX.replace("""    e = np.exp(z)
    p = e / np.sum(e, axis=1, keepdims=True)""", "    p = np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True)")

MLP_BN = """\
name: dense, then a normalisation by the mean, then tanh
network:
  equations: |
    a = x.dot(W)
    c = a - np.mean(a, axis=0)
    out = np.tanh(c)
  parameters: [W]
  shapes: {x: [3, 2], W: [2, 2]}
upstream: {out: dout}
backward: |
  N = x.shape[0]
  dc = dout * (1 - out ** 2)
  da = dc - np.sum(dc, axis=0) / N
  dW = x.T.dot(da)
  dx = da.dot(W.T)
"""


ONE_LINE_RESIDUAL = """\
name: a residual unit in one line
network:
  equations: |
    out = x + np.tanh(x.dot(W))
  parameters: [W]
  shapes: {x: [2, 2], W: [2, 2]}
upstream: {out: dout}
backward: |
  da = dout * (1 - np.tanh(x.dot(W)) ** 2)
  dW = x.T.dot(da)
  dx = dout + da.dot(W.T)
"""


@pytest.mark.parametrize("text, line, wrong, target, code, words", [
    (ONE_LINE_RESIDUAL, "dx = dout + da.dot(W.T)", "dx = da.dot(W.T)", "dx", DiagnosisCode.MISSING_PATH,
     ("the first reading of x", "the skip connection")),
    (ONE_LINE_RESIDUAL, "dx = dout + da.dot(W.T)", "dx = dout", "dx", DiagnosisCode.MISSING_PATH,
     ("through tanh(x @ W)",)),
    (SHARED, "dW = x.T.dot(dpre) + h.T.dot(dout)", "dW = h.T.dot(dout)", "dW", DiagnosisCode.MISSING_PATH,
     ("through h",)),
    (SHARED, "dW = x.T.dot(dpre) + h.T.dot(dout)", "dW = x.T.dot(dpre)", "dW", DiagnosisCode.MISSING_PATH,
     ("through out",)),
    (GATED, "dx = dy * (s + x * s * (1 - s))", "dx = dy * s", "dx", DiagnosisCode.MISSING_PATH, ("the path through sigmoid(x) (y = x * sigmoid(x))",)),
    (GATED, "dx = dy * (s + x * s * (1 - s))", "dx = dy * x * s * (1 - s)", "dx", DiagnosisCode.MISSING_PATH,
     ("the first reading of x (y = x * sigmoid(x))",)),
    (SOFTMAX, "dz = p * (dp - np.sum(dp * p, axis=1, keepdims=True))", "dz = -p * np.sum(dp * p, axis=1, keepdims=True)",
     "dz", DiagnosisCode.MISSING_PATH, ("from e into p, through the first reading of e",)),
    (SOFTMAX, "dz = p * (dp - np.sum(dp * p, axis=1, keepdims=True))", "dz = p * dp", "dz",
     DiagnosisCode.MISSING_PATH, ("from e into p, through sum(e, axis=1)",)),
    (SOFTMAX_ONE_LINE, "dz = p * (dp - np.sum(dp * p, axis=1, keepdims=True))", "dz = p * dp", "dz",
     DiagnosisCode.MISSING_PATH, ("second reading of z",)),
    (MLP_BN, "da = dc - np.sum(dc, axis=0) / N", "da = dc", "dW", DiagnosisCode.MISSING_PATH,
     ("mean(a, axis=0)",)),
    (MLP_BN, "da = dc - np.sum(dc, axis=0) / N", "da = dc + np.sum(dc, axis=0) / N", "dx",
     DiagnosisCode.PATH_SIGN, ()),
])
def test_blocks_of_our_own(tmp_path: Path, text: str, line: str, wrong: str, target: str, code: DiagnosisCode,
                           words: tuple[str, ...]) -> None:
    assert report(tmp_path, text).ok
    assert_named(report(tmp_path, mutate(text, line, wrong)), target, code, *words)


CONVNET = STACK.replace("name: tiny convnet", "name: a tiny convnet as a layer stack").lstrip() + """\
claims:
  - target: dA0
    formula: conv2d(dZ1, np.flip(W1, axis=(2, 3)).transpose(1, 0, 2, 3), pad=1)
  - target: dA0
    formula: conv2d(dZ1, W1.transpose(1, 0, 2, 3), pad=1)
    expect: refuted
"""

POOL_THEN_DENSE = """\
name: max pooling, then a dense layer
network:
  equations: |
    p = maxpool(x, 2, stride=2)
    q = p.reshape(1, 4)
    out = np.tanh(q.dot(W))
  parameters: [W]
  shapes: {x: [1, 1, 4, 4], W: [4, 2]}
upstream: {out: dout}
backward: |
  dq = (dout * (1 - out ** 2)).dot(W.T)
  dp = dq.reshape(1, 1, 2, 2)
claims:
  - target: dx
    formula: np.repeat(np.repeat(dp, 2, axis=2), 2, axis=3)
    expect: refuted
  - target: dx
    formula: np.repeat(np.repeat(dp, 2, axis=2), 2, axis=3) / 4
    expect: refuted
"""


def test_the_kernel_flip_where_the_upstream_gradient_depends_on_the_kernel(tmp_path: Path) -> None:
    """In a stack the gradient reaching the convolution (dZ1) depends on W1 itself: the flip
    is found in the line as written (W1 → np.flip(W1, axis=(2, 3))), not in the value."""
    r = report(tmp_path, CONVNET)
    right, wrong = [c for c in r.claims if c.target == "dA0"]
    assert right.verdict == Verdict.PROVEN
    assert wrong.verdict == Verdict.REFUTED and wrong.finding is not None
    assert wrong.finding.code == DiagnosisCode.KERNEL_FLIP and "np.flip(W1, axis=(2, 3))" in wrong.finding.message


def test_max_pooling_routing_before_a_dense_layer(tmp_path: Path) -> None:
    """The pooled values feed a layer: the spread gradient is the average's derivative with
    max pooling's values kept (the layers after it see the maxima)."""
    r = report(tmp_path, POOL_THEN_DENSE)
    every, even = [c for c in r.claims if c.target == "dx"]
    for c, words in ((every, "every entry"), (even, "spread evenly")):
        assert c.verdict == Verdict.REFUTED and c.finding is not None, c.target
        assert c.finding.code == DiagnosisCode.POOL_ROUTING and words in c.finding.message, c.diagnosis


@pytest.mark.parametrize("text, line, wrong, target", [
    (GATED, "dx = dy * (s + x * s * (1 - s))", "dx = dy * (s + x * s * (1 + s))", "dx"),
    (GATED, "dx = dy * (s + x * s * (1 - s))", "dx = dy * (s + x * s * (1 - s)) * 1.5", "dx"),
    (SHARED, "dW = x.T.dot(dpre) + h.T.dot(dout)", "dW = x.T.dot(dpre) + h.T.dot(dout) + W", "dW"),
    (SOFTMAX, "dz = p * (dp - np.sum(dp * p, axis=1, keepdims=True))", "dz = p * (dp - np.sum(dp, axis=1, keepdims=True))",
     "dz"),
])
def test_our_own_wrong_blocks_that_forget_no_path(tmp_path: Path, text: str, line: str, wrong: str,
                                                  target: str) -> None:
    c = verdict_of(report(tmp_path, mutate(text, line, wrong)), target)
    assert c.verdict == Verdict.REFUTED
    assert c.finding is None or c.finding.code not in PATHS, c.diagnosis


# ------------------------------------------------------------------ the named fix, in plain NumPy
def _gated_forward(x: np.ndarray, held: np.ndarray | None = None) -> np.ndarray:
    """y = x · σ(x); with ``held`` the σ reads it instead of x (that reading held constant)."""
    inner = x if held is None else held
    return x * (1 / (1 + np.exp(-inner)))


def test_the_named_path_is_the_missing_share_in_plain_numpy(tmp_path: Path) -> None:
    """derive says dx = dy·σ(x) forgets the path through sigmoid(x): the finite-difference
    gradient minus that of the forward with σ's reading of x held constant is exactly
    what the refuted line lacks (checked at derive's own counterexample)."""
    r = report(tmp_path, mutate(GATED, "dx = dy * (s + x * s * (1 - s))", "dx = dy * s"))
    c = verdict_of(r, "dx")
    assert c.finding is not None and "sigmoid(x)" in c.finding.message
    ce = c.counterexample
    assert ce is not None
    x = np.array(_floats(ce.values["x"]), dtype=float).reshape(2, 3)
    dy = np.array(_floats(ce.values["dy"]), dtype=float).reshape(2, 3)
    eps = 1e-6

    def grad(held: bool) -> np.ndarray:
        g = np.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            e = np.zeros_like(x)
            e[idx] = eps
            plus = _gated_forward(x + e, x if held else None)
            minus = _gated_forward(x - e, x if held else None)
            g[idx] = np.sum(dy * (plus - minus)) / (2 * eps)
        return g

    full, without = grad(False), grad(True)
    sig = 1 / (1 + np.exp(-x))
    claimed = dy * sig  # the refuted line, in NumPy
    assert np.allclose(claimed, without, atol=1e-6)  # the line is the gradient without that path
    assert not np.allclose(claimed, full, atol=1e-3)  # and that path matters here
    share = full - without
    assert np.allclose(claimed + share, full, atol=1e-6)


def _floats(text: str) -> list[float]:
    import re

    out = []
    for tok in re.findall(r"-?\d+(?:/\d+)?(?:\.\d+)?", text):
        if "/" in tok:
            a, b = tok.split("/")
            out.append(int(a) / int(b))
        else:
            out.append(float(tok))
    return out


@pytest.mark.parametrize("name, line, wrong, words", [
    ("residual_block", "dx = da.dot(W1.T) + dout", "dx = da.dot(W1.T)", "the skip connection"),
    ("conv2d_naive", "+= w[f] * dout[n, f, i, j]", "+= np.flip(w[f], axis=(1, 2)) * dout[n, f, i, j]",
     "is not flipped by 180"),
])
def test_every_format_shows_the_named_mistake(tmp_path: Path, name: str, line: str, wrong: str, words: str) -> None:
    """Terminal, text, Markdown, JSON, LaTeX and HTML all carry the diagnosis."""
    from rich.console import Console

    from derive.check.document import build
    from derive.render import formats

    path = tmp_path / "block.yaml"
    path.write_text(mutate(shipped(name), line, wrong))
    d = derive.load(path)
    doc = build(d, d.report(), sections=True)
    for kind in ("text", "markdown", "json", "latex", "html"):
        out = " ".join(str(formats.get(kind).render(doc)).split())
        assert words in out, kind
    console = Console(width=1000, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(formats.get("terminal").render(doc))
    assert words in " ".join(console.export_text().split())
    if name == "conv2d_naive":  # the degree sign typeset, not dropped
        assert "180$^\\circ$" in formats.get("latex").render(doc)


def test_a_failing_search_changes_no_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The search only adds a name: if it breaks, the refutation stands, without a diagnosis."""
    from derive.code import paths

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in the search")

    monkeypatch.setattr(paths._Finder, "paths", broken)
    c = verdict_of(report(tmp_path, mutate(shipped("residual_block"), "dx = da.dot(W1.T) + dout",
                                           "dx = da.dot(W1.T)")), "dx")
    assert c.verdict == Verdict.REFUTED and c.finding is None


def test_the_search_keeps_no_run_alive(tmp_path: Path) -> None:
    import gc

    from derive.code import paths

    gc.collect()
    before = len(paths._FINDERS)
    r = report(tmp_path, mutate(shipped("residual_block"), "dx = da.dot(W1.T) + dout", "dx = da.dot(W1.T)"))
    assert verdict_of(r, "dx").finding is not None
    del r
    gc.collect()
    assert len(paths._FINDERS) <= before
