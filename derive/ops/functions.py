"""The formula language's own functions (not activations): one registration each.

Every facet of a function sits in its entry: how many arguments, whether it takes an
``axis`` or sizes, its forward value on derive's 2-D values, the condition its argument
must meet to be defined (``log``: positive; recorded before SymPy builds anything, see
:mod:`derive.model.conditions`), its vector-Jacobian product as a syntax tree for the rules
of equation networks (or ``differentiable=False`` on purpose: a constant such as ``ones``),
and the LaTeX the printer writes.  ``differentiable=False`` is said on purpose: a constant
(``ones``) or a function no equation rule goes through (``kron``: derive then gives the
equations below it no rule, and says so).  The evaluator (:mod:`derive.model.evaluate`), the VJP
rules (:mod:`derive.rules.vjp`) and the printer read this table; ``tests/test_registry.py``
checks that each entry is complete and that every consumer knows every entry.

Activations (``sigmoid``, ``relu6``, ...) and their ``_prime`` forms are registered in
:mod:`derive.ops.activations`; ``softmax``, ``J`` (a Jacobian) and ``d`` (a gradient) need
the network and are the evaluator's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy
from sympy import Expr, Matrix

from derive.errors import ShapeError
from derive.lang import formula as F
from derive.ops.matrices import Value, is_matrix, kron, vec

Shape = tuple[int, int]
#: forward(args, axis, sizes) → value
Forward = Callable[[list[Value], int | None, list[int]], Value]
#: vjp(arguments, upstream, shape of the first argument, axis) → the gradient of the first argument
Vjp = Callable[[tuple[F.Node, ...], F.Node, Shape, int | None], F.Node]


class MissingFunctionFacet(ValueError):
    """A formula function registered without a facet every consumer needs."""


@dataclass(frozen=True)
class FormulaFunction:
    name: str
    arity: tuple[int, int]
    forward: Forward
    latex: str  # what the printer writes for it (checked by the registry test)
    axis: bool = False  # takes axis=0/1 (negative axes count from the end)
    sizes: bool = False  # its arguments are sizes (whole numbers), not values
    elementwise: Callable[[Expr], Expr] | None = None  # applied entry by entry
    condition: str | None = None  # "positive": where the argument must lie to be defined
    vjp: Vjp | None = None
    differentiable: bool = True  # False, said on purpose: no VJP (a constant such as ones, or a
    # structural function derive does not differentiate through in equations: diag, vec, kron)
    entries: Callable[[list[Value], list[int]], int] | None = None  # result size, for the size guard

    def __post_init__(self) -> None:
        if self.differentiable and self.vjp is None:
            raise MissingFunctionFacet(f"{self.name}: a differentiable function needs its vjp "
                                       "(or differentiable=False, said on purpose)")
        if not self.latex:
            raise MissingFunctionFacet(f"{self.name}: no LaTeX")


FUNCTIONS: dict[str, FormulaFunction] = {}


def register(fn: FormulaFunction) -> FormulaFunction:
    if fn.name in FUNCTIONS:
        raise MissingFunctionFacet(f"{fn.name} is registered twice")
    FUNCTIONS[fn.name] = fn
    return fn


# ------------------------------------------------------------------ tree helpers
def _mul(a: F.Node, b: F.Node) -> F.Node:
    return F.BinOp("*", a, b, 0)


def _ones(shape: Shape) -> F.Node:
    return F.Call("ones", (F.Num(sympy.Integer(shape[0]), 0), F.Num(sympy.Integer(shape[1]), 0)), None, 0)


def _spread(up: F.Node, shape: Shape) -> F.Node:
    """An upstream gradient of a sum, spread back over the summed entries."""
    return up if shape == (1, 1) else _mul(up, _ones(shape))


# ------------------------------------------------------------------ forward values
def _sum(args: list[Value], axis: int | None, sizes: list[int]) -> Value:
    v = args[0]
    if not is_matrix(v):
        return v
    if axis is None:
        return sympy.Add(*v)
    if axis == 0:
        return Matrix(1, v.shape[1], lambda i, j: sympy.Add(*v.col(j)))
    return Matrix(v.shape[0], 1, lambda i, j: sympy.Add(*v.row(i)))


def _mean(args: list[Value], axis: int | None, sizes: list[int]) -> Value:
    """mean(M, axis=k) = sum(M, axis=k) / (size along k); mean(M) = sum(M) / entries."""
    v = args[0]
    if not is_matrix(v):
        return v
    count = len(v) if axis is None else v.shape[axis]
    return _sum(args, axis, sizes) / count


def _diag(args: list[Value], axis: int | None, sizes: list[int]) -> Value:
    v = args[0]
    if not is_matrix(v):
        return Matrix([[v]])
    r, c = v.shape
    if r == 1 or c == 1:
        return sympy.diag(*list(v))
    if r == c:
        return Matrix(r, 1, lambda i, j: v[i, i])
    raise ShapeError(f"diag() needs a vector or a square matrix, got {r}×{c}")


def _as_matrix(x: Value) -> Matrix:
    return x if is_matrix(x) else Matrix([[x]])


def _shape(args: list[Value], axis: int | None, sizes: list[int]) -> Value:
    """``x.shape[k]``: a size of a 2-D value, as a number (NumPy's negative k counts from the end)."""
    x, k = args
    if not is_matrix(x):
        raise ShapeError("x.shape[k]: x is a scalar here (it has no axes)")
    if not (getattr(k, "is_Integer", False) or isinstance(k, int)) or not -2 <= int(k) <= 1:
        raise ShapeError(f"x.shape[k] needs k = 0 or 1 (a value here is 2-D, {x.shape[0]}×{x.shape[1]}), got {k}")
    return sympy.Integer(x.shape[int(k)])


def _size(args: list[Value], axis: int | None, sizes: list[int]) -> Value:
    """``x.size``: the number of entries."""
    x = args[0]
    return sympy.Integer(x.shape[0] * x.shape[1]) if is_matrix(x) else sympy.Integer(1)


def _mean_vjp(args: tuple[F.Node, ...], up: F.Node, shape: Shape, axis: int | None) -> F.Node:
    count = shape[0] * shape[1] if axis is None else shape[axis]
    return F.BinOp("/", _spread(up, shape), F.Num(sympy.Integer(count), 0), 0)


for _fn in (
    FormulaFunction("exp", (1, 1), lambda a, k, s: a[0], r"\exp", elementwise=sympy.exp,
                    vjp=lambda args, up, shape, axis: _mul(up, F.Call("exp", args[:1], None, 0))),
    FormulaFunction("log", (1, 1), lambda a, k, s: a[0], r"\log", elementwise=sympy.log, condition="positive",
                    vjp=lambda args, up, shape, axis: F.BinOp("/", up, args[0], 0)),
    FormulaFunction("sum", (1, 1), _sum, r"\sum", axis=True,
                    vjp=lambda args, up, shape, axis: _spread(up, shape)),
    FormulaFunction("mean", (1, 1), _mean, r"\operatorname{mean}", axis=True, vjp=_mean_vjp),
    FormulaFunction("eye", (1, 1), lambda a, k, s: sympy.eye(s[0]), "I_", sizes=True, differentiable=False),
    FormulaFunction("ones", (1, 2), lambda a, k, s: sympy.ones(*(s + [1])[:2]), r"\mathbf{1}", sizes=True,
                    differentiable=False, entries=lambda a, s: (s + [1])[0] * (s + [1])[1]),
    FormulaFunction("zeros", (1, 2), lambda a, k, s: sympy.zeros(*(s + [1])[:2]), r"\mathbf{0}", sizes=True,
                    differentiable=False, entries=lambda a, s: (s + [1])[0] * (s + [1])[1]),
    FormulaFunction("diag", (1, 1), _diag, r"\operatorname{diag}", differentiable=False,
                    entries=lambda a, s: len(a[0]) ** 2 if is_matrix(a[0]) and 1 in a[0].shape else 1),
    FormulaFunction("vec", (1, 1), lambda a, k, s: vec(a[0]) if is_matrix(a[0]) else Matrix([[a[0]]]),
                    r"\operatorname{vec}", differentiable=False),
    FormulaFunction("kron", (2, 2), lambda a, k, s: kron(_as_matrix(a[0]), _as_matrix(a[1])), r"\otimes",
                    differentiable=False, entries=lambda a, s: len(_as_matrix(a[0])) * len(_as_matrix(a[1]))),
    # sizes read off a value (``Y.shape[1]`` for m, ``x.size``): numbers, not differentiated
    FormulaFunction("shape", (2, 2), _shape, r"\operatorname{shape}", differentiable=False),
    FormulaFunction("size", (1, 1), _size, r"\operatorname{size}", differentiable=False),
):
    register(_fn)
