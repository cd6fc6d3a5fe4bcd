"""Proof by cases for the piecewise functions of the registry: relu, relu′, leaky_relu,
leaky_relu′, elu, elu′, relu6, relu6′, hardtanh, hardtanh′ (any class with a
:class:`~derive.ops.registry.Piecewise` facet).

An identity such as ``relu(z) = z · relu′(z)`` or ``relu′(relu(z)) = relu′(z)`` is not a
polynomial identity when relu and relu′ are opaque functions, but it is one on each
interval between the kinks.  :func:`by_cases` splits on the sign of u − k for each
argument u those functions are applied to and each of their kinks k, and replaces every
application by its piece there:

    u − 0 > 0:  relu(u) = u,  relu′(u) = 1,  leaky_relu(u, a) = u,      leaky_relu′(u, a) = 1
    u − 0 ≤ 0:  relu(u) = 0,  relu′(u) = 0,  leaky_relu(u, a) = a·u,    leaky_relu′(u, a) = a
    relu6′(u):  0 if u ≤ 0;  1 if u > 0 and u − 6 < 0;  0 if u − 6 ≥ 0

(each kink is held by the piece the registry names, derive's convention, so every case
is exact at the kinks too).  When a split on one side of a kink does not decide another
function (u and −u both occur, or relu6′(u) next to relu(u − 6)), the side is split again,
down to the three cases > 0, = 0, < 0; a sign that follows from one already decided
(u − 6 > 0 gives u > 0) is not split.  The cases cover every point, so an expression that
vanishes identically in every case vanishes everywhere.

The cases e_1, ..., e_k are returned as one expression Σ λ_i e_i with fresh symbols λ_i:
it is identically 0 exactly when every e_i is, so the judge's ``is_zero`` decides all the
cases at once and the proof steps keep one interface.
"""

from __future__ import annotations

from collections.abc import Iterator

import sympy
from sympy import Expr

from derive.ops.activations import PIECEWISE, kink_offsets
from derive.prove.zero import size_exceeds

MAX_CASES = 64  # more sign patterns than this: the step gives up (the claim stays unproven)

Signs = frozenset[int]  # the possible signs of an argument in one case: subsets of {-1, 0, 1}
POSITIVE: Signs = frozenset({1})
NON_POSITIVE: Signs = frozenset({0, -1})
ZERO: Signs = frozenset({0})


class _Undecidable(Exception):
    """A sign that no case split can decide: the step gives up."""


class _Split(Exception):
    """An argument whose sign the current case does not decide."""

    def __init__(self, argument: Expr, sides: tuple[Signs, Signs]) -> None:
        self.argument = argument  # u − k
        self.sides = sides  # the signs of u − k on the right piece, on the left piece


def by_cases(expr: Expr, off_kinks: bool = False) -> Expr:
    """Σ λ_i e_i over the sign cases of ``expr``'s piecewise arguments (``expr`` itself
    when it has none, or when there would be more than :data:`MAX_CASES` cases).

    ``off_kinks`` leaves out the points where an argument is 0 (only > 0 and < 0 cases):
    an identity then holds everywhere except on the kinks, which is worth saying of a
    claim that is not an identity (``(Z >= 0)`` for relu′(Z) differs only at Z = 0).
    """
    normal = normalized(expr)
    if not normal.has(*PIECEWISE):
        return normal
    cases = branches(normal, MAX_CASES, off_kinks)
    if cases is None:  # too many sign patterns at once: each independent part on its own
        cases = []
        for part in _independent_parts(normal) or [normal]:
            found = branches(part, MAX_CASES, off_kinks)
            if found is None:  # never an empty sum: that would read as "0 in every case"
                return normal
            cases.extend(found)
    return sympy.Add(*(sympy.Dummy("case") * e for e in cases))


MAX_PART_TERMS = 2_000  # a sum of more terms is not split into parts


