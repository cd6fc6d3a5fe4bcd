"""Generated claims against an independent NumPy oracle (tests/numpy_oracle.py, which
imports nothing from derive): issue 12, "Tests that must exist".

1. Random layer-stack networks; right backprop formulas wrapped so that they divide by
   masks and step functions (``F / M * M``, ``exp(log(F))``, ``F ** 0.5 * F ** 0.5`` ...),
   plus plain mutants.  Every "proven" must be finite and equal to the oracle at 30 random
   points; every counterexample must show, in NumPy, an undefined value (when derive says
   "undefined (") or a value different from the oracle's gradient.
2. Networks with fractional powers (batch norm, layer norm, RMS norm, attention with √d):
   right formulas proven, every mutant refuted with a real counterexample (or proven and
   equal to the oracle: an equivalent mutant), never "unproven".
3. A property test: ``derive.prove.zero.is_zero`` never says 0 where 50-digit evaluation of the
   expression (from its own tree, not from SymPy's) says otherwise.

Parts 1 and 2 need numpy (not a dependency of derive itself: it belongs in the test extra);
without it they are skipped, and say so.
"""

from __future__ import annotations

import ast
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import pytest
import sympy
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import derive
from derive.check import claims as claims_module
from derive.errors import DeriveError
from derive.ops.activations import Relu, ReluPrime, Sigmoid, Tanh
from derive.prove.zero import TooLarge, is_zero
from derive.util import budget
from test_fractional import BATCH_NORM  # the same batch-norm network, written once

try:
    import numpy as np
    import numpy_oracle as O
except ImportError:  # numpy is needed by parts 1-2 only
    np = None  # type: ignore[assignment]
    O = None  # type: ignore[assignment]

needs_numpy = pytest.mark.skipif(np is None, reason="numpy is not installed (the NumPy oracle needs it)")

POINTS = 30
CLAIM_SECONDS = 30.0  # a claim past this is "unproven (timeout)" for the counts, never a hang


@pytest.fixture(autouse=True)
def _short_diagnosis(monkeypatch: pytest.MonkeyPatch) -> None:
    # verdicts never wait for a diagnosis (issue 12 item 4); a short one keeps the suite fast
    monkeypatch.setattr(claims_module, "DIAGNOSIS_SECONDS", 0.5)


def check(d: derive.Derivation, target: str, formula: str):  # type: ignore[no-untyped-def]
    try:
        with budget.limit(CLAIM_SECONDS):
            return d.check_claim(target, formula)
    except budget.Timeout:
        return None


# ====================================================================== the judge

@dataclass
class Judged:
    target: str
    formula: str
    verdict: str  # proven | refuted | unproven | timeout | rejected
    undefined: bool = False  # refuted with an "undefined (" counterexample
    false: str | None = None  # why the verdict is false, per the oracle
    misreport: str | None = None  # a right verdict whose counterexample prints a number where NumPy has none
    note: str | None = None


class Oracle:
    """A NumPy network with random points (and all gradients there) computed once."""

    def __init__(self, net: O.Network, seed: int) -> None:
        self.net = net
        rng = np.random.default_rng(seed)
        self.points = []  # (values with gradients at h, the same with gradients at 10h)
        for _ in range(POINTS):
            env, grads, coarse = net.random_point(rng)
            self.points.append((O.values_at(net, env, grads), O.values_at(net, env, coarse)))



def stable(fine: object, coarse: object) -> bool:
    """A formula of the oracle's gradients gives (nearly) the same at steps h and 10h: its
    value is known to well within the comparison's tolerance (rtol 1e-5, atol 1e-7)."""
    return bool(np.allclose(fine, coarse, rtol=1e-6, atol=1e-8))


