"""derive.code: users' NumPy backward code proven or refuted exactly (issue 16).

The implementations are in tests/backward_examples.py, written as course code writes
them; each correct one must be proven and each bug refuted with arrays that parse back
with NumPy and, evaluated by the user's own code in float64, give the claimed and true
values derive reports at the entry it names.
"""

from __future__ import annotations

import ast
import math
import re

import backward_examples as ex
import numpy as np
import pytest
import sympy

from derive.code import NotRepresentable, SymArray, assert_backward, gradcheck, symbolic_numpy, symbols_array
from derive.code.arrays import exact
from derive.records import Verdict

CASES = {c.name: c for c in ex.CASES}


def _check(case: ex.Case, buggy: bool):
    if case.loss:
        return gradcheck(case.loss_buggy if buggy else case.forward, shapes=case.shapes)
    return gradcheck(case.forward, case.buggy if buggy else case.correct, case.shapes)


@pytest.mark.parametrize("name", list(CASES))
def test_correct_backward_is_proven(name):
    r = _check(CASES[name], buggy=False)
    assert r.verdict == Verdict.PROVEN, r.report()
    assert set(r.gradients) == set(CASES[name].shapes)


def _parse_arrays(code: str) -> dict[str, np.ndarray]:
    """The pasteable text, read back without eval: name = np.array(<literal>) or a float."""
    out = {}
    for line in code.splitlines():
        name, _, rhs = line.partition(" = ")
        m = re.fullmatch(r"np\.array\((.*)\)", rhs)
        out[name] = np.array(ast.literal_eval(m.group(1) if m else rhs), dtype=np.float64)
    return out


