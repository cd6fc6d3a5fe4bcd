"""Multi-head attention at a size where the proofs must go through the chain rule (issue
15): a 2-head causal attention stack whose every rule derive proves, its rules' values
compared with central differences of the independent oracle (tests/tensor_oracle.py,
plain NumPy), and the classic mistakes — dK with Q and K swapped, the softmax Jacobian
without its row-sum term, dQ without 1/√d — refuted, each one also shown wrong by the
oracle on its own.  Then the joint chain step (dX from dQ, dK and dV at once) proves the
right dX and never a wrong one, and the graph walks of :mod:`derive.prove.graph` answer
correctly on an expression whose tree is astronomically larger than its graph."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy
import tensor_oracle as O
import yaml
from conftest import mutate_layer_rule

import derive
from derive.code import backward as B
from derive.code import paths
from derive.code.blocks import _Run
from derive.lang import program as P
from derive.prove import core, graph
from derive.records import DiagnosisCode, Method, Verdict

ROOT = Path(__file__).resolve().parent.parent

STACK = """\
name: two-head attention stack
network:
  inputs: [{T}, {D}]
  layers:
    - {{type: attention, heads: 2, causal: true}}
    - {{type: flatten}}
    - {{type: dense, units: 1}}
  loss: mse
  batch: 1
"""

#: the stack's rule lines for dQ, dK and the softmax's dS, and each mistake as a rewrite of them
MISTAKES = {
    "swap": ("gs1.T.dot(Q1[", "gs1.T.dot(K1["),  # dK with Q and K swapped
    "no rowsum": ("gs1 = Pa1[n, j] * (gp1 - np.sum(gp1 * Pa1[n, j], axis=1, keepdims=True))", "gs1 = Pa1[n, j] * gp1"),
    "no scale": ("dQ1[n, :, j*2:(j+1)*2] = gs1.dot(K1[n, :, j*2:(j+1)*2]) / np.sqrt(2)",
                 "dQ1[n, :, j*2:(j+1)*2] = gs1.dot(K1[n, :, j*2:(j+1)*2])"),
}
#: the parameter gradients each mistake makes wrong (through dQ1 or dK1)
WRONG = {"swap": {"Wk1"}, "no rowsum": {"Wq1", "Wk1"}, "no scale": {"Wq1"}}
#: the same for the oracle's attention layer alone (X feeds Q and K: dX is wrong too)
ORACLE_WRONG = {"": set(), "swap": {"Wk", "X"}, "no rowsum": {"Wq", "Wk", "X"}, "no scale": {"Wq", "X"}}


def _stack(tmp_path: Path, t: int, d: int) -> tuple[Any, dict[str, Any]]:
    path = tmp_path / f"attention_{t}x{d}.yaml"
    text = STACK.format(T=t, D=d)
    path.write_text(text)
    return derive.load(path), yaml.safe_load(text)["network"]


def _point(spec: Any, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape) for name, shape in spec.shapes.items()}


def _subs(run: _Run, env: dict[str, np.ndarray]) -> dict[Any, float]:
    subs: dict[Any, float] = {}
    for name, value in run.leaves.items():
        plain = value.view(np.ndarray)
        for idx in np.ndindex(*plain.shape):
            subs[plain[idx]] = float(env[name][idx])
    return subs


def _float(e: Any, values: dict[Any, float], memo: dict[int, float]) -> float:
    """A SymPy expression of derive's in plain floats, each shared node once (the entries
    of an attention gradient share most of their nodes: as trees they are slow to walk)."""
    stack = [e]
    while stack:
        n = stack[-1]
        if id(n) in memo:
            stack.pop()
            continue
        if n.is_Symbol:
            memo[id(n)] = values[n]
        elif n.is_Number:
            memo[id(n)] = float(n)
        else:
            todo = [a for a in n.args if id(a) not in memo]
            if todo:
                stack.extend(todo)
                continue
            args = [memo[id(a)] for a in n.args]
            if n.is_Add:
                memo[id(n)] = math.fsum(args)
            elif n.is_Mul:
                memo[id(n)] = math.prod(args)
            elif n.is_Pow:
                memo[id(n)] = args[0] ** args[1]
            elif isinstance(n, sympy.exp):
                memo[id(n)] = math.exp(args[0])
            else:
                raise TypeError(f"cannot evaluate {type(n).__name__}")
        stack.pop()
    return memo[id(e)]


def _numeric(value: Any, values: dict[Any, float]) -> np.ndarray:
    plain = np.asarray(value, dtype=object)
    memo: dict[int, float] = {}
    out = np.zeros(plain.shape)
    for idx in np.ndindex(*plain.shape):
        out[idx] = _float(sympy.sympify(plain[idx]), values, memo)
    return out


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))


def _mutated(monkeypatch: pytest.MonkeyPatch, mistake: str) -> None:
    """The attention layer's registered rules with one line rewritten (derive proves the
    rules it registers rather than trusting them).  The searches for a named diagnosis get
    a second each: the verdicts are what is tested here."""
    from derive.code import blocks

    monkeypatch.setattr(blocks, "REPAIR_SECONDS", 1.0)
    monkeypatch.setattr(blocks, "PATH_SECONDS", 1.0)
    monkeypatch.setattr(blocks, "CONVENTION_SECONDS", 1.0)

    mutate_layer_rule(monkeypatch, "attention", *MISTAKES[mistake])


def _oracle_layer(t: int, d: int) -> O.Layer:
    """The attention layer alone (X → Y Wo), for the oracle's hand-written formulas."""
    return O.Layer("", {"X": (t, d), **{w: (d, d) for w in ("Wq", "Wk", "Wv", "Wo")}, "dout": (t, d)},
                   O.multihead_forward, "dout", O.multihead_backward, {})