def judge(d: derive.Derivation, oracle: Oracle, target: str, formula: str) -> Judged:
    """derive's verdict on ``target = formula``, and whether the oracle contradicts it."""
    try:
        c = check(d, target, formula)
    except DeriveError as exc:
        return Judged(target, formula, "rejected", note=str(exc))
    if c is None:
        return Judged(target, formula, "timeout")
    out = Judged(target, formula, c.verdict)
    if c.verdict == "proven":
        usable = 0
        for k, (values, coarse) in enumerate(oracle.points):
            try:
                got = O.evaluate(formula, values)
            except ValueError as exc:  # NumPy could not even broadcast it
                out.false = f"FALSE PROVEN: NumPy raises {exc}"
                return out
            want = values[target]
            if got.shape != want.shape:
                got = np.broadcast_to(got, want.shape) if got.size == 1 else got
            if got.shape != want.shape:
                out.false = f"FALSE PROVEN: NumPy shape {got.shape}, true {want.shape}"
            elif not O.isfinite(got):
                out.false = f"FALSE PROVEN: not finite at random point {k}: {got.tolist()}"
            elif not stable(got, O.evaluate(formula, coarse)):
                continue  # the formula amplifies the oracle's own error here (dZ1 / tanh′ ≈ 1e-5)
            elif not O.close(got, want):
                out.false = f"FALSE PROVEN: at random point {k} claim {got.tolist()} true {want.tolist()}"
            if out.false:
                return out
            usable += 1
        if usable < POINTS // 3:
            out.note = f"oracle inconclusive: only {usable} well-conditioned points"
    elif c.verdict == "refuted":
        ce = c.counterexample
        if ce is None:  # a shape error: NumPy must not produce the target's shape either
            values = oracle.points[0][0]
            try:
                got = O.evaluate(formula, values)
            except ValueError:
                out.note = "shape error in both"
                return out
            if got.shape == values[target].shape and O.close(got, values[target]):
                out.false = f"FALSE REFUTED (shapes): NumPy evaluates it to the true gradient ({c.detail})"
            else:
                out.note = f"shape: NumPy gives {got.shape}"
            return out
        out.undefined = ce.claimed.startswith("undefined (")
        net = oracle.net
        env = net.forward(net.leaves_from_text(ce.values))
        i, j = ce.entry
        grads = net.gradients(env)
        shape = env[target[1:]].shape
        try:
            got = np.broadcast_to(O.evaluate(formula, O.values_at(net, env, grads)), shape)[i, j]
        except ValueError as exc:
            out.false = f"FALSE REFUTED: NumPy cannot evaluate it at the counterexample: {exc}"
            return out
        where = f"at entry {ce.entry} of {ce.values}"
        if out.undefined:
            if np.isfinite(got):
                out.false = f"FALSE REFUTED: derive says {ce.claimed} but NumPy gives {got} {where}"
            return out
        if not np.isfinite(got):  # the verdict stands (undefined ≠ true), its evidence does not
            out.misreport = f"derive prints claimed {ce.claimed} where NumPy gives {got} {where}"
            return out
        if net.near_kink(env, 1e-5):
            out.note = "counterexample at a kink: not checkable by central differences"
            return out
        coarse = net.coarse_if_well_conditioned(env, grads)
        if coarse is None or not stable(
                got, np.broadcast_to(O.evaluate(formula, O.values_at(net, env, coarse)), shape)[i, j]):
            out.note = "counterexample where central differences are ill-conditioned"
            return out
        if not np.isclose(got, float(Fraction(ce.claimed)), rtol=1e-6, atol=1e-9):
            out.false = f"BAD COUNTEREXAMPLE: derive's claimed value {ce.claimed}, NumPy {got} {where}"
            return out
        want = grads[target][i, j]
        if O.close(got, want):
            out.false = (f"FALSE REFUTED: derive says claimed {ce.claimed}, true {ce.true}; NumPy claim {got}, "
                         f"oracle {want} {where}")
        elif not np.isclose(float(Fraction(ce.true)), want, rtol=1e-5, atol=1e-7):
            out.false = f"BAD COUNTEREXAMPLE: derive's true value {ce.true}, oracle {want} {where}"
    return out


# ====================================================================== part 1: masks and steps

HIDDEN = ["relu", "leaky_relu", "sigmoid", "tanh"]


def masks(l: int, act: str) -> list[str]:
    """Values of layer l's shape that vanish on an open set, on a null set, or never."""
    z, a = f"Z{l}", f"A{l}"
    return {
        "relu": [f"({z} > 0)", f"relu_prime({z})", f"np.heaviside({z}, 0)", f"({a} > 0)", a, z],
        "leaky_relu": [f"leaky_relu_prime({z})", f"({z} > 0)", f"np.heaviside({z}, 0)", a, z],
        "sigmoid": [f"sigmoid_prime({z})", a, f"(1 - {a})", z, f"({z} > 0)"],
        "tanh": [f"tanh_prime({z})", a, z, f"(1 - {a} ** 2)", f"({a} > 0)"],
        "out": [a, z, f"({a} - Y)"],
    }[act]


def primes(l: int, act: str) -> list[str]:
    """g′(Z_l), written the ways people write it."""
    z, a = f"Z{l}", f"A{l}"
    return {
        "relu": [f"relu_prime({z})", f"({z} > 0)", f"np.heaviside({z}, 0)", f"({a} > 0)"],
        "leaky_relu": [f"leaky_relu_prime({z})", f"leaky_relu_prime({z}, 1/10)"],
        "sigmoid": [f"sigmoid_prime({z})", f"{a} * (1 - {a})"],
        "tanh": [f"tanh_prime({z})", f"(1 - {a} ** 2)", f"(1 - np.tanh({z}) ** 2)"],
    }[act]


WRAPS = {  # F is an elementwise value of layer l's shape, M a mask of that shape
    "F/M*M": "({F}) / {M} * {M}",
    "F*M/M": "({F}) * {M} / {M}",
    "(F*M)/M": "(({F}) * {M}) / {M}",
    "exp(log F)": "exp(log({F}))",
    "F**.5*F**.5": "({F}) ** 0.5 * ({F}) ** 0.5",
    "(F**.5)**2": "(({F}) ** 0.5) ** 2",
}


def random_layer_stack(rng: random.Random) -> tuple[dict, list[tuple[int, str]], str, int]:  # type: ignore[type-arg]
    hidden = [(rng.randint(1, 3), rng.choice(HIDDEN)) for _ in range(rng.choice([1, 2]))]
    out, loss = rng.choice([("sigmoid", "binary_cross_entropy"), ("identity", "mse")])
    layers = [*hidden, (rng.randint(1, 2), out)]
    inputs, batch = rng.randint(1, 3), rng.randint(2, 3)
    spec_layers = [{"units": n, "activation": a, **({"slope": "1/10"} if a == "leaky_relu" else {})}
                   for n, a in layers]
    spec = {"name": "generated", "network": {"inputs": inputs, "layers": spec_layers, "loss": loss, "batch": batch}}
    return spec, layers, loss, inputs


