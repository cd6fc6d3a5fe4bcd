"""Layer types of `network.layers` (issue 15): batchnorm, layernorm, dropout, embedding,
rnn, lstm, gru, attention, residual.  Each shipped stack (derivations/stack_<type>.yaml)
has every rule derive registers proven, its right claims proven and its mistakes refuted;
and the values — derive's rules, its truth and its claims, evaluated at a random float
point — are compared with the independent oracle (tests/tensor_oracle.py: the same stack
computed again in plain NumPy, gradients by central differences).  Identities checked:
rule(point) = ∂L/∂P(point) ≈ (L(P + h) − L(P − h)) / 2h for every parameter P, and for
every claim on a parameter or a layer output: claimed(point) ≈ that difference exactly
when the claim is expected proven."""

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
from test_tensor_layers import _float, _numeric  # derive's entries in plain floats

import derive
from derive.code.arrays import symbolic_numpy
from derive.code.blocks import _Env, _Run
from derive.code.interpret import Interpreter, Labels
from derive.lang import formula as F
from derive.records import Verdict
from derive.spec import ProgramSpec

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"
TYPES = ("batchnorm", "layernorm", "dropout", "embedding", "rnn", "lstm", "gru", "attention", "residual")


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))


def _point(spec: ProgramSpec, seed: int) -> dict[str, np.ndarray]:
    """A random float point inside the declared domains (labels repeat an index)."""
    vocab = spec.shapes["W1"][0] if "labels" in spec.domains.values() else 0
    return O.domain_point(dict(spec.shapes), dict(spec.domains), vocab, np.random.default_rng(seed))


def _subs(run: _Run, env: dict[str, np.ndarray]) -> dict[Any, Any]:
    subs: dict[Any, Any] = {}
    for name, value in run.leaves.items():
        if isinstance(value, Labels):
            if value.made is not None:
                for (i, c), sym in np.ndenumerate(value.made.view(np.ndarray)):
                    subs[sym] = sympy.Integer(int(env[name][i] == c))
            continue
        plain = value.view(np.ndarray)
        for idx in np.ndindex(*plain.shape):
            subs[plain[idx]] = sympy.Float(float(env[name][idx]), 30)
    return subs


def _load(file: Path) -> tuple[Any, dict[str, Any]]:
    return derive.load(file), yaml.safe_load(file.read_text())["network"]


def _run(d: Any) -> _Run:
    run = _Run(d.program)
    run.forward_and_backward()
    return run


# ------------------------------------------------------------------ the shipped stacks
@pytest.mark.parametrize("kind", TYPES)
def test_stack_rules_proven_and_claims_as_expected(kind: str) -> None:
    d, net = _load(DERIVATIONS / f"stack_{kind}.yaml")
    assert isinstance(d.spec, ProgramSpec)
    assert any(layer.get("type") == kind for layer in net["layers"])
    report = d.report()
    assert report.ok, [(c.target, c.verdict, c.detail) for c in report.claims if not c.ok]
    claimed = {c.place for c in d.spec.claims}
    rules = [c for c in report.claims if c.place not in claimed]
    assert rules and all(c.verdict == Verdict.PROVEN for c in rules), [(c.target, c.verdict) for c in rules]
    verdicts = [c.verdict for c in report.claims if c.place in claimed]
    assert Verdict.PROVEN in verdicts and Verdict.REFUTED in verdicts
    for c in report.claims:
        if c.verdict == Verdict.REFUTED:
            assert c.expect == Verdict.REFUTED and c.counterexample is not None


@pytest.mark.parametrize("kind", TYPES)
def test_stack_rules_and_truth_match_the_oracle(kind: str) -> None:
    d, net = _load(DERIVATIONS / f"stack_{kind}.yaml")
    run = _run(d)
    env = _point(d.spec, 11)
    subs = _subs(run, env)
    assert abs(_float(run.loss.xreplace(subs)) - O.stack_loss(net, env)) < 1e-9  # the same network
    for p in d.spec.parameters:
        numeric = O.stack_gradient(net, env, p)
        assert _close(_numeric(run.backward_env[f"d{p}"], subs), numeric), (kind, p)
        assert _close(_numeric(run.truth(p), subs), numeric), (kind, p)


@pytest.mark.parametrize("kind", TYPES)
def test_stack_claims_agree_or_disagree_with_the_oracle(kind: str) -> None:
    """A claim on a parameter or a top-level A<l>: equal to the finite difference at a
    random point exactly when it is expected proven."""
    d, net = _load(DERIVATIONS / f"stack_{kind}.yaml")
    run = _run(d)
    env = _point(d.spec, 12)
    subs = _subs(run, env)
    judged = {Verdict.PROVEN: 0, Verdict.REFUTED: 0}
    for c in d.spec.claims:
        leaf = c.target[1:]
        if leaf not in d.spec.parameters and not (leaf[0] == "A" and leaf[1:].isdigit()):
            continue
        with symbolic_numpy():
            value = Interpreter(_Env(run)).value(F.parse(c.formula), c.formula)
        agrees = _close(_numeric(value, subs), O.stack_gradient(net, env, leaf))
        expect = Verdict(c.expect)
        assert agrees == (expect == Verdict.PROVEN), (kind, c.formula)
        judged[expect] += 1
    assert judged[Verdict.REFUTED] >= 1
    assert judged[Verdict.PROVEN] >= (0 if kind == "lstm" else 1)  # lstm's right claim is on dH1, inside the layer