# ------------------------------------------------------------------ the oracle on its own
@pytest.mark.parametrize("mistake", ["", *MISTAKES])
def test_oracle_attention_formulas_against_finite_differences(mistake: str) -> None:
    layer = _oracle_layer(3, 4)  # head width 2: the 1/√2 is a real factor
    env = O.point(layer, 5)
    got = O.multihead_backward(env, mistake=mistake)
    for leaf in ("X", "Wq", "Wk", "Wv", "Wo"):
        agrees = _close(got[leaf], O.numeric_gradient(layer, env, leaf))
        assert agrees == (leaf not in ORACLE_WRONG[mistake]), (mistake, leaf)


# ------------------------------------------------------------------ derive: every rule proven
@pytest.mark.parametrize(("t", "d"), [(3, 2), (2, 4)])
def test_every_rule_of_the_two_head_stack_is_proven(tmp_path: Path, t: int, d: int) -> None:
    spec, net = _stack(tmp_path, t, d)
    report = spec.report()
    assert report.claims and all(c.verdict == Verdict.PROVEN for c in report.claims), \
        [(c.target, c.verdict, c.detail) for c in report.claims if c.verdict != Verdict.PROVEN]
    assert {"dQ1", "dK1", "dV1", "dWq1", "dWk1", "dWv1", "dWo1"} <= {c.target for c in report.claims}


@pytest.mark.parametrize(("t", "d"), [(3, 2), (2, 4)])
def test_the_stack_rules_and_truth_match_central_differences(tmp_path: Path, t: int, d: int) -> None:
    spec, net = _stack(tmp_path, t, d)
    run = _Run(spec.program)
    run.forward_and_backward()
    env = _point(spec.spec, 7)
    subs = _subs(run, env)
    assert abs(_float(run.loss, subs, {}) - O.stack_loss(net, env)) < 1e-9  # the same network
    for p in spec.spec.parameters:
        numeric = O.stack_gradient(net, env, p)
        assert _close(_numeric(run.backward_env[f"d{p}"], subs), numeric), p
        assert _close(_numeric(run.truth(p), subs), numeric), p