def _independent_parts(expr: Expr) -> list[Expr] | None:
    """The terms of ``expr`` (expanded) grouped so that no two groups share a kink argument
    (and the terms without one on their own), or None when there is only one group.

    Each group then needs the sign patterns of its own arguments only (an entry of dW1 sums
    a huber kink per example and output unit: 3⁴ patterns at once, 3 per part).  Every part
    identically 0 is *sufficient* for the sum to be 0 — a cancellation between parts is not
    seen, and the claim then stays unproven, never wrongly proven."""
    if size_exceeds(expr, 20 * MAX_PART_TERMS):
        return None
    expanded = sympy.expand(expr)
    terms = expanded.args if expanded.is_Add else ()
    if not terms or len(terms) > MAX_PART_TERMS:
        return None
    parent: dict[Expr, Expr] = {}

    def root(a: Expr) -> Expr:
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a

    keys = []
    for term in terms:
        args = sorted(offsets(term), key=sympy.default_sort_key)
        for a in args[1:]:
            parent[root(a)] = root(args[0])
        keys.append(args[0] if args else None)
    groups: dict[Expr | None, list[Expr]] = {}
    for term, key in zip(terms, keys, strict=True):
        groups.setdefault(None if key is None else root(key), []).append(term)
    return [sympy.Add(*g) for g in groups.values()] if len(groups) > 1 else None


def branches(expr: Expr, limit: int = MAX_CASES, off_kinks: bool = False,
             splits: set[Expr] | None = None) -> list[Expr] | None:
    """The expression in each sign case of its piecewise arguments (a list that covers
    every point, or every point off the kinks), or None when there are more than ``limit``
    cases, none, or a sign that no split decides.  Unlike :func:`by_cases`, a case whose
    branch is 0 stays visible.  ``splits`` collects the arguments actually split on (after
    the inner functions are replaced: relu(u) − relu(v) is split as u, v, then u − v): off
    the kinks, the points left out are where one of them is 0."""
    expr = normalized(expr)
    if not expr.has(*PIECEWISE):
        return [expr]
    arguments = offsets(expr)
    out = []
    try:
        for case in _cases(expr, {}, arguments, off_kinks, splits):
            out.append(case)
            if len(out) > limit:
                return None
    except _Undecidable:
        return None
    return out or None


def offsets(expr: Expr) -> set[Expr]:
    """u − k for every piecewise application f(u, …) in ``expr`` and every kink k of f."""
    return {d for f in expr.atoms(*PIECEWISE) for d in kink_offsets(f)}


def normalized(expr: Expr) -> Expr:
    """Identities that hold at every point, applied before any split so that deep chains
    need fewer cases.  A step (a function of the sign of its argument alone: relu′,
    leaky_relu′) of relu(u), of leaky_relu(u, a) with a > 0, of elu(u, α ≥ 0), or of k·u
    with k > 0 is the same function of u (the sign of the argument is that of u, 0
    included): relu′(relu(u)) = relu′(u), relu′(2u) = relu′(u).  A function constant on
    (−∞, 0] (relu, relu6, relu6′) of relu(u), leaky_relu(u, a > 0) or elu(u, α ≥ 0) is the
    same function of u: relu(relu(u)) = relu(u) (but relu(2u) = 2·relu(u), so only the
    steps drop a positive factor)."""
    if not expr.args:
        return expr
    args = [normalized(a) for a in expr.args]
    pw = type(expr).piecewise if isinstance(expr, PIECEWISE) else None
    if pw is not None and (pw.sign_only or pw.flat_left):
        inner = _same_sign(args[0], scaled=pw.sign_only)
        if inner is not None:
            args[0] = inner
    if all(a is b for a, b in zip(args, expr.args, strict=True)):
        return expr
    return expr.func(*args)


