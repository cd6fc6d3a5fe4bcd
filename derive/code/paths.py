"""Layer mistakes named by what the gradient left out: a path, a kernel flip, a routing.

The true ∂L/∂V is a sum over the ways V reaches the loss.  Every reading of a value U in a
forward statement ``T = f(..., U, ...)`` is an *edge* of the computation; the paths from V
to the loss run through edges.  Cutting one edge (U read there as a constant: a
stop-gradient) and differentiating again gives ∂L/∂V *without the paths through that
edge*.  When a refuted claim equals that gradient — proven by the judge's exact zero test,
entry by entry, on the declared domains — the claim is missing exactly those paths:

- batch norm's dx without the path through the mean (x read by ``mu = np.mean(x)``);
- an LSTM's dprev_c without the path from next_c into next_h;
- a residual block's dx without the skip connection (x read directly by ``out = ... + x``);
- backpropagation through time without the carry dh_next: the edge is a *recurrence*
  (``prev_h`` read in the loop before the loop assigns it), cut from the second step on;
- a gated unit ``x * sigmoid(x)`` whose dx forgets one of the two readings of x.

The same cut values name a path counted twice (claim = truth + its contribution) or one
with the wrong sign, and for a value read by several statements (X feeding Q, K and V),
a claim that keeps only some of them.  When the line is written in the gradients of those
statements' values (dX from dQ, dK and dV), this is decided in the joint cut of the joint
chain step instead (:meth:`_Finder.joint`): dQ, dK and dV free symbols, each reading's share
a small polynomial, no expansion of what lies between X and the loss.

Two layer mistakes are not missing paths:

- a convolution's backward pass without the 180° kernel flip (correlation where
  convolution belongs): the claim with the kernel's entries flipped on its spatial axes
  (``np.flip(w, axis=(2, 3))``) is the truth;
- max pooling's gradient spread over the window: the claim is the gradient of the same
  network with average pooling in place of max pooling (spread evenly), or a whole
  multiple of it (every entry of the window gets dout).

Nothing here is a guess: a diagnosis is returned only when the claim is proven equal to
the repaired gradient, and each repaired gradient is the truth of a changed forward pass
computed exactly as the truth is (:mod:`derive.code.blocks`).  The forward block is
rewritten as a syntax tree and interpreted; it is never run as Python.
"""

from __future__ import annotations

import itertools
import random
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from fractions import Fraction
from functools import partial
from typing import Any

import numpy as np
import sympy
from sympy import Expr, Symbol

from derive.code import backward as B
from derive.code.arrays import NotRepresentable, SymArray, symbolic_numpy, symbols_array, to_exprs
from derive.code.gradient import Differentiator
from derive.code.interpret import Interpreter
from derive.code.report import GradientCheck
from derive.errors import FormulaError
from derive.lang import formula as F
from derive.lang import program as P
from derive.prove.numeric import NotExact
from derive.prove.zero import TooLarge
from derive.records import Diagnosis, DiagnosisCode, Verdict
from derive.util import budget

__all__ = ["diagnose"]

_EMPTY = np.empty  # NumPy's own, also while symbolic_numpy() replaces it
MAX_EDGES = 40  # edges tried for one gradient (each a forward pass and a derivative)
MAX_PAIRED = 8  # edges whose pairs are tried (two paths forgotten at once): at most 28 pairs
MAX_DIRECT = 6  # readings of V itself whose subsets are tried (X feeding Q, K and V)
#: pooling functions of the forward pass and the function whose gradient spreads evenly
_SPREAD = {"maxpool": "avgpool", "max": "mean"}
_FAILS = (FormulaError, NotRepresentable, ValueError, TypeError, IndexError, KeyError, ZeroDivisionError)


@dataclass(frozen=True)
class Edge:
    """One reading of a value in the forward block (or the loss's own use of an output)."""

    name: str  # U, the value read
    where: tuple[int, ...] = ()  # the statement: its index, then its index in each loop body around it
    occurrence: int | None = None  # which reading of U in the statement (None: all of them)
    count: int = 1  # how many times the statement reads U
    statement: P.Assign | P.AugAssign | None = None
    loop: P.For | None = None  # set when U is carried from one step of this loop to the next
    output: str | None = None  # the loss's use of the output U: its upstream gradient's name
    context: str | None = None  # the call around this one reading (sigmoid(x)), if any
    skip: bool = False  # added as it is to a learned branch that also reads it (out = F(x) + x)

    @property
    def key(self) -> tuple[Any, ...]:
        return self.name, self.where, self.occurrence, self.output

    def target(self) -> str:
        assert self.statement is not None
        return _targets(self.statement)[0]

    def describe(self, base: str) -> str:
        if self.output is not None:
            return f"the upstream gradient {self.output} of {self.name} itself ({self.name} is an output)"
        s = self.statement
        assert s is not None
        text, target = s.text.strip(), self.target()
        if self.loop is not None:
            return (f"the carry through the steps of the loop: each step reads the {self.name} of the step before "
                    f"({text}), so ∂L/∂{self.name} must be passed back from each step to the one before "
                    f"(backpropagation through time's carry, such as dh_next)")
        reading = ""  # which reading of the name, when the statement reads it more than once
        if self.occurrence is not None:
            ordinal = _ORDINAL.get(self.occurrence, f"{self.occurrence + 1}th")
            reading = self.context or f"the {ordinal} reading of {self.name}"
        if self.name != base:
            return f"the path from {self.name} into {target}" + (f", through {reading}" if reading else "") + \
                f" ({text})"
        if reading:
            return f"the path through {reading} ({text})" + (": the skip connection" if self.skip else "")
        return f"the path through {target} ({text})" + (": the skip connection" if self.skip else "")