# ------------------------------------------------------------------ derive: the mistakes refuted
@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mutated_attention_rule_is_refuted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            mistake: str) -> None:
    _mutated(monkeypatch, mistake)
    spec, net = _stack(tmp_path, 2, 4)  # head width 2: the 1/√2 matters
    report = spec.report(timeout=600)  # (≈ 50 s of CPU each: the 120 s default is wall time, short under load)
    verdicts = {c.target: c for c in report.claims}
    for p in WRONG[mistake]:
        c = verdicts[f"d{p}"]
        assert c.verdict == Verdict.REFUTED and c.counterexample is not None, (mistake, p, c.verdict, c.detail)
    for p in ("Wv1", "Wo1", "W3", "b3"):  # the rules the mistake does not touch stay proven
        assert verdicts[f"d{p}"].verdict == Verdict.PROVEN, (mistake, p)
    # derive's mutated rule is the oracle's mutated formula, and both differ from the truth
    run = _Run(spec.program)
    run.forward_and_backward()
    env = _point(spec.spec, 9)
    subs = _subs(run, env)
    x = env["X"][0]
    upstream = O.stack_gradient(net, env, "A1")[0]  # ∂L/∂A1 by central differences
    oracle = O.multihead_backward({"X": x, **{w: env[f"{w}1"] for w in ("Wq", "Wk", "Wv", "Wo")},
                                   "dout": upstream}, mistake=mistake)
    for p in WRONG[mistake]:
        rule = _numeric(run.backward_env[f"d{p}"], subs)
        assert np.allclose(rule, oracle[p[:-1]], rtol=1e-4, atol=1e-5), (mistake, p)
        assert not _close(rule, O.stack_gradient(net, env, p)), (mistake, p)


def test_dropping_the_scale_at_head_width_one_is_no_mistake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At head width 1, √d = 1: the "forgotten" 1/√d changes nothing, and it stays proven."""
    from derive.spec import stack

    keys, has_activation, build = stack.STACK_LAYERS["attention"]

    def without(*args: Any, **kw: Any) -> Any:
        layer = build(*args, **kw)
        lines = [line.replace(" / np.sqrt(1)", "") for line in layer.backward]
        assert lines != layer.backward
        layer.backward = lines
        return layer

    monkeypatch.setitem(stack.STACK_LAYERS, "attention", stack.StackLayer(keys, has_activation, without))
    spec, _ = _stack(tmp_path, 3, 2)
    report = spec.report()
    assert all(c.verdict == Verdict.PROVEN for c in report.claims)


# ------------------------------------------------------------------ the joint chain step
HEADS = ROOT / "derivations" / "attention_heads.yaml"


def _heads(tmp_path: Path, dx: str | None = None, shapes: str | None = None) -> Any:
    text = HEADS.read_text()
    if dx is not None:
        lines = [f"  dX = {dx}" if line.startswith("  dX = ") else line for line in text.splitlines()]
        text = "\n".join(lines) + "\n"
    if shapes is not None:
        text = "\n".join(f"  shapes: {shapes}" if line.startswith("  shapes:") else line
                         for line in text.splitlines()) + "\n"
    path = tmp_path / "heads.yaml"
    path.write_text(text)
    return derive.load(path)


def _dx(report: Any) -> Any:
    return next(c for c in report.claims if c.target == "dX" and c.formula.startswith("dQ.dot(Wq.T) +"))


def test_dx_is_proven_from_dq_dk_and_dv_at_once(tmp_path: Path) -> None:
    spec = _heads(tmp_path, shapes="{X: [3, 4], Wq: [4, 4], Wk: [4, 4], Wv: [4, 4], Wo: [4, 4]}")
    run = _Run(spec.program)
    run.forward_and_backward()
    for name in ("dWo", "dY", "dQ", "dK", "dV"):
        assert run.judge(name, 0, 4).verdict == Verdict.PROVEN, name
    check = B.GradientCheck(name="X", verdict=Verdict.UNPROVEN)
    assert paths.joint_chain(run, "X", "dX", check)
    assert check.verdict == Verdict.PROVEN and "from dQ, dK and dV" in check.why


@pytest.mark.parametrize("dx", [
    "dQ.dot(Wq.T) + dK.dot(Wk.T)",  # the path through V forgotten
    "dQ.dot(Wq.T) + dK.dot(Wk.T) + dV.dot(Wk.T)",  # a wrong weight on one path
    "dQ.dot(Wq.T) + dK.dot(Wk.T) + dV.dot(Wv)",  # a transpose forgotten
])
def test_a_wrong_dx_is_never_proven_by_the_joint_step(tmp_path: Path, dx: str) -> None:
    spec = _heads(tmp_path, dx=dx)
    run = _Run(spec.program)
    run.forward_and_backward()
    for name in ("dWo", "dY", "dQ", "dK", "dV"):
        run.judge(name, 0, 4)
    check = B.GradientCheck(name="X", verdict=Verdict.UNPROVEN)
    assert not paths.joint_chain(run, "X", "dX", check)
    assert check.verdict == Verdict.UNPROVEN
    report = spec.report()
    found = [c for c in report.claims if c.target == "dX" and c.formula.startswith("dQ.dot(Wq.T) + dK")]
    assert found and found[0].verdict == Verdict.REFUTED, [(c.target, c.verdict) for c in found]


def test_the_joint_step_needs_every_path_cut() -> None:
    """Cutting Q and K leaves X's path through V to the loss: no joint pullback from them."""
    spec = derive.load(HEADS)
    run = _Run(spec.program)
    run.forward_and_backward()
    gs = {dv: np.empty(run.truth(dv[1:]).shape, dtype=object) for dv in ("dQ", "dK")}
    for dv, g in gs.items():
        for idx in np.ndindex(*g.shape):
            g[idx] = sympy.Symbol(f"g_{dv}_{idx}")
    assert paths.pullback(run, "X", {"dQ": "Q", "dK": "K"}, gs) is None
    gs["dV"] = np.empty(run.truth("V").shape, dtype=object)
    for idx in np.ndindex(*gs["dV"].shape):
        gs["dV"][idx] = sympy.Symbol(f"g_dV_{idx}")
    assert paths.pullback(run, "X", {"dQ": "Q", "dK": "K", "dV": "V"}, gs) is not None
    # Y reads Q: Q and Y together are not independent (Y's value holds Q's cut symbols)
    gs_y = {"dQ": gs["dQ"], "dY": np.empty(run.truth("Y").shape, dtype=object)}
    for idx in np.ndindex(*gs_y["dY"].shape):
        gs_y["dY"][idx] = sympy.Symbol(f"g_dY_{idx}")
    assert paths.pullback(run, "X", {"dQ": "Q", "dY": "Y"}, gs_y) is None


