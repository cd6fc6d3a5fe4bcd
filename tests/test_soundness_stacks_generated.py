"""Generated layer stacks of every type against the independent oracle (tests/tensor_oracle.py,
plain NumPy, no derive import): conv2d, maxpool, avgpool, flatten, batchnorm (vectors,
sequences, images), layernorm, dropout, embedding, rnn / lstm / gru (output last or all),
attention (heads, causal), residual blocks (nested too) and dense layers, combined at
random with valid shapes and small sizes.

For each generated network:

1. derive's truth (∂L/∂P for every parameter and the input, from its exact symbolic forward
   pass) evaluated at a random float point away from kinks equals the oracle's central
   differences (rtol 1e-5);
2. every rule derive registers for the stack is proven, or unproven (counted as an event),
   never refuted — and every proven rule, run as the NumPy code it is, equals the oracle;
3. mutants of the rules (a transpose dropped, a factor 1/m or 1/N dropped, a term or a
   path dropped, operands swapped, a wrong activation derivative, a wrong axis or
   constant), one mutated line per mutant block: a mutated gradient is never proven unless
   the mutant block, run in NumPy, agrees with the oracle at several random points (an
   equivalent mutant); a refuted one's counterexample, run in NumPy, really differs from
   the oracle at the entry derive names (or NumPy cannot evaluate it: a shape error).

The default run is the networks of SEEDS; ``DERIVE_SWEEP=200`` (an environment variable)
runs that many more (larger ones too: two recurrent or attention layers, T = 3).  Counters go to hypothesis-style ``event`` lines in the printed summary.
"""

from __future__ import annotations

import ast
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import tensor_oracle as O
from test_stack_types import _subs
from test_tensor_layers import _numeric

import derive
from derive.check import claims as claims_module
from derive.code.blocks import _Run
from derive.records import Verdict
from derive.spec.model import Limits
from derive.spec.stack import translate
from derive.util import budget

#: the default networks: generator seeds, the first 40 and a few later ones, kept so that every
#: layer type (spatial batch norm, two causal heads, a residual block in a residual block ...)
#: appears and the file stays near 2 minutes of CPU; the seeds left out are the slowest
#: (15-30 s each: an lstm with T = 2, attention in a residual block with batch 2), in the sweep
SEEDS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 23, 24, 25, 26, 29, 31, 32, 33, 34, 35,
         37, 38, 41, 54, 56, 73)
SWEEP = int(os.environ.get("DERIVE_SWEEP", "0"))
POINTS = 3  # random points for a "proven" mutant
REPORT_SECONDS = 20.0
TRUTH_SECONDS = 60.0  # derive's exact truth of one network (the sweep's larger ones): past it, not compared  # the whole report of one network: past it, the rest is unproven (timeout)
COUNTS: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _short_diagnosis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claims_module, "DIAGNOSIS_SECONDS", 0.5)


def event(what: str) -> None:
    COUNTS[what] += 1
    print(f"  event: {what}")


# ====================================================================== the generator

HIDDEN = ("identity", "relu", "tanh", "sigmoid")


def _eps(rng: random.Random) -> dict[str, Any]:
    return rng.choice([{}, {"eps": 0.001}, {"eps": 0.1}])


def _keep(rng: random.Random) -> dict[str, Any]:
    return rng.choice([{}, {"keep_prob": 0.8}, {"keep_prob": 1}, {"keep_prob": 0.25}])


def _vector_layer(rng: random.Random, n: int, depth: int) -> tuple[dict[str, Any], int]:
    kind = rng.choice(["dense", "dense", "batchnorm", "layernorm", "dropout", "residual"])
    if kind == "dense":
        units = rng.randint(1, 3)
        return {"type": "dense", "units": units, "activation": rng.choice(HIDDEN)}, units
    if kind in ("batchnorm", "layernorm"):
        return {"type": kind, **_eps(rng)}, n
    if kind == "dropout":
        return {"type": "dropout", **_keep(rng)}, n
    inner = [{"type": "dense", "units": n, "activation": rng.choice(HIDDEN)}]
    if depth < 1 and rng.random() < 0.4:
        inner.append(_vector_layer(rng, n, depth + 1)[0] if rng.random() < 0.5 else
                     {"type": "residual", "layers": [{"type": "dense", "units": n, "activation": "tanh"}]})
    elif rng.random() < 0.4:
        inner.append(rng.choice([{"type": "dropout", **_keep(rng)}, {"type": "layernorm"}]))
    rng.shuffle(inner)
    return {"type": "residual", "layers": inner}, n


