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
    size = _terms(e)
    if size > MAX_TERMS:
        from derive.prove.zero import TooLarge  # (zero imports this module)

        raise TooLarge
    memory_guard(size)
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
    if not flags & FRACTION:
        found = difference_is_zero(value, _se.Integer(0), flags)
        if found is not None or not flags:
            return found
    # quotients of sums, roots, opaque applications: over common denominators (Fractions)
    return rational_is_zero(expr)


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


# ------------------------------------------------------------------ rational functions
class Fractions:
    """SymPy → SymEngine for rational functions: each node becomes (numerator, denominator)
    with the numerator expanded and the denominator a product of powers of factors (each an
    expanded SymEngine polynomial), so that a sum is put over the least common multiple of
    its terms' factor lists, never over the product of all their denominators.  This is
    SymPy's ``together`` + ``expand`` of the numerator, in C++ (batch norm's and softmax's
    quotients: minutes in SymPy, a fraction of a second here).

    ``u^(p/q)`` (a root, SymPy's ``sqrt``) becomes ``r^p`` for one symbol ``r = u^(1/q)`` per
    base ``u`` (compared expanded) and ``q``, and an integer power ``u^n`` of such a base
    becomes ``r^(q·n)``: ``(v + ε)^(−3/2)`` and ``(v + ε)^(−1)·(v + ε)^(−1/2)`` are the same
    ``r^(−3)``.  An opaque function application (``exp(u)``, ``tanh(u)``) is a symbol, one per
    function and expanded arguments (``exp(x·(y + z))`` and ``exp(x·y + x·z)`` are one).

    Every step is an identity wherever the expression is defined (real, no division by 0, a
    root of a positive base), and the symbols are treated as independent, so a numerator
    that expands to 0 proves the expression identically 0.  A nonzero numerator is final
    only without roots or opaque symbols (they may satisfy relations the symbols forget).
    """

    def __init__(self) -> None:
        se = _symengine()
        self.se = se
        self.memo: dict[Expr, tuple[Any, dict[Any, int], int]] = {}
        self.opaque: dict[Any, Any] = {}
        self.roots: dict[Any, tuple[Any, int]] = {}  # base key → (r, q): r = base^(1/q)
        self.exps: dict[Any, tuple[Any, Any]] = {}  # monomial m → (exp(g·m), g)

    def _symbol(self, key: Any, prefix: str) -> Any:
        s = self.opaque.get(key)
        if s is None:
            s = self.se.Symbol(f"_{prefix}{len(self.opaque)}")
            self.opaque[key] = s
        return s

    def _key(self, part: tuple[Any, dict[Any, int], int]) -> Any:
        num, den, _ = part
        return (num, frozenset(den.items()))

    def __call__(self, e: Expr) -> tuple[Any, dict[Any, int], int]:
        found = self.memo.get(e)
        if found is not None:
            return found
        se = self.se
        out: tuple[Any, dict[Any, int], int]
        if e.is_Symbol:
            out = (self._symbol(e, "s"), {}, 0)
        elif e.is_Rational:
            out = (se.Rational(int(e.p), int(e.q)), {}, 0)
        elif e.is_Add:
            out = self._add([self(a) for a in e.args])
        elif e.is_Mul:
            out = self._mul([self(a) for a in e.args])
        elif e.is_Pow and e.exp.is_Integer:
            out = self._power(e.base, int(e.exp))
        elif e.is_Pow and e.exp.is_Rational and e.base.is_Rational:  # √2: SymEngine's exact algebraic numbers
            out = (se.Pow(se.Rational(int(e.base.p), int(e.base.q)), se.Rational(int(e.exp.p), int(e.exp.q))), {},
                   OPAQUE)
        elif e.is_Pow and e.exp.is_Rational:
            base = self(e.base)
            r, q = self._root(base, int(e.exp.q))
            out = self._monomial(r, int(e.exp.p) * (q // int(e.exp.q)), base[2] | OPAQUE)
        elif isinstance(e, _exp()):
            out = self._exp(_args(e)[0])
        elif isinstance(e, _applied()) and _args(e):
            args = tuple(self._key(self(a)) for a in _args(e))
            out = (self._symbol((type(e), args), "f"), {}, OPAQUE)
        else:
            out = (self._symbol(e, "o"), {}, OPAQUE)
        self.memo[e] = out
        return out

    def _exp(self, u: Expr) -> tuple[Any, dict[Any, int], int]:
        """exp(c·p) = exp(g·p)^(c/g): one symbol per argument p up to a factor (SymPy writes
        exp(u)·exp(u) as exp(2u): the same symbol squared here) when c/g is an integer;
        else one opaque symbol per argument."""
        se = self.se
        num, den, flags = self(u)
        if den or num == 0:
            return (self._symbol(("exp", self._key((num, den, flags))), "f"), {}, OPAQUE)
        terms = num.args if isinstance(num, se.Add) else (num,)
        coef, _ = min((_split(t) for t in terms), key=lambda cm: str(cm[1]))
        p = se.expand(num / coef)
        found = self.exps.get(p)
        if found is None:
            found = (self._symbol(("exp", p, coef), "e"), coef)
            self.exps[p] = found
        symbol, g = found
        n = se.expand(coef / g)
        if not isinstance(n, se.Integer):
            return (self._symbol(("exp", p, coef), "e"), {}, OPAQUE)
        k = int(n)
        return (symbol**k, {}, OPAQUE) if k >= 0 else (se.Integer(1), {symbol: -k}, OPAQUE)

    def _monomial(self, r: Any, n: int, flags: int) -> tuple[Any, dict[Any, int], int]:
        if n >= 0:
            return (r**n, {}, flags)
        return (self.se.Integer(1), {r: -n}, flags)

    def _root(self, base: tuple[Any, dict[Any, int], int], q: int) -> tuple[Any, int]:
        key = self._key(base)
        found = self.roots.get(key)
        if found is not None and found[1] % q == 0:
            return found
        r = self._symbol((key, q), "r")
        if found is None:
            self.roots[key] = (r, q)
        return r, q

    def _power(self, b: Expr, n: int) -> tuple[Any, dict[Any, int], int]:
        base = self(b)
        root = self.roots.get(self._key(base))
        if root is not None:  # u^n = (u^(1/q))^(q·n)
            r, q = root
            return self._monomial(r, q * n, base[2] | OPAQUE)
        num, den, flags = base
        if n >= 0:
            return (_expanded(num**n, _power_size(num, n)), {k: v * n for k, v in den.items()}, flags)
        m = -n
        if num == 0:
            raise Unknown  # a division by 0 as written
        top = self.se.Integer(1)
        if den:
            top = _expanded(self.se.Mul(*[k ** (v * m) for k, v in den.items()]),
                            math.prod(_power_size(k, v * m) for k, v in den.items()))
        if isinstance(num, self.se.Number):
            return (_expanded(top / num**m, _size(top)), {}, flags)
        return (top, {num: m}, flags)

    def _mul(self, parts: list[tuple[Any, dict[Any, int], int]]) -> tuple[Any, dict[Any, int], int]:
        den: dict[Any, int] = {}
        flags = 0
        for _, d, f in parts:
            flags |= f
            for k, v in d.items():
                den[k] = den.get(k, 0) + v
        return (_expanded(self.se.Mul(*[n for n, _, _ in parts]), math.prod(_size(n) for n, _, _ in parts)), den,
                flags)

    def _add(self, parts: list[tuple[Any, dict[Any, int], int]]) -> tuple[Any, dict[Any, int], int]:
        lcm: dict[Any, int] = {}
        flags = 0
        for _, d, f in parts:
            flags |= f
            for k, v in d.items():
                if v > lcm.get(k, 0):
                    lcm[k] = v
        if not lcm:
            return (_expanded(self.se.Add(*[n for n, _, _ in parts]), sum(_size(n) for n, _, _ in parts)), {}, flags)
        terms = []
        size = 0
        for n, d, _ in parts:
            missing = [(k, v - d.get(k, 0)) for k, v in lcm.items() if v > d.get(k, 0)]
            terms.append(self.se.Mul(n, *[k**m for k, m in missing]))
            size += _size(n) * math.prod(_power_size(k, m) for k, m in missing)
        return (_expanded(self.se.Add(*terms), size), lcm, flags)

    def is_zero(self, e: Expr) -> bool | None:
        """True: identically 0; False: not, and final; None: unknown."""
        try:
            num, _, flags = self(e)
        except Unknown:
            return None
        if num == 0:
            return True
        return None if flags else False


def _size(e: Any) -> int:
    """The terms of an expanded SymEngine expression."""
    return len(e.args) if isinstance(e, _se.Add) else 1


def _power_size(e: Any, n: int) -> int:
    k = _size(e)
    return 1 if k == 1 or n <= 0 else math.comb(k + n - 1, n)


def _expanded(e: Any, size: int) -> Any:
    """SymEngine's expand of e, whose expansion has at most ``size`` terms (an estimate
    made from its expanded parts, without walking them): over MAX_TERMS it is TooLarge."""
    if size > MAX_TERMS:
        from derive.prove.zero import TooLarge

        raise TooLarge
    memory_guard(size)
    return _se.expand(e)


#: the address space kept free under the soft RLIMIT_AS (derive check --max-memory): what
#: the C++ libraries, Python and the unwinding need after the guard says no
GUARD_MARGIN = 0.125
GUARD_MIN_MARGIN = 256 * 2**20
GUARD_EVERY = 256  # expansions between two looks at the address space (a large one: looked at at once)
_guard = [0]


def memory_guard(size: int = 0) -> None:
    """Raise MemoryError while the process's address space is within the margin of its soft
    ``RLIMIT_AS``: memoised SymEngine expansions grow without any single one being too
    large, and SymEngine (C++) or a library's thread-local data that cannot allocate ends
    the process ("cannot allocate memory for thread-local data: ABORT") where Python's
    MemoryError would be a verdict (unproven, limit).  Looks every :data:`GUARD_EVERY`
    expansions, or at once before one of ``size`` ≥ 2,000 terms; a no-op without a limit
    or off Linux."""
    _guard[0] += 1
    if _guard[0] < GUARD_EVERY and size < 2000:
        return
    _guard[0] = 0
    limit = _address_limit()
    if limit is None:
        return
    used = _address_space()
    if used is not None and used > limit - max(GUARD_MIN_MARGIN, int(limit * GUARD_MARGIN)):
        raise MemoryError(f"address space {used >> 20} MiB, near the limit of {limit >> 20} MiB")


def _address_limit() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else soft


def _address_space() -> int | None:
    """The process's address space in bytes (Linux: /proc/self/statm), or None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    import resource

    return pages * resource.getpagesize()


def _split(t: Any) -> tuple[Any, Any]:
    """A SymEngine monomial as (its numeric coefficient, the rest)."""
    se = _se
    if isinstance(t, se.Number) or (isinstance(t, se.Pow) and isinstance(t.args[0], se.Number)):
        return t, se.Integer(1)
    if isinstance(t, se.Mul):
        coef = [a for a in t.args if isinstance(a, se.Number) or (isinstance(a, se.Pow)
                                                                   and isinstance(a.args[0], se.Number))]
        rest = [a for a in t.args if not any(a is c for c in coef)]
        return se.Mul(*coef), se.Mul(*rest)
    return se.Integer(1), t


def _args(e: Any) -> tuple[Any, ...]:
    return tuple(e.args)


def _exp() -> tuple[type, ...]:
    from sympy import exp

    return (exp,)


def _applied() -> tuple[type, ...]:
    from sympy import Function

    return (Function,)


_SHARED: list[Fractions] = []


def rational_is_zero(e: Expr) -> bool | None:
    """:class:`Fractions`' zero test (None without SymEngine); inside :func:`sharing`, one
    translation serves every call (the entries of a gradient share most subexpressions)."""
    if _symengine() is None:
        return None
    f = _SHARED[-1] if _SHARED else Fractions()
    return f.is_zero(e)


class sharing:  # noqa: N801 - used as a context manager: ``with sharing(): ...``
    """Within it, :func:`rational_is_zero` memoises its translation across calls."""

    def __enter__(self) -> None:
        if _symengine() is not None:
            _SHARED.append(Fractions())

    def __exit__(self, *exc: object) -> None:
        if _symengine() is not None and _SHARED:
            _SHARED.pop()