# ------------------------------------------------------------------ missing paths, named in the joint cut
SEQ4 = "{X: [4, 4], Wq: [4, 4], Wk: [4, 4], Wv: [4, 4], Wo: [4, 4]}"
PATHS = {DiagnosisCode.MISSING_PATH, DiagnosisCode.EXTRA_PATH, DiagnosisCode.PATH_SIGN}
#: claims on dX at seq 4, d 4 (dQ, dK and dV in a claim are the true gradients), each with
#: the diagnosis it must get (None: no path named) and the words of it
SEQ4_CLAIMS = [
    ("dQ.dot(Wq.T)", DiagnosisCode.MISSING_PATH,
     ("missing 2 of the 3 paths", "K = X.dot(Wk)", "V = X.dot(Wv)", "It has only the path through Q")),
    ("dQ.dot(Wq.T) + dK.dot(Wk.T)", DiagnosisCode.MISSING_PATH, ("missing one of the paths", "V = X.dot(Wv)")),
    ("dQ.dot(Wq.T) + dK.dot(Wk.T) - dV.dot(Wv.T)", DiagnosisCode.PATH_SIGN, ("wrong sign", "V = X.dot(Wv)")),
    ("dQ.dot(Wq.T) + dK.dot(Wk.T) + dV.dot(Wv)", None, ()),  # a transposed weight: not a path
    ("dQ.dot(Wq.T) + dK.dot(Wq.T) + dV.dot(Wv.T)", None, ()),  # a wrong weight on one path
]


def _claims(tmp_path: Path, formulas: list[str], shapes: str = SEQ4) -> Any:
    """The two-head network with a one-line backward block and claims on dX."""
    text = HEADS.read_text().split("backward: |")[0]
    text = "\n".join(f"  shapes: {shapes}" if line.startswith("  shapes:") else line for line in text.splitlines())
    text += "\nbackward: |\n  dWo = Y.T.dot(dout)\nclaims:\n"
    text += "".join(f"  - target: dX\n    formula: {f}\n" for f in formulas)
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    return derive.load(path)


