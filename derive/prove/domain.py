"""Where a formula is defined, and whether that is almost everywhere.

SymPy simplifies while it builds: ``x/x`` becomes 1, ``exp(log(x))`` becomes ``x`` and
``(x**(1/2))**2`` becomes ``x`` before any proof step sees them.  A claim
``dA1 = dZ1 / relu_prime(Z1)`` would then be "proven" although NumPy gives NaN wherever
Z1 ≤ 0.  So the formula evaluator records, *before* building each operation, the
condition under which it is defined (a :class:`Condition`): a denominator or the base of
a negative power is nonzero, the argument of ``log`` is positive, the base of a
fractional power is nonnegative (positive for a negative exponent).

**The semantics** (README, "Safety"): a claim is *proven* only if it equals the truth
wherever the truth is defined, and is itself defined except on a set of measure zero.
It is *refuted* when it is undefined on a set of positive measure, with a point of that
set as the counterexample.  Each condition is settled by :func:`judge_conditions`, from
cheapest to dearest, and each way is a proof, not a guess:

1. **static ranges** (:func:`value_range`): σ, softmax ∈ (0, 1), exp, softplus > 0,
   relu ≥ 0, relu′ ∈ [0, 1], squares ≥ 0, free constants > 0 (a stated assumption), and
   interval arithmetic on these bounds: ``1 − σ(z) > 0``, ``v + eps > 0`` for ``v ≥ 0``;
2. **a free leaf** (nonzero conditions): ``u = k·s + r`` with a number ``k ≠ 0`` and a
   leaf ``s`` (a bias, say) on which ``r`` does not depend: for every value of the other
   leaves ``u`` vanishes at one value of ``s`` only, so ``u ≠ 0`` almost everywhere (Fubini);
3. **analyticity** (nonzero conditions without relu, masks, log or fractional powers on
   the way to the leaves): such a ``u`` is a rational function of entire functions of the
   leaves, so it is either 0 almost nowhere or 0 everywhere; one sample point where it is
   certified nonzero settles it;
4. **a violation with a neighbourhood**: at a sample point off every kink, ``u`` is 0 and
   its *germ* (the expression unfolded to the leaves with each piecewise function
   replaced by its branch at that point) is identically 0, or a positive quantity is
   certified negative: the condition then fails on an open set, a refutation;
5. **cases** (nonzero conditions through relu): the unfolded ``u`` split by the sign of
   every kink argument (at most ``MAX_CASES``); in each case the branch is analytic and
   must be certified nonzero at one point.

Anything else leaves the condition *unknown*, and the claim can at best be unproven.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy
from sympy import Expr, Symbol

from derive.model.conditions import NONNEGATIVE, NONZERO, POSITIVE, Condition
from derive.ops.activations import PIECEWISE, Undetermined
from derive.ops.ranges import INF, POSITIVE_RANGE, REAL, UNIT_CLOSED, Range
from derive.ops.ranges import add as _add
from derive.ops.ranges import mul as _mul
from derive.ops.ranges import neg as _neg
from derive.ops.ranges import point as _point
from derive.ops.ranges import power as _power
from derive.ops.registry import OpFunction
from derive.prove.cases import branches
from derive.prove.numeric import Evaluator, NotExact
from derive.prove.zero import TooLarge, is_zero, size_exceeds

MAX_UNFOLDED = 4_000  # nodes of a condition unfolded to the leaves (else: unknown)
MAX_CASES = 64


@dataclass(frozen=True)
class Violation:
    """A point inside the input domain where the condition fails on an open set."""

    condition: Condition
    leaves: dict[Symbol, Fraction]
    value: str  # the condition's value there ("0", "-3/4")


@dataclass(frozen=True)
class DomainVerdict:
    ok: bool  # every condition holds almost everywhere (proven)
    violation: Violation | None = None  # a certified failure on a set of positive measure
    unknown: str | None = None  # why some condition could be settled neither way


OK = DomainVerdict(True)

# ---------------------------------------------------------------- static ranges
# Range and its arithmetic live in derive.ops.ranges (each op's range facet is one).

__all__ = ["INF", "REAL", "Range", "Ranges", "value_range", "Conditions", "Condition", "DomainVerdict", "Violation",
           "OK", "NONZERO", "POSITIVE", "NONNEGATIVE"]


def _holds(r: Range, kind: str) -> bool:
    return {NONZERO: r.nonzero, POSITIVE: r.positive, NONNEGATIVE: r.nonnegative}[kind]()


class Ranges:
    """Static value ranges of expressions over one network's atoms (memoised)."""

    def __init__(self, definitions: Mapping[Symbol, Expr], positive: Iterable[Symbol] = (),
                 facts: Iterable[Condition] = ()) -> None:
        self.definitions = definitions
        self.positive = set(positive)
        self._memo: dict[Expr, Range] = {}
        #: what holds wherever the truth is defined (the forward pass's own conditions)
        self.facts: dict[Expr, Range] = {}
        for c in facts:
            if c.kind == POSITIVE:
                self.facts[c.expr] = POSITIVE_RANGE
            elif c.kind == NONNEGATIVE and self.facts.get(c.expr) is not POSITIVE_RANGE:
                self.facts[c.expr] = Range(Fraction(0), True, INF, False)

    def __call__(self, e: Expr) -> Range:
        try:
            return self._range(e)
        except RecursionError:
            return REAL

    def _range(self, e: Expr) -> Range:
        if e in self._memo:
            return self._memo[e]
        r = self._compute(e)
        fact = self.facts.get(e)
        if fact is not None:  # the truth's domain: intersect
            lo, lo_in = (fact.lo, fact.lo_in) if (fact.lo, not fact.lo_in) > (r.lo, not r.lo_in) else (r.lo, r.lo_in)
            r = Range(lo, lo_in, r.hi, r.hi_in)
        self._memo[e] = r
        return r

    def _compute(self, e: Expr) -> Range:
        if e.is_Rational:
            return _point(Fraction(int(e.p), int(e.q)))
        if e.is_number:
            if e.is_positive:
                return POSITIVE_RANGE
            if e.is_negative:
                return _neg(POSITIVE_RANGE)
            return REAL
        if isinstance(e, Symbol):
            if e in self.positive:
                return POSITIVE_RANGE
            d = self.definitions.get(e)
            return REAL if d is None else self._range(d)
        if e.is_Add:
            out = self._range(e.args[0])
            for a in e.args[1:]:
                out = _add(out, self._range(a))
            return out
        if e.is_Mul:
            out = self._range(e.args[0])
            for a in e.args[1:]:
                out = _mul(out, self._range(a))
            return out
        if e.is_Pow:
            base, expo = e.args
            if expo.is_Integer:
                return _power(self._range(base), int(expo))
            b = self._range(base)
            if base is sympy.E or b.positive():
                return POSITIVE_RANGE
            if b.nonnegative() and expo.is_positive:
                return Range(Fraction(0), True, INF, False)
            return REAL
        if isinstance(e, sympy.exp):
            return POSITIVE_RANGE
        if isinstance(e, OpFunction):  # the registry's range facet, given the arguments' ranges
            k = type(e).literal_args
            facet = type(e).value_range
            assert facet is not None  # checked when the op was registered
            return facet([REAL] * k + [self._range(a) for a in e.args[k:]])
        if isinstance(e, sympy.KroneckerDelta):
            return UNIT_CLOSED
        return REAL


