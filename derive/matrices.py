"""Plain helpers on SymPy matrices: products, vec, Kronecker, broadcasting.

Entries are built as single flat sums: SymPy's own ``Matrix.__mul__`` re-flattens the
growing sum term by term, which dominated the run time of large networks.
"""

from __future__ import annotations

from typing import Callable, Union

import sympy
from sympy import Expr, Matrix

from derive.errors import ShapeError

Value = Union[Matrix, Expr]


def is_matrix(v: Value) -> bool:
    return isinstance(v, sympy.MatrixBase)


def matmul(a: Matrix, b: Matrix) -> Matrix:
    """a @ b, each entry built as one flat sum (SymPy's own product re-flattens per term)."""
    n = a.shape[1]
    rows = [a.row(i) for i in range(a.shape[0])]
    cols = [b.col(j) for j in range(b.shape[1])]
    return Matrix(a.shape[0], b.shape[1],
                  lambda i, j: sympy.Add(*[rows[i][k] * cols[j][k] for k in range(n)]))


def vec(m: Matrix) -> Matrix:
    """Stack the columns (column-major)."""
    r, c = m.shape
    return Matrix(r * c, 1, lambda k, _: m[k % r, k // r])


def kron(a: Matrix, b: Matrix) -> Matrix:
    """The Kronecker product a ⊗ b."""
    ra, ca = a.shape
    rb, cb = b.shape
    return Matrix(ra * rb, ca * cb, lambda i, j: a[i // rb, j // cb] * b[i % rb, j % cb])


def broadcast(f: Callable[[Expr, Expr], Expr], a: Value, b: Value, where: str) -> Value:
    """Apply f entrywise with NumPy broadcasting of 2-D shapes and scalars."""
    if not is_matrix(a) and not is_matrix(b):
        return f(a, b)  # type: ignore[arg-type]
    if not is_matrix(a):
        return b.applyfunc(lambda y: f(a, y))  # type: ignore[union-attr,arg-type]
    if not is_matrix(b):
        return a.applyfunc(lambda x: f(x, b))  # type: ignore[union-attr,arg-type]
    (ra, ca), (rb, cb) = a.shape, b.shape  # type: ignore[union-attr]
    if (ra != rb and 1 not in (ra, rb)) or (ca != cb and 1 not in (ca, cb)):
        raise ShapeError(f"{where}: shapes {ra}×{ca} and {rb}×{cb} do not broadcast")
    r, c = max(ra, rb), max(ca, cb)
    return Matrix(
        r, c,
        lambda i, j: f(a[i if ra > 1 else 0, j if ca > 1 else 0], b[i if rb > 1 else 0, j if cb > 1 else 0]),  # type: ignore[index]
    )