_ORDINAL = {0: "first", 1: "second", 2: "third", 3: "fourth"}


def diagnose(run: Any, base: str, claimed: Any, true: np.ndarray,
             line: tuple[str, P.Assign, Any] | None = None,
             adjoints: Mapping[str, str] | None = None) -> Diagnosis | None:
    """Name the layer mistake of a refuted gradient ∂L/∂``base`` (``claimed``, the truth
    ``true``), or None.  ``run`` is a :class:`derive.code.blocks._Run` whose sample point
    is set (its ``_same`` proves two arrays equal); ``line``, when the gradient is one
    line, is (its name, the line, the names before it); ``adjoints`` the gradient names
    dV the line reads whose values there are the true ∂L/∂V (name → V)."""
    claimed = claimed if isinstance(claimed, np.ndarray) else to_exprs(claimed)
    plain = claimed.view(np.ndarray)
    if plain.shape != true.shape:
        return None
    finder = _finder(run)
    try:
        found = finder.flipped(base, plain, true, line)
        if found is None:
            found = finder.spread(base, plain, true)
        if found is None and line is not None and adjoints:
            decided, found = finder.joint(base, plain, line, adjoints)
            if decided:  # the line is a sum over the cut's readings: the search in the cut is complete
                return found
        if found is None:
            found = finder.paths(base, plain, true)
    except (budget.Timeout, TooLarge, MemoryError):
        raise  # the caller's budget (derive.code.backward._bounded) decides
    except Exception:  # noqa: BLE001 - a diagnosis only adds to a verdict: failing to find one changes nothing
        return None
    return found


_FINDERS: weakref.WeakKeyDictionary[Any, _Finder] = weakref.WeakKeyDictionary()


def _finder(run: Any) -> _Finder:
    found = _FINDERS.get(run)
    if found is None:
        found = _FINDERS[run] = _Finder(run)
    return found


