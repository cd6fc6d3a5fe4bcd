"""Proof by cases for the piecewise activations: relu, relu′, leaky_relu, leaky_relu′.

An identity such as ``relu(z) = z · relu′(z)`` or ``relu′(relu(z)) = relu′(z)`` is not a
polynomial identity when relu and relu′ are opaque functions, but it is one on each side
of the kink.  :func:`by_cases` splits on the sign of each argument those functions are
applied to and replaces every application by its branch:

    u > 0:  relu(u) = u,  relu′(u) = 1,  leaky_relu(u, a) = u,      leaky_relu′(u, a) = 1
    u ≤ 0:  relu(u) = 0,  relu′(u) = 0,  leaky_relu(u, a) = a·u,    leaky_relu′(u, a) = a

(the values at u = 0 are derive's conventions, so the ≤ 0 branch is exact at the kink).
When both u and −u occur, u is split three ways (> 0, = 0, < 0).  The cases cover every
point, so an expression that vanishes identically in every case vanishes everywhere.

The cases e_1, ..., e_k are returned as one expression Σ λ_i e_i with fresh symbols λ_i:
it is identically 0 exactly when every e_i is, so the judge's ``is_zero`` decides all the
cases at once and the proof steps keep one interface.
"""

from __future__ import annotations

from collections.abc import Iterator

import sympy
from sympy import Expr, Integer

from derive.ops.activations import LeakyRelu, LeakyReluPrime, Relu, ReluPrime

PIECEWISE = (Relu, ReluPrime, LeakyRelu, LeakyReluPrime)
MAX_CASES = 64  # more sign patterns than this: the step gives up (the claim stays unproven)

Signs = frozenset[int]  # the possible signs of an argument in one case: subsets of {-1, 0, 1}
POSITIVE: Signs = frozenset({1})
NON_POSITIVE: Signs = frozenset({0, -1})
ZERO: Signs = frozenset({0})


class _Undecidable(Exception):
    """A sign that no case split can decide: the step gives up."""


class _Split(Exception):
    """An argument whose sign the current case does not decide."""

    def __init__(self, argument: Expr) -> None:
        self.argument = argument


def by_cases(expr: Expr, off_kinks: bool = False) -> Expr:
    """Σ λ_i e_i over the sign cases of ``expr``'s piecewise arguments (``expr`` itself
    when it has none, or when there would be more than :data:`MAX_CASES` cases).

    ``off_kinks`` leaves out the points where an argument is 0 (only > 0 and < 0 cases):
    an identity then holds everywhere except on the kinks, which is worth saying of a
    claim that is not an identity (``(Z >= 0)`` for relu′(Z) differs only at Z = 0).
    """
    expr = normalized(expr)
    if not expr.has(*PIECEWISE):
        return expr
    arguments = {f.args[0] for f in expr.atoms(*PIECEWISE)}
    cases = []
    try:
        for case in _cases(expr, {}, arguments, off_kinks):
            cases.append(case)
            if len(cases) > MAX_CASES:
                return expr
    except _Undecidable:
        return expr
    if not cases:  # never an empty sum: that would read as "0 in every case"
        return expr
    return sympy.Add(*(sympy.Dummy("case") * e for e in cases))


def branches(expr: Expr, limit: int = MAX_CASES) -> list[Expr] | None:
    """The expression in each sign case of its piecewise arguments (a list that covers
    every point), or None when there are more than ``limit`` cases or a sign that no
    split decides.  Unlike :func:`by_cases`, a case whose branch is 0 stays visible."""
    expr = normalized(expr)
    if not expr.has(*PIECEWISE):
        return [expr]
    arguments = {f.args[0] for f in expr.atoms(*PIECEWISE)}
    out = []
    try:
        for case in _cases(expr, {}, arguments, False):
            out.append(case)
            if len(out) > limit:
                return None
    except _Undecidable:
        return None
    return out or None


def normalized(expr: Expr) -> Expr:
    """Identities that hold at every point, applied before any split so that deep chains
    need fewer cases: a step or relu of relu(u), of leaky_relu(u, a) with a > 0, or of
    k·u with k > 0 is the same function of u (the sign of the argument is that of u,
    0 included): relu′(relu(u)) = relu′(u), relu′(2u) = relu′(u); and relu(relu(u)) =
    relu(u) (but relu(2u) = 2·relu(u), so relu itself only drops an inner relu)."""
    if not expr.args:
        return expr
    args = [normalized(a) for a in expr.args]
    if isinstance(expr, (ReluPrime, LeakyReluPrime)):  # a step sees only the sign
        inner = _same_sign(args[0])
        if inner is not None:
            args[0] = inner
    elif isinstance(expr, Relu) and isinstance(args[0], (Relu, LeakyRelu)):
        inner = _same_sign(args[0])  # relu(relu(v)) = relu(leaky_relu(v, a > 0)) = relu(v)
        if inner is not None:
            args[0] = inner
    if all(a is b for a, b in zip(args, expr.args)):
        return expr
    return expr.func(*args)