def _no_expansion(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every start of the path search through the expanded truth (each edge cut and
    the loss differentiated again: at seq 4 it spent its whole budget)."""
    entered: list[str] = []
    original = paths._Finder.paths

    def recorded(self: Any, base: str, *args: Any) -> Any:
        entered.append(base)
        return original(self, base, *args)

    monkeypatch.setattr(paths._Finder, "paths", recorded)
    return entered


def test_seq4_missing_paths_are_named_in_the_joint_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped mistake at the issue's size (seq 4, d 4): X read by Q, K and V, the claim
    keeps Q's path only.  Named from dQ, dK and dV as free symbols, without the expansion;
    a claim wrong another way gets no path named; each stays refuted with its counterexample."""
    entered = _no_expansion(monkeypatch)
    report = _claims(tmp_path, [f for f, _, _ in SEQ4_CLAIMS]).report()
    checks = [c for c in report.claims if c.target == "dX"]
    assert [c.formula for c in checks] == [f for f, _, _ in SEQ4_CLAIMS]
    for c, (formula, code, words) in zip(checks, SEQ4_CLAIMS, strict=True):
        assert c.verdict == Verdict.REFUTED and c.counterexample is not None, (formula, c.verdict, c.detail)
        if code is None:
            assert c.finding is None or c.finding.code not in PATHS, (formula, c.diagnosis)
            continue
        assert c.finding is not None and c.finding.code == code, (formula, c.diagnosis)
        for w in words:
            assert w in c.finding.message, (formula, w, c.finding.message)
    assert "K = X.dot(Wk)" not in checks[1].finding.message  # only the path left out is named
    assert entered == [], "the search in the joint cut is complete for lines in dQ, dK and dV"


def test_seq4_right_claim_has_no_missing_path(tmp_path: Path) -> None:
    """The search in the joint cut, called on the right dX at seq 4 and on claims that are
    not sums of whole paths: decided (no expansion needed), nothing named."""
    spec = _claims(tmp_path, ["dQ.dot(Wq.T)"])
    run = _Run(spec.program)
    run.forward_and_backward()
    finder = paths._finder(run)
    adjoints = {"dQ": "Q", "dK": "K", "dV": "V"}
    shape = run.forward_env["Q"].shape
    claimed = np.zeros(shape, dtype=object)
    for formula, decided in [("dQ.dot(Wq.T) + dK.dot(Wk.T) + dV.dot(Wv.T)", True),
                             ("dQ.dot(Wq.T) + dK.dot(Wk.T) + dV.dot(Wv)", True),
                             ("dQ.dot(Wq.T) + 0.5 * dK.dot(Wk.T) + dV.dot(Wv.T)", True),
                             ("dQ.dot(Wq.T) + dY[:, :4]", False)]:  # dY: a value the cut does not know
        line = ("dX", P.parse_block(f"dX = {formula}\n")[0], {**run.forward_env, **run.ups})
        assert finder.joint("X", claimed, line, adjoints) == (decided, None), formula
    # a gradient name whose value is not the truth there is never replaced by free symbols
    line = ("dX", P.parse_block("dX = dQ.dot(Wq.T)\n")[0], {**run.forward_env, **run.ups})
    assert finder.joint("X", claimed, line, {"dK": "K"}) == (False, None)


def test_the_right_claim_is_proven_without_a_diagnosis(tmp_path: Path) -> None:
    report = _claims(tmp_path, ["dQ.dot(Wq.T) + dK.dot(Wk.T) + dV.dot(Wv.T)", "dQ.dot(Wq.T) + dK.dot(Wk.T)"],
                     shapes="{X: [2, 2], Wq: [2, 2], Wk: [2, 2], Wv: [2, 2], Wo: [2, 2]}").report()
    right, wrong = [c for c in report.claims if c.target == "dX"]
    assert right.verdict == Verdict.PROVEN and right.finding is None and not right.diagnosis
    assert wrong.verdict == Verdict.REFUTED and wrong.finding is not None
    assert wrong.finding.code == DiagnosisCode.MISSING_PATH and "V = X.dot(Wv)" in wrong.finding.message


def test_a_block_line_missing_the_v_path_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same search for the block's own dX line: dQ and dK there are the block's proven values."""
    entered = _no_expansion(monkeypatch)
    report = _heads(tmp_path, dx="dQ.dot(Wq.T) + dK.dot(Wk.T)").report()
    c = next(c for c in report.claims if c.target == "dX" and c.formula.startswith("dQ.dot(Wq.T) + dK"))
    assert c.verdict == Verdict.REFUTED and c.counterexample is not None
    assert c.finding is not None and c.finding.code == DiagnosisCode.MISSING_PATH, c.diagnosis
    assert "V = X.dot(Wv)" in c.finding.message and "K = X.dot(Wk)" not in c.finding.message
    assert "X" not in entered


def _split_loss(env: dict[str, np.ndarray], xq: np.ndarray, xk: np.ndarray, xv: np.ndarray) -> float:
    """Σ out ⊙ dout with X read separately by each projection (plain NumPy, 2 causal heads)."""
    q, k, v = xq @ env["Wq"], xk @ env["Wk"], xv @ env["Wv"]
    d = q.shape[1] // 2
    heads = [O.attention_probs(q[:, j * d:(j + 1) * d], k[:, j * d:(j + 1) * d]) @ v[:, j * d:(j + 1) * d]
             for j in range(2)]
    return float(np.sum(np.concatenate(heads, axis=1) @ env["Wo"] * env["dout"]))


def test_the_named_paths_match_finite_differences(tmp_path: Path) -> None:
    """The oracle's side of the diagnosis, at seq 4: the claim dQ Wqᵀ (dQ derive's truth, at a
    point) is the central-difference gradient through Q's reading alone, and adding the
    gradients through K's and V's readings gives the whole gradient, which the claim is not."""
    spec = _claims(tmp_path, ["dQ.dot(Wq.T)"])
    run = _Run(spec.program)
    run.forward_and_backward()
    rng = np.random.default_rng(11)
    env = {n: rng.normal(size=s) for n, s in {**spec.spec.shapes, "dout": (4, 4)}.items()}
    subs = _subs(run, env)
    for idx in np.ndindex(4, 4):
        subs[run.ups["dout"].view(np.ndarray)[idx]] = float(env["dout"][idx])
    claim = _numeric(run.truth("Q"), subs) @ env["Wq"].T
    x, h = env["X"], 1e-6
    parts = []
    for which in range(3):
        g = np.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            xs = [[x, x, x], [x, x, x]]
            for sign, row in zip((1, -1), xs, strict=True):
                moved = x.copy()
                moved[idx] += sign * h
                row[which] = moved
            g[idx] = (_split_loss(env, *xs[0]) - _split_loss(env, *xs[1])) / (2 * h)
        parts.append(g)
    whole = O.numeric_gradient(_oracle_layer(4, 4), {**env}, "X")
    assert _close(claim, parts[0])  # the claim is the path through Q alone
    assert _close(parts[0] + parts[1] + parts[2], whole)  # with K's and V's paths: the truth
    assert not _close(claim, whole) and not _close(parts[1] + parts[2], 0 * whole)


def test_depends_on_follows_the_forward_block() -> None:
    forward = P.parse_block("Q = X.dot(Wq)\nK = X.dot(Wk)\nfor j in range(2):\n    E = Q * K\n    Y = E + V\n"
                            "out = Y.dot(Wo)\n")
    assert paths.depends_on(forward, "Y", "X") and paths.depends_on(forward, "Y", "Q")
    assert paths.depends_on(forward, "out", "Wq")
    assert not paths.depends_on(forward, "Q", "Wk") and not paths.depends_on(forward, "K", "Q")
    assert not paths.depends_on(forward, "Q", "Y")


# ------------------------------------------------------------------ graph walks
def _shared(depth: int) -> tuple[Any, Any, list[Any]]:
    """e_{k+1} = sin(e_k)·y_k + cos(e_k), e_0 = exp(x): each e_k read twice by e_{k+1}, so
    the tree of e_depth has about 2^depth leaves while the graph has 5·depth nodes."""
    x = sympy.Symbol("x")
    ys = [sympy.Symbol(f"y{k}") for k in range(depth)]
    e: Any = sympy.exp(x)
    for y in ys:
        e = sympy.sin(e) * y + sympy.cos(e)
    return e, x, ys


def _value(e: Any, values: dict[Any, float]) -> float:
    """e at the values, each shared node evaluated once (a test-side graph evaluation)."""
    memo: dict[int, float] = {}
    functions = {sympy.sin: math.sin, sympy.cos: math.cos, sympy.exp: math.exp}

    def go(n: Any) -> float:
        if id(n) in memo:
            return memo[id(n)]
        if n.is_Symbol:
            v = values[n]
        elif n.is_Number:
            v = float(n)
        elif n.is_Add:
            v = sum(go(a) for a in n.args)
        elif n.is_Mul:
            v = math.prod(go(a) for a in n.args)
        else:
            v = functions[n.func](go(n.args[0]))
        memo[id(n)] = v
        return v

    return go(e)


def test_graph_walks_on_a_deeply_shared_expression() -> None:
    e, x, ys = _shared(80)  # a tree walk would visit about 2^80 nodes: these finish only as graph walks
    assert graph.free_symbols(e) == {x, *ys}
    assert graph.atoms(e, (sympy.exp,)) == {sympy.exp(x)}
    assert len(graph.atoms(e, (sympy.sin,))) == 80
    assert graph.has(e, (sympy.exp,)) and not graph.has(e, (sympy.tan,))
    assert B.has(e, (sympy.cos,)) and B.free_symbols(e) == {x, *ys}
    z = sympy.Symbol("z")
    replaced = graph.xreplace(e, {sympy.exp(x): z})
    assert graph.free_symbols(replaced) == {z, *ys} and not graph.has(replaced, (sympy.exp,))
    point = {z: 0.3, x: math.log(0.3), **{y: 0.1 * (k % 7) - 0.2 for k, y in enumerate(ys)}}
    assert math.isclose(_value(replaced, point), _value(e, point), rel_tol=1e-12)
    assert graph.xreplace(e, {}) is e and graph.xreplace(e, {sympy.Symbol("w"): z}) is e


def test_graph_walks_agree_with_sympy_on_small_expressions() -> None:
    a, b, c = sympy.symbols("a b c")
    e = sympy.exp(a * b) / (1 + sympy.exp(a * b)) + sympy.sin(c) ** 2 + sympy.Integral(a * c, (c, 0, 1))
    assert graph.free_symbols(e) == e.free_symbols  # c is bound in the integral, free in sin(c)
    assert graph.atoms(e, (sympy.exp, sympy.sin)) == e.atoms(sympy.exp, sympy.sin)
    rule = {sympy.exp(a * b): sympy.Symbol("t"), c: a}
    assert graph.xreplace(e, rule) == e.xreplace(rule)


# ------------------------------------------------------------------ the memory limit
def test_the_memory_guard_stops_an_expansion_near_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "_address_limit", lambda: 1000 * 2**20)
    monkeypatch.setattr(core, "_address_space", lambda: 900 * 2**20)
    with pytest.raises(MemoryError):
        core.memory_guard(10**5)
    monkeypatch.setattr(core, "_address_space", lambda: 100 * 2**20)
    core.memory_guard(10**5)  # far from the limit: nothing


def test_a_check_out_of_memory_is_unproven_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gradient whose check runs out of memory is unproven (limit), its claims too; the
    others are still checked."""
    from derive.code import blocks

    spec = derive.load(ROOT / "derivations" / "attention.yaml")
    original = blocks._Run.chained_check

    def starved(self: Any, base: str, name: str, *args: Any, **kw: Any) -> Any:
        if name == "dK":
            raise MemoryError("address space near the limit")
        return original(self, base, name, *args, **kw)

    judge_values = blocks._Run._judge_values

    def starved_too(self: Any, base: str, *args: Any, **kw: Any) -> Any:  # the wrong claim skips the chain
        if base == "K":
            raise MemoryError("address space near the limit")
        return judge_values(self, base, *args, **kw)

    monkeypatch.setattr(blocks._Run, "chained_check", starved)
    monkeypatch.setattr(blocks._Run, "_judge_values", starved_too)
    report = spec.report()
    dk = [c for c in report.claims if c.target == "dK"]
    assert len(dk) == 2 and all(c.verdict == Verdict.UNPROVEN and c.method == Method.LIMIT for c in dk), \
        [(c.target, c.verdict, c.method, c.detail) for c in dk]
    assert all("(limit)" in (c.detail or "") for c in dk)
    assert [c.verdict for c in report.claims if c.target == "dV"] == [Verdict.PROVEN]


