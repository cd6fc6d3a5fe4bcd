"""Plain helpers on SymPy matrices: products, vec, Kronecker, broadcasting.

Entries are built as single flat sums: SymPy's own ``Matrix.__mul__`` re-flattens the
growing sum term by term, which dominated the run time of large networks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import sympy
from sympy import Add, Expr, Matrix, Mul
from sympy.core.basic import _args_sortkey
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


def times(x: Expr, y: Expr) -> Expr:
    """x·y; two distinct symbols are multiplied without SymPy's general flattening (the
    canonical product: the pair sorted as ``Mul`` sorts it), everything else by ``Mul``."""
    if x.is_Symbol and y.is_Symbol and x != y and x.is_commutative and y.is_commutative:
        return Mul._from_args((x, y) if _args_sortkey(x) < _args_sortkey(y) else (y, x), True)
    return x * y


def total(terms: list[Expr]) -> Expr:
    """Σ terms; distinct monomials of at most two distinct symbols (the terms of most
    matrix products) are added without SymPy's general flattening, sorted as ``Add``
    sorts them; everything else by ``Add``."""
    if len(terms) > 1 and all(t.is_Symbol or (t.is_Mul and len(t.args) == 2 and t.args[0].is_Symbol
                                             and t.args[1].is_Symbol) for t in terms) \
            and len(set(terms)) == len(terms):
        return Add._from_args(sorted(terms, key=_args_sortkey), True)
    return sympy.Add(*terms)


def matmul(a: Matrix, b: Matrix) -> Matrix:
    """a @ b, each entry built as one flat sum of its nonzero products.

    (SymPy's own product re-flattens the growing sum term by term, and Kronecker factors
    such as A ⊗ I are mostly zeros: both dominated the run time of large networks.  Only
    the nonzero entries of each row are visited.)
    """
    zero = sympy.S.Zero
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"cannot multiply {a.shape[0]}×{a.shape[1]} @ {b.shape[0]}×{b.shape[1]}")
    b_rows = rows_of(b)
    out: dict[int, dict[int, Expr]] = {}
    for i, row in rows_of(a).items():
        sums: dict[int, list[Expr]] = {}
        for k, e in sorted(row.items()):
            brow = b_rows.get(k)
            if not brow:
                continue
            parts = e.args if e.is_Add else (e,)  # distribute: chained products stay flat sums of monomials
            for j, c in brow.items():
                terms = sums.get(j)
                if terms is None:
                    terms = sums[j] = []
                terms.extend(times(t, c) for t in parts)
        entries = {}
        for j in sorted(sums):
            v = total(sums[j])
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
    a_rows, b_rows = rows_of(a), rows_of(b)
    out: dict[int, dict[int, Expr]] = {}
    for al, arow in a_rows.items():
        for be, brow in b_rows.items():
            entries = {}
            for ga, x in arow.items():
                for de, y in brow.items():
                    v = times(x, y)
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