def _same_sign(u: Expr) -> Expr | None:
    """v with sign(u) = sign(v) at every point, for u = relu(v), leaky_relu(v, a > 0), k·v (k > 0)."""
    if isinstance(u, Relu):
        return u.args[0]
    if isinstance(u, LeakyRelu) and u.args[1].is_number and u.args[1].is_positive:
        return u.args[0]
    k, v = u.as_coeff_Mul()
    if k.is_number and k.is_positive and k != 1:
        return v
    return None


def _cases(expr: Expr, signs: dict[Expr, Signs], arguments: set[Expr], off_kinks: bool) -> Iterator[Expr]:
    try:
        yield _at_zeros(_substitute(expr, signs), [b for b, s in signs.items() if s == ZERO])
        return
    except _Split as split:
        u = split.argument
    if u.is_number:  # a constant whose sign SymPy cannot decide (relu(σ(1/2))): no split
        raise _Undecidable
    base, flipped = (-u, True) if u.could_extract_minus_sign() else (u, False)
    if off_kinks:
        options = [frozenset({1}), frozenset({-1})]
    elif base in signs:  # decided only partly (e.g. ≥ 0 where > 0 matters): refine it
        options = [frozenset({s}) for s in sorted(signs[base])]
    elif base in arguments and -base in arguments:
        options = [frozenset({1}), frozenset({0}), frozenset({-1})]
    elif flipped:  # only −base occurs: split on the sign of −base
        options = [frozenset({-1}), frozenset({0, 1})]
    else:
        options = [POSITIVE, NON_POSITIVE]
    for option in options:
        yield from _cases(expr, {**signs, base: option}, arguments, off_kinks)


def _at_zeros(expr: Expr, zeros: list[Expr]) -> Expr:
    """In a case where each of ``zeros`` is 0: solve each for a symbol it has with a
    constant coefficient and substitute (z = 0 turns relu(z) − relu(−z) − z into 0)."""
    for i in range(len(zeros)):
        base = zeros[i]
        for s in sorted(base.free_symbols, key=str):
            k = sympy.diff(base, s)
            if k.is_number and k != 0:  # base is affine in s: base = 0 ⇔ s = s − base/k
                value = sympy.expand(s - base / k)
                expr = expr.xreplace({s: value})
                zeros = [z.xreplace({s: value}) for z in zeros]
                break
    return expr


def _sign(u: Expr, signs: dict[Expr, Signs]) -> Signs | None:
    if u.is_number:
        if u.is_comparable:
            return frozenset({int(sympy.sign(u))})
        return None
    if u in signs:
        return signs[u]
    if -u in signs:
        return frozenset(-s for s in signs[-u])
    k, v = u.as_coeff_Mul()  # k·v with k a nonzero number (a leaky slope, −1)
    if k.is_nonzero and k.is_comparable and v in signs:
        return frozenset(s * int(sympy.sign(k)) for s in signs[v])
    return None


def _substitute(expr: Expr, signs: dict[Expr, Signs]) -> Expr:
    """``expr`` with every piecewise application replaced by its branch (bottom-up, so
    relu′(relu(u)) sees u or 0); raises :class:`_Split` at the first undecided argument."""
    if not expr.args:
        return expr
    args = [_substitute(a, signs) for a in expr.args]
    if isinstance(expr, PIECEWISE):
        u = args[0]
        s = _sign(u, signs)
        if s is None or not (s <= POSITIVE or s <= NON_POSITIVE):
            raise _Split(u)
        positive = s <= POSITIVE
        if isinstance(expr, Relu):
            return u if positive else Integer(0)
        if isinstance(expr, ReluPrime):
            return Integer(1) if positive else Integer(0)
        if isinstance(expr, LeakyRelu):
            return u if positive else args[1] * u
        return Integer(1) if positive else args[1]
    if all(a is b for a, b in zip(args, expr.args)):
        return expr
    return expr.func(*args)