# ------------------------------------------------------------------ more shapes and keys
EXTRA = {
    "spatial batchnorm": """
  inputs: [2, 1, 2]
  layers:
    - {type: conv2d, filters: 2, kernel: 1}
    - {type: batchnorm, eps: 0.001}
    - {type: flatten}
    - {type: dense, units: 1}
  loss: mse
  batch: 1""",
    "layernorm on sequences, softmax head": """
  inputs: [2, 2]
  layers:
    - {type: layernorm}
    - {type: flatten}
    - {type: dense, units: 2, activation: softmax}
  loss: cross_entropy
  batch: 1""",
    "rnn, every state": """
  inputs: [2, 2]
  layers:
    - {type: rnn, hidden: 2, output: all}
    - {type: flatten}
    - {type: dense, units: 1}
  loss: mse
  batch: 1""",
    "two heads, causal": """
  inputs: [2, 2]
  layers:
    - {type: attention, heads: 2, causal: true}
    - {type: flatten}
    - {type: dense, units: 1}
  loss: mse
  batch: 1""",
    "attention, not causal": """
  inputs: [2, 1]
  layers:
    - {type: attention}
    - {type: flatten}
    - {type: dense, units: 1}
  loss: mse
  batch: 1""",
    "residual first, dropout inside": """
  inputs: 2
  layers:
    - type: residual
      layers: [{type: dense, units: 2, activation: tanh}, {type: dropout, keep_prob: 0.5}]
    - {type: dense, units: 1}
  loss: mse
  batch: 2""",
    "embedding into an rnn": """
  inputs: 2
  layers:
    - {type: embedding, vocab: 2, dim: 1}
    - {type: rnn, hidden: 1}
    - {type: dense, units: 1}
  loss: mse
  batch: 1""",
}


def _write(tmp_path: Path, body: str, claims: str = "") -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(f"name: a stack\nnetwork:{body}\n{claims}")
    return path


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_more_stacks_are_proven_and_match_the_oracle(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, EXTRA[name])
    d, net = _load(path)
    report = d.report()
    assert report.ok and all(c.verdict == Verdict.PROVEN for c in report.claims), \
        [(c.target, c.verdict, c.detail) for c in report.claims if c.verdict != Verdict.PROVEN]
    run = _run(d)
    env = _point(d.spec, 13)
    subs = _subs(run, env)
    assert abs(_float(run.loss.xreplace(subs)) - O.stack_loss(net, env)) < 1e-9
    for p in d.spec.parameters:
        assert _close(_numeric(run.backward_env[f"d{p}"], subs), O.stack_gradient(net, env, p)), (name, p)


# ------------------------------------------------------------------ rules are proven, not trusted
@pytest.mark.parametrize("kind, old, new, target", [
    ("dropout", " / (4/5)", "", "dA1"),                                          # the 1/keep_prob forgotten
    ("rnn", "(dH1[:, t, :] + dhn1)", "dH1[:, t, :]", "dWx1"),                  # BPTT without the carry
    ("residual", "dS2 + dA2", "dS2", "dA1"),                                   # the skip forgotten
])
def test_a_wrong_registered_rule_is_refuted(monkeypatch: pytest.MonkeyPatch, kind: str, old: str, new: str,
                                            target: str) -> None:
    from derive.spec import stack

    keys, has_act, build = stack.STACK_LAYERS[kind]

    def wrong(site: Any) -> Any:
        layer = build(site)
        assert any(old in line for line in layer.backward), layer.backward
        layer.backward = [line.replace(old, new) for line in layer.backward]
        return layer

    monkeypatch.setitem(stack.STACK_LAYERS, kind, stack.StackLayer(keys, has_act, wrong))
    d = derive.load(DERIVATIONS / f"stack_{kind}.yaml")
    verdicts = {c.target: c.verdict for c in d.report().claims if c.place not in {x.place for x in d.spec.claims}}
    assert verdicts[target] == Verdict.REFUTED
    assert Verdict.PROVEN in verdicts.values()


def test_dense_only_stacks_stay_on_the_classic_path() -> None:
    d = derive.from_dict({"network": {"inputs": 2, "layers": [{"units": 2, "type": "dense"}, {"units": 1}],
                                      "loss": "mse"}})
    assert not isinstance(d.spec, ProgramSpec)
    assert stack_is_tensor({"layers": [{"type": "dropout"}]})