def layer_claims(layers: list[tuple[int, str]], loss: str, rng: random.Random) -> list[tuple[str, str, str]]:
    """(kind, target, formula): right formulas, wrapped ones, and mutants."""
    L = len(layers)
    def prev(l: int) -> str:
        return "X" if l == 1 else f"A{l - 1}"

    out: list[tuple[str, str, str]] = []
    # elementwise cores of each layer's shape: (target, core formula, "right" | "dropped g′")
    cores: dict[int, list[tuple[str, str, str]]] = {}
    for l, (_, act) in enumerate(layers, start=1):
        cs: list[tuple[str, str, str]] = []
        if l == L:
            cs.append((f"dZ{l}", f"(A{l} - Y) / m", "right"))
            da = f"(-(Y / A{l}) + (1 - Y) / (1 - A{l})) / m" if loss == "binary_cross_entropy" else f"(A{l} - Y) / m"
            cs.append((f"dA{l}", da, "right"))
        else:
            cs.append((f"dA{l}", f"W{l + 1}.T @ dZ{l + 1}", "right"))
            for gp in primes(l, act):
                cs.append((f"dZ{l}", f"dA{l} * {gp}", "right"))
            cs.append((f"dZ{l}", f"dA{l}", "dropped g′"))
        cores[l] = cs
    for l, cs in cores.items():
        n, act = layers[l - 1]
        ms = masks(l, "out" if l == L else act)
        # the same masks of another layer of the same width
        ms += [m for k, (nk, ak) in enumerate(layers[:-1], start=1) if k != l and nk == n for m in masks(k, ak)[:2]]
        for target, core, how in cs:
            ok = how == "right"
            outers = [(target, "{}")]
            if target.startswith("dZ"):
                outers += [(f"dW{l}", f"({{}}) @ {prev(l)}.T"), (f"db{l}", "sum({}, axis=1)")]
            for t, outer in outers:
                out.append(("right" if ok else "mutant", t, outer.format(core)))
                if ok:
                    out.append(("mutant", t, outer.format(f"2 * ({core})")))
                    out.append(("mutant", t, outer.format(f"-({core})")))
                for name, wrap in WRAPS.items():
                    for m in ms:
                        out.append((("wrap " if ok else "wrapped mutant ") + name, t,
                                    outer.format(wrap.format(F=core, M=m))))
        if l < L:  # the student's dz = da / g′ and its inverse
            for gp in primes(l, act) + ms[:3]:
                out.append(("student", f"dA{l}", f"dZ{l} / {gp}"))
                out.append(("student", f"dZ{l}", f"dA{l} / {gp}"))
    # plain right formulas through every layer
    for l in range(1, L + 1):
        out.append(("right", f"dW{l}", f"dZ{l} @ {prev(l)}.T"))
        out.append(("right", f"db{l}", f"sum(dZ{l}, axis=1)"))
        out.append(("mutant", f"dW{l}", f"dZ{l} @ {prev(l)}.T / m"))
    # always: one claim undefined on an open set, one defined almost everywhere
    must = [("must undefined", f"dZ{L}", f"exp(log((A{L} - Y) / m))"),
            ("must a.e.", "dW1", "(dZ1 * Z1 / Z1) @ X.T")]
    picked = []
    for group, n in (("wrap", 9), ("wrapped", 4), ("student", 4), ("mutant", 4), ("right", 4)):
        pool = [c for c in out if c[0].split(" ")[0] == group]
        picked += rng.sample(pool, min(n, len(pool)))
    return must + picked


PART1_SEEDS = range(16)

# Right verdicts (refuted) whose counterexample prints a number where the claim is 0/0:
# derive cannot yet show that relu_prime(A1) with A1 = relu(Z1) vanishes on an open set
# (test_known_gaps below); the per-seed test tolerates exactly these.
KNOWN_MISREPORTS: set[tuple[int, str, str]] = set()  # (the (A1 > 0) / (A1 > 0) cases are fixed)