def test_judge_out_of_memory_is_unproven_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def starved(*args: Any, **kw: Any) -> Any:
        raise MemoryError("address space near the limit")

    monkeypatch.setattr(B, "_judge_entries", starved)
    x = sympy.Symbol("x")
    one = np.array([x], dtype=object)
    check = B._judge("x", one.view(B.SymArray), one, [], ["x"], [], [], "dout")
    assert check.verdict == Verdict.UNPROVEN and "(limit)" in check.why


# ------------------------------------------------------------------ time budgets
def test_a_timeout_raised_while_a_limit_is_left_still_forgets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The block's re-fired alarm can land in its limit's clean-up (a large proof takes a
    while to unwind): the limit must still be forgotten, else its spent deadline made every
    later diagnosis's own timeout look like the whole run's (the issue's refuted dX claim
    came out "unproven (timeout)" after 25 s of a 600 s budget)."""
    import signal

    from derive.util import budget

    real = signal.setitimer
    raised: list[bool] = []

    def setitimer(which: int, seconds: float, *rest: float) -> Any:
        out = real(which, seconds, *rest)
        if seconds == 0 and not raised:
            raised.append(True)
            raise budget.Timeout  # as the re-fired alarm does when it lands here
        return out

    monkeypatch.setattr(budget.signal, "setitimer", setitimer)
    with budget.limit(60):
        with pytest.raises(budget.Timeout), budget.limit(0.5):
            pass
        assert raised and len(budget._ends) == 1 and not budget.outer_expired()


def test_an_alarm_landing_in_a_limits_clean_up_is_deferred() -> None:
    """Raised inside contextlib's __exit__, the Timeout would skip the limit's clean-up: the
    handler defers it there (re-fired soon), and raises anywhere else."""
    import contextlib
    import signal
    import time
    import types

    from derive.util import budget

    def frame(file: str) -> Any:
        return types.SimpleNamespace(f_code=types.SimpleNamespace(co_filename=file))

    results: list[Any] = []
    with budget.limit(60):
        try:
            with budget.limit(0.01):
                signal.setitimer(signal.ITIMER_REAL, 0)  # this test calls the handler itself
                time.sleep(0.02)  # the limit's deadline has passed
                handler = signal.getsignal(signal.SIGALRM)
                assert callable(handler)
                for file in (contextlib.__file__, __file__):  # leaving the block; the work itself
                    try:
                        results.append(handler(signal.SIGALRM, frame(file)))
                    except budget.Timeout:
                        results.append("raised")
                signal.setitimer(signal.ITIMER_REAL, 0)
        except budget.Timeout:
            pass
        assert results == [None, "raised"]
        assert len(budget._ends) == 1 and not budget.outer_expired()


def test_seq4_right_claim_is_proven_by_the_joint_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim on dX that names dQ, dK and dV (true gradients by definition) is proven by
    the joint chain step, as the block's own line is: the claim evaluated with dQ, dK and dV
    free symbols equals the pullback through the three cut readings of X.  (At seq 4 it was
    unproven after about 95 s: claims had only the one-gradient chain step.)  The same sum
    with a path's sign flipped stays refuted."""
    proofs: list[bool] = []
    original = paths.joint_chain

    def recorded(*args: Any, **kwargs: Any) -> bool:
        proofs.append(original(*args, **kwargs))
        return proofs[-1]

    monkeypatch.setattr(paths, "joint_chain", recorded)
    right = "dQ.dot(Wq.T) + dK.dot(Wk.T) + dV.dot(Wv.T)"
    report = _claims(tmp_path, [right, "dQ.dot(Wq.T) + dK.dot(Wk.T) - dV.dot(Wv.T)"]).report(timeout=600)
    got = [c for c in report.claims if c.target == "dX"]
    assert got[0].verdict == Verdict.PROVEN, (got[0].verdict, got[0].detail)
    assert proofs.count(True) == 1, proofs  # the right claim, by the joint step (the wrong one is refuted first)
    assert got[1].verdict == Verdict.REFUTED and got[1].counterexample is not None
