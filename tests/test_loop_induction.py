"""Backpropagation through time proven by induction over the loop (derive.code.induction).

The recurrent stacks' rules (rnn, lstm, gru; output last or all; two recurrent layers) are
proven, by the induction, and their values at a random float point agree with the
independent oracle (tests/tensor_oracle.py: the stack in plain NumPy, gradients by central
differences).  The classic BPTT mistakes are never proven by the induction and are refuted
by derive; blocks that are not a forward loop and its reversed loop are left to the other
methods unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy
import tensor_oracle as O
import yaml
from conftest import load_text, mutate_layer_rule
from test_stack_types import _point, _subs
from test_tensor_layers import _FUNCTIONS

import derive
from derive.code import induction
from derive.code.blocks import _Run, check_program
from derive.records import Verdict

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"


def _stack_text(layers: list[str], inputs: str = "[3, 2]") -> str:
    body = "\n".join(f"    - {layer}" for layer in layers)
    return f"""name: loop induction
network:
  inputs: {inputs}
  layers:
{body}
    - {{type: dense, units: 1}}
  loss: mse
  batch: 1
"""




def _numeric(value: Any, subs: dict[Any, Any]) -> np.ndarray:
    """derive's entries in plain floats, each shared subexpression once (a recurrent
    network's entries share every earlier step: walked as a tree they are exponential)."""
    memo: dict[Any, float] = {}

    def f(e: Any) -> float:
        if e in memo:
            return memo[e]
        if e in subs:
            out = float(subs[e])
        elif e.is_Number:
            out = float(e)
        else:
            args = [f(a) for a in e.args]
            if isinstance(e, sympy.Add):
                out = float(sum(args))
            elif isinstance(e, sympy.Mul):
                out = float(np.prod(args))
            elif isinstance(e, sympy.Pow):
                out = float(args[0] ** args[1])
            else:
                out = float(_FUNCTIONS[type(e).__name__](*args))
        memo[e] = out
        return out

    plain = value.view(np.ndarray)
    out = np.zeros(plain.shape)
    for idx in np.ndindex(*plain.shape):
        out[idx] = f(sympy.sympify(plain[idx]))
    return out


def _run(d: Any) -> _Run:
    run = _Run(d.program)
    run.forward_and_backward()
    return run


STACKS = {
    "rnn": ["{type: rnn, hidden: 2}"],
    "rnn all": ["{type: rnn, hidden: 2, output: all}", "{type: flatten}"],
    "lstm": ["{type: lstm, hidden: 2}"],
    "lstm all": ["{type: lstm, hidden: 2, output: all}", "{type: flatten}"],
    "gru": ["{type: gru, hidden: 2}"],
    "rnn then lstm": ["{type: rnn, hidden: 2, output: all}", "{type: lstm, hidden: 2}"],
}


@pytest.mark.parametrize("name", sorted(STACKS))
def test_recurrent_rules_are_proven_by_induction_and_match_central_differences(tmp_path: Path, name: str) -> None:
    text = _stack_text(STACKS[name])
    d = load_text(tmp_path, text)
    run = _run(d)
    proofs = induction.prove(run)
    dense = str(len(STACKS[name]) + 1)  # the dense layer's tag: its parameters are not the loop's
    loop_grads = {f"d{p}" for p in d.spec.parameters if not p.endswith(dense)}
    assert loop_grads, "the stack has recurrent parameters"
    for g in loop_grads:  # every recurrent parameter's gradient proven by the induction itself
        assert "by induction over the 3 iterations" in proofs.get(g, ""), (g, proofs)
    result = check_program(d.program, timeout=120)
    assert all(g.verdict == Verdict.PROVEN for g in result.gradients.values()), {
        n: (g.verdict, g.why) for n, g in result.gradients.items()}
    # the values derive proved, at a random point, against the oracle's central differences
    net = yaml.safe_load(text)["network"]
    env = _point(d.spec, seed=3)
    subs = _subs(run, env)
    for g in sorted(loop_grads):
        mine = _numeric(run.backward_env[g], subs)
        true = O.stack_gradient(net, env, g[1:])
        assert np.allclose(mine, true, rtol=1e-5, atol=1e-6), (g, mine, true)


MUTATIONS = {  # (layer kind, what the line says, what the mistake writes, the gradients it breaks)
    "lstm: the carry dc_next forgotten": ("lstm", "dcn1 = gc1 * F1[:, t, :]", "dcn1 = 0 * gc1",
                                          {"dWx1", "dWh1", "db1"}),
    "lstm: dh_next without Wh.T": ("lstm", "dhn1 = ga1.dot(Wh1.T)", "dhn1 = ga1[:, :2]", {"dWx1", "dWh1", "db1"}),
    "lstm: accumulator = instead of +=": ("lstm", "dWx1 += ", "dWx1 = ", {"dWx1"}),
    "lstm: a wrong gate derivative": ("lstm", "F1[:, t, :] * (1 - F1[:, t, :])", "(1 - F1[:, t, :] ** 2)",
                                      {"dWx1", "dWh1", "db1"}),
    "lstm: the loop run forward": ("lstm", "for t in reversed(range(3)):", "for t in range(3):",
                                   {"dWx1", "dWh1", "db1"}),
    "lstm: off by one (H for Hp)": ("lstm", "dWh1 += Hp1[:, t, :]", "dWh1 += H1[:, t, :]", {"dWh1"}),
    "rnn: dh_next without Wh.T": ("rnn", "dhn1 = g1.dot(Wh1.T)", "dhn1 = g1", {"dWx1", "dWh1", "db1"}),
    "rnn: dh_next with Wh, not Wh.T": ("rnn", "dhn1 = g1.dot(Wh1.T)", "dhn1 = g1.dot(Wh1)", {"dWx1", "dWh1", "db1"}),
    "rnn: accumulator = instead of +=": ("rnn", "dWh1 += ", "dWh1 = ", {"dWh1"}),
    "rnn: the loop run forward": ("rnn", "for t in reversed(range(3)):", "for t in range(3):",
                                  {"dWx1", "dWh1", "db1"}),
    "rnn: off by one (H for Hp)": ("rnn", "dWh1 += Hp1[:, t, :]", "dWh1 += H1[:, t, :]", {"dWh1"}),
    "gru: no carry through 1 - z": ("gru", "dhn1 = gh1 * (1 - Zg1[:, t, :]) + ", "dhn1 = ", {"dWz1", "dUh1"}),
    "gru: accumulator = instead of +=": ("gru", "dUz1 += ", "dUz1 = ", {"dUz1"}),
}