def _same_sign(u: Expr, scaled: bool) -> Expr | None:
    """v with u = v where v > 0 and u ≤ 0 where v ≤ 0, for u = relu(v), leaky_relu(v, a > 0),
    elu(v, α ≥ 0) (the registry's ``keeps_positive_part``), and, with ``scaled``, k·v (k > 0)."""
    keeps = getattr(type(u), "keeps_positive_part", None)
    if keeps is not None and keeps(*u.args[1:]):
        return u.args[0]
    if not scaled:
        return None
    k, v = u.as_coeff_Mul()
    if k.is_number and k.is_positive and k != 1:
        return v
    return None


def _cases(expr: Expr, signs: dict[Expr, Signs], arguments: set[Expr], off_kinks: bool,
           splits: set[Expr] | None = None) -> Iterator[Expr]:
    try:
        yield _at_zeros(_substitute(expr, signs), [b for b, s in signs.items() if s == ZERO])
        return
    except _Split as split:
        u = split.argument
        right, left = split.sides
    if u.is_number:  # a constant whose sign SymPy cannot decide (relu(σ(1/2))): no split
        raise _Undecidable
    base, flipped = (-u, True) if u.could_extract_minus_sign() else (u, False)
    if flipped:  # the sides as signs of base = −u
        right, left = frozenset(-s for s in right), frozenset(-s for s in left)
    if off_kinks:
        options = [frozenset({1}), frozenset({-1})]
    elif base in signs:  # decided only partly (e.g. ≥ 0 where > 0 matters): refine it
        options = [frozenset({s}) for s in sorted(signs[base])]
    elif base in arguments and -base in arguments:
        options = [frozenset({1}), frozenset({0}), frozenset({-1})]
    else:  # the two sides of this kink (relu′(−z): −z > 0 | −z ≤ 0, that is z < 0 | z ≥ 0)
        options = [right, left]
    if splits is not None:
        splits.add(base)
    for option in options:
        yield from _cases(expr, {**signs, base: option}, arguments, off_kinks, splits)


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
    for b, sb in signs.items():  # u = ±b + c for a decided b and a number c (u − 6 from u > 0)
        for sign_b in (1, -1):
            c = u - sign_b * b
            if c.is_number and c.is_comparable:
                s = frozenset(sign_b * x for x in sb)  # the signs of ±b
                if s == ZERO:
                    return frozenset({int(sympy.sign(c))})
                if c > 0 and s <= frozenset({0, 1}):
                    return POSITIVE
                if c < 0 and s <= frozenset({0, -1}):
                    return frozenset({-1})
    return None


def _substitute(expr: Expr, signs: dict[Expr, Signs], memo: dict[Expr, Expr] | None = None) -> Expr:
    """``expr`` with every piecewise application replaced by its branch (bottom-up, so
    relu′(relu(u)) sees u or 0); raises :class:`_Split` at the first undecided argument.
    A subexpression shared by many branches (a window's maximum inside a softmax) is
    substituted once (``memo``: the expression as a graph, not a tree)."""
    if not expr.args:
        return expr
    if memo is None:
        memo = {}
    done = memo.get(expr)
    if done is not None:
        return done
    memo[expr] = out = _substitute_node(expr, signs, memo)
    return out


def _substitute_node(expr: Expr, signs: dict[Expr, Signs], memo: dict[Expr, Expr]) -> Expr:
    args = [_substitute(a, signs, memo) for a in expr.args]
    if isinstance(expr, PIECEWISE):
        pw = type(expr).piecewise
        assert pw is not None
        u = args[0]
        for i, k in enumerate(pw.kinks):
            d = u - k
            right, left = pw.partition(i)
            s = _sign(d, signs)
            if s is None or not (s <= right or s <= left):
                raise _Split(d, (right, left))
            if s <= left:
                return pw.piece(i, args)
        return pw.piece(len(pw.kinks), args)
    if all(a is b for a, b in zip(args, expr.args, strict=True)):
        return expr
    return expr.func(*args)
