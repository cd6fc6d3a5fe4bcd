"""Plain helpers on SymPy matrices: products, vec, Kronecker, broadcasting.

Entries are built as single flat sums: SymPy's own ``Matrix.__mul__`` re-flattens the
growing sum term by term, which dominated the run time of large networks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import sympy
from sympy import Expr, Matrix

from derive.errors import ShapeError

Value: TypeAlias = Matrix | Expr


def is_matrix(v: Value) -> bool:
    return isinstance(v, sympy.MatrixBase)


def matmul(a: Matrix, b: Matrix) -> Matrix:
    """a @ b, each entry built as one flat sum of its nonzero products.

    (SymPy's own product re-flattens the growing sum term by term, and Kronecker factors
    such as A ⊗ I are mostly zeros: both dominated the run time of large networks.)
    """
    zero = sympy.S.Zero
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"cannot multiply {a.shape[0]}×{a.shape[1]} @ {b.shape[0]}×{b.shape[1]}")
    rows = [[(k, e) for k, e in enumerate(row) if e is not zero] for row in a.tolist()]
    cols = b.T.tolist()
    width = b.shape[1]
    flat = [zero] * (a.shape[0] * width)
    for i, row in enumerate(rows):
        if not row:
            continue
        for j, col in enumerate(cols):
            terms: list[Expr] = []
            for k, e in row:
                c = col[k]
                if c is zero:
                    continue
                if e.is_Add:  # distribute: chained products stay flat sums of monomials
                    terms.extend(t * c for t in e.args)
                else:
                    terms.append(e * c)
            if terms:
                flat[i * width + j] = sympy.Add(*terms)
    return Matrix(a.shape[0], width, flat)


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
    """The Kronecker product a ⊗ b: (a ⊗ b)[α·r + β, γ·s + δ] = a[α, γ] b[β, δ] for b r×s."""
    ra, ca = a.shape
    rb, cb = b.shape
    zero = sympy.S.Zero
    width = ca * cb
    flat = [zero] * (ra * rb * width)
    for al in range(ra):
        for ga in range(ca):
            x = a[al, ga]
            if x is zero:
                continue
            for be in range(rb):
                row = kron_index(al, be, rb) * width
                for de in range(cb):
                    y = b[be, de]
                    if y is not zero:
                        flat[row + kron_index(ga, de, cb)] = x * y
    return Matrix(ra * rb, width, flat)


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