def stack_is_tensor(net: dict[str, Any]) -> bool:
    from derive.spec.stack import is_tensor_stack
    return is_tensor_stack(net)


# ------------------------------------------------------------------ bad input: one line, exit 2
BASE = """
  inputs: 2
  layers:
    - {type: dense, units: 2}
    - LAYER
    - {type: dense, units: 1}
  loss: mse"""


@pytest.mark.parametrize("layer, message", [
    ("{type: batchnorm, momentum: 0.9}", "network.layers[1].momentum: unknown key 'momentum' (expected one of: "
                                         "type, eps)"),
    ("{type: batchnorm, eps: -1}", "network.layers[1].eps: expected a positive number for eps, got -1"),
    ("{type: layernorm, eps: abc}", "network.layers[1].eps: expected a positive number for eps"),
    ("{type: dropout, keep_prob: 0}", "network.layers[1].keep_prob: expected a probability for keep_prob "
                                      "(0 < p ≤ 1), got 0"),
    ("{type: dropout, keep_prob: 1.5}", "got 1.5"),
    ("{type: dropout, keep_prob: true}", "network.layers[1].keep_prob: expected a probability"),
    ("{type: dropout, rate: 0.5}", "unknown key 'rate'"),
    ("{type: residual, layers: [{type: dense, units: 3}]}",
     "network.layers[1].layers: the inner layers change the shape [2] to [3]: the skip connection adds x + f(x)"),
    ("{type: residual, layers: []}", "network.layers[1].layers: expected a non-empty list of layers"),
    ("{type: residual, layers: [{type: dense, units: 2, activation: softmax}]}",
     "network.layers[1].layers[0].activation: softmax goes on the last dense layer"),
    ("{type: embedding, vocab: 3, dim: 2}", "embedding takes the integer indices of the input: it must be the "
                                            "first layer"),
    ("{type: rnn, hidden: 2}", "rnn takes sequences (T, D)"),
    ("{type: rnn}", "network.layers[1]: missing key 'hidden'"),
    ("{type: lstm, hidden: 2, output: first}", "network.layers[1].output: unknown output 'first' (expected one "
                                               "of: last, all)"),
    ("{type: attention, causal: 1}", "network.layers[1].causal: expected true or false, got 1"),
    ("{type: batchnorm, activation: relu}", "unknown key 'activation'"),
])
def test_bad_layer_keys_are_one_line_errors(tmp_path: Path, layer: str, message: str) -> None:
    path = _write(tmp_path, BASE.replace("LAYER", layer))
    with pytest.raises(derive.SpecError) as info:
        derive.load(path)
    text = str(info.value)
    assert message in text and text.startswith(str(path)) and "\n" not in text


def test_attention_heads_must_divide_the_features(tmp_path: Path) -> None:
    path = _write(tmp_path, "\n  inputs: [2, 3]\n  layers: [{type: attention, heads: 2}, {type: flatten}, "
                            "{type: dense, units: 1}]\n  loss: mse")
    with pytest.raises(derive.SpecError, match=r"network.layers\[0\]: 2 heads do not divide the 3 features"):
        derive.load(path)


def test_a_bad_key_exits_2_with_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.replace("LAYER", "{type: dropout, keep_prob: 2}"))
    r = subprocess.run([sys.executable, "-m", "derive.cli", "check", str(path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "keep_prob" in r.stderr


SHAPE_CLAIMS = """
name: claims of a layer stack written as code
network:
  inputs: 3
  layers:
    - {type: dropout, keep_prob: 0.5}
    - {type: dense, units: 1}
  loss: mse
  batch: 2
claims:
  - dW2: A1.T.dot(dZ2)
  - target: dW2
    formula: A1.dot(dZ2)
    expect: refuted
"""


def test_a_claim_with_a_shape_error_is_refuted_not_a_spec_error(tmp_path: Path) -> None:
    """A claim whose shapes do not fit is refuted (shapes), as on the matrix path; the other
    claims are still judged (it used to stop the whole report: 'network: cannot multiply')."""
    path = tmp_path / "shapes.yaml"
    path.write_text(SHAPE_CLAIMS)
    claims = [c for c in derive.load(path).report().claims if (c.place or "").startswith("claims")]
    assert [c.verdict.value for c in claims] == ["proven", "refuted"]
    assert "shape error" in claims[1].detail and "cannot multiply" in claims[1].detail


def test_a_claim_naming_nothing_known_is_bad_input_at_its_place(tmp_path: Path) -> None:
    path = tmp_path / "unknown.yaml"
    path.write_text(SHAPE_CLAIMS.replace("formula: A1.dot(dZ2)", "formula: A1.T.dot(qq)"))
    r = subprocess.run([sys.executable, "-m", "derive.cli", "check", str(path)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "claims[1]: unknown name 'qq'" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
