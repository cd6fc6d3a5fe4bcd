"""Proofs of backward blocks one proven line at a time (derive.code.blocks: the chain rule
from a proven dV with its entries as free symbols g, and identities in a forward value's
entries taken as independent values), and the guards that keep them sound: the loss must
depend on B only through V (checked exactly), and kinks proven "almost everywhere" in a
cut's symbols must be a null set of the inputs (analytic, not identically zero)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensor_oracle as O

import derive
from derive.records import Verdict

ROOT = Path(__file__).resolve().parent.parent


def _verdicts(tmp_path: Path, text: str) -> dict[str, tuple[Verdict, str]]:
    """target → (verdict, detail) of every rule and claim (the last one of a target)."""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    report = derive.load(path).report()
    return {c.target: (c.verdict, c.detail or "") for c in report.claims}


POOL_STACK = """
name: convolution then max pooling
network:
  inputs: [1, {side}, {side}]
  layers:
    - {{type: conv2d, filters: 1, kernel: {k}, pad: {pad}{act}}}
    - {{type: maxpool, kernel: 2}}
    - {{type: flatten}}
    - {{type: dense, units: 2, activation: softmax}}
  loss: cross_entropy
  batch: 1
"""


@pytest.mark.parametrize("side,k,pad", [(2, 1, 0), (5, 3, 1)])
def test_max_pooling_after_a_convolution_is_proven(tmp_path: Path, side: int, k: int, pad: int) -> None:
    """Every rule of the stack proven (5×5 with a 2×2 pool: the last row and column are
    left out, PyTorch's floor); max pooling's needs its window's entries as symbols."""
    got = _verdicts(tmp_path, POOL_STACK.format(side=side, k=k, pad=pad, act=""))
    assert got and all(v == Verdict.PROVEN for v, _ in got.values()), got
    assert any("chain rule" in why for _, why in got.values())


def test_relu_before_max_pooling_is_never_proven_off_a_null_set(tmp_path: Path) -> None:
    """relu then max pooling: where a window's entries are all relu's 0 (a set of positive
    measure) the mask routes the gradient to every tied entry while derive's truth takes
    the first; the tie relu(z) − relu(z′) = 0 is not a null set, so dA1 must not be
    'proven almost everywhere' (it is unproven). dZ1 = dA1 ⊙ relu′(Z1) is right (relu′ is
    0 there) and proven in Z1's symbols, where the splits are z, z′ and z − z′; the
    parameters follow by the chain rule; nothing is refuted."""
    got = _verdicts(tmp_path, POOL_STACK.format(side=2, k=1, pad=0, act=", activation: relu"))
    assert got["dA1"][0] == Verdict.UNPROVEN
    assert got["dZ1"][0] == got["db1"][0] == got["dW1"][0] == Verdict.PROVEN
    assert Verdict.REFUTED not in {v for v, _ in got.values()}


MUTATIONS = [
    ("dA1", "spread over the window", "A1[:, :, i*2:i*2+2, j*2:j*2+2] == A2[:, :, i:i+1, j:j+1]", "A1[:, :, i*2:i*2+2, j*2:j*2+2] == A1[:, :, i*2:i*2+2, j*2:j*2+2]"),
    ("dW1", "twice", "dW1 += np.tensordot(dZ1", "dW1 += 2 * np.tensordot(dZ1"),
    ("db1", "axis", "db1 = np.sum(dZ1, axis=(0, 2, 3))", "db1 = np.sum(dZ1 * dZ1, axis=(0, 2, 3))"),
]


@pytest.mark.parametrize("target,what,old,new", MUTATIONS)
def test_a_wrong_line_below_a_proven_one_is_refuted(tmp_path: Path, target: str, what: str, old: str,
                                                    new: str) -> None:
    """The chain rule from a proven dV proves only the right line: a mutated rule of the
    stack is refuted (the chain step finds no identity in g and the judge a point)."""
    import yaml

    from derive.spec.model import Limits
    from derive.spec.stack import translate

    net = yaml.safe_load(POOL_STACK.format(side=4, k=3, pad=1, act=""))["network"]
    data = translate("spec.yaml", net, Limits())
    assert old in data["backward"], data["backward"]
    data["backward"] = data["backward"].replace(old, new)
    mutated = tmp_path / "mutated.yaml"
    mutated.write_text(yaml.safe_dump({"name": "mutated", **data}, sort_keys=False))
    report = derive.load(mutated).report()
    verdict = {c.target: c.verdict for c in report.claims}
    assert verdict[target] == Verdict.REFUTED, (what, verdict)


def test_a_second_path_blocks_the_chain(tmp_path: Path) -> None:
    """dX from dH alone when X also reaches the loss directly (the skip): the chain step
    through H is refused (the loss with X and H cut loose still has X), so the forgotten
    skip is refuted, never proven by the chain rule."""
    got = _verdicts(tmp_path, """
name: residual without its skip
network:
  equations: |
    H = X.dot(W)
    out = np.tanh(H) + X
  parameters: [W]
  shapes: {X: [2, 2], W: [2, 2]}
upstream: {out: dout}
backward: |
  dH = dout * (1 - np.tanh(H) ** 2)
  dW = X.T.dot(dH)
  dX = dH.dot(W.T)
""")
    verdicts = {target: v for target, (v, _) in got.items()}
    assert verdicts["dH"] == Verdict.PROVEN and verdicts["dW"] == Verdict.PROVEN
    assert verdicts["dX"] == Verdict.REFUTED


def test_identically_tied_entries_are_not_a_null_set(tmp_path: Path) -> None:
    """V = [x, x]: its two entries tie everywhere, so the max's mask (every tied entry)
    and the truth (the first maximum) differ on the whole domain; proving it 'off the ties'
    in V's own symbols would be wrong: it must stay unproven (a kink: not refuted)."""
    got = _verdicts(tmp_path, """
name: duplicated entries then max
network:
  equations: |
    V = np.concatenate((x, x), axis=1)
    out = np.max(V, axis=1, keepdims=True)
  parameters: []
  shapes: {x: [1, 1]}
upstream: {out: dout}
backward: |
  dV = (V == out) * dout
""")
    assert [v for v, _ in got.values()] == [Verdict.UNPROVEN]


def test_the_shipped_pool_stack_agrees_with_the_oracle() -> None:
    """stack_maxpool.yaml's rules at a random point against plain NumPy central differences."""
    d = derive.load(ROOT / "derivations" / "stack_maxpool.yaml")
    from derive.code.blocks import _Run

    run = _Run(d.program)
    run.forward_and_backward()
    rng = np.random.default_rng(4)
    env = {"X": rng.normal(size=(1, 1, 4, 4)), "W1": rng.normal(size=(1, 1, 3, 3)), "b1": rng.normal(size=(1,)),
           "W4": rng.normal(size=(4, 2)), "b4": rng.normal(size=(2,)), "Y": np.array([[0.0, 1.0]])}

    def loss(e: dict[str, np.ndarray]) -> float:
        z = O.conv_forward(e["X"], e["W1"], e["b1"], 1, 1)
        a = O.pool_forward(z, 2, "max").reshape(1, -1) @ e["W4"] + e["b4"]
        p = np.exp(a - a.max()) / np.exp(a - a.max()).sum()
        return float(-np.sum(e["Y"] * np.log(p)))

    from test_stack_types import _subs  # the leaves' symbols at a float point
    from test_tensor_layers import _numeric  # derive's entries in plain floats

    subs = _subs(run, env)
    for name, leaf in (("dW1", "W1"), ("db1", "b1"), ("dW4", "W4")):
        ours = _numeric(run.backward_env[name], subs).reshape(-1)
        num = []
        for idx in np.ndindex(*env[leaf].shape):
            h = 1e-6
            up = {k: v.copy() for k, v in env.items()}
            dn = {k: v.copy() for k, v in env.items()}
            up[leaf][idx] += h
            dn[leaf][idx] -= h
            num.append((loss(up) - loss(dn)) / (2 * h))
        assert np.allclose(ours, num, rtol=1e-4, atol=1e-6), (name, ours, num)


def test_a_claim_that_differs_at_the_sample_point_skips_the_chain(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim certified different from the truth at a sample point (no kink in the
    difference) cannot be an identity: it goes straight to the refutation, while a right
    claim is still proven by the chain rule."""
    from derive.code import blocks

    calls: list[str] = []
    original = blocks._Run.chained_check

    def recorded(self: object, base: str, name: str, *args: object, **kw: object) -> object:
        calls.append(name)
        return original(self, base, name, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(blocks._Run, "chained_check", recorded)
    result = derive.load(ROOT / "derivations" / "batchnorm_staged.yaml").report()
    claims = [c for c in result.claims if c.kind == "claim"]
    wrong = [c for c in claims if c.verdict == Verdict.REFUTED]
    assert wrong and all(c.target == "dx" for c in wrong)
    assert {c.verdict for c in claims if c.target == "dmu"} == {Verdict.PROVEN}
    assert calls.count("dx") == 1  # the block's own dx, not the wrong claim's
    assert wrong[0].finding is not None and "path through mu" in wrong[0].finding.message