def _float_gradients(case: ex.Case, arrays: dict[str, np.ndarray], buggy: bool) -> dict[str, np.ndarray]:
    """The user's own code in float64 at the counterexample."""
    inputs = [arrays[n] for n in case.shapes]
    if case.loss:
        _, dx = (case.loss_buggy if buggy else case.forward)(*inputs)
        return {"x": dx}
    ups = [arrays[k] for k in sorted(k for k in arrays if k.startswith("dout"))]
    dout = ups[0] if len(ups) == 1 else tuple(ups)
    grads = (case.buggy if buggy else case.correct)(dout, *inputs)
    grads = grads if isinstance(grads, tuple) else (grads,)
    return dict(zip(case.shapes, grads, strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_bug_is_refuted_with_pasteable_arrays(name):
    case = CASES[name]
    r = _check(case, buggy=True)
    assert r.verdict == Verdict.REFUTED, r.report()
    g = r.gradients[case.wrong]
    assert g.verdict == Verdict.REFUTED
    c = g.counterexample
    assert c is not None and c.entry.startswith(f"d{case.wrong}")
    arrays = _parse_arrays(c.code())
    for n, shape in case.shapes.items():
        assert arrays[n].shape == shape
    claimed = _float_gradients(case, arrays, buggy=True)[case.wrong][c.index]
    true = _float_gradients(case, arrays, buggy=False)[case.wrong][c.index]
    assert math.isclose(claimed, c.claimed_float, rel_tol=1e-9, abs_tol=1e-12), (claimed, c.claimed_float)
    assert math.isclose(true, c.true_float, rel_tol=1e-9, abs_tol=1e-12), (true, c.true_float)
    assert not math.isclose(claimed, true, rel_tol=1e-9)
    assert "np.array(" in r.report() and c.entry in r.report()


def test_diagnoses_are_proven_factors():
    assert "factor 1/2" in _check(CASES["affine"], True).gradients["w"].diagnosis  # /N with N = 2
    assert "factor 1/2" in _check(CASES["dropout"], True).gradients["x"].diagnosis  # p = 1/2 forgotten
    assert "factor 2" in _check(CASES["softmax_loss"], True).gradients["x"].diagnosis  # no /N
    assert _check(CASES["batchnorm"], True).gradients["x"].diagnosis == ""  # no factor explains it


def test_transposed_and_opposite_sign():
    fwd = lambda x, w: x.dot(w)  # noqa: E731
    r = gradcheck(fwd, lambda d, x, w: (d.dot(w.T), d.T.dot(x)), {"x": (2, 3), "w": (3, 2)})
    assert r.gradients["w"].verdict == Verdict.REFUTED and "transpose" in r.gradients["w"].diagnosis
    r = gradcheck(fwd, lambda d, x, w: (d.dot(w.T), x.T.dot(d).T), {"x": (2, 2), "w": (2, 2)})
    assert "transpose" in r.gradients["w"].diagnosis, r.report()
    r = gradcheck(fwd, lambda d, x, w: (-d.dot(w.T), x.T.dot(d)), {"x": (2, 3), "w": (3, 2)})
    assert "opposite sign" in r.gradients["x"].diagnosis


def test_relu_mask_spellings():
    fwd = lambda x: np.maximum(0, x)  # noqa: E731
    for bwd in (lambda d, x: d * (x > 0), lambda d, x: ex.relu_backward(d, x),
                lambda d, x: np.where(x > 0, d, 0.0)):
        assert gradcheck(fwd, bwd, {"x": (2, 2)}).verdict == Verdict.PROVEN
    # x >= 0 differs from relu′ only at x = 0: proven almost everywhere, and said so
    r = gradcheck(fwd, lambda d, x: d * (x >= 0), {"x": (2, 2)})
    assert r.verdict == Verdict.PROVEN and r.gradients["x"].almost_everywhere
    assert "almost everywhere" in r.report()


def test_dict_gradients_scalars_and_eps():
    def fwd(x, alpha):
        return alpha * x / np.sqrt(np.var(x) + 1e-5)

    def bwd(dout, x, alpha):
        n = x.size
        v = np.var(x) + 1e-5
        xmu = x - np.mean(x)
        dx = alpha * (dout / np.sqrt(v) - xmu * np.sum(dout * x) / (n * v**1.5))
        return {"dx": dx, "alpha": np.sum(dout * x / np.sqrt(v))}

    r = gradcheck(fwd, bwd, {"x": (3,), "alpha": ()})
    assert r.verdict == Verdict.PROVEN, r.report()
    assert exact(1e-5) == sympy.Rational(1, 100000) and exact(1 / 3) == sympy.Rational(1, 3)


def test_assert_backward_raises_with_the_arrays():
    case = CASES["relu"]
    assert_backward(case.forward, case.correct, case.shapes)
    with pytest.raises(AssertionError, match=r"x = np\.array\(\[\["):
        assert_backward(case.forward, case.buggy, case.shapes)


def test_a_timeout_is_unproven_never_a_pass():
    case = CASES["batchnorm"]
    r = gradcheck(case.forward, case.correct, case.shapes, timeout=0.01)
    assert r.verdict == Verdict.UNPROVEN and r.timed_out


@pytest.mark.parametrize("code, name", [
    (lambda x: np.argmax(x, axis=1), "argmax"),
    (lambda x: x.argmax(), "argmax"),
    (lambda x: np.sort(x), "sort"),
    (lambda x: np.sin(x), "np.sin"),
    (lambda x: x if x[0, 0] > 0 else -x, "bool()"),
    (lambda x: np.linalg.norm(x), "norm"),
])
def test_what_cannot_be_represented_is_refused_by_name(code, name):
    with symbolic_numpy(), pytest.raises(NotRepresentable, match=re.escape(name)):
        code(symbols_array("x", (2, 2)))


def _ops(x):
    """Many NumPy operations at once; the symbolic run must equal the float one."""
    out = []
    out.append(np.mean(x, axis=0, keepdims=True) + x.var(axis=1, keepdims=True) * x.std(axis=0))
    out.append(np.max(x, axis=1, keepdims=True) - x.min(axis=0) + np.sum(x))
    p = np.pad(x, ((1, 0), (0, 1)), "constant")
    out.append(p.reshape(-1)[np.arange(6)].reshape(2, 3).T @ x[:2, :])
    out.append(np.where(x > 0.25, x, 0.5 * x) + np.clip(x, -0.5, 0.5) + np.abs(x) + np.maximum(x, x.T))
    y = np.zeros((3, 3))
    np.add.at(y, (np.array([0, 0, 2]), np.array([1, 1, 0])), x[0])
    y[np.array([True, False, True])] += 1.5
    out.append(y + np.einsum("ij,kj->ik", x, x) + np.tensordot(x, x, axes=([1], [1])))
    out.append(np.concatenate([x, np.exp(x) * np.tanh(x), np.log(x * x + 1) + np.sqrt(x * x + 1)], axis=0).sum(0))
    return [np.asarray(o) for o in out]


def test_numpy_operations_match_float64():
    values = np.array([[0.5, -1.25, 0.75], [1.5, -0.25, 1.0], [-0.75, 0.125, 2.0]])
    with symbolic_numpy():
        sym = _ops(symbols_array("x", (3, 3)))
    env = {sympy.Symbol(f"x[{i},{j}]", real=True): sympy.Rational(values[i, j]) for i in range(3) for j in range(3)}
    from derive.prove.numeric import Evaluator, IntervalContext

    ctx = IntervalContext(100)
    ev = Evaluator(ctx, {s: ctx.number(v) for s, v in env.items()})
    for s, f in zip(sym, _ops(values), strict=True):
        assert isinstance(s, SymArray) and s.shape == f.shape
        got = np.array([ctx.mid(ev(e)) for e in s.view(np.ndarray).reshape(-1)]).reshape(f.shape)
        np.testing.assert_allclose(got, f, rtol=1e-12, atol=1e-12)


def svm_loss(x, y):
    N = x.shape[0]
    correct_class_scores = x[np.arange(N), y]
    margins = np.maximum(0, x - correct_class_scores[:, np.newaxis] + 1.0)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    num_pos = np.sum(margins > 0, axis=1)
    dx = np.zeros_like(x)
    dx[margins > 0] = 1
    dx[np.arange(N), y] -= num_pos
    dx /= N
    return loss, dx


def test_svm_loss_with_masks_assigned_through():
    # dx[margins > 0] = 1 with margins = relu(u): relu′(relu(u)) is relu′(u), proven by cases
    r = gradcheck(lambda x: svm_loss(x, ex.LABELS), shapes={"x": (2, 3)})
    assert r.verdict == Verdict.PROVEN, r.report()


def test_iteration_keeps_entries_symbolic():
    def fwd(x):
        total = 0
        for row in x:
            for v in row:
                total = total + 0.5 * v * v
        return total

    r = gradcheck(fwd, lambda d, x: (d * x,), {"x": (2, 2)})
    assert r.verdict == Verdict.PROVEN, r.report()


def test_proofs_by_cases_hold_at_the_kinks_too():
    r = gradcheck(lambda x: np.clip(x, -1, 1), lambda d, x: d * ((x > -1) & (x < 1)), {"x": (3,)})
    assert r.verdict == Verdict.PROVEN and not r.gradients["x"].almost_everywhere, r.report()
    r = gradcheck(lambda x: np.maximum(x, 0.01 * x), lambda d, x: d * ((x > 0) + 0.01 * (x <= 0)), {"x": (2, 2)})
    assert r.verdict == Verdict.PROVEN and not r.gradients["x"].almost_everywhere, r.report()


def test_gradients_in_the_wrong_order():
    r = gradcheck(lambda x, w: x.dot(w), lambda d, x, w: (x.T.dot(d), d.dot(w.T)), {"x": (2, 2), "w": (2, 2)})
    assert "gradient of w" in r.gradients["x"].diagnosis and "gradient of x" in r.gradients["w"].diagnosis


def test_code_that_updates_its_inputs_in_place():
    def fwd(x):
        x -= x.mean(axis=0)  # in place, as some course code does
        return x * x

    def bwd(dout, x):
        xc = x - x.mean(axis=0)
        g = 2 * xc * dout
        return g - g.mean(axis=0)

    assert gradcheck(fwd, bwd, {"x": (3, 2)}).verdict == Verdict.PROVEN


def test_backward_code_that_writes_into_dout():
    def bwd(dout, x):
        dx = dout  # no copy: the upstream array is changed in place
        dx[x <= 0] = 0
        return dx

    assert gradcheck(lambda x: np.maximum(0, x), bwd, {"x": (2, 2)}).verdict == Verdict.PROVEN


def test_the_stable_sigmoid_that_indexes_by_masks():
    # z[pos] = np.exp(-x[pos]): a selection by a symbolic mask, used elementwise and assigned back;
    # proven by cases on the sign of each entry (an LSTM step with it: about 17 s, so not here)
    s = ex.stable_sigmoid
    r = gradcheck(lambda x: s(x), lambda d, x: d * s(x) * (1 - s(x)), {"x": (2, 2)})
    assert r.verdict == Verdict.PROVEN, r.report()
    r = gradcheck(lambda x: s(x), lambda d, x: d * s(x) * (1 - s(x)) ** 2, {"x": (2, 2)})
    assert r.verdict == Verdict.REFUTED


@pytest.mark.parametrize("code", [
    lambda x: np.sum(x[x > 0]),
    lambda x: x[x > 0].reshape(-1),
    lambda x: x[x > 0] + x,
])
def test_a_selection_by_a_symbolic_mask_is_elementwise_only(code):
    with symbolic_numpy(), pytest.raises(NotRepresentable, match=r"x\[mask\]"):
        code(symbols_array("x", (2, 2)))


def test_inputs_that_must_be_positive():
    # np.log(p) is undefined at half the random points; every other point has positive inputs
    r = gradcheck(lambda p: np.log(p) * p, lambda d, p: d * (np.log(p) + 2), {"p": (2, 2)})
    assert r.verdict == Verdict.REFUTED, r.report()
    c = r.counterexample
    assert c is not None and c.arrays["p"][c.index] > 0
    assert gradcheck(lambda p: np.log(p) * p, lambda d, p: d * (np.log(p) + 1), {"p": (2, 2)}).ok


def test_large_shapes_are_refused_up_front():
    from derive.code import BackwardError

    with pytest.raises(BackwardError, match="smallest shapes"):
        gradcheck(lambda x: x, lambda d, x: d, {"x": (64, 100)})


# ---------------------------------------------------------------- data captured as float arrays
def _svm_loss_naive(W, X, y, reg, forget_correct_class=False):  # type: ignore[no-untyped-def]
    """CS231n's svm_loss_naive, as the assignment writes it (X a float data array)."""
    dW = np.zeros(W.shape)
    num_classes, num_train = W.shape[1], X.shape[0]
    loss = 0.0
    for i in range(num_train):
        scores = X[i].dot(W)  # a float array's own .dot method: NumPy's code, not derive's
        correct_class_score = scores[y[i]]
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - correct_class_score + 1
            loss = loss + np.maximum(0, margin)
            dW[:, j] += X[i] * (margin > 0)
            if not forget_correct_class:
                dW[:, y[i]] -= X[i] * (margin > 0)
    loss /= num_train
    dW /= num_train
    return loss + reg * np.sum(W * W), dW + 2 * reg * W


def _softmax_loss_vectorized(W, X, y, reg, half_reg=False):  # type: ignore[no-untyped-def]
    num_train = X.shape[0]
    scores = X.dot(W)
    scores -= np.max(scores, axis=1, keepdims=True)
    probs = np.exp(scores) / np.sum(np.exp(scores), axis=1, keepdims=True)
    loss = -np.sum(np.log(probs[np.arange(num_train), y])) / num_train + reg * np.sum(W * W)
    dscores = probs.copy()
    dscores[np.arange(num_train), y] -= 1
    dscores /= num_train
    return loss, X.T.dot(dscores) + (reg if half_reg else 2 * reg) * W


@pytest.mark.parametrize("loss", [_svm_loss_naive, _softmax_loss_vectorized])
def test_float_data_captured_by_the_code_is_exact(loss) -> None:  # type: ignore[no-untyped-def]
    """X is a float array the code captures; ``X[i].dot(W)`` is NumPy's own method, so its
    products reach the expressions as floats (0.5/3 is not 1/6): made exact as literal
    floats are. The assignment's code is proven; its classic slips are refuted (they were
    unproven: no identity in floats is exact, and no kink could be told from 0)."""
    X = np.array([[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]])
    y = np.array([0, 2, 1])
    right = gradcheck(lambda W: loss(W, X, y, 0.1), shapes={"W": (2, 3)})
    assert right.verdict == "proven", right.report()
    wrong = gradcheck(lambda W: loss(W, X, y, 0.1, True), shapes={"W": (2, 3)})
    assert wrong.verdict == "refuted", wrong.report()
    ce = wrong.gradients["W"].counterexample
    assert ce is not None and ce.claimed != ce.true
    W = ce.arrays["W"]  # the point, checked in plain float NumPy: the true entry by central differences
    i, j = ce.index
    h = 1e-6
    up, down = W.copy(), W.copy()
    up[i, j] += h
    down[i, j] -= h
    numeric = (loss(up, X, y, 0.1)[0] - loss(down, X, y, 0.1)[0]) / (2 * h)
    true = float(ce.true.mid) if hasattr(ce.true, "mid") else float(ce.true)  # (an interval, or exact)
    assert abs(numeric - true) < 1e-6
    assert abs(loss(W, X, y, 0.1, True)[1][i, j] - numeric) > 1e-3
