"""Plain helpers on SymPy matrices: products, vec, Kronecker, broadcasting.

Entries are built as single flat sums: SymPy's own ``Matrix.__mul__`` re-flattens the
growing sum term by term, which dominated the run time of large networks.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import TypeAlias

import sympy
from sympy import Add, Expr, Matrix, Mul
from sympy.core.basic import ordering_of_classes
from sympy.polys.domains import EXRAW
from sympy.polys.matrices import DomainMatrix
from sympy.polys.matrices.sdm import SDM

from derive.errors import ShapeError

Value: TypeAlias = Matrix | Expr


def is_matrix(v: Value) -> bool:
    return isinstance(v, sympy.MatrixBase)


def rows_of(m: Matrix) -> dict[int, dict[int, Expr]]:
    """The nonzero entries of ``m`` as {row: {column: entry}} (SymPy's own sparse store,
    read without copying when it holds SymPy expressions; never modify it)."""
    rep = getattr(m, "_rep", None)
    if rep is not None and isinstance(rep.rep, SDM):
        if rep.domain != EXRAW:
            rep = rep.convert_to(EXRAW)
        return rep.rep
    zero = sympy.S.Zero
    return {i: d for i, row in enumerate(m.tolist()) if (d := {j: e for j, e in enumerate(row) if e != zero})}


def from_rows(r: int, c: int, rows: dict[int, dict[int, Expr]]) -> Matrix:
    """An r×c matrix from its nonzero entries {row: {column: entry}} (entries must be
    nonzero SymPy expressions: no entry is converted or checked again)."""
    return Matrix._fromrep(DomainMatrix.from_rep(SDM(rows, (r, c), EXRAW)))


_CLASS_KEYS: dict[type, tuple[int, str]] = {}
_SYMBOL_KEYS: dict[int, tuple[Expr, tuple]] = {}  # id(symbol) → (the symbol itself, its key)


def _class_key(cls: type) -> tuple[int, str]:
    """``Basic.compare``'s order of classes (``_cmp_name``) as a sort key."""
    key = _CLASS_KEYS.get(cls)
    if key is None:
        unknown = len(ordering_of_classes) + 1
        name = cls.__name__
        index = ordering_of_classes.index(name) if name in ordering_of_classes else unknown
        key = _CLASS_KEYS[cls] = (index, name if index == unknown else "")
    return key


_MUL_CLASS = _class_key(Mul)


def _symbol_key(s: Expr) -> tuple:
    """``Basic.compare`` of two symbols as a sort key: class, then the hashable content
    (its length first), element by element.  Cached by identity (SymPy's own hash is
    slow); the entry keeps its symbol, so an id is never read for another object."""
    found = _SYMBOL_KEYS.get(id(s))
    if found is not None and found[0] is s:
        return found[1]
    if len(_SYMBOL_KEYS) > 1_000_000:  # a long-lived process: forget old networks' symbols
        _SYMBOL_KEYS.clear()
    content = s._hashable_content()
    key = (_class_key(type(s)), len(content), content)
    _SYMBOL_KEYS[id(s)] = (s, key)
    return key


Key = tuple | None  # a monomial's sort key, None for anything but a symbol or a product of two


def _key_of(e: Expr) -> Key:
    """The sort key of a commutative symbol or of a product of distinct commutative symbols
    (a monomial without coefficient), None for anything else."""
    if e.is_Symbol:
        return _symbol_key(e) if e.is_commutative else None
    if e.is_Mul:
        keys = []
        for f in e.args:
            if not (f.is_Symbol and f.is_commutative):
                return None
            keys.append(_symbol_key(f))
        return (_MUL_CLASS, len(keys), tuple(keys))
    return None


_monomial_key = _key_of


