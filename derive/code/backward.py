"""The verdict on a user's NumPy backward code: proven, refuted or unproven, entry by entry.

:func:`gradcheck` runs the user's forward code on symbolic arrays (:mod:`derive.code.arrays`),
differentiates Σ out ⊙ G for a free symbolic upstream gradient G (``sympy.diff``, entry by
entry), runs the user's backward code on G and the same symbolic inputs, and judges every
entry of every returned gradient:

- **proven** when claimed − true is identically 0 (:func:`derive.prove.zero.is_zero`), or
  *proven almost everywhere* when it is 0 on every side of every kink (relu′, the ties of
  a max) and the kink arguments are nonconstant (:func:`derive.prove.cases.by_cases`);
- **refuted** when claimed ≠ true at a random point of small dyadic rationals (exact in
  ``float64`` too), decided in exact rational arithmetic or certified by 200-bit interval
  arithmetic; points on a kink are skipped.  The counterexample is given as NumPy arrays
  to paste into a test, with the entry and both values; a diagnosis (transpose, sign,
  constant factor) is given only when it is itself proven symbolically;
- **unproven** otherwise, and always on a timeout: never a pass.

This runs the user's code: it is for their own tests, never for a file from elsewhere.
"""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy
from sympy import Expr

from derive.code.arrays import NotRepresentable, SymArray, exact_floats, symbolic_numpy, symbols_array, to_exprs
from derive.code.domains import Domains
from derive.code.report import Counterexample, GradientCheck, Result, array_text
from derive.errors import DeriveError
from derive.ops.activations import EXP_REWRITTEN, PIECEWISE, Undetermined, kink_offsets
from derive.prove import core as _core
from derive.prove import graph
from derive.prove.cases import by_cases, normalized
from derive.prove.cases import offsets as case_offsets
from derive.prove.judge import exp_form
from derive.prove.numeric import (
    Evaluator,
    ExactContext,
    IntervalContext,
    NotExact,
    Undefined,
    interval_endpoints,
    simplest_rational,
)
from derive.prove.zero import MAX_TERMS, TooLarge, current_core, expanded_terms, is_zero
from derive.records import Verdict
from derive.util import budget

__all__ = ["gradcheck", "assert_backward", "BackwardError"]

DEFAULT_TIMEOUT = 120.0
POINTS = 8  # random points tried per gradient before giving up on a refutation
MAX_ENTRIES = 2000  # input entries (symbols) a call may have: exact work grows fast with the sizes


class BackwardError(DeriveError):
    """The functions given to :func:`gradcheck` do not fit together (a gradient of the wrong
    kind, a missing input, an output that is not an array)."""


# ------------------------------------------------------------------ the public API
def gradcheck(
    forward: Callable[..., Any],
    backward: Callable[..., Any] | None = None,
    shapes: Mapping[str, tuple[int, ...] | int] | None = None,
    *,
    upstream_name: str = "dout",
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
    points: int = POINTS,
) -> Result:
    """Prove or refute the user's backward code exactly; returns a :class:`Result`.

    ``shapes`` names the differentiable inputs in the order the functions take them
    (``{"x": (4, 3), "gamma": (3,), "eps": ()}``; ``()`` is a scalar).  Anything else
    (integer labels, a dropout mask, hyperparameters) is captured by the functions.

    Two calling conventions:

    - ``forward(*inputs) -> out`` and ``backward(dout, *inputs) -> grads``;
    - ``forward(*inputs) -> (out, grads)`` with ``backward=None``: a loss function; its
      output must be a scalar, or it takes the upstream gradient as a keyword argument
      named ``upstream_name`` (``dout``).

    ``out`` may be a tuple of arrays (an LSTM step's ``next_h, next_c``): ``dout`` is then
    the tuple of their upstream gradients.  ``grads`` is a tuple in the order of ``shapes``
    (``None`` for an input not checked) or a dict keyed by input names (``x`` or ``dx``).
    """
    if not shapes:
        raise BackwardError("gradcheck needs shapes={'x': (2, 3), ...}: the inputs to differentiate")
    started = time.monotonic()
    names = list(shapes)
    entries = sum(int(np.prod(_shape(item)[1], dtype=np.int64)) for item in shapes.items())
    if entries > MAX_ENTRIES:
        raise BackwardError(f"{entries} input entries: derive differentiates and expands exactly, entry by entry; "
                            f"use the smallest shapes that exercise the code (at most {MAX_ENTRIES} entries)")
    result = Result(verdict=Verdict.UNPROVEN, gradients={}, seconds=0.0, inputs=dict(_shape(s) for s in
                                                                                       shapes.items()))
    try:
        with budget.limit(timeout):
            _run(forward, backward, names, result, upstream_name, seed, points)
    except budget.Timeout:
        for name in names:
            result.gradients.setdefault(name, GradientCheck(name=name, verdict=Verdict.UNPROVEN,
                                                            why=f"timeout after {timeout:g} s: not checked"))
            g = result.gradients[name]
            if g.verdict == Verdict.UNPROVEN and not g.why:
                g.why = f"timeout after {timeout:g} s"
        result.timed_out = True
    result.seconds = time.monotonic() - started
    result.verdict = _overall(result)
    return result


