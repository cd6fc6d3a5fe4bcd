"""A fast exact zero test: SymEngine's ``expand`` over derive's atoms.

SymPy stays the language of every expression derive builds; this module only *decides*
whether a SymPy expression (or the difference of two) is identically 0, the way
:func:`derive.prove.zero.is_zero` does, but in SymEngine (C++), and without building the
difference in SymPy first (SymPy's ``c − t`` of two large sums is most of a proof's time).

The translation is exact: symbols and every subterm SymEngine should not look into
(applied functions such as ``relu_prime(Z1[0,0])``, ``exp(u)``, a non-integer power)
become fresh independent symbols, one per structurally equal SymPy subterm; rationals
stay exact rationals; ``+``, ``·`` and integer powers are SymEngine's own.  Treating a
subterm as an independent symbol is sound (an identity in independent symbols holds for
every value they take), so ``expand(...) == 0`` is a proof, exactly as in SymPy.

A *nonzero* result is final (the caller need not ask SymPy) only when the expression is a
Laurent polynomial in plain symbols, where expanded forms are canonical: no opaque
subterm (SymPy could still identify two of them, e.g. ``exp(a)·exp(b) = exp(a + b)``)
and no negative power of a sum (a rational function needs ``together``).  Otherwise the
answer is "unknown" and the caller falls back to SymPy.

Atoms can be *substituted* while translating (an adjoint atom by its definition): the
translation of each substituted atom is memoized and expanded once, so a chain of
adjoints is unfolded once for every entry that uses it instead of once per entry.
An opaque subterm that mentions a substituted atom makes the answer "unknown".
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from sympy import Expr, Symbol

from derive.model.truth import AdjointSymbol as ADJOINT

_se: Any = None  # the symengine module, imported on first use (see _symengine)
_LOADED = False


def _symengine() -> Any:
    """SymEngine, imported once on first use (None when it is not installed).

    SymEngine's wrapper imports NumPy when it can, which costs more than SymEngine itself
    and is never used here (only symbols, +, ·, ** and expand): when NumPy is not loaded
    yet, it is hidden during the import."""
    global _se, _LOADED
    if not _LOADED:
        _LOADED = True
        hide = "numpy" not in sys.modules
        if hide:
            sys.modules["numpy"] = None  # type: ignore[assignment]
        try:
            import symengine
            _se = symengine
        except ImportError:  # pragma: no cover - exercised only where symengine is absent
            _se = None
        finally:
            if hide:
                del sys.modules["numpy"]
    return _se

MAX_TERMS = 200_000  # an expansion estimated larger is not attempted (C++ does not stop for the alarm)


def expand(e: Any) -> Any:
    """SymEngine's expand, after an estimate of the result's size: an expansion estimated
    over :data:`MAX_TERMS` terms raises :class:`~derive.prove.zero.TooLarge` (unproven),
    because SymEngine's C++ neither answers the run's time budget nor fails politely out of
    memory (sum(Z1)**64 has about 10**22 terms)."""
    if _terms(e) > MAX_TERMS:
        from derive.prove.zero import TooLarge  # (zero imports this module)

        raise TooLarge
    return _se.expand(e)


def _terms(e: Any, cap: int = MAX_TERMS + 1) -> int:
    """An upper estimate of the number of terms of e expanded (stops at ``cap``)."""
    if isinstance(e, _se.Add):
        return min(cap, sum(_terms(a, cap) for a in e.args))
    if isinstance(e, _se.Mul):
        n = 1
        for a in e.args:
            n = min(cap, n * _terms(a, cap))
        return n
    if isinstance(e, _se.Pow):
        base, exp = e.args
        if isinstance(exp, _se.Integer) and int(exp) > 1:
            k, n = _terms(base, cap), int(exp)
            if k <= 1:
                return 1
            return min(cap, math.comb(k + n - 1, n))  # the monomials of degree n in k terms
        return 1
    return 1


OPAQUE = 1  # an opaque subterm was met: a nonzero result is not final
FRACTION = 2  # a negative power of a non-symbol: a nonzero result is not final


def available() -> bool:
    """Whether SymEngine is installed (the fast core can be used)."""
    return _symengine() is not None


class Unknown(Exception):
    """The translation cannot follow a substitution into an opaque subterm."""


Substitution = Callable[[Symbol], Expr | None]


class Translation:
    """SymPy → SymEngine for one substitution (memoized; shares one symbol table)."""

    def __init__(self, symbols: dict[Expr, Any], substitute: Mapping[Symbol, Expr] | None = None,
                 mode: Callable[[Symbol], Translation | None] | None = None) -> None:
        _symengine()
        self.symbols = symbols
        self.substitute = substitute or {}
        self.mode = mode  # the translation that each substituted atom's definition is read in
        self.memo: dict[Expr, tuple[Any, int]] = {}

    def symbol(self, e: Expr) -> Any:
        s = self.symbols.get(e)
        if s is None:  # named by what it stands for: _d… an adjoint atom (see adjoints())
            s = _se.Symbol(f"_{'d' if isinstance(e, ADJOINT) else 'a'}{len(self.symbols)}")
            self.symbols[e] = s
        return s

    def adjoints(self, e: Expr) -> set[Expr]:
        """The adjoint atoms that ``e`` mentions (its free symbols, read off SymEngine)."""
        return self.adjoints_of(self(e)[0])

    def adjoints_of(self, value: Any) -> set[Expr]:
        """The adjoint atoms that a translated expression mentions."""
        names = {s.name for s in value.free_symbols if s.name.startswith("_d")}
        if not names:
            return set()
        return {a for a, s in self.symbols.items() if isinstance(a, ADJOINT) and s.name in names}

    def __call__(self, e: Expr) -> tuple[Any, int]:
        memo = self.memo
        found = memo.get(e)
        if found is not None:
            return found
        if e.is_Symbol:
            d = self.substitute.get(e)
            if d is None:
                out: tuple[Any, int] = (self.symbol(e), 0)
            else:
                inner = self.mode(e) if self.mode is not None else self
                value, flags = (inner or self)(d)
                out = (expand(value), flags)
        elif e.is_Rational:
            out = (_se.Rational(int(e.p), int(e.q)), 0)
        elif e.is_Add:
            parts = [self(a) for a in e.args]
            out = (_se.Add(*[p for p, _ in parts]), _or(parts))
        elif e.is_Mul:
            parts = [self(a) for a in e.args]
            out = (_se.Mul(*[p for p, _ in parts]), _or(parts))
        elif e.is_Pow and e.exp.is_Integer:
            base, flags = self(e.base)
            n = int(e.exp)
            if n < 0 and not e.base.is_Symbol:
                flags |= FRACTION
            out = (base ** n, flags)
        else:
            if self.substitute and any(s in self.substitute for s in e.free_symbols):
                raise Unknown
            out = (self.symbol(e), OPAQUE)
        memo[e] = out
        return out


def _or(parts: list[tuple[Any, int]]) -> int:
    flags = 0
    for _, f in parts:
        flags |= f
    return flags


def difference_is_zero(left: Any, right: Any, flags: int) -> bool | None:
    """True when left − right expands to 0; False when it does not and that is final;
    None when SymPy might still prove it."""
    if left == right:
        return True
    if expand(left - right) == 0:
        return True
    return None if flags else False


def is_zero(expr: Expr) -> bool | None:
    """The fast test on one SymPy expression: True (identically 0), False (final: not
    identically 0 as a rational function of its atoms), None (unknown: ask SymPy)."""
    if _symengine() is None:
        return None
    value, flags = Translation({})(expr)
    return difference_is_zero(value, _se.Integer(0), flags)


def equal(left: Expr, right: Expr) -> bool | None:
    """:func:`is_zero` of left − right, without building the difference in SymPy."""
    if _symengine() is None:
        return None
    if left == right:
        return True
    translate = Translation({})
    a, fa = translate(left)
    b, fb = translate(right)
    return difference_is_zero(a, b, fa | fb)



class Folder:
    """A claim folded into the truth's adjoint atoms, bottom-up, without expanding it whole.

    A written-out chain (``((W2ᵀ((W3ᵀ((A3 − Y)/m)) ⊙ (1 − A2²))) ⊙ (1 − A1²)) X1ᵀ``) expands
    to tens of thousands of monomials; folded, it is ``dW1[i,j]`` itself.  Each Add or
    Mul node of the claim is translated with its children already folded and expanded
    (small: the children are atoms); when that expansion equals the expansion of an adjoint
    atom's own definition (one chain-rule step, ``dA1[k,j] = Σ_i dZ2[i,j]·W2[i,k]``), the
    node becomes that atom.  In a product, an adjoint atom ``a`` times factors whose
    product expands to ``g`` becomes ``z`` when ``z``'s definition is ``a·g``
    (``dZ2 = dA2·(1 − A2²)`` inside the flattened ``W2·(…)·(1 − A2²)``).  An atom defined
    as another atom alone (``dZ3 = dA3`` for an identity output) is read as that atom.

    Every replacement is of a subexpression by an atom equal to it on the network (its
    definition, an identity of expanded polynomials in the atoms), so the folded claim
    equals the claim: a proof about the folded claim is a proof about the claim.
    """

    def __init__(self, symbols: dict[Expr, Any], adjoints: Mapping[Symbol, Expr]) -> None:
        se = _symengine()
        self.aliases = {s: d for s, d in adjoints.items() if d.is_Symbol}
        self.translate = Translation(symbols, self.aliases)
        self.adjoints_of = self.translate.adjoints_of
        self.memo: dict[Expr, Any] = {}
        self.sums: dict[Any, Any] = {}
        self.products: dict[Any, list[tuple[Any, Any]]] = {}
        for z, d in adjoints.items():
            if z in self.aliases:
                continue
            atom = self.translate(z)[0]
            try:
                self.sums.setdefault(expand(self.translate(d)[0]), atom)
                if d.is_Mul:
                    for i, f in enumerate(d.args):
                        if isinstance(f, ADJOINT):
                            rest = expand(se.Mul(*[self.translate(g)[0] for k, g in enumerate(d.args) if k != i]))
                            self.products.setdefault(self.translate(f)[0], []).append((rest, atom))
            except Unknown:
                continue

    def __call__(self, e: Expr) -> Any:
        """The folded claim (a SymEngine expression in the atoms); raises Unknown."""
        found = self.memo.get(e)
        if found is not None:
            return found
        se = _se
        if e.is_Add:
            out = expand(se.Add(*[self(a) for a in e.args]))
            out = self.sums.get(out, out)
        elif e.is_Mul:
            out = self._product([self(a) for a in e.args])
        elif e.is_Pow and e.exp.is_Integer and e.exp > 0:
            out = expand(self(e.base) ** int(e.exp))
            out = self.sums.get(out, out)
        else:
            out = self.translate(e)[0]
        self.memo[e] = out
        return out

    def _product(self, factors: list[Any]) -> Any:
        se = _se
        changed = True
        while changed and len(factors) > 1:
            changed = False
            for i, a in enumerate(factors):
                for g, z in self.products.get(a, ()):
                    others = factors[:i] + factors[i + 1:]
                    hit = _subset_with_product(others, g)
                    if hit is not None:
                        factors = [z] + [f for k, f in enumerate(others) if k not in hit]
                        changed = True
                        break
                if changed:
                    break
        out = expand(se.Mul(*factors))
        return self.sums.get(out, out)


def _subset_with_product(factors: list[Any], target: Any, most: int = 3) -> set[int] | None:
    """Indices of at most ``most`` factors whose product expands to ``target``, or None."""
    from itertools import combinations

    se = _se
    for size in range(1, min(most, len(factors)) + 1):
        for pick in combinations(range(len(factors)), size):
            product = factors[pick[0]] if size == 1 else expand(se.Mul(*[factors[k] for k in pick]))
            if product == target:
                return set(pick)
    return None