def _product(x: Expr, kx: Key, y: Expr, ky: Key) -> tuple[Expr, Key]:
    """x·y and its key: for two monomials without a common symbol, the canonical product
    (the symbols sorted as ``Mul`` sorts them) without SymPy's general flattening;
    anything else by ``Mul``."""
    if kx is not None and ky is not None:
        x_mul, y_mul = x.is_Mul, y.is_Mul
        if not x_mul and not y_mul:  # the common case: two symbols
            if kx < ky:
                return Mul._from_args((x, y), True), (_MUL_CLASS, 2, (kx, ky))
            if ky < kx:
                return Mul._from_args((y, x), True), (_MUL_CLASS, 2, (ky, kx))
            return x * y, None
        if x_mul != y_mul:  # a monomial times one symbol (a·w times dz): the symbol inserted in order
            many, kmany, one, kone = (x.args, kx[2], y, ky) if x_mul else (y.args, ky[2], x, kx)
            p = bisect_left(kmany, kone)
            if p < len(kmany) and kmany[p] == kone:
                return x * y, None  # a symbol twice: a power
            keys = (*kmany[:p], kone, *kmany[p:])
            return Mul._from_args((*many[:p], one, *many[p:]), True), (_MUL_CLASS, len(keys), keys)
        xs, kxs = (x.args, kx[2]) if x_mul else ((x,), (kx,))
        ys, kys = (y.args, ky[2]) if y_mul else ((y,), (ky,))
        pairs = sorted(zip(kxs + kys, xs + ys, strict=True), key=_first)
        keys = tuple(k for k, _ in pairs)
        if all(keys[i] != keys[i + 1] for i in range(len(keys) - 1)):  # no symbol twice
            return Mul._from_args([f for _, f in pairs], True), (_MUL_CLASS, len(keys), keys)
    return x * y, None


def _first(pair: tuple[tuple, Expr]) -> tuple:
    return pair[0]


def times(x: Expr, y: Expr) -> Expr:
    """x·y (see :func:`_product`)."""
    return _product(x, _key_of(x), y, _key_of(y))[0]


def _total_keyed(pairs: list[tuple[Expr, Key]]) -> Expr:
    """Σ of (term, key) pairs: distinct monomials of at most two symbols are added without
    SymPy's general flattening, sorted as ``Add`` sorts them; anything else by ``Add``."""
    if len(pairs) == 1:
        return pairs[0][0]
    keys = [k for _, k in pairs]
    if None not in keys and len(set(keys)) == len(keys):
        pairs.sort(key=_second)
        return Add._from_args([t for t, _ in pairs], True)
    return sympy.Add(*[t for t, _ in pairs])


def _second(pair: tuple[Expr, Key]) -> tuple:
    return pair[1] or ()


def keyed(e: Expr) -> tuple[Expr, Key]:
    """``e`` with its monomial key, for :func:`keyed_times` and :func:`keyed_total`."""
    return e, _key_of(e)


def keyed_times(x: tuple[Expr, Key], y: tuple[Expr, Key]) -> tuple[Expr, Key]:
    """:func:`times` of two keyed expressions, keyed (a key is computed once, not per use)."""
    return _product(x[0], x[1], y[0], y[1])


def keyed_total(pairs: list[tuple[Expr, Key]]) -> Expr:
    """:func:`total` of keyed terms (the list is sorted in place)."""
    if not pairs:
        return sympy.S.Zero
    return _total_keyed(pairs)


def total(terms: list[Expr]) -> Expr:
    """Σ terms (see :func:`_total_keyed`)."""
    if not terms:
        return sympy.S.Zero
    return _total_keyed([(t, _monomial_key(t)) for t in terms])