def assert_backward(
    forward: Callable[..., Any],
    backward: Callable[..., Any] | None = None,
    shapes: Mapping[str, tuple[int, ...] | int] | None = None,
    **options: Any,
) -> Result:
    """:func:`gradcheck`, raising ``AssertionError`` with the report unless every gradient
    is proven.  Returns the result."""
    result = gradcheck(forward, backward, shapes, **options)
    if result.verdict != Verdict.PROVEN:
        raise AssertionError(result.report())
    return result


# ------------------------------------------------------------------ running the user's code
def _shape(item: tuple[str, Any]) -> tuple[str, tuple[int, ...]]:
    name, s = item
    if isinstance(s, (int, np.integer)):
        return name, (int(s),)
    return name, tuple(int(d) for d in s)


def _run(forward: Callable[..., Any], backward: Callable[..., Any] | None, names: list[str], result: Result,
         upstream_name: str, seed: int, points: int) -> None:
    inputs = [symbols_array(n, result.inputs[n]) for n in names]
    with symbolic_numpy():
        if backward is None:
            takes_upstream = _accepts(forward, upstream_name)
            if takes_upstream:
                # the output's shape is needed for the upstream symbols: run once without it
                raise BackwardError(
                    f"a single function that takes {upstream_name!r}: pass forward and backward separately "
                    "(forward=lambda *a: f(*a, ...)[0]), so the upstream gradient has the output's shape")
            out, grads = _pair(_call(forward, _copies(inputs), "the function"), "the function")
            upstream: Any = None
            if _as_outputs(out)[0].shape != ():
                raise BackwardError(
                    f"the function returns an output of shape {_as_outputs(out)[0].shape} with its gradients: the "
                    f"gradients are then of Σ out; give backward separately, or return a scalar loss")
        else:
            out = _call(forward, _copies(inputs), "forward")
            upstream = None
        outputs = _as_outputs(out)
        if backward is not None:
            ups = [symbols_array(upstream_name if len(outputs) == 1 else f"{upstream_name}{k}", o.shape)
                   for k, o in enumerate(outputs)]
            given = _copies(ups)  # backward code may write into dout (dx = dout; dx[x <= 0] = 0)
            upstream = given[0] if len(ups) == 1 and not isinstance(out, (tuple, list)) else tuple(given)
            grads = _call(backward, [upstream, *_copies(inputs)], "backward")
            ups_list: list[SymArray | None] = list(ups)
        else:
            ups_list = [None]
    claimed = _gradients(grads, names, result.inputs)
    loss = _contracted(outputs, ups_list)
    symbols = [s for a in inputs for s in a.view(np.ndarray).reshape(-1)]
    symbols += [s for u in ups_list if u is not None for s in u.view(np.ndarray).reshape(-1)]
    rng = random.Random(seed)
    point_values = _points(rng, inputs, ups_list, points)
    truths: dict[str, np.ndarray] = {}

    def truth(n: str) -> np.ndarray:
        if n not in truths:
            truths[n] = _truth(loss, inputs[names.index(n)])
        return truths[n]

    for name in names:
        c = claimed.get(name)
        if c is None:
            continue
        t0 = time.monotonic()
        check = _judge(name, c, truth(name), point_values, names, inputs, ups_list, upstream_name)
        if check.verdict == Verdict.REFUTED and not check.diagnosis:
            check.diagnosis = _bounded("", _swapped, name, c.view(np.ndarray), names, result.inputs, truth,
                                       _At(point_values[0]) if point_values else None)
        check.seconds = time.monotonic() - t0
        result.gradients[name] = check
    result.symbols = len(symbols)