@needs_numpy
@pytest.mark.parametrize("seed", PART1_SEEDS)
def test_masks_and_steps(seed: int) -> None:
    rng = random.Random(1000 + seed)
    spec, layers, loss, inputs = random_layer_stack(rng)
    strategy = rng.choice(["local", "global"])
    d = derive.from_dict(spec, strategy=strategy)
    oracle = Oracle(O.layer_stack(inputs, layers, loss, spec["network"]["batch"]), seed)
    results = [(kind, judge(d, oracle, t, f)) for kind, t, f in layer_claims(layers, loss, rng)]
    counts = Counter(j.verdict + (" (undefined)" if j.undefined else "") for _, j in results)
    print(f"\nseed {seed} {strategy} {spec['network']}: {dict(counts)}")
    for kind, j in results:
        print(f"  {j.verdict:9} {'U' if j.undefined else ' '} [{kind}] {j.target} = {j.formula}"
              + (f"   <-- {j.false}" if j.false else "") + (f"   ({j.note})" if j.note else "")
              + (f"   [misreported: {j.misreport}]" if j.misreport else ""))
    false = [f"{j.target} = {j.formula}: {j.false}" for _, j in results if j.false]
    assert not false, f"{spec['network']} ({strategy}):\n" + "\n".join(false)
    # a refutation's counterexample must show what NumPy computes (known exceptions: below)
    misreported = [f"{j.target} = {j.formula}: {j.misreport}" for _, j in results
                   if j.misreport and (seed, j.target, j.formula) not in KNOWN_MISREPORTS]
    assert not misreported, misreported
    # the right formulas are the chain rule: proven
    wrong = [f"{j.target} = {j.formula}: {j.verdict}" for k, j in results if k == "right" and j.verdict != "proven"]
    assert not wrong, wrong
    # the test can fail: claims undefined on an open set are refuted, a.e.-defined ones proven
    by_kind = {k: j for k, j in results if k.startswith("must")}
    assert by_kind["must undefined"].verdict == "refuted" and by_kind["must undefined"].undefined, by_kind
    assert by_kind["must a.e."].verdict == "proven", by_kind


ISSUE_NET = {"inputs": 2, "layers": [{"units": 3, "activation": "relu"}, {"units": 1, "activation": "sigmoid"}],
             "loss": "binary_cross_entropy", "batch": 2}
ONE_UNIT_NET = {"inputs": 2, "layers": [{"units": 1, "activation": "relu"}, {"units": 1, "activation": "identity"}],
                "loss": "mse", "batch": 3}


@pytest.mark.parametrize("net, target, formula", [
    # were: refuted with "claimed 1.316..." at a point where the claim is 0/0 (NumPy: nan),
    # or unproven ("could not show that relu_prime(A1[0,0]) is nonzero a.e."): a step function
    # of relu(Z1) sits at its kink on the whole open set Z1 < 0, which is not a kink
    (ISSUE_NET, "dZ1", "dA1 * (A1 > 0) / (A1 > 0)"),
    (ONE_UNIT_NET, "dZ1", "dA1 * relu_prime(A1) / relu_prime(A1)"),
    (ISSUE_NET, "dA1", "dZ1 / (A1 > 0)"),
    (ISSUE_NET, "dA1", "dA1 * (A1 > 0) / (A1 > 0)"),
    # were unproven: with one hidden unit six points missed the open set where the base is
    # negative; the domain search now draws 18 more
    (ONE_UNIT_NET, "dZ1", "(dZ1 ** 0.5) ** 2"),
    (ONE_UNIT_NET, "dZ1", "((dA1 * relu_prime(Z1)) ** 0.5) ** 2"),
    (ISSUE_NET, "dZ1", "(dZ1 ** 0.5) ** 2"),
    (ISSUE_NET, "dZ1", "dA1 * relu_prime(Z1) / relu_prime(Z1)"),
    (ONE_UNIT_NET, "dA1", "(dA1 ** 0.5) ** 2"),
])
@pytest.mark.parametrize("strategy", ["local", "global"])
def test_known_gaps_undefined_on_an_open_set(net: dict, target: str, formula: str, strategy: str) -> None:  # type: ignore[type-arg]
    """Each claim is 0/0 or a square root of a negative number on an open set: refuted,
    with "undefined (" at the counterexample (found by the generator above)."""
    d = derive.from_dict({"name": "gap", "network": net}, strategy=strategy)
    c = check(d, target, formula)
    assert c is not None and c.verdict == "refuted", (c.verdict if c else "timeout", c.detail if c else None)
    assert c.counterexample is not None and c.counterexample.claimed.startswith("undefined ("), c.counterexample


# ====================================================================== part 2: fractional powers

@dataclass(frozen=True)
class FracNet:
    name: str
    spec: dict  # type: ignore[type-arg]
    oracle: str  # the function in numpy_oracle that writes the same network by hand
    right: tuple[tuple[str, str], ...]  # (target, textbook formula)
    groups: tuple[tuple[str, ...], ...]  # names of one shape: a swap among them is a mutant


