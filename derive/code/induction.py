"""Backpropagation through time proven by induction over the iterations of a loop.

A forward block ``P; for t in range(T): body; Q`` and a backward block ``Q'; for t in
reversed(range(T)): body'; P'`` (the same range).  Expanding ∂L/∂W of a recurrent
network through all T steps is hopeless (an LSTM's dx at t = 0 has ~15 M monomials at
T = 4); instead the loop is cut between its iterations.

**Boundary b** (b = 0 … T: after b forward iterations).  The forward *state* at b is every
array the forward block holds there (names of the environment, the inputs and parameters
among them).  L̃_b is the loss with every state array that is not a leaf replaced by
fresh symbols ("the cut") and the rest of the forward block run from there; L = L̃_b(S_b(x))
for the state's values S_b(x).  An entry of the state is *live* when its symbol occurs in
L̃_b, *killed* when it does not and the rest of the block overwrites it (H[:, t, :] before
step t), and otherwise *unused* (∂L̃_b/∂ = 0, the block must hold 0 there).

**Counterparts.**  A state array V is tracked by the block's dV (``_base_of``), by the
upstream gradient of a forward output, or — for the loop-carried values that have no such
name (h, c) — by one of the block's loop-carried variables (dh_next, dc_next) of the same
shape: every shape-compatible pairing is tried and the exact checks decide.  Every array
assigned in the forward loop with a live entry somewhere must be tracked.

**Invariant I(b).**  The block's state just before it runs iteration b − 1 (b = T: after
Q') holds C(V) = ∂L̃_b/∂V on every entry of V that is not killed.

- *Base* I(T): a direct comparison with ∂L̃_T/∂V (L̃_T is Q alone: small), the cut's
  symbols written back as the forward values.
- *Step* I(b) ⇒ I(b − 1): the block's iteration b − 1 is run with its tracked arrays
  replaced by free symbols G (0 on the unused entries, other free symbols on the killed
  ones and on every other variable the block's loop assigns); every tracked U at b − 1
  must come out as Σ_{V, i live} G_{V,i} ∂V_i/∂U_j, with V_i(u) forward iteration b − 1
  run on the cut state u at b − 1 (one iteration: small), written back at the forward
  values — an identity in G, checked exactly.  At G = the true adjoints (I(b)) it is the
  chain rule L̃_{b−1}(u) = L̃_b(V(u)): a state entry that is not live has ∂L̃_b/∂ = 0, and
  an untracked live array is never assigned in the loop, so V(u) = u there and it adds
  nothing to another array's adjoint.
- *End*: P' run on I(0)'s state (the same symbols) gives each final dB, for B a leaf or a
  value made before the loop; it must equal Σ G ∂S_0/∂B through P, i.e. ∂L/∂B.

Every comparison is an exact identity (``derive.prove.zero.is_zero``); a numeric
evaluation only ever rejects.  A difference that needs a proof by cases (relu, max) is
not proven here.  When the blocks are not shaped like this, nothing is proven and the
other methods run as before.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import sympy
from sympy import Expr, Symbol

from derive.code import backward as B
from derive.code.arrays import NotRepresentable, SymArray, symbolic_numpy, symbols_array
from derive.code.gradient import Differentiator
from derive.code.interpret import Interpreter, _int
from derive.errors import FormulaError
from derive.lang import program as P
from derive.ops.activations import Undetermined
from derive.prove.numeric import Evaluator, ExactContext, IntervalContext, NotExact, Undefined
from derive.prove.zero import TooLarge, is_zero

__all__ = ["prove", "WHY"]

MAX_PAIRINGS = 24  # shape-compatible pairings of forward and block loop-carried variables tried
EQUAL_SECONDS = 5.0  # one entry's identity: beyond this the induction gives up (the other methods run)
MAX_STATE_ENTRIES = 5000  # entries of the state at one boundary (each a symbol of the cut)
WHY = ("by induction over the {n} iterations of the loop (each step an exact identity in the adjoints of "
       "the carried state{names})")

AFTER = "exact, against ∂L/∂V with the loop's state after its last iteration cut loose"

_ERRORS = (FormulaError, NotRepresentable, ValueError, TypeError, IndexError, KeyError, ZeroDivisionError,
           AttributeError, TooLarge, RecursionError)


class _NotApplicable(Exception):
    pass


def prove(run: Any, found: dict[str, str] | None = None) -> dict[str, str]:
    """Gradient name → why, for every gradient of ``run``'s backward block that the
    induction proves (filled into ``found`` as they are proven); empty when the blocks are
    not a forward loop and its reversed loop (or when a check fails: the other methods then
    run as before).  Each reversed loop of the block, the first (nearest the loss) first,
    is paired with the forward loop it reads most; what one proves, the next one uses."""
    found = {} if found is None else found
    p = run.program
    forward = [k for k, s in enumerate(p.forward) if isinstance(s, P.For) and not s.reverse]
    backward = [k for k, s in enumerate(p.backward) if isinstance(s, P.For) and s.reverse]
    if not forward or not backward:
        return found
    if set(P.assigned(p.forward)) & set(run.leaves):  # an input renamed in place: not this shape
        return found
    for kb in backward:
        reads = P.used((p.backward[kb],))
        reads |= {b for b in (run.base_of(n) for n in P.assigned((p.backward[kb],))) if b}
        scored = sorted(((len(reads & (set(P.assigned((p.forward[kf],))) | P.used((p.forward[kf],)))), kf)
                         for kf in forward), reverse=True)
        for overlap, kf in scored:
            if not overlap:
                break
            try:
                new = _Induction(run, kf, kb, dict(found)).prove()
            except (_NotApplicable, *_ERRORS):
                continue
            for name, why in new.items():
                found.setdefault(name, why)
            if new:
                break
    return found


def _carried(body: tuple[P.Statement, ...]) -> list[str]:
    """Names the loop body reads before (or while) it first assigns them: carried from
    one iteration to the next (dh_next, an accumulator dW += ...)."""
    written: set[str] = set()
    out: list[str] = []
    every = set(P.assigned(body))
    for s in body:
        for n in sorted(P.used((s,))):
            if n in every and n not in written and n not in out:
                out.append(n)
        written |= set(P.assigned((s,)))
    return out


def _plain(a: Any) -> np.ndarray:
    return a.view(np.ndarray)


class _Screen:
    """One random point (every symbol its own small rational, made on demand): a
    difference certified nonzero here is not an identity (this only ever rejects)."""

    def __init__(self, seed: int = 0) -> None:
        rng = random.Random(seed)
        values: dict[Symbol, Expr] = {}

        def value(s: Symbol) -> Expr:
            if s not in values:
                v = Fraction(rng.choice([k for k in range(-12, 13) if k]), 8)
                values[s] = sympy.Rational(v.numerator, v.denominator)
            return values[s]

        self.ctx = IntervalContext(200)
        self.exact = Evaluator(ExactContext(), {}, value)
        self.interval = Evaluator(self.ctx, {}, lambda s: value(s))

    def nonzero(self, e: Expr) -> bool:
        try:
            return bool(self.exact(e) != 0)
        except NotExact:
            pass
        except (Undefined, Undetermined, ZeroDivisionError, KeyError):
            return False
        try:
            return bool(self.ctx.is_nonzero(self.interval(e)))
        except (NotExact, Undefined, Undetermined, ZeroDivisionError, KeyError):
            return False


class _Induction:
    def __init__(self, run: Any, kf: int, kb: int, proven: dict[str, str]) -> None:
        self.run = run
        self.proven = proven  # gradients proven already (by a later loop's induction): name → why
        p = run.program
        self.pre, self.loop, self.post = p.forward[:kf], p.forward[kf], p.forward[kf + 1:]
        self.bpre, self.bloop, self.bpost = p.backward[:kb], p.backward[kb], p.backward[kb + 1:]
        self.kf = kf
        assert isinstance(self.loop, P.For) and isinstance(self.bloop, P.For)
        self.leaves = {n: v for n, v in run.leaves.items() if isinstance(v, SymArray)}
        self.screen = _Screen()
        self._fresh = itertools.count()
        self.reads = P.used((*self.pre, self.loop))  # what the state after the loop is made from
        self.failed: str | None = None  # the tracked array whose check failed last

    # ------------------------------------------------------------ the forward side
    def _steps(self, interpreter: Interpreter, loop: P.For) -> list[int]:
        start, stop, step = (_int(interpreter.value(b, loop.text), "a loop bound") for b in
                             (loop.start, loop.stop, loop.step))
        steps = list(range(start, stop, step))
        if len(steps) > interpreter.max_steps:
            raise _NotApplicable
        return list(reversed(steps)) if loop.reverse else steps

    def _iteration(self, env: dict[str, Any], value: int, loop: P.For) -> None:
        """One iteration of ``loop`` as the interpreter runs it (the variable stays set)."""
        interpreter = Interpreter(env)
        env[loop.var] = value
        for s in loop.body:
            interpreter.statement(s)

    def _cut(self, b: int) -> tuple[dict[str, Any], dict[Expr, Expr], dict[str, np.ndarray]]:
        """The state at boundary b with every array that is not a leaf as fresh symbols:
        (environment, symbol → its forward value, name → the symbols)."""
        env = dict(self.snaps[b])
        back: dict[Expr, Expr] = {}
        cuts: dict[str, np.ndarray] = {}
        for name, value in self.snaps[b].items():
            if name in self.leaves or not isinstance(value, SymArray):
                continue
            atoms = _plain(symbols_array(f"⟦{name}⟧{b}", value.shape))
            cuts[name] = atoms
            env[name] = atoms.copy().view(SymArray)
            back.update(zip(atoms.reshape(-1), _plain(value).reshape(-1), strict=True))
        return env, back, cuts

    def _symbols(self, b: int, name: str) -> np.ndarray | None:
        """The symbols of a state array at b: a leaf's own, the cut's otherwise."""
        if name in self.leaves:
            return _plain(self.leaves[name])
        return self.cuts[b].get(name)

    def forward(self) -> None:
        run = self.run
        with symbolic_numpy():
            env = dict(run.leaves)
            interpreter = Interpreter(env)
            for s in self.pre:
                interpreter.statement(s)
            self.steps = self._steps(interpreter, self.loop)
            if not self.steps:
                raise _NotApplicable
            self.backward()  # the same range, reversed: else this is not the loop's backward pass
            self.snaps = [dict(env)]
            for v in self.steps:
                self._iteration(env, v, self.loop)
                self.snaps.append(dict(env))
        n = len(self.steps)
        # every boundary: the cut, the rest of the forward block from it, which entries are live
        self.cuts: list[dict[str, np.ndarray]] = []
        self.backs: list[dict[Expr, Expr]] = []
        self.envs: list[dict[str, Any]] = []
        self.live: list[dict[str, np.ndarray]] = []  # name → bool per entry
        self.killed: list[dict[str, np.ndarray]] = []
        for b in range(n + 1):
            env, back, cuts = self._cut(b)
            if sum(a.size for a in cuts.values()) > MAX_STATE_ENTRIES:
                raise _NotApplicable
            self.cuts.append(cuts)
            self.backs.append(back)
            self.envs.append(dict(env))
            with symbolic_numpy():
                for v in self.steps[b:]:
                    self._iteration(env, v, self.loop)
                interpreter = Interpreter(env)
                for s in self.post:
                    interpreter.statement(s)
                loss = run._loss(env, make_upstream=False)
            if b == n:
                self.loss_n = loss
            free = B.atoms(loss, (Symbol,))
            live: dict[str, np.ndarray] = {}
            killed: dict[str, np.ndarray] = {}
            for name in list(cuts) + list(self.leaves):
                syms = self._symbols(b, name)
                assert syms is not None
                lv = np.zeros(syms.shape, dtype=bool)
                kd = np.zeros(syms.shape, dtype=bool)
                final = env.get(name)
                same = isinstance(final, SymArray) and final.shape == syms.shape
                for idx in np.ndindex(*syms.shape):
                    if syms[idx] in free:
                        lv[idx] = True
                    elif name not in self.leaves and not (same and _plain(final)[idx] == syms[idx]):
                        kd[idx] = True
                live[name] = lv
                killed[name] = kd
            self.live.append(live)
            self.killed.append(killed)

    # ------------------------------------------------------------ the block side
    def backward(self) -> None:
        run = self.run
        with symbolic_numpy():
            env = dict(run.forward_env)
            env.update(run.ups)
            interpreter = Interpreter(env)
            for s in self.bpre:
                interpreter.statement(s)
            order = self._steps(interpreter, self.bloop)
            if order != list(reversed(self.steps)):
                raise _NotApplicable
            n = len(self.steps)
            self.modified = set(P.assigned(self.bloop.body))
            bsnaps: list[dict[str, Any]] = [{}] * (n + 1)
            bsnaps[n] = dict(env)
            for j in reversed(range(n)):
                # the arrays the loop assigns are replaced by symbols at every use (``_inputs``):
                # run on placeholders, not on the nested values of the real run (their shapes, the
                # whole numbers and the values made before the loop are what is kept)
                for name in self.modified:
                    if isinstance(env.get(name), SymArray):
                        env[name] = symbols_array(f"⟦…{name}⟧{j}", env[name].shape)
                self._iteration(env, self.steps[j], self.bloop)
                bsnaps[j] = dict(env)
        self.bsnaps = bsnaps

    def pairings(self) -> Iterator[dict[str, str]]:
        """Forward array → its block counterpart: by name, then each pairing of the
        remaining loop-carried ones by shape."""
        run = self.run
        n = len(self.steps)
        state = {name for snap in self.snaps for name, v in snap.items() if isinstance(v, SymArray)}
        shape_of = {name: snap[name].shape for snap in self.snaps for name in snap if name in state}
        before = self.bsnaps[n]
        named: dict[str, str] = {}
        for name, value in before.items():
            if not isinstance(value, SymArray) or name in self.run.forward_env or name in run.ups:
                continue
            base = run.base_of(name)
            if base in self.leaves and base not in self.reads:  # read after the loop only: not carried
                continue
            if base in state and base not in named and value.shape == shape_of[base]:
                named[base] = name
        for out, up in run.program.upstream.items():
            if out in state and out not in named and up in before and before[up].shape == shape_of[out]:
                named[out] = up
        in_loop = set(P.assigned(self.loop.body))
        needs = [v for v in sorted(state) if v in in_loop and v not in named and v not in self.leaves
                 and any(v in live and live[v].any() for live in self.live)]
        carried = [c for c in _carried(self.bloop.body) if c not in named.values()
                   and isinstance(before.get(c), SymArray) and c not in run.forward_env]
        if len(needs) > len(carried):
            return
        tried = 0
        for choice in itertools.permutations(carried, len(needs)):
            if any(before[c].shape != shape_of[v] for v, c in zip(needs, choice, strict=True)):
                continue
            tried += 1
            if tried > MAX_PAIRINGS:
                return
            yield {**named, **dict(zip(needs, choice, strict=True))}

    # ------------------------------------------------------------ the proof
    def prove(self) -> dict[str, str]:
        self.forward()
        n = len(self.steps)
        found = self.after_loop()
        in_loop = set(P.assigned(self.loop.body))
        for pairing in self.pairings():
            while True:  # an array the loop never assigns (a leaf) whose gradient fails is left untracked
                self.pairing, self.failed = pairing, None
                self.gs = {v: _plain(symbols_array(f"g⟦{v}⟧", self.shape(v))) for v in pairing}
                ok = self.base() and all(self.step(j) for j in reversed(range(n)))
                if ok or self.failed is None or self.failed in in_loop:
                    break
                pairing = {v: c for v, c in pairing.items() if v != self.failed}
            if not ok:
                continue
            proven = self.end()
            if proven:
                carried = [c for v, c in pairing.items() if v not in self.leaves and c not in self.run.ups
                           and self.run.base_of(c) is None]
                names = f": {', '.join(carried)}" if carried else ""
                why = WHY.format(n=n, names=names)
                return {**found, **{name: why for name in proven}}
        return found

    def after_loop(self) -> dict[str, str]:
        """The gradients of values made by the loop or after it, and of leaves read only
        after it, computed before the block's loop (dH, dA2, dW2): ∂L/∂V with V cut loose
        after its last assignment is the derivative of L̃_T (the state after the last
        iteration cut too: it does not depend on V), small; the block's value must equal
        it, written back."""
        run = self.run
        n = len(self.steps)
        late = set(self.modified) | set(P.assigned(self.bpost))
        out: dict[str, str] = {}
        for name in run.targets:
            base = run.base_of(name)
            if name in late or name in self.proven or base is None:
                continue
            claimed = run.backward_env.get(name)
            if base in self.leaves:
                if base in self.reads or base in run.last:
                    continue
                syms: np.ndarray | None = _plain(self.leaves[base])
                loss, back = self.loss_n, self.backs[n]
            elif run.last.get(base, -1) >= self.kf and isinstance(run.forward_env.get(base), SymArray):
                value = run.forward_env[base]
                k = run.last[base]
                if k == self.kf:
                    syms = self.cuts[n].get(base)
                    loss, back = self.loss_n, self.backs[n]
                else:
                    syms = _plain(symbols_array(f"⟪{base}⟫", value.shape))
                    env = dict(self.envs[n])
                    with symbolic_numpy():
                        interpreter = Interpreter(env)
                        for i, s in enumerate(self.post, start=self.kf + 1):
                            interpreter.statement(s)
                            if i == k:
                                env[base] = syms.copy().view(SymArray)
                        loss = run._loss(env, make_upstream=False)
                    back = {**self.backs[n], **dict(zip(syms.reshape(-1), _plain(value).reshape(-1), strict=True))}
            else:
                continue
            if syms is None or not isinstance(claimed, SymArray) or claimed.shape != syms.shape:
                continue
            d = Differentiator(loss)
            plain = _plain(claimed)
            if all(self._equal(plain[idx], d.diff(syms[idx]).xreplace(back)) for idx in np.ndindex(*syms.shape)):
                out[name] = AFTER
        return out

    def shape(self, v: str) -> tuple[int, ...]:
        for snap in self.snaps:
            if isinstance(snap.get(v), SymArray):
                return tuple(snap[v].shape)
        raise _NotApplicable

    def tracked_ok(self) -> None:
        """Every live array at every boundary is tracked, or is a leaf or an array the
        loop never assigns (its V(u) = u adds nothing to another array's adjoint)."""
        in_loop = set(P.assigned(self.loop.body))
        for live in self.live:
            for v, lv in live.items():
                if lv.any() and v not in self.pairing and v in in_loop:
                    raise _NotApplicable

    def _inputs(self, env: dict[str, Any], b: int) -> None:
        """The block's state at b as symbols: a tracked array G on its live entries, 0 on
        the unused ones, a free symbol on the killed ones; every other array the block's
        loop assigns free symbols."""
        counterparts = set(self.pairing.values())
        for v, c in self.pairing.items():
            value = env.get(c)
            if not isinstance(value, SymArray):
                raise _NotApplicable
            out = np.empty(value.shape, dtype=object)
            syms = self._symbols(b, v) if isinstance(self.snaps[b].get(v), SymArray) else None
            live, killed = self.live[b].get(v), self.killed[b].get(v)
            g = self.gs[v]
            for idx in np.ndindex(*value.shape):
                if syms is None or killed is None or live is None or killed[idx]:
                    out[idx] = Symbol(f"⟦?{c}⟧{next(self._fresh)}", real=True)
                elif live[idx]:
                    out[idx] = g[idx]
                else:
                    out[idx] = sympy.Integer(0)
            env[c] = out.view(SymArray)
        for name in self.modified:
            value = env.get(name)
            if name in counterparts or not isinstance(value, SymArray):
                continue
            env[name] = symbols_array(f"⟦?{name}⟧{next(self._fresh)}", value.shape)

    def _equal(self, claimed: Expr, true: Expr) -> bool:
        """claimed − true identically 0 (exact; a certified nonzero value at the random
        point rejects first); a difference too large or too slow to expand is not."""
        d = claimed - true
        if d == 0:
            return True
        if self.screen.nonzero(d):
            return False
        return bool(B._bounded(False, is_zero, d, seconds=EQUAL_SECONDS))

    def _compare(self, b: int, values: dict[str, Any], truth: dict[tuple[str, tuple[int, ...]], Expr]) -> bool:
        """Every tracked array at b, on its entries that are not killed: the block's value
        equals ``truth`` (0 where it has no term)."""
        for v, c in self.pairing.items():
            if not isinstance(self.snaps[b].get(v), SymArray) or (b == len(self.steps) and v in self.known):
                continue
            value = values.get(c)
            if not isinstance(value, SymArray) or value.shape != self.shape(v):
                self.failed = v
                return False
            plain = _plain(value)
            killed = self.killed[b][v]
            for idx in np.ndindex(*value.shape):
                if killed[idx]:
                    continue
                if not self._equal(plain[idx], truth.get((v, idx), sympy.Integer(0))):
                    self.failed = v
                    return False
        return True

    def base(self) -> bool:
        """I(T): the block's state after Q' is ∂L̃_T/∂V (the cut written back)."""
        self.tracked_ok()
        n = len(self.steps)
        d = Differentiator(self.loss_n)
        truth: dict[tuple[str, tuple[int, ...]], Expr] = {}
        late = set(self.modified) | set(P.assigned(self.bpost))
        self.known = {v for v, c in self.pairing.items() if c in self.proven and c not in late
                      and self.run.last.get(v) == self.kf}  # dV = ∂L/∂V proven: ∂L̃_T/∂V (V cut after the loop)
        for v in self.pairing:
            if not isinstance(self.snaps[n].get(v), SymArray) or v in self.known:
                continue
            syms = self._symbols(n, v)
            assert syms is not None
            for idx in np.ndindex(*syms.shape):
                if self.live[n][v][idx]:
                    truth[(v, idx)] = d.diff(syms[idx]).xreplace(self.backs[n])
        return self._compare(n, self.bsnaps[n], truth)

    def _pullback(self, after: dict[str, Any], b: int, back: dict[Expr, Expr],
                  owners: dict[Expr, tuple[str, tuple[int, ...]]]) -> dict[tuple[str, tuple[int, ...]], Expr]:
        """Σ_{V,i live at b} G_{V,i} ∂V_i/∂U_j for each symbol of ``owners`` (U_j), with V
        as ``after`` holds it, written back with ``back``."""
        terms: dict[tuple[str, tuple[int, ...]], list[Expr]] = {}
        for v in self.pairing:
            if not isinstance(self.snaps[b].get(v), SymArray):
                continue
            value = after.get(v)
            if not isinstance(value, SymArray) or value.shape != self.shape(v):
                raise _NotApplicable
            plain, live, g = _plain(value), self.live[b][v], self.gs[v]
            for idx in np.ndindex(*value.shape):
                if not live[idx]:
                    continue
                e = plain[idx]
                if not isinstance(e, sympy.Basic):
                    continue
                diff = Differentiator(e)
                for s in diff.free(e):
                    owner = owners.get(s)
                    if owner is not None:
                        terms.setdefault(owner, []).append(g[idx] * diff.diff(s).xreplace(back))
        return {k: sympy.Add(*ts) for k, ts in terms.items()}

    def step(self, j: int) -> bool:
        """I(j + 1) ⇒ I(j): the block's iteration j on free adjoints G is the pullback of
        forward iteration j (on the cut state at j), for every G."""
        env = dict(self.envs[j])  # the cut at j
        with symbolic_numpy():
            self._iteration(env, self.steps[j], self.loop)
        owners: dict[Expr, tuple[str, tuple[int, ...]]] = {}
        for v in self.pairing:
            syms = self._symbols(j, v) if isinstance(self.snaps[j].get(v), SymArray) else None
            if syms is None:
                continue
            for idx in np.ndindex(*syms.shape):
                if not self.killed[j][v][idx]:
                    owners[syms[idx]] = (v, idx)
        truth = self._pullback(env, j + 1, self.backs[j], owners)
        benv = dict(self.bsnaps[j + 1])
        self._inputs(benv, j + 1)
        with symbolic_numpy():
            self._iteration(benv, self.steps[j], self.bloop)
        return self._compare(j, benv, truth)

    def end(self) -> list[str]:
        """The block's final gradients dB (B a leaf or a value made before the loop) from
        the state at 0 through P': Σ G ∂S_0/∂B, i.e. ∂L/∂B."""
        run = self.run
        benv = dict(self.bsnaps[0])
        self._inputs(benv, 0)
        with symbolic_numpy():
            interpreter = Interpreter(benv)
            for s in self.bpost:
                interpreter.statement(s)
        proven = []
        in_loops = {n for s in self.bpost if isinstance(s, P.For) for n in P.assigned((s,))}
        for name in run.targets:
            base = run.base_of(name)
            if base is None or name in in_loops or name in self.proven or self._into_loop(base):
                continue  # made by another loop of the block, or through one of the forward: that loop's own
            back: dict[Expr, Expr] = {}
            if base in self.leaves and base not in run.last:
                state, mine = self.snaps[0], _plain(self.leaves[base])
            elif base in run.last and run.last[base] < self.kf:
                state, back, mine = self._through(base)
            else:
                continue
            if self._end_one(name, base, benv, state, back, mine):
                proven.append(name)
        return proven

    def _into_loop(self, base: str) -> bool:
        """Whether B reaches a loop of P (another recurrent layer): ∂S_0/∂B through it is
        that loop's own induction, not an expansion here."""
        names = {base}
        start = self.run.last.get(base, -1) + 1
        for s in self.pre[start:]:
            if P.used((s,)) & names:
                if isinstance(s, P.For):
                    return True
                names |= set(P.assigned((s,)))
        return False

    def _through(self, base: str) -> tuple[dict[str, Any], dict[Expr, Expr], np.ndarray]:
        """The state at 0 with B cut after its last assignment (B made before the loop)."""
        k = self.run.last[base]
        value = self.run.forward_env[base]
        if not isinstance(value, SymArray):
            raise _NotApplicable
        atoms = _plain(symbols_array(f"⟪{base}⟫", value.shape))
        with symbolic_numpy():
            env = dict(self.run.leaves)
            interpreter = Interpreter(env)
            for i, s in enumerate(self.pre):
                interpreter.statement(s)
                if i == k:
                    env[base] = atoms.copy().view(SymArray)
        return env, dict(zip(atoms.reshape(-1), _plain(value).reshape(-1), strict=True)), atoms

    def _end_one(self, name: str, base: str, benv: dict[str, Any], state: dict[str, Any],
                 back: dict[Expr, Expr], mine: np.ndarray) -> bool:
        final = benv.get(name)
        if not isinstance(final, SymArray) or final.shape != mine.shape:
            return False
        owners = {s: (base, idx) for idx in np.ndindex(*mine.shape) for s in (mine[idx],)}
        mine_set = set(owners)
        for v, value in state.items():  # an untracked live array through which B reaches the loss
            if v in self.pairing or not isinstance(value, SymArray) or v not in self.live[0]:
                continue
            live = self.live[0][v]
            plain = _plain(value)
            for idx in np.ndindex(*plain.shape):
                if live[idx] and isinstance(plain[idx], sympy.Basic) and B.atoms(plain[idx], (Symbol,)) & mine_set:
                    return False
        truth = self._pullback(state, 0, back, owners)
        plain = _plain(final)
        return all(self._equal(plain[idx], truth.get((base, idx), sympy.Integer(0))) for idx in
                   np.ndindex(*mine.shape))