def _sequence_layer(rng: random.Random, steps: int, dim: int) -> tuple[dict[str, Any], tuple[int, ...]]:
    kind = rng.choice(["rnn", "lstm", "gru", "attention", "attention", "layernorm", "batchnorm", "dropout",
                       "residual"])
    if kind in ("rnn", "lstm", "gru"):
        hidden = rng.randint(1, 2)
        out = rng.choice(["last", "all"])
        layer = {"type": kind, "hidden": hidden, **({"output": out} if out == "all" or rng.random() < 0.5 else {})}
        return layer, ((steps, hidden) if out == "all" else (hidden,))
    if kind == "attention":
        heads = rng.choice([h for h in (1, 2) if dim % h == 0])
        layer = {"type": "attention", "causal": rng.random() < 0.5}
        if heads > 1 or rng.random() < 0.3:
            layer["heads"] = heads
        return layer, (steps, dim)
    if kind in ("layernorm", "batchnorm"):
        return {"type": kind, **_eps(rng)}, (steps, dim)
    if kind == "dropout":
        return {"type": "dropout", **_keep(rng)}, (steps, dim)
    inner = rng.choice([[{"type": "attention", "causal": True}], [{"type": "layernorm"}],
                        [{"type": "rnn", "hidden": dim, "output": "all"}],
                        [{"type": "dropout", "keep_prob": 0.5}, {"type": "attention"}]])
    return {"type": "residual", "layers": inner}, (steps, dim)