def _swapped(name: str, claimed: np.ndarray, names: list[str], shapes: dict[str, tuple[int, ...]],
             truth: Callable[[str], np.ndarray], at: _At | None = None) -> str:
    """"this is d<other>" when the claimed gradient is proven to be another input's gradient."""
    for other in names:
        if other != name and shapes[other] == claimed.shape and _all_zero(claimed, truth(other), at):
            return f"it is the gradient of {other} (gradients returned in the wrong order?)"
    return ""


def _copies(inputs: list[SymArray]) -> list[SymArray]:
    """Fresh arrays for each call: code that updates its inputs in place (x -= mu) changes
    neither the other call's inputs nor the symbols the truth is differentiated by."""
    return [a.copy() for a in inputs]


def _accepts(f: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(f).parameters
    except (TypeError, ValueError):
        return False


def _call(f: Callable[..., Any], args: list[Any], what: str) -> Any:
    try:
        return f(*args)
    except NotRepresentable:
        raise
    except (budget.Timeout, KeyboardInterrupt):
        raise
    except TypeError as e:
        if "convert" in str(e) and ("float" in str(e) or "Expression" in str(e)):
            raise NotRepresentable(
                f"{what}: a symbolic value was stored into a plain float array ({e}); allocate arrays with "
                "np.zeros/np.zeros_like inside the function (derive makes them symbolic) or copy a symbolic one") from e
        raise


def _pair(value: Any, what: str) -> tuple[Any, Any]:
    if not (isinstance(value, tuple) and len(value) == 2):
        raise BackwardError(f"{what} should return (out, grads) when no backward is given")
    return value[0], value[1]


def _as_outputs(out: Any) -> list[SymArray]:
    items = list(out) if isinstance(out, (tuple, list)) else [out]
    arrays = []
    for o in items:
        if isinstance(o, SymArray):
            arrays.append(exact_floats(o))
        elif isinstance(o, (np.ndarray, int, float, sympy.Basic, np.number)):
            arrays.append(exact_floats(to_exprs(o)))
        else:
            raise BackwardError(f"forward returned {type(o).__name__}, not an array (return the output only: "
                                "forward=lambda *a: layer_forward(*a)[0])")
    return arrays


def _gradients(grads: Any, names: list[str], shapes: dict[str, tuple[int, ...]]) -> dict[str, SymArray | None]:
    if isinstance(grads, Mapping):
        out: dict[str, SymArray | None] = {}
        for key, g in grads.items():
            name = key if key in names else key[1:] if key.startswith("d") and key[1:] in names else None
            if name is None:
                raise BackwardError(f"backward returned a gradient {key!r} for no input (inputs: {', '.join(names)})")
            out[name] = None if g is None else _as_outputs(g)[0]
        return out
    items = list(grads) if isinstance(grads, (tuple, list)) else [grads]
    if len(items) != len(names):
        raise BackwardError(f"backward returned {len(items)} gradient(s) for {len(names)} input(s) "
                            f"({', '.join(names)}); return one per input, None to skip one")
    return {n: None if g is None else _as_outputs(g)[0] for n, g in zip(names, items, strict=True)}


def _contracted(outputs: list[SymArray], ups: list[SymArray | None]) -> Expr:
    terms: list[Expr] = []
    for o, u in zip(outputs, ups, strict=True):
        oo = o.view(np.ndarray).reshape(-1)
        if u is None:
            terms.extend(oo)
        else:
            terms.extend(a * g for a, g in zip(oo, u.view(np.ndarray).reshape(-1), strict=True))
    return sympy.Add(*terms)


def _truth(loss: Expr, x: SymArray) -> np.ndarray:
    plain = x.view(np.ndarray)
    out = np.empty(plain.shape, dtype=object)
    for idx in np.ndindex(*plain.shape):
        out[idx] = sympy.diff(loss, plain[idx])
    return out


# ------------------------------------------------------------------ judging one gradient
def _judge(name: str, claimed_arr: SymArray, true: np.ndarray, pts: list[dict[Expr, Fraction]], names: list[str],
           inputs: list[SymArray], ups: list[SymArray | None], upstream_name: str,
           domains: Domains | None = None) -> GradientCheck:
    """The verdict on one gradient, entry by entry; ``domains``: the declared input
    domains (proofs on them by cases, and the labels in a counterexample)."""
    try:
        with _core.sharing():  # the entries share most subexpressions: translated once
            return _judge_entries(name, claimed_arr, true, pts, names, inputs, ups, upstream_name, domains)
    except MemoryError as exc:  # (the translations are freed by now: the next gradient starts afresh)
        return out_of_memory(name, exc, int(np.size(true)))


def out_of_memory(name: str, exc: BaseException, entries: int = 0) -> GradientCheck:
    """The verdict on a gradient whose check ran out of memory: unproven (limit)."""
    return GradientCheck(name=name, verdict=Verdict.UNPROVEN, entries=entries,
                         why=f"not checked (limit): out of memory ({exc or 'no more memory'}; "
                             "the memory limit is --max-memory)")


def within_memory(name: str, check: Callable[..., GradientCheck], *args: Any) -> GradientCheck:
    """``check(*args)``, or unproven (limit) for ``name`` if it runs out of memory."""
    try:
        return check(*args)
    except MemoryError as exc:
        return out_of_memory(name, exc)


def _judge_entries(name: str, claimed_arr: SymArray, true: np.ndarray, pts: list[dict[Expr, Fraction]],
                   names: list[str], inputs: list[SymArray], ups: list[SymArray | None], upstream_name: str,
                   domains: Domains | None = None) -> GradientCheck:
    claimed = claimed_arr.view(np.ndarray)
    check = GradientCheck(name=name, verdict=Verdict.UNPROVEN, entries=int(true.size))
    note = ""
    if claimed.shape != true.shape:
        if true.ndim == 2 and claimed.shape == true.shape[::-1] and _all_zero(claimed, true.T) is True:
            check.verdict = Verdict.REFUTED
            check.diagnosis = f"transposed: d{name} has shape {claimed.shape}, the transpose of {name}'s {true.shape}"
            check.why = "shapes"
            return check
        if claimed.size == true.size and tuple(d for d in claimed.shape if d != 1) == tuple(
                d for d in true.shape if d != 1):
            note = f"(shape {claimed.shape} for {name}'s {true.shape}; compared entry by entry)"
            claimed = claimed.reshape(true.shape)
        else:
            check.verdict = Verdict.REFUTED
            check.why = f"shape {claimed.shape}, but {name} has shape {true.shape}"
            return check
    differing: list[tuple[int, ...]] = []
    kinks_only: list[tuple[int, ...]] = []
    too_large = False
    large: set[tuple[int, ...]] = set()  # entries whose expansion was too large: the rewrites below only grow them
    slow: list[bool] = []  # an entry with steps timed out as written: the next ones go to the cases first
    ats: dict[int, _At] = {}  # one evaluator per point, kept across the attempts

    def refute(entries: list[tuple[int, ...]]) -> GradientCheck | None:
        return check if refute_at(pts, entries) else None

    def refute_at(points: list[dict[Expr, Fraction]], entries: list[tuple[int, ...]]) -> bool:
        for values in points:
            at = ats.setdefault(id(values), _At(values))
            for idx in entries:
                found = _differs(claimed[idx], true[idx], at)
                if found is None:
                    continue
                c_val, t_val, exact = found
                check.verdict = Verdict.REFUTED
                check.why = "counterexample " + ("exact (rational arithmetic)" if exact else
                                                 "certified by 200-bit interval arithmetic")
                arrays = _arrays(values, names, inputs, ups, upstream_name)
                if domains is not None:
                    arrays.update(domains.concrete(values))
                check.counterexample = Counterexample(
                    entry=f"d{name}[{', '.join(map(str, idx))}]" if idx else f"d{name}",
                    index=idx, claimed=c_val, true=t_val, exact=exact, arrays=arrays)
                check.differing = list(differing)
                check.diagnosis = _bounded("", _diagnose, name, claimed, true, c_val, t_val, at)
                return True
        return False

    # 0. a wrong claim is usually wrong at the first point already: refuted before any proof
    if pts and refute_at(pts[:1], list(np.ndindex(*true.shape))):
        return check
    # 1. the cheap proofs (no step functions, SymEngine only); entries with steps wait for step 3
    stepped: list[tuple[int, ...]] = []
    undecided: list[tuple[int, ...]] = []
    for idx in np.ndindex(*true.shape):
        c, t = claimed[idx], true[idx]
        if c == t:  # the same expression (the claim's line reads the forward's values as the truth does)
            continue
        d = c - t
        if has(d, PIECEWISE):
            stepped.append(idx)
            continue
        try:
            fast = _fast_zero(d)
            if fast:
                continue
            if fast is None:
                undecided.append(idx)
                continue
        except TooLarge:
            too_large = True
            large.add(idx)
        differing.append(idx)

    # 2. a refutation before the expensive proofs (SymPy's, by cases), when something already failed:
    # a wrong claim never pays for them
    if (differing or stepped or undecided) and refute(differing + undecided + stepped) is not None:
        return check
    for idx in undecided:  # the slow proofs (SymPy) for what the fast ones left open
        try:
            if is_zero(claimed[idx] - true[idx]):
                continue
        except TooLarge:
            too_large = True
            large.add(idx)
        differing.append(idx)
    # 3. on the declared domains (by cases over the finite inputs), then proofs by cases for
    # the entries with step functions
    for idx in list(differing):  # activations written through exp: σ(2z) − σ(−2z) is tanh(z)
        if idx in large:  # exp → t, σ → t/(1 + t): as many terms or more, and denominators: too large again
            continue
        d = claimed[idx] - true[idx]
        if has(d, (sympy.exp, *EXP_REWRITTEN)):
            try:
                if is_zero(exp_form(d, {}, d)):
                    differing.remove(idx)
            except TooLarge:
                pass
    on_domain: list[tuple[int, ...]] = []
    if domains is not None and domains.declared:
        for idx in list(differing):
            if domains.zero(claimed[idx] - true[idx]):
                differing.remove(idx)
                on_domain.append(idx)
    for idx in stepped:
        d = claimed[idx] - true[idx]
        if domains is not None and domains.involves(d) and domains.zero(d):
            on_domain.append(idx)  # the finite inputs first: each case is far simpler than the whole
            continue
        try:
            if _zero_as_written(d, slow) or _zero_by_cases(d):
                continue
            if _zero_off_kinks(d):
                kinks_only.append(idx)
                continue
        except TooLarge:
            too_large = True
        differing.append(idx)
    if not differing:
        check.verdict = Verdict.PROVEN
        check.why = f"exact, {true.size} entries"
        if kinks_only:
            check.why += f", {len(kinks_only)} of them almost everywhere (equal except where entries of a max tie " \
                         "or the argument of a step is 0)"
            check.almost_everywhere = True
        if on_domain and domains is not None:
            check.on_domain = domains.text()
            check.why += f", {len(on_domain)} of them on the declared domain only ({check.on_domain})"
        check.why = f"{check.why} {note}".strip()
        return check
    if refute(differing) is not None:
        return check
    check.why = ("too large to expand; " if too_large else "") + \
        f"{len(differing)} of {true.size} entries not reduced to 0 and no counterexample at {len(pts)} points"
    check.differing = differing
    return check


def _fast_zero(d: Expr) -> bool | None:
    """is_zero(d) by SymEngine alone (over common denominators for quotients): True, False
    (final), or None (only SymPy might still prove it); raises TooLarge as is_zero does."""
    if d == 0:
        return True
    if current_core() != "symengine":
        return None
    if expanded_terms(d) > MAX_TERMS:
        raise TooLarge
    return _core.is_zero(d)


def has(e: Any, classes: tuple[type, ...]) -> bool:
    """Whether e has a subterm of one of ``classes``: SymPy's ``e.has`` walks e as a tree,
    which is exponential in the depth of a recurrent network's expressions (the same
    subexpression shared by every later step); this walks it as a graph, each distinct
    subexpression once (:mod:`derive.prove.graph`)."""
    return graph.has(e, classes)


def atoms(e: Any, classes: tuple[type, ...], first: bool = False) -> frozenset[Any]:
    """The subterms of e of one of ``classes`` (SymPy's ``e.atoms(*classes)``, without walking
    a shared subexpression twice); ``first``: any one of them is enough."""
    return graph.atoms(e, classes, first)


def free_symbols(e: Any) -> set[Any]:
    """SymPy's ``e.free_symbols``, without walking a shared subexpression twice."""
    return graph.free_symbols(e)


DIAGNOSIS_SECONDS = 5.0  # a diagnosis is extra: it gets a few seconds of its own


def _bounded(default: Any, work: Callable[..., Any], *args: Any, seconds: float = DIAGNOSIS_SECONDS) -> Any:
    """``work(*args)`` within ``seconds`` of its own (nested in the call's budget), else ``default``."""
    try:
        with budget.limit(seconds):
            return work(*args)
    except (budget.Timeout, TooLarge):
        if budget.outer_expired():
            raise budget.Timeout from None
        return default


AS_WRITTEN_WITH_STEPS = 2.0  # seconds for expanding a difference with steps as written, before the cases


def _zero_as_written(d: Expr, slow: list[bool]) -> bool:
    """is_zero(d); with step functions in d, given a few seconds only: masked blends
    (z[m] = np.exp(-x[m])) expand badly as written and collapse in each case.  After one
    such timeout (``slow``) the entries with steps skip this step."""
    if not has(d, PIECEWISE):
        return is_zero(d)
    if slow:
        return False
    try:
        with budget.limit(AS_WRITTEN_WITH_STEPS):
            return is_zero(d)
    except budget.Timeout:
        if budget.outer_expired():
            raise
        slow.append(True)
        return False


def _zero_by_cases(d: Expr) -> bool:
    """0 on every side of, and at, every kink (relu′(0.99 x) = relu′(x), clip's two kinks)."""
    return has(d, PIECEWISE) and is_zero(by_cases(d))


def _zero_off_kinks(d: Expr) -> bool:
    if not has(d, PIECEWISE):
        return False
    offsets = case_offsets(normalized(d))  # relu′(relu(u)) is relu′(u): its kink is u = 0
    if any(o.has(*PIECEWISE) or o.is_number or is_zero(o) for o in offsets):
        return False  # the kinks must be a set of measure zero: arguments analytic and not identically 0
    return is_zero(by_cases(d, off_kinks=True))


def _all_zero(a: np.ndarray, b: np.ndarray, at: _At | None = None) -> bool | None:
    """Every a − b identically 0; ``at`` a point where each is first evaluated (a difference
    certified nonzero there ends it before any expanding)."""
    a, b = _objects(a), _objects(b)  # a 0-d array times a number is a bare expression
    if at is not None:
        for x, y in zip(a.reshape(-1), b.reshape(-1), strict=True):
            if at.nonzero(x - y):
                return False
    try:
        return all(is_zero(x - y) for x, y in zip(a.reshape(-1), b.reshape(-1), strict=True))
    except TooLarge:
        return None


def _objects(a: Any) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a.view(np.ndarray)
    box = np.empty((), dtype=object)
    box[()] = a
    return box


# ------------------------------------------------------------------ points
_DYADIC = [Fraction(k, 8) for k in range(-12, 13) if k]  # ±1/8 … ±3/2: tanh and σ far from saturation


def _points(rng: random.Random, inputs: list[SymArray], ups: list[SymArray | None], n: int
            ) -> list[dict[Expr, Fraction]]:
    """Random points: each array's entries distinct small dyadic rationals (exact in
    float64, so the pasted arrays mean exactly the point; distinct: no ties of a max)."""
    out = []
    arrays = [a for a in inputs] + [u for u in ups if u is not None]
    for k in range(n):
        values: dict[Expr, Fraction] = {}
        for a in arrays:
            syms = list(a.view(np.ndarray).reshape(-1))
            # every other point has positive inputs only: code with np.log(x) or np.sqrt(x) of an input is
            # defined there (at a point where it is undefined nothing is decided)
            base = _DYADIC if k % 2 == 0 or any(a is u for u in ups) else [v for v in _DYADIC if v > 0]
            pool = base if len(syms) <= len(base) else base * (len(syms) // len(base) + 1)
            for s, v in zip(syms, rng.sample(pool, len(syms)), strict=False):
                values[s] = v
        out.append(values)
    return out


class _At:
    """One sample point, with an exact and an interval evaluator made once and memoised
    across the entries (they share most subexpressions)."""

    def __init__(self, values: dict[Expr, Fraction]) -> None:
        self.values = values
        self._exact: Evaluator | None = None
        self._interval: Evaluator | None = None
        self.ctx = IntervalContext(200)

    @property
    def exact(self) -> Evaluator:
        if self._exact is None:
            self._exact = Evaluator(ExactContext(), self.values)
        return self._exact

    @property
    def interval(self) -> Evaluator:
        if self._interval is None:
            ctx = self.ctx
            self._interval = Evaluator(ctx, {s: ctx.number(sympy.Rational(v.numerator, v.denominator))
                                             for s, v in self.values.items()})
        return self._interval

    def nonzero(self, e: Expr) -> bool | None:
        """Whether e ≠ 0 here (certified), False when it is 0 or undecided, None when undefined."""
        try:
            return self.exact(e) != 0
        except NotExact:
            pass
        except (Undefined, Undetermined, ZeroDivisionError, KeyError):
            return None
        try:
            return self.ctx.is_nonzero(self.interval(e))
        except (NotExact, Undefined, Undetermined, ZeroDivisionError, KeyError):
            return None


def _differs(c: Expr, t: Expr, at: _At) -> tuple[Any, Any, bool] | None:
    """(claimed, true, exact) at the point when they certainly differ there, else None."""
    if _at_kink(c - t, at):
        return None
    try:
        cv, tv = at.exact(c), at.exact(t)
        return (cv, tv, True) if cv != tv else None
    except NotExact:
        pass
    except (Undefined, Undetermined, ZeroDivisionError, KeyError):
        return None
    try:
        cv, tv = at.interval(c), at.interval(t)
        return (cv, tv, False) if at.ctx.is_nonzero(cv - tv) else None
    except (NotExact, Undefined, Undetermined, ZeroDivisionError, KeyError):
        return None


def _at_kink(e: Expr, at: _At) -> bool:
    """Whether a step function in e sits at (or cannot be told from) its kink here."""
    for f in atoms(e, PIECEWISE):
        for o in kink_offsets(f):
            if at.nonzero(o) is not True:
                return True
    return False


def _arrays(values: dict[Expr, Fraction], names: list[str], inputs: list[SymArray], ups: list[SymArray | None],
            upstream_name: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for n, a in zip(names, inputs, strict=True):
        out[n] = _concrete(a, values)
    real_ups = [u for u in ups if u is not None]
    for k, u in enumerate(real_ups):
        out[upstream_name if len(real_ups) == 1 else f"{upstream_name}{k}"] = _concrete(u, values)
    return out


def _concrete(a: SymArray, values: dict[Expr, Fraction]) -> np.ndarray:
    plain = a.view(np.ndarray)
    return np.array([float(values[s]) for s in plain.reshape(-1)], dtype=np.float64).reshape(plain.shape)


# ------------------------------------------------------------------ diagnosis
def _diagnose(name: str, claimed: np.ndarray, true: np.ndarray, c_val: Any, t_val: Any, at: _At | None = None) -> str:
    """A named mistake, only when the corrected statement is proven symbolically."""
    if true.ndim == 2 and true.shape[0] == true.shape[1] and true.shape[0] > 1 and _all_zero(claimed, true.T, at):
        return f"transposed: d{name} is the transpose of the true gradient"
    k = _ratio(c_val, t_val)
    if k is not None and k != 1:
        if _all_zero(claimed, true * sympy.Rational(k.numerator, k.denominator), at):
            if k == -1:
                return "opposite sign: claimed = −true"
            if k == 0:
                return "zero: the gradient is 0 but the true one is not"
            return f"off by a constant factor {k}: claimed = {k} × true"
    if (at is None or not any(at.nonzero(x) for x in claimed.reshape(-1))) and all(
            is_zero(x) for x in claimed.reshape(-1)):  # (an entry nonzero at the point ends it before expanding)
        return "zero: the gradient is 0 but the true one is not"
    return ""


def _ratio(c: Any, t: Any) -> Fraction | None:
    if isinstance(c, Fraction):
        return None if t == 0 else c / t
    try:
        if not (t.a > 0 or t.b < 0):
            return None
        r = c / t
        bounds = interval_endpoints(r)
    except (AttributeError, TypeError, ZeroDivisionError):
        return None
    return None if bounds is None else simplest_rational(*bounds, max_denominator=1000)


def _overall(result: Result) -> Verdict:
    verdicts = [g.verdict for g in result.gradients.values()]
    if not verdicts:
        return Verdict.UNPROVEN
    if Verdict.REFUTED in verdicts:
        return Verdict.REFUTED
    if Verdict.UNPROVEN in verdicts:
        return Verdict.UNPROVEN
    return Verdict.PROVEN


_ = (Sequence, field, array_text)