class _Finder:
    """The repaired gradients of one run, each computed once (a block's chain and its
    lines judged on their own share them)."""

    def __init__(self, run: Any) -> None:
        self._run = weakref.ref(run)  # a strong one would keep the run (the key of _FINDERS) alive forever
        self.forward: tuple[P.Statement, ...] = run.program.forward
        self._cache: dict[tuple[Any, ...], np.ndarray | None] = {}
        self._joints: dict[tuple[Any, ...], tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]] = {}

    @property
    def run(self) -> Any:
        run = self._run()
        assert run is not None  # the finder is only reached through its live run
        return run

    def same(self, a: np.ndarray, b: np.ndarray) -> bool:
        return bool(self.run._same(a, b))

    # ------------------------------------------------------------ the kernel flip
    def flipped(self, base: str, claimed: np.ndarray, true: np.ndarray,
                line: tuple[str, P.Assign, Any] | None = None) -> Diagnosis | None:
        """true = claimed with a kernel (a leaf of rank ≥ 3) flipped on its spatial axes:
        in the line as written (``w`` → ``np.flip(w, axis=(2, 3))``), or in the claimed value
        (every entry of w in it flipped: a loop's scatter, its upstream gradient free)."""
        kernels = {n: leaf for n, leaf in self.run.leaves.items() if isinstance(leaf, SymArray) and leaf.ndim >= 3}
        if not kernels:
            return None
        used = set().union(*(B.free_symbols(e) for e in claimed.reshape(-1) if isinstance(e, sympy.Basic)))
        for name, leaf in kernels.items():
            entries = leaf.view(np.ndarray)
            axes = tuple(range(2, leaf.ndim))
            if all(leaf.shape[a] == 1 for a in axes) or not used & set(entries.reshape(-1)):
                continue
            spelled = f"np.flip({name}, axis={axes if len(axes) > 1 else axes[0]})"
            words = (f"the kernel {name} is not flipped by 180°: true with {name} → {spelled}. The forward pass is "
                     f"a cross-correlation, so its gradient is a convolution with the flipped kernel (a correlation "
                     f"where a convolution belongs, or the other way round)")
            if line is not None and name in F.names(line[1].value):
                flip = F.Call("flip", (F.Name(name, 0),),
                              F.Tuple(tuple(F.Num(sympy.Integer(a), 0) for a in axes), 0), 0)
                written = _rebuild(line[1].value, partial(_put, name=name, node=flip))
                value = self._value(written, line)
                if value is not None and self.same(value, true):
                    return Diagnosis(DiagnosisCode.KERNEL_FLIP, words)
            flipped = np.flip(entries, axes)
            mapping = {entries[idx]: flipped[idx] for idx in np.ndindex(*entries.shape)}
            candidate = _map(claimed, partial(_xreplace, mapping=mapping))
            if self.same(candidate, true):
                return Diagnosis(DiagnosisCode.KERNEL_FLIP, words)
        return None

    def _value(self, node: F.Node, line: tuple[str, P.Assign, Any]) -> np.ndarray | None:
        """A rewritten line's value, among the names before it; None if it does not run."""
        env = line[2]
        try:
            with symbolic_numpy():
                value = Interpreter(env if type(env) is not dict else dict(env)).value(node, line[1].text)
        except _FAILS:
            return None
        value = value if isinstance(value, np.ndarray) else to_exprs(value)
        return value.view(np.ndarray)

    # ------------------------------------------------------------ max pooling's routing
    def spread(self, base: str, claimed: np.ndarray, true: np.ndarray) -> Diagnosis | None:
        """claimed = (k times) the gradient with every max pooling replaced by an average."""
        for old, new in _SPREAD.items():
            sites = [c for _, s, _ in _walk(self.forward) for c in _calls(s.value) if c.func == old]
            if not sites:
                continue
            # each max pooling keeps its value, and takes the average's derivative
            forward = tuple(_rebuild_statements(self.forward, partial(_rename_call, old=old, new=f"_spread:{old}")))
            alt = self._gradient(("spread", base, old), base, forward)
            if alt is None:
                continue
            words = (f"the gradient of each {old} window is spread evenly over the window (the gradient of "
                     f"{new} where {old} is): max pooling sends it only to the window's maximum (its argmax), "
                     f"dx = (window == window.max()) * dout")
            if self.same(claimed, alt):
                return Diagnosis(DiagnosisCode.POOL_ROUTING, words)
            k = self._ratio(claimed, alt)
            if k is not None and k not in (0, 1) and self.same(claimed, _map(alt, partial(_times, k=k))):
                size = _window(sites[0])
                how = ("to every entry of its window" if size == k else f"spread evenly and multiplied by {k}")
                return Diagnosis(DiagnosisCode.POOL_ROUTING,
                                 f"the gradient of each {old} window goes {how} ({k}× the gradient of {new}): "
                                 f"max pooling sends it only to the window's maximum (its argmax), "
                                 f"dx = (window == window.max()) * dout")
        return None

    def _ratio(self, claimed: np.ndarray, alt: np.ndarray) -> Any:
        """claimed / alt at the sample point, as the simplest rational its value allows (a
        candidate only: the caller proves claimed = k·alt)."""
        at = self.run._at
        if at is None:
            return None
        for c, a in zip(claimed.reshape(-1), alt.reshape(-1), strict=True):
            try:
                try:
                    r = B._ratio(at.exact(c), at.exact(a))
                except NotExact:
                    r = B._ratio(at.interval(c), at.interval(a))
            except Exception:  # noqa: BLE001 - a screen only: undefined here, try the next entry
                continue
            if r is not None and r != 0:
                return sympy.Rational(r.numerator, r.denominator)
        return None

    # ------------------------------------------------------------ paths
    def paths(self, base: str, claimed: np.ndarray, true: np.ndarray) -> Diagnosis | None:
        edges = _edges(self.run, base)[:MAX_EDGES]
        cuts: dict[tuple[Any, ...], np.ndarray] = {}
        own = [e for e in edges if e.name == base]
        for group in (own, [e for e in edges if e.name != base]):
            for e in group:
                cut = self._cut(base, e)
                if cut is None:
                    continue
                cuts[e.key] = cut
                found = self._one(base, claimed, true, e, cut)
                if found is not None:
                    return found
            if group is own:
                found = self._subsets(base, claimed, true, [e for e in own if e.occurrence is None], cuts)
                if found is not None:
                    return found
        return self._pairs(base, claimed, true, [e for e in edges if e.key in cuts], cuts)

    # ------------------------------------------------------------ paths, in the joint cut
    def joint(self, base: str, claimed: np.ndarray, line: tuple[str, P.Assign, Any],
              adjoints: Mapping[str, str]) -> tuple[bool, Diagnosis | None]:
        """The paths of B through its readings V₁ … V_k (X read by Q, K and V), named in
        the joint cut of :func:`joint_chain` without expanding the loss through them.

        With B and every V_i cut loose (checked by :func:`shares`: L has none of B's
        entries, no V_i's value another's), ∂L/∂B = Σ_i g_i·∂V_i/∂B at g_i = ∂L/∂V_i, and
        the truth without the paths through the readings outside a set S is the sum over
        S alone.  The line is evaluated with each dV_i it reads (the true ∂L/∂V_i, by
        ``adjoints``) replaced by free symbols g_i: when it is proven equal to such a sum
        as an identity in g and the inputs, it equals the repaired truth at g = ∂L/∂V_i.

        Returns (decided, diagnosis).  Decided when the cut holds and the line reads
        nothing but forward values, inputs, upstream gradients and some of these dV_i:
        its value is then a function of the g alone, so a mistake in the paths through
        B's readings is found here or not at all, and the expansion is not tried."""
        run = self.run
        readings = self._readings(base)
        if readings is None:
            return False, None
        _, statement, env = line
        values = {v for _, v in readings}
        grads: dict[str, str] = {}
        for n in sorted(F.names(statement.value)):
            if n in run.forward_env or n in run.leaves or n in run.ups:
                continue
            v = adjoints.get(n)
            if v is None or v not in values or run.base_of(n) != v:
                return False, None  # a name whose value the cut does not know: a backward temporary
            grads[n] = v
        if not grads:
            return False, None
        key = ("joint", base)
        if key not in self._joints:  # (the cut's forward pass, once for all the lines judged)
            gs = {v: symbols_array(f"g⟨d{v}⟩", run.forward_env[v].shape).view(np.ndarray) for v in values}
            self._joints[key] = gs, shares(run, base, {v: v for v in values}, gs)
        gs, parts = self._joints[key]
        if parts is None:
            return False, None
        try:
            with symbolic_numpy():
                scope = {n: env[n] for n in F.names(statement.value) if n not in grads and n in env}
                scope.update({n: gs[v].view(SymArray).copy() for n, v in grads.items()})
                value = Interpreter(scope).value(statement.value, statement.text)
        except _FAILS:
            return False, None
        value = B._objects(value if isinstance(value, np.ndarray) else to_exprs(value))
        if value.shape != claimed.shape:
            return False, None
        edges = [e for e, v in readings if not all(B.is_zero(x) for x in parts[v].reshape(-1))]  # no share: no path
        share = {e.key: parts[v] for e, v in readings}
        at = self._point(gs)

        def matches(candidate: np.ndarray) -> bool:
            if any(at.nonzero(x - y) is True for x, y in zip(value.reshape(-1), candidate.reshape(-1), strict=True)):
                return False  # certified different at a point: no proof tried
            return self.same(value, candidate)

        for size in range(len(edges) - 1, 0, -1):  # the fewest paths missing first
            for kept in itertools.combinations(edges, size):
                if matches(sum((share[e.key] for e in kept[1:]), share[kept[0].key])):
                    missing = [e for e in edges if e not in kept]
                    if len(missing) == 1:
                        return True, Diagnosis(DiagnosisCode.MISSING_PATH,
                                               f"missing one of the paths through which {base} reaches the loss: "
                                               f"{missing[0].describe(base)}; true with that path added")
                    return True, Diagnosis(DiagnosisCode.MISSING_PATH,
                                           f"missing {len(missing)} of the {len(edges)} paths through which {base} "
                                           f"reaches the loss: {'; '.join(e.describe(base) for e in missing)}. It "
                                           f"has only {'; '.join(e.describe(base) for e in kept)}; true with all of "
                                           f"them added")
        if not edges:
            return True, None
        full = sum((share[e.key] for e in edges[1:]), share[edges[0].key])
        for e in edges:
            where = e.describe(base)
            if matches(full + share[e.key]):
                return True, Diagnosis(DiagnosisCode.EXTRA_PATH, f"counts one of the paths through which {base} "
                                                                 f"reaches the loss twice: {where}; true with it "
                                                                 f"counted once")
            if matches(full - 2 * share[e.key]):
                return True, Diagnosis(DiagnosisCode.PATH_SIGN, f"one of the paths through which {base} reaches "
                                                                f"the loss has the wrong sign: {where}; true with "
                                                                f"its sign flipped")
        return True, None

    def _readings(self, base: str) -> list[tuple[Edge, str]] | None:
        """B's readings, each the last assignment of a forward value V at the top level
        (``Q = X.dot(Wq)``), with their V; None when B is read otherwise (in a loop, as a
        recurrence, as an output) or by fewer than two or more than MAX_DIRECT values."""
        run = self.run
        out: list[tuple[Edge, str]] = []
        for e in _edges(run, base):
            if e.name != base or e.occurrence is not None:
                continue
            if e.output is not None or e.loop is not None or len(e.where) != 1 or not isinstance(e.statement, P.Assign):
                return None
            targets = _targets(e.statement)
            if len(targets) != 1 or run.last.get(targets[0]) != e.where[0] or targets[0] == base:
                return None
            out.append((e, targets[0]))
        if not 2 <= len(out) <= MAX_DIRECT or len({v for _, v in out}) != len(out):
            return None
        return out

    def _point(self, gs: dict[str, np.ndarray]) -> B._At:
        """The sample point with a value for each free adjoint symbol (a screen only)."""
        at = self.run._at
        values: dict[Any, Fraction] = dict(at.values) if at is not None else {}
        rng = random.Random(len(values))
        for g in gs.values():
            for x in g.reshape(-1):
                values[x] = Fraction(rng.choice([-1, 1]) * rng.randint(1, 12), rng.choice([2, 4, 8]))
        return B._At(values)

    def _pairs(self, base: str, claimed: np.ndarray, true: np.ndarray, edges: list[Edge],
               cuts: dict[tuple[Any, ...], np.ndarray]) -> Diagnosis | None:
        """Two paths left out at once (layer norm's dx = dxhat / std: the mean's and the
        variance's): the truth with two edges cut."""
        at = self.run._at
        if at is None:
            return None
        alive = [e for e in edges if any(at.nonzero(c - t) is True for c, t in  # a share that is not 0 here
                                         zip(cuts[e.key].reshape(-1), true.reshape(-1), strict=True))][:MAX_PAIRED]
        for a, b in itertools.combinations(alive, 2):
            if (a.name, a.where) == (b.name, b.where) or (a.loop and b.loop) or (a.output and b.output):
                continue  # one reading inside the other, or two carries (one loop hook per run)
            cut = self._cut(base, a, b)
            if cut is not None and self.same(claimed, cut):
                return Diagnosis(DiagnosisCode.MISSING_PATH,
                                 f"missing two of the paths through which {base} reaches the loss: "
                                 f"{a.describe(base)}; and {b.describe(base)}; true with both added")
        return None

    def _one(self, base: str, claimed: np.ndarray, true: np.ndarray, e: Edge, cut: np.ndarray) -> Diagnosis | None:
        """claimed = the truth without the paths through edge e, with them twice, or with them negated."""
        where = e.describe(base)
        if self.same(claimed, cut):
            return Diagnosis(DiagnosisCode.MISSING_PATH, f"missing one of the paths through which {base} reaches "
                                                         f"the loss: {where}; true with that path added")
        if self.same(claimed, 2 * true - cut):
            return Diagnosis(DiagnosisCode.EXTRA_PATH, f"counts one of the paths through which {base} reaches the "
                                                       f"loss twice: {where}; true with it counted once")
        if self.same(claimed, 2 * cut - true):
            return Diagnosis(DiagnosisCode.PATH_SIGN, f"one of the paths through which {base} reaches the loss has "
                                                      f"the wrong sign: {where}; true with its sign flipped")
        return None

    def _subsets(self, base: str, claimed: np.ndarray, true: np.ndarray, direct: list[Edge],
                 cuts: dict[tuple[Any, ...], np.ndarray]) -> Diagnosis | None:
        """V read by several statements (X by Q, K and V): a claim that keeps some of them."""
        direct = [e for e in direct if e.key in cuts][:MAX_DIRECT]
        direct = [e for e in direct if not self.same(cuts[e.key], true)]  # a reading with no share is no path
        if len(direct) < 3:
            return None
        part = {e.key: true - cuts[e.key] for e in direct}  # each reading's own share: they sum to the truth
        for size in range(1, len(direct) - 1):
            for kept in itertools.combinations(direct, size):
                total = sum((part[e.key] for e in kept[1:]), part[kept[0].key])
                if self.same(claimed, total):
                    missing = [e for e in direct if e not in kept]
                    return Diagnosis(DiagnosisCode.MISSING_PATH,
                                     f"missing {len(missing)} of the {len(direct)} paths through which {base} "
                                     f"reaches the loss: {'; '.join(e.describe(base) for e in missing)}. It has "
                                     f"only {'; '.join(e.describe(base) for e in kept)}; true with all of them added")
        return None

    def _cut(self, base: str, *cut_edges: Edge) -> np.ndarray | None:
        """∂L/∂base with the edges cut (each reading held constant)."""
        key = ("cut", base, *(e.key for e in cut_edges))
        if key in self._cache:
            return self._cache[key]
        forward = self.forward
        output = loop = None
        for e in cut_edges:
            if e.output is not None:
                output = e.name
                continue
            assert e.statement is not None
            loop = loop or e.loop
            call = "_carry" if e.loop is not None else "_stop"

            def cut(s: P.Statement, e: Edge = e, call: str = call) -> P.Statement:
                assert isinstance(s, (P.Assign, P.AugAssign))
                return replace(s, value=_wrap(s.value, e.name, e.occurrence, call))

            forward = _replace_at(forward, e.where, cut)
        return self._gradient(key, base, forward, loop=loop, output=output)

    def _gradient(self, key: tuple[Any, ...], base: str, forward: tuple[P.Statement, ...],
                  loop: P.For | None = None, output: str | None = None) -> np.ndarray | None:
        """∂L/∂base of a changed forward block, computed as the truth is; None if it does not run."""
        if key in self._cache:
            return self._cache[key]
        try:
            value = self._compute(base, forward, loop, output)
        except _FAILS:
            value = None
        self._cache[key] = value
        return value

    def _compute(self, base: str, forward: tuple[P.Statement, ...], loop: P.For | None,
                 output: str | None) -> np.ndarray:
        run = self.run
        record: dict[Symbol, Expr] = {}

        def stop_one(e: Any) -> Any:
            if not isinstance(e, sympy.Basic) or not e.free_symbols:
                return e
            s = Symbol(f"⟨stop{len(record)}⟩", real=True)
            record[s] = e.xreplace(record)  # the earlier stops already put back: one pass restores all
            return s

        def stop(v: Any) -> Any:
            if isinstance(v, np.ndarray):
                plain = v.view(np.ndarray)
                if plain.dtype != object:
                    return v
                out = _EMPTY(plain.shape, dtype=object)
                for idx in np.ndindex(*plain.shape):
                    out[idx] = stop_one(plain[idx])
                return out.view(SymArray)
            return stop_one(v)

        leaf = base in run.leaves and base not in run.last
        atoms = None
        if leaf:
            symbols = run.leaves[base].view(np.ndarray)
        else:
            original = run.forward_env[base]
            if not isinstance(original, np.ndarray):
                raise NotRepresentable(f"{base} is not an array")
            atoms = symbols_array(f"⟨{base}⟩", original.shape).view(np.ndarray)
            symbols = atoms
        k = -1 if leaf else run.last[base]

        with symbolic_numpy():
            env = dict(run.leaves)
            interpreter = Interpreter(env)

            def carry(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
                assert loop is not None
                bounds = [int(interpreter.value(b, loop.text)) for b in (loop.start, loop.stop, loop.step)]
                steps = range(*bounds)
                first = steps[-1] if loop.reverse else steps[0]
                return args[0] if env.get(loop.var) == first else stop(args[0])

            interpreter.calls["_stop"] = lambda node, args, axis, kw: stop(args[0])
            interpreter.calls["_carry"] = carry
            for old, new in _SPREAD.items():
                interpreter.calls[f"_spread:{old}"] = partial(_spread, interpreter.calls[old], interpreter.calls[new],
                                                               old, stop)

            def after(s: P.Statement, j: int) -> None:
                if j == k and atoms is not None:
                    env[base] = atoms.view(SymArray).copy()

            interpreter.run(forward, after)
            if output is not None:
                env[output] = stop(env[output])
            loss = run._loss(env, make_upstream=False)
        back = {} if atoms is None else dict(zip(atoms.reshape(-1), run.forward_env[base].view(np.ndarray).reshape(-1),
                                                 strict=True))
        d = Differentiator(loss)
        out = _EMPTY(symbols.shape, dtype=object)
        for idx in np.ndindex(*symbols.shape):
            g = d.diff(symbols[idx])
            out[idx] = g.xreplace(record).xreplace(back) if (record or back) else g
        return out


# ------------------------------------------------------------------ the edges of a forward block
def _edges(run: Any, base: str) -> list[Edge]:
    """Every reading, after base's last assignment, of a value that depends on base, in a
    statement whose value reaches the loss: base's own readings first, then the others in
    the block's order; the loss's use of an output last among each."""
    forward = run.program.forward
    start = -1 if (base in run.leaves and base not in run.last) else run.last[base]
    later = [(w, s, loops) for w, s, loops in _walk(forward) if w[0] > start]
    depends = {base}
    changed = True
    while changed:
        changed = False
        for _, s, _ in later:
            if F.names(s.value) & depends or (isinstance(s, P.AugAssign) and _targets(s)[0] in depends):
                for t in _targets(s):
                    if t not in depends:
                        depends.add(t)
                        changed = True
    outputs = list(run.program.upstream) or ([run.program.loss] if run.program.loss else [])
    reach = set(outputs)
    changed = True
    while changed:
        changed = False
        for _, s, _ in later:
            if set(_targets(s)) & reach and not F.names(s.value) <= reach:
                reach |= F.names(s.value)
                changed = True
    values = {**run.leaves, **run.forward_env}
    params = set(run.program.parameters)
    own: list[Edge] = []
    others: list[Edge] = []
    for where, s, loops in later:
        assert isinstance(s, (P.Assign, P.AugAssign))
        if not set(_targets(s)) & reach or not any(_symbolic(values.get(t)) for t in _targets(s)):
            continue  # a statement whose value does not reach the loss, or a size (T, D = X.shape)
        readings = _readings(s.value)
        for name in dict.fromkeys(n for n, _, _ in readings):
            value = values.get(name)
            if name not in depends or not _symbolic(value):
                continue
            carried = _carried(name, where, loops)
            count = sum(1 for n, _, _ in readings if n == name)
            mine = [(c, term) for n, c, term in readings if n == name]
            branch = any(F.names(t) & params and F.names(t) & depends for t in _terms(s.value)
                         if not (isinstance(t, F.Name) and t.id == name))  # a learned branch beside it
            found = [Edge(name, where, None, count, s, carried, skip=count == 1 and mine[0][1] and branch)]
            if count > 1 and carried is None:
                contexts = [c for c, _ in mine]
                found += [Edge(name, where, i, count, s, None, context=ctx if contexts.count(ctx) == 1 else None,
                               skip=term and branch) for i, (ctx, term) in enumerate(mine)]
            (own if name == base else others).extend(found)
    for o, up in run.program.upstream.items():
        if o in depends and o != run.program.loss:
            (own if o == base else others).append(Edge(o, output=up))
    return own + others


MAX_JOINT = 6  # proven gradients one joint chain step may start from (X feeding Q, K and V: 3)


def joint_chain(run: Any, base: str, name: str, check: Any, formula: tuple[F.Node, str] | None = None) -> bool:
    """dB proven from several proven gradients at once: ∂L/∂B = Σ_V Σ_i (∂L/∂V_i) ∂V_i/∂B
    when L depends on B only through V₁ … V_k together (X feeding Q, K and V).

    The values V are the nearest ones: each proven dV whose V may depend on B, less those
    whose V may depend on another of them.  Checked exactly, in one forward pass with B and
    every V cut loose (their entries fresh symbols after their last assignments): the loss
    has none of B's entries, and no V's value has another V's (so each dV's truth, ∂L/∂V
    with V alone cut loose, is the partial derivative of that loss by V).  Then, as in
    ``_Run.chained_check``, the block run again with each dV's final value replaced by free
    symbols g_V must compute Σ_V Σ_i g_V,i ∂V_i/∂B_j for every g: at g = dV, ∂L/∂B.
    True when ``check`` was proven so (``run._chain_proof`` sets it).

    A claim (``formula``) names true gradients: the dV it names are the candidates, each
    exact by definition, and the claim is evaluated with each of them its g."""
    forward = run.program.forward
    values: dict[str, str] = {}
    if formula is None:
        candidates = list(run._proven)
    else:
        candidates = run.gradients_named(formula[0])
    for dv in candidates:
        v = run.base_of(dv)
        if dv == name or v is None or v == base or v not in run.last or v in values.values():
            continue
        if depends_on(forward, v, base):
            values[dv] = v
    nearest = {dv: v for dv, v in values.items()
               if not any(o != v and depends_on(forward, v, o) for o in values.values())}
    if not 2 <= len(nearest) <= MAX_JOINT:
        return False
    gs = {dv: symbols_array(f"g⟨{dv}⟩", run.truth(v).shape).view(np.ndarray) for dv, v in nearest.items()}
    true = pullback(run, base, nearest, gs)
    if true is None:
        return False
    statements = run.program.backward
    lasts = {dv: max((k for k, s in enumerate(statements) if dv in P.assigned((s,))), default=-1) for dv in nearest}

    def compute(env: dict[str, Any]) -> Any:
        if formula is not None:  # a claim: each dV's truth is its g
            for dv in nearest:
                env[dv] = gs[dv].view(SymArray).copy()
            return Interpreter(env).value(formula[0], formula[1])

        def after(s: P.Statement, j: int) -> None:  # each dV's final value is its g
            for dv, k in lasts.items():
                if j == k:
                    env[dv] = gs[dv].view(SymArray).copy()

        Interpreter(env).run(statements, after)
        return env[name]

    exact = GradientCheck(name="", verdict=Verdict.PROVEN)  # a claim's dV is the truth itself
    sources = [run._proven[dv] if formula is None else exact for dv in nearest]
    proven = replace(sources[0], almost_everywhere=any(p.almost_everywhere for p in sources),
                     on_domain=next((p.on_domain for p in sources if p.on_domain), ""))
    names = list(nearest)
    said = ", ".join(names[:-1]) + " and " + names[-1]
    return bool(run._chain_proof(check, compute, said, true, proven))


def pullback(run: Any, base: str, cut: dict[str, str], gs: dict[str, np.ndarray],
             general: bool = False) -> np.ndarray | None:
    """Σ_V Σ_i g_V,i ∂V_i/∂B_j for each entry j of B, in the inputs' symbols; None unless L,
    with B and every V of ``cut`` (dV → V) cut loose, has none of B's entries and no V's
    value has another V's (see :func:`joint_chain`; one V: ``_Run._pullback``).
    ``general``: in B's entries as the symbols of its own cut ⟨B⟩ (``_Run.general_check``),
    not B(x)."""
    found = _pullback_terms(run, base, cut, gs, general)
    if found is None:
        return None
    shape, parts = found
    out = _EMPTY(shape, dtype=object)
    for j in np.ndindex(*shape):
        out[j] = sympy.Add(*(t for terms in parts.values() for t in terms[j]))
    return out


def shares(run: Any, base: str, cut: dict[str, str], gs: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Each V's own share Σ_i g_V,i ∂V_i/∂B_j of :func:`pullback` (they add up to it), under
    the same conditions; None unless they hold."""
    found = _pullback_terms(run, base, cut, gs)
    if found is None:
        return None
    shape, parts = found
    out = {}
    for dv, terms in parts.items():
        out[dv] = _EMPTY(shape, dtype=object)
        for j in np.ndindex(*shape):
            out[dv][j] = sympy.Add(*terms[j])
    return out


def _pullback_terms(run: Any, base: str, cut: dict[str, str], gs: dict[str, np.ndarray],
                    general: bool = False
                    ) -> tuple[tuple[int, ...], dict[str, dict[tuple[int, ...], list[Expr]]]] | None:
    """B's shape and the terms g_V,i ∂V_i/∂B_j of :func:`pullback`, by dV and entry j of B."""
    source = run.leaves[base] if base not in run.last else run.forward_env.get(base)
    if not isinstance(source, np.ndarray):
        return None
    plain = source.view(np.ndarray)
    b_atoms = symbols_array(f"⟪{base}⟫", plain.shape).view(np.ndarray)
    back_b = dict(zip(b_atoms.reshape(-1), plain.reshape(-1), strict=True))
    k_base = run.last.get(base)
    names = list(cut.values())
    cuts = {v: symbols_array(f"⟪{v}⟫", gs[dv].shape).view(np.ndarray) for dv, v in cut.items()}
    at: dict[int, list[str]] = {}
    for v in names:
        at.setdefault(run.last[v], []).append(v)
    seen: dict[str, Any] = {}

    def after(s: P.Statement, j: int) -> None:
        if j == k_base:
            env[base] = b_atoms.view(SymArray).copy()
        for v in at.get(j, ()):
            seen[v] = env[v]
            env[v] = cuts[v].view(SymArray).copy()

    try:
        with symbolic_numpy():
            env = dict(run.leaves)
            if k_base is None:
                env[base] = b_atoms.view(SymArray).copy()
            Interpreter(env).run(run.program.forward, after)
            loss = run._loss(env, make_upstream=False)
    except _FAILS:
        return None
    mine = set(b_atoms.reshape(-1))
    cut_symbols = {x for c in cuts.values() for x in c.reshape(-1)}
    if B.free_symbols(loss) & mine:
        return None
    for dv, v in cut.items():
        value = seen.get(v)
        if not isinstance(value, np.ndarray) or value.shape != gs[dv].shape:
            return None
        if any(isinstance(x, sympy.Basic) and B.free_symbols(x) & cut_symbols for x in value.view(np.ndarray).flat):
            return None
    if general:  # ⟪B⟫ → ⟨B⟩, the symbols of B's own cut
        back_b = {b: Symbol(str(b.name).replace("⟪", "⟨", 1).replace("⟫", "⟩", 1), real=True)
                  for b in b_atoms.reshape(-1)}
    out: dict[str, dict[tuple[int, ...], list[Expr]]] = {dv: {} for dv in cut}
    for j in np.ndindex(*plain.shape):
        b = b_atoms[j]
        for dv, v in cut.items():
            terms = []
            for g, x in zip(gs[dv].reshape(-1), seen[v].view(np.ndarray).reshape(-1), strict=True):
                if isinstance(x, sympy.Basic) and b in B.free_symbols(x):
                    terms.append(g * sympy.diff(x, b).xreplace(back_b))
            out[dv][j] = terms
    return plain.shape, out


def depends_on(forward: tuple[P.Statement, ...], name: str, base: str) -> bool:
    """Whether the forward value ``name`` may depend on ``base``: every statement's targets
    read what its value, its subscripts and the loops around it read, closed transitively
    over the whole block, whatever the order (an over-approximation: False is certain)."""
    reads: dict[str, set[str]] = {}

    def visit(statements: tuple[P.Statement, ...], around: frozenset[str]) -> None:
        for s in statements:
            if isinstance(s, P.For):
                visit(s.body, around | F.names(s.start) | F.names(s.stop) | F.names(s.step) | {s.var})
                continue
            read = set(around) | P.used((s,))
            for t in P.assigned((s,)):
                reads.setdefault(t, set()).update(read)

    visit(forward, frozenset())
    seen, stack = {name}, [name]
    while stack:
        for r in reads.get(stack.pop(), ()):
            if r == base:
                return True
            if r not in seen:
                seen.add(r)
                stack.append(r)
    return False


def _symbolic(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (isinstance(value, sympy.Expr) and bool(value.free_symbols))


def _walk(statements: tuple[P.Statement, ...], where: tuple[int, ...] = (),
          loops: tuple[P.For, ...] = ()) -> Iterator[tuple[tuple[int, ...], P.Assign | P.AugAssign, tuple[P.For, ...]]]:
    for k, s in enumerate(statements):
        if isinstance(s, P.For):
            yield from _walk(s.body, where + (k,), loops + (s,))
        else:
            yield where + (k,), s, loops


def _targets(s: P.Assign | P.AugAssign) -> list[str]:
    ts = s.targets if isinstance(s, P.Assign) else (s.target,)
    out = []
    for t in ts:
        if isinstance(t, F.Name):
            out.append(t.id)
        elif isinstance(t, F.Index) and isinstance(t.value, F.Name):
            out.append(t.value.id)
    return out


def _carried(name: str, where: tuple[int, ...], loops: tuple[P.For, ...]) -> P.For | None:
    """The innermost loop around the statement at ``where`` that reads ``name`` before
    assigning it in a step (the value of the step before: a recurrence), or None."""
    for depth in range(len(loops) - 1, -1, -1):
        loop = loops[depth]
        inner = where[depth + 1:]  # the statement's place inside this loop's body
        assigned_at = [w for w, s, _ in _walk(loop.body) if name in _targets(s)]
        if assigned_at and not any(w < inner for w in assigned_at):
            return loop
    return None


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, tuple):
        for x in node:
            yield from _children(x) if isinstance(x, tuple) else (x,)
    elif is_dataclass(node) and not isinstance(node, type):
        for f in fields(node):
            v = getattr(node, f.name)
            if isinstance(v, tuple):
                yield from _children(v)
            elif is_dataclass(v):
                yield v


def _readings(node: Any, call: str | None = None, term: bool = True) -> list[tuple[str, str | None, bool]]:
    """Each name the expression reads, in order, with the innermost call around it and
    whether it is one of the terms the expression adds up."""
    if isinstance(node, F.Name):
        return [(node.id, call, term)]
    if isinstance(node, F.Call):
        call = F.unparse(node)
    term = term and (isinstance(node, F.Neg) or (isinstance(node, F.BinOp) and node.op in "+-"))
    out: list[tuple[str, str | None, bool]] = []
    for child in _children(node):
        out.extend(_readings(child, call, term))
    return out


def _rebuild(node: Any, visit: Callable[[Any], Any]) -> Any:
    """The tree rebuilt bottom-up with ``visit`` applied to every node (in the reading
    order of :func:`_readings`)."""
    if isinstance(node, tuple):
        return tuple(_rebuild(x, visit) for x in node)
    if is_dataclass(node) and not isinstance(node, type):
        if isinstance(node, F.Name):
            return visit(node)
        changes = {f.name: _rebuild(getattr(node, f.name), visit) for f in fields(node)}
        return visit(replace(node, **changes))
    return node


def _wrap(value: F.Node, name: str, occurrence: int | None, call: str) -> F.Node:
    """The expression with the readings of ``name`` (or its ``occurrence``-th) wrapped in ``call(name)``."""
    seen = [0]

    def visit(n: Any) -> Any:
        if isinstance(n, F.Name) and n.id == name:
            i = seen[0]
            seen[0] += 1
            if occurrence is None or occurrence == i:
                return F.Call(call, (n,), None, n.col)
        return n

    out: F.Node = _rebuild(value, visit)
    return out


def _spread(keep: Callable[..., Any], derive_as: Callable[..., Any], old: str, stop: Callable[[Any], Any],
            node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    """``old(x)``'s value with ``derive_as(x)``'s derivative: stop(m) + a − stop(a)."""
    node = replace(node, func=old)
    m, a = keep(node, args, axis, kw), derive_as(node, args, axis, kw)
    return stop(m) + a - stop(a)


def _rename_call(node: Any, old: str, new: str) -> Any:
    def visit(n: Any) -> Any:
        return replace(n, func=new) if isinstance(n, F.Call) and n.func == old else n
    return _rebuild(node, visit)


def _rebuild_statements(statements: tuple[P.Statement, ...], fn: Callable[[Any], Any]) -> Iterator[P.Statement]:
    for s in statements:
        if isinstance(s, P.For):
            yield replace(s, body=tuple(_rebuild_statements(s.body, fn)))
        else:
            yield replace(s, value=fn(s.value))


def _replace_at(statements: tuple[P.Statement, ...], where: tuple[int, ...],
                fn: Callable[[P.Statement], P.Statement]) -> tuple[P.Statement, ...]:
    k = where[0]
    s = statements[k]
    if len(where) == 1:
        new = fn(s)
    else:
        assert isinstance(s, P.For)
        new = replace(s, body=_replace_at(s.body, where[1:], fn))
    return statements[:k] + (new,) + statements[k + 1:]


def _calls(node: Any) -> list[F.Call]:
    out = [node] if isinstance(node, F.Call) else []
    for child in _children(node):
        out.extend(_calls(child))
    return out


def _terms(node: F.Node) -> list[F.Node]:
    """The terms an expression adds up (``h @ W2 + b2 + x``: three)."""
    if isinstance(node, F.BinOp) and node.op in "+-":
        return _terms(node.left) + _terms(node.right)
    if isinstance(node, F.Neg):
        return _terms(node.operand)
    return [node]


def _window(call: F.Call) -> Any:
    """The number of entries of a pooling window (k² for ``maxpool(x, k)``), or None."""
    if call.func == "maxpool" and len(call.args) >= 2 and isinstance(call.args[1], F.Num):
        return call.args[1].value ** 2
    return None


def _xreplace(e: Expr, mapping: dict[Any, Any]) -> Expr:
    return e.xreplace(mapping)


def _put(n: Any, name: str, node: F.Node) -> Any:
    return node if isinstance(n, F.Name) and n.id == name else n


def _times(e: Expr, k: Any) -> Expr:
    return e * k


def _map(a: np.ndarray, fn: Callable[[Any], Any]) -> np.ndarray:
    out = _EMPTY(a.shape, dtype=object)
    for idx in np.ndindex(*a.shape):
        e = a[idx]
        out[idx] = fn(e) if isinstance(e, sympy.Basic) else e
    return out