def value_range(e: Expr, definitions: Mapping[Symbol, Expr], positive: Iterable[Symbol] = ()) -> Range:
    """The static range of ``e`` (a convenience wrapper around :class:`Ranges`)."""
    return Ranges(definitions, positive)(e)


# ------------------------------------------------------------- the judgement

def _factors(e: Expr) -> list[Expr]:
    """Parts whose being nonzero makes ``e`` nonzero: the factors of a product, the base of
    a power (b**k ≠ 0 ⇔ b ≠ 0 for k ≠ 0), nothing for exp (never 0)."""
    if e.is_Mul:
        return [p for a in e.args for p in _factors(a)]
    if e.is_Pow and e.exp.is_number and e.exp != 0:
        return [] if e.base is sympy.E else _factors(e.base)
    if isinstance(e, sympy.exp) or (e.is_number and e != 0):
        return []
    return [e]


class Conditions:
    """Settles domain conditions for one network (definitions, leaves, sample points).

    ``samples`` yields ``(leaves, exact_evaluator, interval_evaluator_factory)`` triples:
    the judge's own sample points, so a violation found here is inside the same domain
    the refutation samples from.
    """

    def __init__(self, definitions: Mapping[Symbol, Expr], leaves: Sequence[Symbol],
                 positive: Iterable[Symbol],
                 samples: Callable[[], list[tuple[dict[Symbol, Fraction], Callable[[bool], Evaluator]]]],
                 facts: Iterable[Condition] = ()) -> None:
        self.definitions = definitions
        self.leaves = set(leaves)
        self.positive = set(positive)
        self.ranges = Ranges(definitions, self.positive, facts)
        self.samples = samples
        self._flags: dict[Symbol, frozenset[str]] = {}
        self._deps: dict[Symbol, frozenset[Symbol]] = {}
        self._unfolded: dict[Symbol, Expr] = {}
        self._memo: dict[tuple[str, Expr], DomainVerdict] = {}

    # ---------------------------------------------------------------- facts
    def flags(self, e: Expr) -> frozenset[str]:
        """{"piecewise"} if a relu/step lies on the way to the leaves; {"partial"} for a log
        or a fractional power (analytic only on part of the space)."""
        out: set[str] = set()
        for node in sympy.preorder_traversal(e):
            if isinstance(node, PIECEWISE):
                out.add("piecewise")
            elif isinstance(node, sympy.log) or (node.is_Pow and not node.exp.is_Integer and node.base is not sympy.E
                                                 and not node.is_number):  # √(2/π) is a constant
                out.add("partial")
            elif isinstance(node, Symbol) and node in self.definitions:
                out |= self._atom_flags(node)
        return frozenset(out)

    def _atom_flags(self, s: Symbol) -> frozenset[str]:
        if s not in self._flags:
            self._flags[s] = frozenset()  # cycles cannot occur; this guards recursion
            self._flags[s] = self.flags(self.definitions[s])
        return self._flags[s]

    def deps(self, e: Expr) -> frozenset[Symbol]:
        """The leaves and free constants ``e`` depends on, through the definitions."""
        out: set[Symbol] = set()
        for s in e.free_symbols:
            if s in self.definitions:
                if s not in self._deps:
                    self._deps[s] = frozenset()
                    self._deps[s] = self.deps(self.definitions[s])
                out |= self._deps[s]
            else:
                out.add(s)
        return frozenset(out)

    def unfold(self, e: Expr) -> Expr:
        """``e`` with every atom replaced by its definition, down to the leaves."""
        for s in e.free_symbols:
            if s in self.definitions and s not in self._unfolded:
                self._unfold_atom(s)
        sub = {s: self._unfolded[s] for s in e.free_symbols if s in self._unfolded}
        out = e.xreplace(sub) if sub else e
        if size_exceeds(out, MAX_UNFOLDED):
            raise TooLarge
        return out

    def _unfold_atom(self, s: Symbol) -> None:
        stack = [s]
        while stack:
            top = stack[-1]
            d = self.definitions[top]
            missing = [a for a in d.free_symbols if a in self.definitions and a not in self._unfolded]
            if missing:
                stack.extend(missing)
                continue
            sub = {a: self._unfolded[a] for a in d.free_symbols if a in self._unfolded}
            out = d.xreplace(sub) if sub else d
            if size_exceeds(out, MAX_UNFOLDED):
                raise TooLarge
            self._unfolded[top] = out
            stack.pop()

    def free_leaf(self, u: Expr) -> bool:
        """``u = k·s + r`` for a leaf ``s`` and a number ``k ≠ 0``, ``r`` independent of ``s``."""
        e = u
        for _ in range(2):  # the atom itself, then its definition's atoms
            sub = {s: self.definitions[s] for s in e.free_symbols
                   if s in self.definitions and not self._is_activation(s)}
            if not sub:
                break
            e = sympy.expand(e.xreplace(sub))
            if size_exceeds(e, MAX_UNFOLDED):
                return False
        for s in e.free_symbols:
            if s not in self.leaves:
                continue
            k = sympy.diff(e, s)
            if k.is_number and k != 0 and s not in self.deps(e - k * s):
                return True
        return False

    def _is_activation(self, s: Symbol) -> bool:
        d = self.definitions[s]
        return not (d.is_Add or d.is_Mul or d.is_Symbol)

    # ------------------------------------------------------------- numerics
    def _value(self, e: Expr, point: Callable[[bool], Evaluator]) -> tuple[Any, Any] | None:
        """(ctx, value) of ``e`` at a sample point: exact if possible, else intervals."""
        for exact in (True, False):
            ev = point(exact)
            try:
                return ev.ctx, ev(e)
            except NotExact:
                continue
            except (Undetermined, ArithmeticError, KeyError, TypeError, ValueError):
                return None
        return None

    def _germ(self, e: Expr, leaves: dict[Symbol, Fraction], point: Callable[[bool], Evaluator]) -> Expr | None:
        """``e`` unfolded, each piecewise function replaced by its branch at the point
        (None at a kink, or where a sign cannot be certified)."""
        try:
            full = self.unfold(e)
        except TooLarge:
            return None
        failed = []

        def walk(x: Expr) -> Expr:
            if not x.args:
                return x
            args = [walk(a) for a in x.args]
            if isinstance(x, PIECEWISE):  # the piece where the argument lies, off every kink
                pw = type(x).piecewise
                assert pw is not None
                index = len(pw.kinks)
                for i, k in enumerate(pw.kinks):
                    got = self._value(args[0] - k, point)
                    if got is None:
                        failed.append(x)
                        return x
                    ctx, v = got
                    try:
                        s = ctx.sign(v)
                    except Undetermined:
                        s = 0
                    if s == 0 and self._flat(args[0] - k):  # at the kink on a whole neighbourhood:
                        if pw.right_of(i, 0):  # derive's convention there holds all around
                            continue
                        index = i
                        break
                    if s == 0:
                        failed.append(x)
                        return x
                    if s < 0:
                        index = i
                        break
                return pw.piece(index, args)
            if all(a is b for a, b in zip(args, x.args, strict=True)):
                return x
            return x.func(*args)

        g = walk(full)
        return None if failed else g

    @staticmethod
    def _flat(u: Expr) -> bool:
        """Whether ``u`` (already reduced to the branches at a point) is identically 0."""
        try:
            return is_zero(u)
        except TooLarge:
            return False

    # ------------------------------------------------------------- judging
    def judge(self, conditions: Sequence[Condition],
              accept: Callable[[Condition, dict[Symbol, Fraction]], bool] | None = None) -> DomainVerdict:
        """Every condition almost everywhere (ok), one violated on an open set, or unknown.

        ``accept`` tells whether a violation at a point counts: the truth must be defined
        there (a claim is not wrong where the true gradient does not exist either)."""
        unknown: str | None = None
        seen: set[tuple[str, Expr]] = set()
        for c in conditions:
            key = (c.kind, c.expr)
            if key in seen:
                continue
            seen.add(key)
            v = self._memo.get(key)
            if v is None:
                v = self._judge_one(c, accept)
                if v.ok:  # only "ok" does not depend on the truth the claim is held against
                    self._memo[key] = v
            if v.violation is not None:
                return DomainVerdict(False, Violation(c, v.violation.leaves, v.violation.value))
            if not v.ok and unknown is None:
                unknown = v.unknown
        return OK if unknown is None else DomainVerdict(False, unknown=unknown)

    def _judge_one(self, c: Condition,
                   accept: Callable[[Condition, dict[Symbol, Fraction]], bool] | None = None) -> DomainVerdict:
        e = c.expr
        r = self.ranges(e)
        if _holds(r, c.kind):
            return OK
        flags = self.flags(e)
        if c.kind == NONZERO or (c.kind == POSITIVE and r.nonnegative()):
            # ≥ 0 where the truth is defined, and 0 only on a null set: > 0 almost everywhere
            if all(self._nonzero_ae(part) for part in _factors(e)):
                return OK
        found = self._violation(c, accept)
        if found is not None:
            return DomainVerdict(False, found)
        if c.kind == NONZERO and "piecewise" in flags and "partial" not in flags and self._nonzero_by_cases(e):
            return OK
        what = {NONZERO: "is nonzero", POSITIVE: "is positive", NONNEGATIVE: "is nonnegative"}[c.kind]
        return DomainVerdict(False, unknown=f"could not show that {e} ({c.what}) {what} almost everywhere")

    def _nonzero_ae(self, e: Expr) -> bool:
        """Nonzero almost everywhere by a static range, a free leaf, or analyticity."""
        if self.ranges(e).nonzero() or self.free_leaf(e):
            return True
        return not self.flags(e) and self._nonzero_somewhere(e, germ=False)

    def _nonzero_somewhere(self, e: Expr, germ: bool) -> bool:
        for _leaves, point in self.samples():
            got = self._value(e, point)
            if got is not None and got[0].is_nonzero(got[1]):
                return True
        return False

    def _violation(self, c: Condition,
                   accept: Callable[[Condition, dict[Symbol, Fraction]], bool] | None = None) -> Violation | None:
        for leaves, point in self.samples():
            got = self._value(c.expr, point)
            if got is None:
                continue
            ctx, v = got
            try:
                sign = ctx.sign(v)
            except Undetermined:
                continue
            if sign > 0 or (sign == 0 and c.kind == NONNEGATIVE):
                continue
            if sign < 0 and c.kind == NONZERO:
                continue
            g = self._germ(c.expr, leaves, point)  # also certifies that no kink is at the point
            if g is None:
                continue
            if accept is not None and not accept(c, leaves):
                continue
            if sign < 0:  # continuous near a point off the kinks: negative on an open set
                return Violation(c, leaves, ctx.show(v))
            try:
                if is_zero(g):  # 0 on the whole neighbourhood, not only at the point
                    return Violation(c, leaves, "0")
            except TooLarge:
                continue
        return None

    def _nonzero_by_cases(self, e: Expr) -> bool:
        """In every sign case of the unfolded ``e`` the branch is nonzero at some point."""
        try:
            full = self.unfold(e)
        except TooLarge:
            return False
        found = branches(full, MAX_CASES)
        if found is None:
            return False
        for b in found:
            if b.has(*PIECEWISE) or b == 0:
                return False
            try:
                if is_zero(b):
                    return False
            except TooLarge:
                return False
            if not self._nonzero_somewhere(b, germ=False):
                return False
        return True