FRACTIONAL = [
    FracNet("batch_norm", BATCH_NORM, "batch_norm",
        (("dZ", "Z - T"),
         ("dg", "sum(dZ * Y, axis=1)"),
         ("db", "sum(dZ, axis=1)"),
         ("dY", "g * dZ"),
         ("dv", "sum(dY * D, axis=1) * (-1/2) * (v + eps) ** -1.5"),
         ("dD", "dY * (v + eps) ** -0.5 + dv * 2 * D / m"),
         ("dmu", "-sum(dD, axis=1)"),
         ("dX", "(v + eps) ** -0.5 / m * (m * dY - sum(dY, axis=1) - Y * sum(dY * Y, axis=1))"),
         ("dX", "dD + dmu / m")),
        (("X", "D", "Y", "Z", "T"), ("dY", "dZ", "dD"), ("mu", "v", "g", "b"), ("dv", "dmu", "dg", "db"))),
    FracNet("layer_norm", {
        "equations": """
            mu = mean(X, axis=0)
            D = X - mu
            v = mean(D**2, axis=0)
            N = D / sqrt(v + eps)
            Z = g * N + b
            L = sum((Z - T)**2) / 2
        """,
        "parameters": ["g", "b"],
        "shapes": {"X": [3, "m"], "T": [3, "m"], "g": [3, 1], "b": [3, 1]},
        "batch": 2}, "layer_norm",
        (("dN", "g * dZ"),
         ("dg", "sum(dZ * N, axis=1)"),
         ("dv", "sum(dN * D, axis=0) * (-1/2) * (v + eps) ** -1.5"),
         ("dD", "dN / sqrt(v + eps) + dv * 2 * D / 3"),
         ("dX", "1 / sqrt(v + eps) / 3 * (3 * dN - sum(dN, axis=0) - N * sum(dN * N, axis=0))")),
        (("X", "D", "N", "Z", "T"), ("dN", "dZ", "dD"), ("mu", "v"), ("g", "b"))),
    FracNet("rms_norm", {
        "equations": """
            s = mean(X**2, axis=0)
            Y = X / sqrt(s + eps)
            Z = g * Y
            L = sum((Z - T)**2) / 2
        """,
        "parameters": ["g"],
        "shapes": {"X": [3, "m"], "T": [3, "m"], "g": [3, 1]},
        "batch": 2}, "rms_norm",
        (("dY", "g * dZ"),
         ("dg", "sum(dZ * Y, axis=1)"),
         ("ds", "sum(dY * X, axis=0) * (-1/2) * (s + eps) ** -1.5"),
         ("dX", "dY / sqrt(s + eps) + ds * 2 * X / 3"),
         ("dX", "(dY - Y * sum(dY * Y, axis=0) / 3) / np.sqrt(s + eps)")),
        (("X", "Y", "Z", "T"), ("dY", "dZ"))),
    FracNet("attention", {
        "equations": """
            S = (Q.T @ K) / sqrt(d)
            A = softmax(S, axis=-1)
            O = V @ A.T
            L = sum((O - T)**2) / 2
        """,
        "parameters": ["Q", "K", "V"],
        "shapes": {"Q": [2, 3], "K": [2, 3], "V": [2, 3], "T": [2, 3]}}, "attention",
        (("dO", "O - T"),
         ("dV", "dO @ A"),
         ("dA", "dO.T @ V"),
         ("dS", "A * (dA - sum(A * dA, axis=-1))"),
         ("dQ", "K @ dS.T / np.sqrt(d)"),
         ("dK", "Q @ dS / d ** 0.5")),
        (("Q", "K", "V", "T", "O"), ("S", "A"), ("dA", "dS"))),
    FracNet("scalar_power", {
        "equations": """
            s = x**2 + eps
            y = w * s ** 1.5 / (v + eps) ** 0.5
            L = (y - t)**2 / 2
        """,
        "parameters": ["w"]}, "scalar_power",
        (("dy", "y - t"),
         ("dw", "dy * s ** 1.5 / (v + eps) ** 0.5"),
         ("ds", "dy * w * 1.5 * s ** 0.5 / sqrt(v + eps)"),
         ("dv", "-dy * w * s ** 1.5 / 2 * (v + eps) ** -1.5"),
         ("dx", "ds * 2 * x")),
        (("x", "w", "v", "t", "s", "y"), ("dy", "ds"))),
]


class _Mutate(ast.NodeTransformer):
    """Applies one operator at the node with index ``at`` (pre-order) of a formula tree."""

    def __init__(self, at: int, op: Callable[[ast.AST], ast.AST | None]) -> None:
        self.at, self.op, self.k, self.done = at, op, -1, False

    def visit(self, node: ast.AST) -> ast.AST:
        self.k += 1
        if self.k == self.at:
            new = self.op(node)
            if new is not None:
                self.done = True
                return new
        if isinstance(node, ast.Call):  # a function's name is not a value to mutate
            node.args = [self.visit(a) for a in node.args]
            node.keywords = [self.visit(k) for k in node.keywords]  # type: ignore[misc]
            return node
        return self.generic_visit(node)


def _num(x: float) -> ast.expr:
    return ast.Constant(x) if x >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-x))