def matmul(a: Matrix, b: Matrix, plus: Matrix | None = None) -> Matrix:
    """a @ b, each entry built as one flat sum of its nonzero products.

    (SymPy's own product re-flattens the growing sum term by term, and Kronecker factors
    such as A ⊗ I are mostly zeros: both dominated the run time of large networks.  Only
    the nonzero entries of each row are visited; products of two symbols and sums of such
    products are built directly in SymPy's canonical form.)  ``plus``: a @ b + plus, its
    entries' terms added into the same sums (W A + b 1ᵀ in one pass).
    """
    zero = sympy.S.Zero
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"cannot multiply {a.shape[0]}×{a.shape[1]} @ {b.shape[0]}×{b.shape[1]}")
    if plus is not None and plus.shape != (a.shape[0], b.shape[1]):
        raise ShapeError(f"cannot add {a.shape[0]}×{b.shape[1]} + {plus.shape[0]}×{plus.shape[1]}")
    b_rows = {k: [(j, c, _key_of(c)) for j, c in brow.items()] for k, brow in rows_of(b).items()}
    out: dict[int, dict[int, Expr]] = {}
    a_rows = rows_of(a)
    plus_rows = rows_of(plus) if plus is not None else {}
    for i in sorted(set(a_rows) | set(plus_rows)) if plus_rows else a_rows:
        row = a_rows.get(i, {})
        sums: dict[int, list[tuple[Expr, Key]]] = {}
        for k, e in sorted(row.items()):
            brow = b_rows.get(k)
            if not brow:
                continue
            # distribute: chained products stay flat sums of monomials
            parts = [(t, _key_of(t)) for t in (e.args if e.is_Add else (e,))]
            for j, c, kc in brow:
                terms = sums.get(j)
                if terms is None:
                    terms = sums[j] = []
                for t, kt in parts:
                    terms.append(_product(t, kt, c, kc))
        for j, e in plus_rows.get(i, {}).items():
            sums.setdefault(j, []).extend((t, _key_of(t)) for t in (e.args if e.is_Add else (e,)))
        entries = {}
        for j in sorted(sums):
            v = _total_keyed(sums[j])
            if v != zero:
                entries[j] = v
        if entries:
            out[i] = entries
    return from_rows(a.shape[0], b.shape[1], out)


def vec_index(i: Expr | int, j: Expr | int, rows: Expr | int) -> Expr | int:
    """Position of entry (i, j) of a matrix with ``rows`` rows in its vec (column-major)."""
    return j * rows + i


def kron_index(outer: Expr | int, inner: Expr | int, inner_size: Expr | int) -> Expr | int:
    """Row (or column) of P ⊗ Q for row ``outer`` of P and row ``inner`` of Q (Q has ``inner_size``)."""
    return outer * inner_size + inner


def vec(m: Matrix) -> Matrix:
    """Stack the columns (column-major): vec(M)[vec_index(i, j, rows)] = M[i, j]."""
    r, c = m.shape
    flat = [sympy.S.Zero] * (r * c)
    for i in range(r):
        for j in range(c):
            flat[vec_index(i, j, r)] = m[i, j]
    return Matrix(r * c, 1, flat)


def kron(a: Matrix, b: Matrix) -> Matrix:
    """The Kronecker product a ⊗ b: (a ⊗ b)[α·r + β, γ·s + δ] = a[α, γ] b[β, δ] for b r×s
    (only the nonzero products are built and stored: A ⊗ I is mostly zeros)."""
    ra, ca = a.shape
    rb, cb = b.shape
    zero = sympy.S.Zero
    # (each entry's key computed once, not once per product it enters)
    a_rows = {i: [(j, e, _key_of(e)) for j, e in row.items()] for i, row in rows_of(a).items()}
    b_rows = {i: [(j, e, _key_of(e)) for j, e in row.items()] for i, row in rows_of(b).items()}
    out: dict[int, dict[int, Expr]] = {}
    for al, arow in a_rows.items():
        for be, brow in b_rows.items():
            entries = {}
            for ga, x, kx in arow:
                for de, y, ky in brow:
                    v = _product(x, kx, y, ky)[0]
                    if v != zero:
                        entries[kron_index(ga, de, cb)] = v
            if entries:
                out[kron_index(al, be, rb)] = dict(sorted(entries.items()))
    return from_rows(ra * rb, ca * cb, dict(sorted(out.items())))


def broadcast(f: Callable[[Expr, Expr], Expr], a: Value, b: Value, where: str) -> Value:
    """Apply f entrywise with NumPy broadcasting of 2-D shapes and scalars."""
    if not is_matrix(a) and not is_matrix(b):
        return f(a, b)
    if not is_matrix(a):
        return b.applyfunc(lambda y: f(a, y))
    if not is_matrix(b):
        return a.applyfunc(lambda x: f(x, b))
    (ra, ca), (rb, cb) = a.shape, b.shape
    if (ra != rb and 1 not in (ra, rb)) or (ca != cb and 1 not in (ca, cb)):
        raise ShapeError(f"{where}: shapes {ra}×{ca} and {rb}×{cb} do not broadcast")
    r, c = max(ra, rb), max(ca, cb)
    return Matrix(
        r, c,
        lambda i, j: f(a[i if ra > 1 else 0, j if ca > 1 else 0], b[i if rb > 1 else 0, j if cb > 1 else 0]),
    )