def _image_layer(rng: random.Random, c: int, h: int, w: int) -> tuple[dict[str, Any], tuple[int, ...]]:
    kind = rng.choice(["conv2d", "conv2d", "maxpool", "avgpool", "batchnorm", "layernorm", "dropout", "residual"])
    if kind == "conv2d":
        pad = rng.choice([0, 0, 1])
        k = rng.randint(1, min(3, h + 2 * pad, w + 2 * pad))
        s = rng.choice([1, 1, 2])
        layer: dict[str, Any] = {"type": "conv2d", "filters": rng.randint(1, 2), "kernel": k,
                                 "activation": rng.choice(HIDDEN)}
        if s != 1:
            layer["stride"] = s
        if pad:
            layer["pad"] = pad
        return layer, (layer["filters"], (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
    if kind in ("maxpool", "avgpool"):
        k = rng.randint(1, min(2, h, w))
        s = rng.choice([k, k, 1])
        layer = {"type": kind, "kernel": k, **({"stride": s} if s != k else {})}
        return layer, (c, (h - k) // s + 1, (w - k) // s + 1)
    if kind in ("batchnorm", "layernorm"):
        return {"type": kind, **_eps(rng)}, (c, h, w)
    if kind == "dropout":
        return {"type": "dropout", **_keep(rng)}, (c, h, w)
    inner = rng.choice([[{"type": "conv2d", "filters": c, "kernel": 1, "activation": "tanh"}],
                        [{"type": "conv2d", "filters": c, "kernel": 3, "pad": 1}],
                        [{"type": "batchnorm"}, {"type": "conv2d", "filters": c, "kernel": 1}]])
    return {"type": "residual", "layers": inner}, (c, h, w)


HEAVY = ("rnn", "lstm", "gru", "attention")  # the layers whose exact truth costs most


def _types(layers: list[dict[str, Any]]) -> list[str]:
    return [t for x in layers for t in [x.get("type", "dense"), *_types(x.get("layers", []))]]


def random_stack(rng: random.Random, small: bool = True) -> dict[str, Any]:
    """A valid layer stack with small sizes: vectors, sequences, images or token indices in.
    ``small``: at most one recurrent or attention layer, then with a batch of 1 and T ≤ 2
    (a few seconds of CPU each); otherwise up to two, T ≤ 3."""
    while True:
        net = _random_stack(rng, small)
        heavy = sum(t in HEAVY for t in _types(net["layers"]))
        if set(_types(net["layers"])) == {"dense"}:
            continue  # a stack of dense layers only is the classic path (tests/test_soundness_generated.py)
        if not small or heavy <= 1:
            if small and heavy:
                net["batch"] = 1
            return net


def _random_stack(rng: random.Random, small: bool) -> dict[str, Any]:
    source = rng.choice(["vector", "sequence", "image", "tokens"])
    layers: list[dict[str, Any]] = []
    shape: tuple[int, ...]
    if source == "vector":
        inputs: Any = rng.randint(1, 3)
        shape = (inputs,)
    elif source == "sequence":
        inputs = [rng.randint(1, 2 if small else 3), rng.randint(1, 2)]
        shape = tuple(inputs)
    elif source == "image":
        inputs = [rng.randint(1, 2), rng.randint(2, 3), rng.randint(2, 3)]
        shape = tuple(inputs)
    else:
        inputs = rng.randint(1, 2)
        dim = rng.randint(1, 2)
        layers.append({"type": "embedding", "vocab": rng.randint(2, 3), "dim": dim})
        shape = (inputs, dim)
    size = 1
    for d in shape:
        size *= d
    budget = 1 if size > 6 else 2
    for _ in range(rng.randint(1, budget)):
        if len(shape) == 3:
            layer, shape = _image_layer(rng, *shape)
        elif len(shape) == 2:
            layer, shape = _sequence_layer(rng, *shape)
        else:
            layer, n = _vector_layer(rng, shape[0], 0)
            shape = (n,)
        layers.append(layer)
    if len(shape) > 1:
        layers.append({"type": "flatten"})
    loss = rng.choice(["mse", "mse", "cross_entropy"])
    if loss == "cross_entropy":
        layers.append({"type": "dense", "units": 2, "activation": "softmax"})
    else:
        act = rng.choice(["identity", "identity", "tanh", "sigmoid"])
        layers.append({"type": "dense", "units": rng.randint(1, 2), **({"activation": act} if act != "identity"
                                                                       else {})})
    batch = rng.choice([1, 2, 2]) if source != "image" or size <= 9 else 1
    return {"inputs": inputs, "layers": layers, "loss": loss, "batch": batch}


# ====================================================================== NumPy, independently

NUMPY_FUNCTIONS: dict[str, Any] = {
    "np": np,
    "conv2d": lambda x, w, b, stride=1, pad=0: O.conv_forward(x, w, b, stride, pad),
    "maxpool": lambda x, k, stride=None: O.pool_strided(x, k, k if stride is None else stride, "max"),
    "avgpool": lambda x, k, stride=None: O.pool_strided(x, k, k if stride is None else stride, "avg"),
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": O.sigmoid,
    "relu_prime": lambda z: (np.asarray(z) > 0).astype(float),
    "sigmoid_prime": lambda z: O.sigmoid(z) * (1 - O.sigmoid(z)),
    "tanh_prime": lambda z: 1 - np.tanh(z) ** 2,
}


def run_numpy(equations: str, backward: str, env: dict[str, np.ndarray], labels: bool) -> dict[str, Any]:
    """The spec's forward and backward blocks run as the NumPy code they are, at ``env``,
    statement by statement: a statement NumPy cannot run (a mutant's shape error) ends the
    run, with the values made so far and its error under ``"error"``.

    ``exec`` here runs only text the test made derive generate from its own generated
    networks (never a user's file), with no builtins but range, reversed (and the import
    NumPy makes from C)."""
    ns: dict[str, Any] = {**NUMPY_FUNCTIONS, **{k: v.copy() for k, v in env.items()}}
    if labels:
        ns["X"] = env["X"].astype(int)
    builtins = {"__builtins__": {"range": range, "reversed": reversed, "__import__": __import__}}
    statements = ast.parse(equations + backward).body
    with np.errstate(all="ignore"):
        for k, statement in enumerate(statements):
            code = compile(ast.Module([statement], []), "<block>", "exec")
            try:
                exec(code, builtins, ns)  # noqa: S102
            except (ValueError, IndexError) as exc:
                for rest in statements[k:]:  # what this statement and the later ones assign: not made
                    for x in ast.walk(rest):
                        if isinstance(x, ast.Name) and isinstance(x.ctx, ast.Store):
                            ns.pop(x.id, None)
                        elif isinstance(x, (ast.AugAssign, ast.Assign)):
                            for t in ([x.target] if isinstance(x, ast.AugAssign) else x.targets):
                                while isinstance(t, (ast.Subscript, ast.Attribute)):
                                    t = t.value
                                if isinstance(t, ast.Name):
                                    ns.pop(t.id, None)
                ns["error"] = exc
                break
    return ns


# ====================================================================== points

@dataclass
class Net:
    net: dict[str, Any]
    spec: dict[str, Any]  # translated: {"network": {...}, "backward": ...}
    labels: bool
    vocab: int = 0
    params: list[str] = field(default_factory=list)

    @property
    def shapes(self) -> dict[str, list[int]]:
        return self.spec["network"]["shapes"]

    @property
    def domains(self) -> dict[str, str]:
        return self.spec["network"].get("domains", {})


def make(net: dict[str, Any]) -> Net:
    spec = translate("generated", net, Limits())
    labels = spec["network"].get("domains", {}).get("X") == "labels"
    vocab = net["layers"][0]["vocab"] if labels else 0
    return Net(net, spec, labels, vocab, list(spec["network"]["parameters"]))


def random_point(n: Net, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return O.domain_point(n.shapes, n.domains, n.vocab, rng)


def kink_margin(n: Net, env: dict[str, np.ndarray]) -> float:
    """How far the point is from a kink: the smallest |Z| of a relu layer and the smallest
    gap between the two largest entries of a max-pooling window (inf: none)."""
    values = {**O.stack_values(n.net, env), "A0": env["X"]}
    margin = np.inf

    def walk(layers: list[dict[str, Any]], prefix: str, prev: str) -> None:
        nonlocal margin
        for i, layer in enumerate(layers):
            tag = f"{prefix}{i + 1}"
            kind = layer.get("type", "dense")
            if layer.get("activation") == "relu":
                margin = min(margin, float(np.min(np.abs(values[f"Z{tag}"]))))
            if kind == "maxpool":
                a, k = values[prev], layer["kernel"]
                s = layer.get("stride", k)
                for r in range((a.shape[2] - k) // s + 1):
                    for c in range((a.shape[3] - k) // s + 1):
                        win = np.sort(a[:, :, r * s:r * s + k, c * s:c * s + k].reshape(*a.shape[:2], -1), axis=-1)
                        if win.shape[-1] > 1:
                            margin = min(margin, float(np.min(win[..., -1] - win[..., -2])))
            if kind == "residual":
                walk(layer["layers"], f"{tag}_", prev)
            prev = f"A{tag}"

    walk(n.net["layers"], "", "A0")
    return margin


def smooth_point(n: Net, rng: np.random.Generator, margin: float = 1e-3) -> dict[str, np.ndarray]:
    for _ in range(50):
        env = random_point(n, rng)
        if kink_margin(n, env) > margin:
            return env
    raise AssertionError("no point away from the kinks")


def close(a: Any, b: Any) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))


def oracle_names(n: Net) -> set[str]:
    """The values whose gradient the oracle computes: leaves and the values it names
    (A<tag>, Z<tag>, xhat<tag>, H<tag>, Q<tag>, K<tag>, V<tag>, Y<tag>, S<tag>)."""
    names = set(n.params) | ({"X"} if not n.labels else set())
    return names | set(O.stack_values(n.net, random_point(n, np.random.default_rng(0))))


# ====================================================================== mutants

class _Mutator(ast.NodeTransformer):
    """Applies ``op`` to the ``at``-th node it accepts (in walk order)."""

    def __init__(self, at: int, op: Any) -> None:
        self.at, self.op, self.seen, self.done = at, op, 0, False

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if not self.done:
            new = self.op(node)
            if new is not None:
                if self.seen == self.at:
                    self.done = True
                    return new
                self.seen += 1
        return super().generic_visit(node)


def _const(n: ast.AST) -> bool:
    return isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)


OTHER_PRIME = {"relu_prime": "sigmoid_prime", "sigmoid_prime": "tanh_prime", "tanh_prime": "sigmoid_prime"}


def _operators() -> dict[str, Any]:
    def drop_term(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            return n.left
        return None

    def drop_first(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
            return n.right
        return None

    def sign(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            return ast.BinOp(n.left, ast.Sub() if isinstance(n.op, ast.Add) else ast.Add(), n.right)
        return None

    def no_division(n: ast.AST) -> ast.AST | None:  # a missing / m, / N, / keep_prob, / √d
        return n.left if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) else None

    def drop_factor(n: ast.AST) -> ast.AST | None:  # a missing g′, mask, γ ...
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
            return n.left
        return None

    def transpose(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.Attribute) and n.attr == "T":
            return n.value
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "dot" and n.args:
            return ast.Call(n.func, [ast.Attribute(n.args[0], "T", ast.Load())], [])
        return None

    def swap(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "dot" and n.args:
            return ast.Call(ast.Attribute(n.args[0], "dot", ast.Load()), [n.func.value], [])
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "np.tensordot" and len(n.args) >= 2:
            return ast.Call(n.func, [n.args[1], n.args[0], *n.args[2:]], n.keywords)
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub):
            return ast.BinOp(n.right, ast.Sub(), n.left)
        return None

    def prime(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in OTHER_PRIME:
            return ast.Call(ast.Name(OTHER_PRIME[n.func.id], ast.Load()), n.args, n.keywords)
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) and _const(n.right) and n.right.value == 2:
            return n.left  # 1 − h² → 1 − h (tanh′ written as σ′ would be)
        return None

    def axis(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.keyword) and n.arg == "axis" and _const(n.value) and n.value.value in (0, 1):
            return ast.keyword("axis", ast.Constant(1 - n.value.value))
        return None

    def constant(n: ast.AST) -> ast.AST | None:  # N·dx̂ → (N+1)·dx̂, / m → / (m+1)
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mult, ast.Div)):
            for side in ("left", "right"):
                v = getattr(n, side)
                if _const(v) and v.value >= 1:
                    new = ast.BinOp(n.left, n.op, n.right)
                    setattr(new, side, ast.Constant(v.value + 1))
                    return new
        return None

    return {"drop a term": drop_term, "drop the first term": drop_first, "sign": sign,
            "no division": no_division, "drop a factor": drop_factor, "transpose": transpose,
            "swap operands": swap, "activation derivative": prime, "axis": axis, "constant": constant}


OPERATORS = _operators()


def _mutate_line(line: str, op: Any, at: int) -> str | None:
    body = line.lstrip(" ")
    indent = line[:len(line) - len(body)]
    if body.startswith(("for ", "if ")) or body.endswith(":"):
        return None
    tree = ast.parse(body)
    stmt = tree.body[0]
    if not isinstance(stmt, (ast.Assign, ast.AugAssign)):
        return None
    m = _Mutator(at, op)
    stmt.value = m.visit(stmt.value)
    if not m.done:
        return None
    return indent + ast.unparse(ast.fix_missing_locations(tree))


def _pool(lines: list[str], keep: Any) -> list[tuple[str, int, str]]:
    """Every single-operator mutant (operator, line number, mutated line) of the lines kept."""
    pool: list[tuple[str, int, str]] = []
    for k, line in enumerate(lines):
        if not keep(line):
            continue
        for name, op in OPERATORS.items():
            for at in range(6):
                new = _mutate_line(line, op, at)
                if new is None:
                    break
                if new.strip() != ast.unparse(ast.parse(line.strip())):
                    pool.append((name, k, new))
        if " += " in line:  # the scatter or the sum over windows overwritten (dW[X[i]] = dE[i])
            pool.append(("overwrite", k, line.replace(" += ", " = ", 1)))
    return pool


def _distinct(pool: list[tuple[str, int, str]], rng: random.Random, count: int) -> list[tuple[str, int, str]]:
    rng.shuffle(pool)
    out, used = [], set()
    for case in pool:  # distinct operators first, then any
        if case[0] not in used:
            used.add(case[0])
            out.append(case)
    out += [c for c in pool if c not in out]
    return out[:count]


def block_mutants(n: Net, env: dict[str, np.ndarray], rng: random.Random,
                  count: int) -> list[tuple[str, int, str, str]]:
    """Up to ``count`` mutant blocks, a line inside a loop mutated (the lines a claim cannot
    state): (operator, line number, the mutated line, the block); only blocks NumPy runs
    (derive rejects a block with a shape error as a whole, before judging anything)."""
    lines = n.spec["backward"].rstrip("\n").split("\n")
    out = []
    for name, k, new in _distinct(_pool(lines, lambda line: line.startswith(" ")), rng, 10 * count):
        block = "\n".join(lines[:k] + [new] + lines[k + 1:]) + "\n"
        if "error" in run_numpy(n.spec["network"]["equations"], block, env, n.labels):
            event("block mutant with a shape error (not sent: derive rejects the block)")
            continue
        out.append((name, k, new, block))
        if len(out) == count:
            break
    return out


def _names(text: str) -> set[str]:
    return {x.id for x in ast.walk(ast.parse(text, mode="eval")) if isinstance(x, ast.Name)}


def claim_cases(n: Net, forward: set[str], names: set[str], rng: random.Random, right: int,
                wrong: int) -> list[tuple[str, str, str]]:
    """(kind, target, formula): rule lines outside loops written as claims (right), and their
    single-operator mutants; only those NumPy and the oracle can evaluate (every dV they
    name, V a value the oracle differentiates)."""
    lines = n.spec["backward"].rstrip("\n").split("\n")

    def usable(line: str) -> bool:
        if line.startswith(" ") or " = " not in line or not line.startswith("d"):
            return False
        target, formula = line.split(" = ", 1)
        if target[1:] not in names or sum(x.strip().startswith((f"{target} ", f"{target}[")) for x in lines) > 1:
            return False  # (dW = np.zeros_like(W) before the loop that adds to it: not the rule)
        for x in _names(formula):
            if x in NUMPY_FUNCTIONS or x in forward:
                continue
            if not (x.startswith("d") and x[1:] in names):
                return False
        return True

    rights = [line for line in lines if usable(line)]
    out = [("right", *line.split(" = ", 1)) for line in rng.sample(rights, min(right, len(rights)))]
    for op, _k, new in _distinct(_pool(rights, lambda line: True), rng, wrong):
        out.append((op, *new.split(" = ", 1)))
    for line in rights:  # mask ** 2 = mask on the binary domain only; a dropout without its mask
        for mask in sorted(x for x in _names(line.split(" = ", 1)[1]) if x.startswith("mask")):
            target, formula = line.split(" = ", 1)
            out.append(("mask squared (right on the domain)", target, formula.replace(mask, f"{mask} ** 2")))
            out.append(("no mask", target, formula.replace(f" * {mask}", "")))
    return out


# ====================================================================== judging a report

def _number(text: str) -> float:
    return float(Fraction(text.split(" (")[0])) if "/" in text or "(" not in text else float(text.split(" (")[0])


def _array(text: str) -> np.ndarray:
    body = text[len("np.array("):-1] if text.startswith("np.array(") else text
    return np.asarray(ast.literal_eval(body), dtype=float)


def _entry(check: Any, ndim: int) -> tuple[int, ...]:
    found = re.match(r"entry \w+\[([\d, ]+)\]", check.detail or "")
    if found:  # (the entry of an array of more than 2 axes is in the detail)
        return tuple(int(x) for x in found.group(1).split(","))
    i, j = check.counterexample.entry
    return () if ndim == 0 else (j,) if ndim == 1 else (i, j)


def oracle_with_error(n: Net, env: dict[str, np.ndarray], base: str) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's gradient (step h) and how far it may be off: |g(h) − g(10h)| + 1e-9."""
    fine = O.stack_gradient(n.net, env, base)
    coarse = O.stack_gradient(n.net, env, base, h=10 * O.H)
    return fine, np.abs(fine - coarse) + 1e-9


def differs(claimed: float, true: float, err: float) -> bool | None:
    """True: clearly different; False: equal within the oracle's error; None: cannot tell."""
    gap = abs(claimed - true)
    if gap > 10 * err + 1e-6 * abs(true):
        return True
    if gap <= err + 1e-6 + 1e-5 * abs(true):
        return False
    return None


def judge(n: Net, backward: str, check: Any, names: set[str], rng: np.random.Generator, seen: Counter[str],
          points: list[dict[str, np.ndarray]]) -> str | None:
    """None, or why derive's verdict on one gradient of the block is contradicted by NumPy."""
    base = check.target[1:]
    verdict = check.verdict
    seen[str(verdict)] += 1
    if base not in names:
        event(f"{verdict}: {check.target} not a value the oracle differentiates")
        return None
    eqs = n.spec["network"]["equations"]
    if verdict == Verdict.PROVEN:
        for env in points:
            ns = run_numpy(eqs, backward, env, n.labels)
            if check.target not in ns:
                return f"FALSE PROVEN {check.target}: NumPy cannot run the block: {ns.get('error')}"
            got = ns[check.target]
            want = O.stack_gradient(n.net, env, base)
            if not close(got, want):
                return f"FALSE PROVEN {check.target} = {check.formula}: NumPy {np.ravel(got)}, oracle {np.ravel(want)}"
        return None
    if verdict == Verdict.REFUTED:
        env0 = points[0]
        want = O.stack_gradient(n.net, env0, base)
        if check.counterexample is None:  # a shape error: NumPy must not give the right value either
            ns = run_numpy(eqs, backward, env0, n.labels)
            if check.target not in ns:
                event("refuted (shapes): NumPy raises too")
                return None
            got = ns[check.target]
            if close(got, want):
                return f"FALSE REFUTED (shapes) {check.target}: NumPy gives the oracle's gradient ({check.detail})"
            event("refuted (shapes): NumPy gives another shape or value")
            return None
        ce = check.counterexample
        env = {k: _array(v) for k, v in ce.values.items() if k in n.shapes}
        missing = set(n.shapes) - set(env)
        if missing:
            return f"COUNTEREXAMPLE without the values of {sorted(missing)}: {ce.values}"
        for k in env:
            env[k] = env[k].reshape(n.shapes[k])
        if kink_margin(n, env) < 1e-4:
            event("refuted: counterexample at a kink (central differences cannot judge it)")
            return None
        ns = run_numpy(eqs, backward, env, n.labels)
        if check.target not in ns:
            return f"FALSE REFUTED? {check.target}: NumPy cannot run the block at the counterexample: {ns.get('error')}"
        got_all = ns[check.target]
        want, err = oracle_with_error(n, env, base)
        idx = _entry(check, want.ndim)
        return _confirm(check, float(np.asarray(got_all)[idx]), float(want[idx]), float(err[idx]),
                        f"at {check.target}{list(idx)} of {ce.values}")
    event(f"unproven ({check.method}): {check.target}")
    return None


# ====================================================================== the test

def _truth_matches(n: Net, d: Any, env: dict[str, np.ndarray]) -> list[str]:
    """derive's exact truth at env (for every parameter and X) against central differences."""
    run = _Run(d.program)
    run.forward_and_backward()
    subs = _subs(run, env)
    from test_tensor_layers import _float

    bad = []
    loss = _float(run.loss.xreplace(subs))
    if abs(loss - O.stack_loss(n.net, env)) > 1e-9 * max(1.0, abs(loss)):
        bad.append(f"loss {loss} vs oracle {O.stack_loss(n.net, env)}")
    for p in n.params + ([] if n.labels else ["X"]):
        got, want = _numeric(run.truth(p), subs), O.stack_gradient(n.net, env, p)
        if not close(got, want):
            bad.append(f"truth d{p}: derive {got.ravel()}, oracle {want.ravel()}")
    return bad


def _confirm(check: Any, got: float, true: float, err: float, where: str) -> str | None:
    """A counterexample: derive's claimed value is NumPy's, its true value the oracle's, and
    the two differ (as far as central differences can tell)."""
    ce = check.counterexample
    if not np.isclose(got, _number(ce.claimed), rtol=1e-6, atol=1e-9):
        return f"BAD COUNTEREXAMPLE: derive's claimed value {ce.claimed}, NumPy {got} {where}"
    if differs(_number(ce.true), true, err):
        return f"BAD COUNTEREXAMPLE: derive's true value {ce.true}, oracle {true} ± {err:.1g} {where}"
    verdict = differs(got, true, err)
    if verdict is False:
        return f"FALSE REFUTED: derive says claimed {ce.claimed}, true {ce.true}; NumPy {got}, oracle {true} {where}"
    event("refuted: counterexample confirmed by NumPy and the oracle" if verdict else
          "refuted: claimed and true closer than the oracle can tell apart (derive's exact values differ)")
    return None


def claim_value(n: Net, formula: str, env: dict[str, np.ndarray]) -> np.ndarray:
    """A claim in NumPy at env: the forward values run, each dV it names the oracle's ∂L/∂V.

    ``eval`` runs only formulas this test generated from derive's own rule lines."""
    ns = run_numpy(n.spec["network"]["equations"], "", env, n.labels)
    ns.pop("error", None)
    for x in _names(formula):
        if x not in ns and x.startswith("d"):
            ns[x] = O.stack_gradient(n.net, env, x[1:])
    with np.errstate(all="ignore"):
        return np.asarray(eval(formula, {"__builtins__": {"__import__": __import__}}, ns), dtype=float)  # noqa: S307


def judge_claim(n: Net, kind: str, check: Any, points: list[dict[str, np.ndarray]]) -> str | None:
    """None, or why derive's verdict on one claim is contradicted by NumPy and the oracle."""
    base, formula = check.target[1:], check.formula
    if check.verdict == Verdict.PROVEN:
        for env in points:
            want = O.stack_gradient(n.net, env, base)
            try:
                got = claim_value(n, formula, env)
            except (ValueError, IndexError) as exc:
                return f"FALSE PROVEN [{kind}] {check.target} = {formula}: NumPy raises {exc}"
            if not close(np.broadcast_to(got, want.shape) if got.size == 1 else got, want):
                return (f"FALSE PROVEN [{kind}] {check.target} = {formula}: NumPy {np.ravel(got)}, "
                        f"oracle {np.ravel(want)}")
        if kind != "right":
            event(f"proven mutant [{kind}], equivalent (NumPy = oracle at {len(points)} points)")
        return None
    if check.verdict == Verdict.REFUTED:
        if kind == "right":
            return f"FALSE REFUTED right claim {check.target} = {formula} ({check.detail})"
        if check.counterexample is None:
            env = points[0]
            want = O.stack_gradient(n.net, env, base)
            try:
                got = claim_value(n, formula, env)
            except (ValueError, IndexError):
                event("refuted claim (shapes): NumPy raises too")
                return None
            if close(got, want):
                return f"FALSE REFUTED (shapes) [{kind}] {check.target} = {formula}: NumPy = oracle ({check.detail})"
            event("refuted claim (shapes): NumPy gives another shape or value")
            return None
        ce = check.counterexample
        env = {k: _array(v).reshape(n.shapes[k]) for k, v in ce.values.items() if k in n.shapes}
        missing = set(n.shapes) - set(env)
        if missing:
            return f"COUNTEREXAMPLE without the values of {sorted(missing)}: {ce.values}"
        if kink_margin(n, env) < 1e-4:
            event("refuted claim: counterexample at a kink (central differences cannot judge it)")
            return None
        want, err = oracle_with_error(n, env, base)
        got = np.broadcast_to(claim_value(n, formula, env), want.shape)
        idx = _entry(check, want.ndim)
        return _confirm(check, float(got[idx]), float(want[idx]), float(err[idx]),
                        f"[{kind}] at {check.target}{list(idx)} of {ce.values}")
    event(f"unproven claim ({check.method})")
    return None


CLAIMS_RIGHT, CLAIMS_WRONG = 2, 5
BLOCK_MUTANT_BELOW = 6.0  # a mutant block only when the network's report took less CPU (s)


def check_network(seed: int, block_mutants_count: int = 1, always_block: bool = False,
                  small: bool = True) -> Counter[str]:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    net = random_stack(rng, small)
    n = make(net)
    print(f"\nseed {seed}: {net}")
    for t in sorted(set(_types(net["layers"]))):
        event(f"layer type {t}")
    problems: list[str] = []
    seen: Counter[str] = Counter()
    names = oracle_names(n)
    env = smooth_point(n, nrng)
    forward = set(run_numpy(n.spec["network"]["equations"], "", env, n.labels))
    cases = []
    for kind, target, formula in claim_cases(n, forward, names, rng, CLAIMS_RIGHT, CLAIMS_WRONG):
        try:  # a claim with a shape error stops the whole report (a spec error): not sent
            shaped = claim_value(n, formula, env).shape == O.stack_gradient(n.net, env, target[1:]).shape
        except (ValueError, IndexError):
            shaped = False
        if shaped:
            cases.append((kind, target, formula))
        else:
            event("mutant claim with a shape error (not sent: it would stop the report)")
    claims = [{"target": t, "formula": f} for _, t, f in cases]
    d = derive.from_dict({"name": f"generated {seed}", "network": net, "claims": claims})
    # 1. the truth
    clock = time.process_time()
    try:
        with budget.limit(TRUTH_SECONDS):
            problems += _truth_matches(n, d, env)
    except budget.Timeout:
        event("truth: timeout (not compared)")
    seen["truths"] += len(n.params) + (not n.labels)
    print(f"  truth: {time.process_time() - clock:.1f} s CPU")
    # 2. the registered rules, and the claims (right ones and mutants of single lines)
    points = [smooth_point(n, nrng) for _ in range(POINTS)]
    clock = time.process_time()
    report = d.report(timeout_run=REPORT_SECONDS)
    cpu = time.process_time() - clock
    print(f"  report: {cpu:.1f} s CPU")
    rules, judged = report.claims[:len(report.claims) - len(cases)], report.claims[len(report.claims) - len(cases):]
    for c in rules:
        seen[f"rule {c.verdict}"] += 1
        if c.verdict == Verdict.REFUTED:
            problems.append(f"a registered rule is refuted: {c.target} = {c.formula} ({c.detail})")
        why = judge(n, n.spec["backward"], c, names, nrng, Counter(), points[:1])
        if why:
            problems.append(why)
    for (kind, target, formula), c in zip(cases, judged, strict=True):
        assert (c.target, c.formula) == (target, formula)
        print(f"    claim {c.verdict:9} [{kind}] {target} = {formula}")
        seen[f"claim {'right' if kind == 'right' else 'mutant'} {c.verdict}"] += 1
        why = judge_claim(n, kind, c, points)
        if why:
            problems.append(why)
    # 3. mutants of the rules inside loops, as whole blocks
    if always_block or cpu < BLOCK_MUTANT_BELOW:
        for op, line_no, line, block in block_mutants(n, env, rng, block_mutants_count):
            print(f"  block mutant [{op}] line {line_no}: {line.strip()}")
            event(f"block mutant operator {op}")
            try:
                dm = derive.from_dict({"name": f"mutant {seed}", "network": n.spec["network"], "backward": block})
                clock = time.process_time()
                mreport = dm.report(timeout_run=REPORT_SECONDS)
                print(f"  mutant report: {time.process_time() - clock:.1f} s CPU")
            except derive.DeriveError as exc:
                event("block mutant rejected before checking (a shape or name error)")
                print(f"    rejected: {exc}")
                continue
            for c in mreport.claims:
                print(f"    {c.verdict:9} {c.target}")
                seen[f"block mutant gradient {c.verdict}"] += 1
                why = judge(n, block, c, names, nrng, Counter(), points)
                if why:
                    problems.append(f"[block mutant {op}: {line.strip()}] {why}")
            seen["block mutants"] += 1
    print(f"  verdicts {dict(seen)}")
    assert not problems, "\n".join(problems)
    return seen


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_stack(seed: int) -> None:
    seen = check_network(seed)
    COUNTS.update({f"total {k}": v for k, v in seen.items()})


@pytest.mark.skipif(not SWEEP, reason="the long sweep: set DERIVE_SWEEP=<networks>")
@pytest.mark.parametrize("k", range(SWEEP))
def test_generated_stack_sweep(k: int) -> None:
    check_network(1000 + k, block_mutants_count=2, always_block=True, small=k % 2 == 0)