def _const(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        c = _const(node.operand)
        return -c if c is not None else None
    return None


def operators(groups: tuple[tuple[str, ...], ...]) -> dict[str, Callable[[ast.AST], ast.AST | None]]:
    def drop_right(n: ast.AST) -> ast.AST | None:  # a - b → a, a + b → a
        return n.left if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)) else None

    def drop_left(n: ast.AST) -> ast.AST | None:  # a - b → -b, a + b → b
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            return n.right if isinstance(n.op, ast.Add) else ast.UnaryOp(ast.USub(), n.right)
        return None

    def flip(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub)):
            return ast.BinOp(n.left, ast.Sub() if isinstance(n.op, ast.Add) else ast.Add(), n.right)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub) and _const(n) is None:
            return n.operand
        return None

    def twice(n: ast.AST) -> ast.AST | None:
        return ast.BinOp(ast.Constant(2), ast.Mult(), n) if isinstance(n, (ast.BinOp, ast.Call, ast.Name)) else None

    def half(n: ast.AST) -> ast.AST | None:
        return ast.BinOp(n, ast.Div(), ast.Constant(2)) if isinstance(n, (ast.BinOp, ast.Call)) else None

    def exponent(n: ast.AST) -> ast.AST | None:  # -0.5 → -1.5, 0.5 → 1, 1.5 → 0.5, -1.5 → -0.5
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            c = _const(n.right)
            if c is not None and c != int(c):
                new = {-0.5: -1.5, 0.5: 1.0, 1.5: 0.5, -1.5: -0.5}.get(c, c - 1)
                return ast.BinOp(n.left, ast.Pow(), _num(new))
        return None

    def exponent_sign(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            c = _const(n.right)
            if c is not None and c != int(c):
                return ast.BinOp(n.left, ast.Pow(), _num(-c))
        return None

    def axis(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.keyword) and n.arg == "axis":
            c = _const(n.value)
            if c is not None:
                return ast.keyword("axis", _num({0: 1, 1: 0, -1: 0, -2: 1}[int(c)]))
        return None

    def undivide(n: ast.AST) -> ast.AST | None:  # a missing / m, / sqrt(d), / 2
        return n.left if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) else None

    def unsqrt(n: ast.AST) -> ast.AST | None:
        if isinstance(n, ast.Call) and ast.unparse(n.func) in ("sqrt", "np.sqrt"):
            return n.args[0]
        return None

    def unfactor(n: ast.AST) -> ast.AST | None:  # 2 * x → x, x * 1.5 → x
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
            if _const(n.left) is not None:
                return n.right
            if _const(n.right) is not None:
                return n.left
        return None

    ops = {"drop a term": drop_right, "drop the first term": drop_left, "sign": flip, "factor 2": twice,
           "factor 1/2": half, "exponent": exponent, "exponent sign": exponent_sign, "axis": axis,
           "no division": undivide, "no sqrt": unsqrt, "no factor": unfactor}
    for group in groups:
        for a in group:
            for b in group:
                if a != b:
                    ops[f"{a}→{b}"] = (lambda n, a=a, b=b: ast.Name(b, ast.Load())
                                       if isinstance(n, ast.Name) and n.id == a else None)
    return ops


def mutants(formula: str, groups: tuple[tuple[str, ...], ...]) -> list[tuple[str, str]]:
    """Every single-operator mutant of the formula: (operator, text), distinct texts."""
    tree = ast.parse(formula, mode="eval")
    size = sum(1 for _ in ast.walk(tree))
    original = ast.unparse(tree)
    seen = {original}
    out = []
    for name, op in operators(groups).items():
        for at in range(size + 1):
            m = _Mutate(at, op)
            new = m.visit(ast.parse(formula, mode="eval"))
            if not m.done:
                continue
            text = ast.unparse(ast.fix_missing_locations(new))
            if text not in seen:
                seen.add(text)
                out.append((name, text))
    return out


MUTANTS_PER_FORMULA = 4
TIER = {"exponent": 0, "exponent sign": 0, "axis": 0, "no division": 0, "no sqrt": 0, "swap": 0,
        "drop a term": 1, "drop the first term": 1, "sign": 1}


@dataclass(frozen=True)
class FracCase:
    net: str
    kind: str  # "right" or the mutation operator
    target: str
    formula: str


def fractional_cases() -> list[FracCase]:
    rng = random.Random(12)
    out = []
    for net in FRACTIONAL:
        for target, right in net.right:
            out.append(FracCase(net.name, "right", target, right))
            by_op: dict[str, list[str]] = {}
            for op, text in mutants(right, net.groups):
                by_op.setdefault("swap" if "→" in op else op, []).append(text)
            # one mutant of each of several operators (not five "factor 2"s), the ones the
            # issue names first: exponents, axes, a missing / m or √d, swapped names
            ops = sorted(by_op, key=lambda op: (TIER.get(op, 2), rng.random()))
            for op in ops[:MUTANTS_PER_FORMULA]:
                out.append(FracCase(net.name, op, target, rng.choice(by_op[op])))
    return out


FRACTIONAL_CASES = fractional_cases()
_DERIVATIONS: dict[str, derive.Derivation] = {}
_ORACLES: dict[str, Oracle] = {}


def fractional(name: str) -> tuple[derive.Derivation, Oracle]:
    net = next(n for n in FRACTIONAL if n.name == name)
    if name not in _DERIVATIONS:
        _DERIVATIONS[name] = derive.from_dict({"name": name, "network": net.spec})
        _ORACLES[name] = Oracle(getattr(O, net.oracle)(), 7)
    return _DERIVATIONS[name], _ORACLES[name]


SIGN_DROPPED = ("IntervalContext.show drops the sign of an exact negative value (mpf.man_exp gives an unsigned "
                "mantissa): the counterexample of dZ = -T prints claimed 1/2 where -T is -1/2")
KNOWN_FRACTIONAL: dict[tuple[str, str, str], str] = {}  # (fixed: the sign of exact negative values)


def _marked(cases: list[FracCase]) -> list[object]:
    return [pytest.param(c, id=f"{c.net}-{c.target}-{c.kind}-{k}", marks=[pytest.mark.xfail(
        strict=True, reason=KNOWN_FRACTIONAL[(c.net, c.target, c.formula)])]
        if (c.net, c.target, c.formula) in KNOWN_FRACTIONAL else []) for k, c in enumerate(cases)]