@pytest.mark.parametrize("label", sorted(MUTATIONS))
def test_bptt_mistakes_are_never_proven_by_the_induction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         label: str) -> None:
    kind, old, new, broken = MUTATIONS[label]
    mutate_layer_rule(monkeypatch, kind, old, new)
    d = load_text(tmp_path, _stack_text([f"{{type: {kind}, hidden: 2}}"]))
    run = _run(d)
    proofs = induction.prove(run)
    assert not broken & set(proofs), (label, proofs)
    # the oracle agrees that these are wrong: the block's value differs from central differences
    net = yaml.safe_load(_stack_text([f"{{type: {kind}, hidden: 2}}"]))["network"]
    env = _point(d.spec, seed=5)
    subs = _subs(run, env)
    for g in broken:
        assert not np.allclose(_numeric(run.backward_env[g], subs), O.stack_gradient(net, env, g[1:]),
                               rtol=1e-5, atol=1e-6), g
    # and whatever the induction proves is right
    for g in set(proofs) & set(run.targets):
        if g[1:] in d.spec.parameters:
            assert np.allclose(_numeric(run.backward_env[g], subs), O.stack_gradient(net, env, g[1:]),
                               rtol=1e-5, atol=1e-6), g


@pytest.mark.parametrize("label", [k for k in sorted(MUTATIONS) if k.startswith("rnn")])
def test_bptt_mistakes_are_refuted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: str) -> None:
    kind, old, new, broken = MUTATIONS[label]
    mutate_layer_rule(monkeypatch, kind, old, new)
    d = load_text(tmp_path, _stack_text([f"{{type: {kind}, hidden: 2}}"]))
    result = check_program(d.program, timeout=120)
    for g in broken:
        assert result.gradients[g].verdict == Verdict.REFUTED, (g, result.gradients[g].why)


def test_lstm_forgotten_cell_carry_is_refuted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mutate_layer_rule(monkeypatch, "lstm", "dcn1 = gc1 * F1[:, t, :]", "dcn1 = 0 * gc1")
    d = load_text(tmp_path, _stack_text(["{type: lstm, hidden: 1}"], inputs="[2, 1]"))
    result = check_program(d.program, timeout=120)
    # at T = 2 the forgotten carry reaches step 0 only, where the state before is h0 = 0: dWh1
    # (Σ_t Hp_tᵀ da_t) is right there; dWx1 and db1 are not
    assert result.gradients["dWx1"].verdict == Verdict.REFUTED
    assert result.gradients["db1"].verdict == Verdict.REFUTED


@pytest.mark.parametrize("file", ["batchnorm_staged.yaml", "attention.yaml", "embedding.yaml",
                                  "conv2d_naive.yaml", "lstm_step.yaml"])
def test_blocks_without_a_reversed_loop_pair_are_left_alone(file: str) -> None:
    """No loop, loops that are not reversed (attention's two, the embedding's scatter):
    nothing proven here, and the derivation's verdicts are as shipped."""
    d = derive.load(DERIVATIONS / file)
    assert induction.prove(_run(d)) == {}
    assert d.report(timeout=120).ok


def test_a_forward_loop_in_the_block_is_not_an_induction(tmp_path: Path) -> None:
    """The backward loop not reversed (the user's mistake): no pair, nothing proven."""
    text = (DERIVATIONS / "rnn_bptt.yaml").read_text().replace("for t in reversed(range(T)):", "for t in range(T):")
    path = tmp_path / "rnn_forward_loop.yaml"
    path.write_text(text)
    d = derive.load(path)
    assert induction.prove(_run(d)) == {}
    verdicts = {c.target: c.verdict for c in d.report(timeout=120).claims}
    assert verdicts["dWh"] == Verdict.REFUTED


def test_two_loops_of_different_lengths_do_not_pair(tmp_path: Path) -> None:
    text = (DERIVATIONS / "rnn_bptt.yaml").read_text().replace("for t in reversed(range(T)):",
                                                               "for t in reversed(range(T - 1)):")
    path = tmp_path / "rnn_short_loop.yaml"
    path.write_text(text)
    d = derive.load(path)
    assert not {"dWx", "dWh", "db", "dx", "dh0"} & set(induction.prove(_run(d)))


@pytest.mark.parametrize("file", ["lstm_bptt.yaml", "rnn_bptt.yaml"])
def test_shipped_bptt_derivations_pass_and_are_proven_by_induction(file: str) -> None:
    d = derive.load(DERIVATIONS / file)
    proofs = induction.prove(_run(d))
    assert {"dx", "dWx", "dWh", "db", "dh0"} <= set(proofs)
    out = subprocess.run([sys.executable, "-m", "derive.cli", "check", str(DERIVATIONS / file)], capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