def test_a_negative_exact_value_keeps_its_sign() -> None:  # was: SIGN_DROPPED
    d = derive.from_dict({"name": "batch_norm", "network": FRACTIONAL[0].spec})
    c = check(d, "dZ", "-T")
    assert c is not None and c.counterexample is not None
    i, j = c.counterexample.entry
    assert Fraction(c.counterexample.claimed) == -Fraction(c.counterexample.values[f"T[{i},{j}]"])


@needs_numpy
@pytest.mark.parametrize("case", _marked(FRACTIONAL_CASES))
def test_fractional_powers(case: FracCase) -> None:
    d, oracle = fractional(case.net)
    j = judge(d, oracle, case.target, case.formula)
    print(f"\n{case.net}: {j.verdict:9} [{case.kind}] {case.target} = {case.formula}"
          + (f"   ({j.note})" if j.note else ""))
    assert not j.false, j.false
    assert not j.misreport, j.misreport
    if case.kind == "right":
        assert j.verdict == "proven", (case, j)
    else:  # refuted with a counterexample the oracle confirms, or an equivalent mutant, proven
        assert j.verdict in ("proven", "refuted"), (case, j)


# ====================================================================== part 3: is_zero

# Expression trees as tuples, turned into SymPy (with derive's activations) for is_zero and
# evaluated *from the tuples* at 50 digits by mpmath for the oracle: SymPy's automatic
# rewriting (exp(log(x)) → x, x/x → 1) cannot hide a value from the oracle.


SYMBOLS = ("x", "y", "z")
_SYM = {n: sympy.Symbol(n, real=True) for n in SYMBOLS}
UNARY = ("exp", "log", "sigmoid", "tanh", "relu", "relu_prime", "neg")
BINARY = ("add", "sub", "mul", "div")


class Undefined(ArithmeticError):
    """The expression has no real value here (0 in a denominator, log of x ≤ 0, a kink)."""


def to_sympy(t: tuple) -> sympy.Expr:  # type: ignore[type-arg]
    op = t[0]
    if op == "sym":
        return _SYM[t[1]]
    if op == "num":
        return sympy.Rational(t[1].numerator, t[1].denominator)
    if op == "pow":
        return to_sympy(t[1]) ** t[2]
    if op in BINARY:
        a, b = to_sympy(t[1]), to_sympy(t[2])
        return {"add": a + b, "sub": a - b, "mul": a * b}[op] if op != "div" else a / b
    a = to_sympy(t[1])
    return {"exp": sympy.exp, "log": sympy.log, "sigmoid": Sigmoid, "tanh": Tanh, "relu": Relu,
            "relu_prime": ReluPrime, "neg": lambda u: -u}[op](a)


KINK = mpmath.mpf(10) ** -40
HUGE = mpmath.mpf(10) ** 60


def to_mp(t: tuple, at: dict[str, mpmath.mpf], scale: list[mpmath.mpf]) -> mpmath.mpf:  # type: ignore[type-arg]
    """The value at 50 digits; ``scale`` collects the largest magnitude met (rounding error
    of the final sum is relative to it)."""
    op = t[0]
    if op == "sym":
        v = at[t[1]]
    elif op == "num":
        v = mpmath.mpf(t[1].numerator) / t[1].denominator
    elif op == "pow":
        base = to_mp(t[1], at, scale)
        if t[2] < 0 and base == 0:
            raise Undefined
        v = base ** t[2]
    elif op in BINARY:
        a, b = to_mp(t[1], at, scale), to_mp(t[2], at, scale)
        if op == "div":
            if b == 0:
                raise Undefined
            v = a / b
        else:
            v = {"add": a + b, "sub": a - b, "mul": a * b}[op]
    else:
        a = to_mp(t[1], at, scale)
        if op == "log" and a <= 0:
            raise Undefined
        if op in ("relu", "relu_prime") and abs(a) < KINK:
            raise Undefined  # at (or too near to tell) the kink
        v = {"exp": mpmath.exp, "log": mpmath.log, "sigmoid": lambda u: 1 / (1 + mpmath.exp(-u)),
             "tanh": mpmath.tanh, "relu": lambda u: u if u > 0 else mpmath.mpf(0),
             "relu_prime": lambda u: mpmath.mpf(1) if u > 0 else mpmath.mpf(0), "neg": lambda u: -u}[op](a)
    if abs(v) > HUGE:
        raise Undefined  # too large to judge a cancellation at 50 digits
    scale.append(abs(v))
    return v


def trees() -> st.SearchStrategy[tuple]:  # type: ignore[type-arg]
    leaf = st.sampled_from(SYMBOLS).map(lambda n: ("sym", n)) | \
        st.sampled_from([Fraction(k, q) for k in range(-3, 4) for q in (1, 2, 3)]).map(lambda v: ("num", v))
    return st.recursive(leaf, lambda inner: (
        st.tuples(st.sampled_from(BINARY), inner, inner)
        | st.tuples(st.sampled_from(UNARY), inner)
        | st.tuples(st.just("pow"), inner, st.integers(-3, 3))), max_leaves=7)


def mutate(t: tuple, k: int) -> tuple:  # type: ignore[type-arg]
    """A small change of the tree (a different expression, almost always)."""
    if t[0] == "sym":
        return ("sym", SYMBOLS[(SYMBOLS.index(t[1]) + 1 + k) % 3])
    if t[0] == "num":
        return ("num", t[1] + 1)
    if t[0] == "pow":
        return ("pow", t[1], t[2] + 1) if k % 2 else ("pow", mutate(t[1], k), t[2])
    if t[0] in BINARY:
        if k % 3 == 0:
            return ({"add": "sub", "sub": "add", "mul": "div", "div": "mul"}[t[0]], t[1], t[2])
        return (t[0], mutate(t[1], k), t[2]) if k % 3 == 1 else (t[0], t[1], mutate(t[2], k))
    return (t[0], mutate(t[1], k)) if k % 2 else (UNARY[(UNARY.index(t[0]) + 1) % len(UNARY)], t[1])


def identities(a: tuple, b: tuple, c: tuple) -> list[tuple]:  # type: ignore[type-arg]
    """Differences that are 0 where defined (true identities) and that are not (wrong ones)."""
    def sq(u: tuple) -> tuple:  # type: ignore[type-arg]
        return ("mul", u, u)

    two = ("num", Fraction(2))
    return [
        ("sub", sq(("add", a, b)), ("add", ("add", sq(a), ("mul", two, ("mul", a, b))), sq(b))),  # (a+b)²
        ("sub", sq(("add", a, b)), ("add", sq(a), sq(b))),  # wrong
        ("sub", ("div", ("add", a, c), b), ("add", ("div", a, b), ("div", c, b))),
        ("sub", ("mul", ("exp", a), ("exp", b)), ("exp", ("add", a, b))),
        ("sub", ("log", ("mul", a, b)), ("add", ("log", a), ("log", b))),  # wrong for a, b < 0
        ("sub", ("exp", ("log", a)), a),  # a where defined
        ("sub", ("div", ("mul", a, b), b), a),  # a where defined (b ≠ 0)
        ("sub", ("mul", ("sigmoid", a), ("add", ("num", Fraction(1)), ("exp", ("neg", a)))), ("num", Fraction(1))),
        ("sub", ("pow", ("pow", a, 2), -1), ("pow", a, -2)),
        ("sub", ("mul", ("relu_prime", a), ("relu", a)), ("relu", a)),  # true, but not for is_zero's atoms
    ]


def contradicted(t: tuple, rng: random.Random) -> str | None:  # type: ignore[type-arg]
    """A point (among the first 5 where t is defined) at which |t| is not ~0, if any."""
    defined = 0
    for _ in range(40):
        at = {n: mpmath.mpf(rng.randint(-300, 300)) / rng.choice([7, 11, 13, 100]) for n in SYMBOLS}
        scale: list[mpmath.mpf] = []
        try:
            v = to_mp(t, at, scale)
        except (Undefined, ZeroDivisionError, OverflowError, ValueError):
            continue
        if abs(v) > mpmath.mpf(10) ** -30 * max(1, *scale):
            return f"{v} at {at}"
        defined += 1
        if defined == 5:
            break
    return None


def verdict(t: tuple) -> bool | None:  # type: ignore[type-arg]
    try:
        return is_zero(to_sympy(t))
    except (TooLarge, ZeroDivisionError):
        return None


PAIRS = st.sampled_from(["alone", "same", "plus 0", "mutated", "identity"])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(trees(), trees(), trees(), PAIRS, st.integers(0, 9))
def test_is_zero_is_never_contradicted(a: tuple, b: tuple, c: tuple, how: str, k: int) -> None:  # type: ignore[type-arg]
    t = {"alone": a, "same": ("sub", a, a), "plus 0": ("sub", a, ("add", a, ("mul", ("num", Fraction(0)), b))),
         "mutated": ("sub", a, mutate(a, k)), "identity": identities(a, b, c)[k]}[how]
    v = verdict(t)
    event(f"is_zero {v}")
    if v:
        with mpmath.workdps(50):
            bad = contradicted(t, random.Random(k))
        assert bad is None, f"is_zero proves {to_sympy(t)} = 0, but it is {bad}"


def test_is_zero_says_true_often_enough_to_be_tested() -> None:
    """The same kinds of trees, seeded: True occurs often (and is never contradicted)."""
    rng = random.Random(4)

    def leaf() -> tuple:  # type: ignore[type-arg]
        if rng.random() < 0.7:
            return ("sym", rng.choice(SYMBOLS))
        return ("num", Fraction(rng.randint(-3, 3), rng.randint(1, 3)))

    def tree(depth: int) -> tuple:  # type: ignore[type-arg]
        if depth == 0 or rng.random() < 0.25:
            return leaf()
        r = rng.random()
        if r < 0.5:
            return (rng.choice(BINARY), tree(depth - 1), tree(depth - 1))
        if r < 0.85:
            return (rng.choice(UNARY), tree(depth - 1))
        return ("pow", tree(depth - 1), rng.randint(-3, 3))

    counts: Counter[str] = Counter()
    for n in range(70):
        a, b, c = tree(3), tree(2), tree(2)
        for t in [("sub", a, a), ("sub", a, mutate(a, n)), *identities(a, b, c)]:
            v = verdict(t)
            counts[f"{v}"] += 1
            if v:
                with mpmath.workdps(50):
                    bad = contradicted(t, random.Random(n))
                assert bad is None, f"is_zero proves {to_sympy(t)} = 0, but it is {bad}"
    assert counts["True"] > 150 and counts["False"] > 150, counts
