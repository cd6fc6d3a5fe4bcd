"""Run a block of the NumPy dialect on symbolic arrays: the meaning of a parsed block.

Statements come from :mod:`derive.lang.program` and expressions from
:mod:`derive.lang.formula`; both are derive's own node types, so nothing the user wrote is
ever evaluated as Python.  Each node maps to one entry of a fixed table of NumPy
operations applied to :class:`~derive.code.arrays.SymArray` values (exact SymPy entries),
so shapes, broadcasting, ``keepdims``, slicing and masks follow NumPy exactly.

Values: symbolic arrays (0-d for scalars), whole numbers (sizes: ``x.shape[0]``,
loop variables), tuples (a shape), plain integer arrays (``np.arange(N)``) and
:class:`Labels` (integer class labels, represented by one-hot indicator symbols: an
integer ``y[i]`` in [0, C) is Σ_c c·[y[i] = c]; ``x[np.arange(N), y]`` is
Σ_c [y[i] = c]·x[i, c], exact on the labels' domain).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy
from sympy import Expr, Integer

from derive.code.arrays import NotRepresentable, SymArray, _reduce, max_of, symbols_array, to_exprs
from derive.errors import FormulaError
from derive.lang import formula as F
from derive.lang import program as P
from derive.ops.activations import ACTIVATIONS

__all__ = ["Interpreter", "Labels", "BlockError", "ShapeMismatch"]

_EMPTY = np.empty  # NumPy's own, also while symbolic_numpy() replaces it


class BlockError(FormulaError):
    """A block that does not run: an unknown name, shapes that do not fit, a function
    used in a way derive cannot represent.  The message names the line."""


class ShapeMismatch(FormulaError):
    """Operands whose shapes do not fit (``A @ B``, a broadcast): in a claim, the formula as
    written is not the gradient (a refutation, as a claim of a layer stack's is)."""


class Labels:
    """Integer class labels ``y`` (shape (N,)), in [0, C): one-hot indicator symbols
    ``[y[i]=c]``, made when ``x[np.arange(N), y]`` first tells C."""

    def __init__(self, name: str, shape: tuple[int, ...], classes: int | None = None) -> None:
        if len(shape) != 1:
            raise ValueError(f"labels {name} must be a vector of N integers, got shape {shape}")
        self.name = name
        self.shape = shape
        self.classes = classes
        self._onehot: SymArray | None = None

    def onehot(self, classes: int) -> SymArray:
        if self.classes is not None and classes != self.classes:
            raise NotRepresentable(f"labels {self.name} index {classes} classes here and {self.classes} elsewhere")
        self.classes = classes
        if self._onehot is None:
            out = _EMPTY((self.shape[0], classes), dtype=object)
            for i in range(self.shape[0]):
                for c in range(classes):
                    out[i, c] = sympy.Symbol(f"[{self.name}[{i}]={c}]", real=True)
            self._onehot = out.view(SymArray)
        return self._onehot

    @property
    def made(self) -> SymArray | None:
        return self._onehot


def _arr(v: Any) -> Any:
    """A number as a 0-d symbolic array (so that it never meets NumPy as a Python float)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return to_exprs(Integer(int(v)))
    if isinstance(v, sympy.Basic):
        return to_exprs(v)
    return v


def _int(v: Any, what: str) -> int:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, SymArray) and v.shape == ():
        e = v.view(np.ndarray)[()]
        if getattr(e, "is_Integer", False):
            return int(e)
    if isinstance(v, sympy.Integer):
        return int(v)
    raise NotRepresentable(f"{what} must be a whole number known from the shapes, got {_show(v)}")


def _show(v: Any) -> str:
    if isinstance(v, SymArray):
        return f"an array of shape {v.shape}" if v.shape else str(v.view(np.ndarray)[()])[:40]
    return repr(v)[:40]


class Interpreter:
    """Evaluate statements and expressions of a block in one environment of names."""

    def __init__(self, env: dict[str, Any], max_steps: int = P.MAX_STEPS) -> None:
        self.env = env
        self.max_steps = max_steps
        self.calls: dict[str, Callable[[F.Call, list[Any], Any, dict[str, Any]], Any]] = _calls()

    # ------------------------------------------------------------ statements
    def run(self, statements: tuple[P.Statement, ...],
            after: Callable[[P.Statement, int], None] | None = None) -> None:
        """Run the statements in order; ``after(statement, k)`` is called after the k-th
        top-level one."""
        for k, s in enumerate(statements):
            self.statement(s)
            if after is not None:
                after(s, k)

    def statement(self, s: P.Statement) -> None:
        try:
            if isinstance(s, P.Assign):
                value = self.value(s.value, s.text)
                if len(s.targets) == 1:
                    self.assign(s.targets[0], value, s.text)
                else:
                    items = list(value) if isinstance(value, (tuple, list)) else None
                    if items is None and isinstance(value, np.ndarray) and value.ndim >= 1:
                        items = [value[i] for i in range(value.shape[0])]
                    if items is None or len(items) != len(s.targets):
                        raise BlockError(s.text, None, f"line {s.line}: cannot unpack {_show(value)} into "
                                                       f"{len(s.targets)} names")
                    for t, v in zip(s.targets, items, strict=True):
                        self.assign(t, v, s.text)
            elif isinstance(s, P.AugAssign):
                current = self.value(s.target, s.text)
                new = self.binop(s.op, current, self.value(s.value, s.text), s.text, s.target.col)
                self.assign(s.target, new, s.text)
            else:
                start, stop, step = (_int(self.value(b, s.text), "a loop bound") for b in (s.start, s.stop, s.step))
                steps = list(range(start, stop, step))
                if len(steps) > self.max_steps:
                    raise BlockError(s.text, None, f"line {s.line}: the loop runs {len(steps)} steps (limit "
                                                   f"{self.max_steps}): use smaller sizes")
                for value in reversed(steps) if s.reverse else steps:
                    self.env[s.var] = value
                    for inner in s.body:
                        self.statement(inner)
        except BlockError:
            raise
        except FormulaError as exc:
            raise BlockError(s.text, exc.column, f"line {s.line}: {exc.message}") from None
        except (NotRepresentable, ValueError, IndexError, TypeError) as exc:
            raise BlockError(s.text, None, f"line {s.line}: {_reason(exc)}") from None

    def assign(self, target: F.Name | F.Index, value: Any, text: str) -> None:
        if isinstance(target, F.Name):
            self.env[target.id] = value.copy() if isinstance(value, SymArray) else value
            return
        base = target.value
        if not isinstance(base, F.Name):
            raise FormulaError(text, target.col, "assign into a subscript of a plain name: dx[mask] = 0")
        array = self.value(base, text)
        if not isinstance(array, SymArray):
            raise FormulaError(text, target.col, f"'{base.id}' is not an array")
        array = array.copy()  # the name gets a new array: values it was copied from stay
        row = self._label_row(target.items, text)
        if row is not None:  # dW[y[i]] = v: each row c becomes [y[i]=c]·v + (1 − [y[i]=c])·dW[c]
            row_labels, i = row
            picks = row_labels.onehot(array.shape[0]).view(np.ndarray)
            rest = self.key(target.items[1:], text) if len(target.items) > 1 else ()
            rest = rest if isinstance(rest, tuple) else (rest,)
            entries = array.view(np.ndarray)
            v = _plain(_arr(value))
            for c in range(array.shape[0]):
                old = entries[(c,) + rest]
                entries[(c,) + rest] = v * picks[i, c] + old * (1 - picks[i, c])
            self.env[base.id] = array
            return
        labels = self._labels_index(target.items, array, text)
        if labels is not None:
            onehot = labels
            new = np.broadcast_to(_plain(_arr(value)), array.shape[:1]).reshape(-1, 1) if _arr(value).ndim <= 1 \
                else None
            if new is None:
                raise FormulaError(text, target.col, "x[np.arange(N), y] = v takes one value per example")
            plain = array.view(np.ndarray)
            blended = onehot.view(np.ndarray) * new + (1 - onehot.view(np.ndarray)) * plain
            plain[...] = blended
            self.env[base.id] = array
            return
        array[self.key(target.items, text)] = _arr(value)
        self.env[base.id] = array

    # ------------------------------------------------------------ expressions
    def value(self, node: F.Node, text: str) -> Any:
        if isinstance(node, F.Num):
            return node.value
        if isinstance(node, F.Name):
            if node.id not in self.env:
                known = ", ".join(sorted(k for k in self.env if not k.startswith("_")))
                raise FormulaError(text, node.col, f"unknown name '{node.id}' (known here: {known})")
            return self.env[node.id]
        if isinstance(node, F.Neg):
            return -_arr(self.value(node.operand, text))
        if isinstance(node, F.Transpose):
            v = self.value(node.operand, text)
            return v.T if isinstance(v, np.ndarray) else v
        if isinstance(node, F.BinOp):
            return self.binop(node.op, self.value(node.left, text), self.value(node.right, text), text, node.col)
        if isinstance(node, F.Equal):
            a, b = _arr(self.value(node.left, text)), _arr(self.value(node.right, text))
            eq = np.equal(a, b)
            return eq if node.op == "==" else 1 - eq
        if isinstance(node, F.Tuple):
            return tuple(self.value(i, text) for i in node.items)
        if isinstance(node, F.Subscripts):  # einsum's, validated by the parser: passed on as data
            return node.text
        if isinstance(node, F.Index):
            base = self.value(node.value, text)
            if isinstance(base, tuple):  # a shape: x.shape[1] spelled through a name
                first = node.items[0]
                if len(node.items) != 1 or isinstance(first, (F.Slice, F.NewAxis)):
                    raise FormulaError(text, node.col, "a shape takes one index: x.shape[0]")
                return base[_int(self.value(first, text), "an index")]
            if not isinstance(base, np.ndarray):
                raise FormulaError(text, node.col, f"cannot index {_show(base)}")
            if len(node.items) == 1 and isinstance(node.items[0], F.Name):
                labels = self.value(node.items[0], text)
                if isinstance(labels, Labels):  # np.eye(C)[y], W[y]: rows picked, Σ_c [y[i]=c]·W[c]
                    if not (isinstance(base, SymArray) and base.ndim >= 1):
                        raise FormulaError(text, node.col, f"labels {labels.name} index as np.eye(C)[{labels.name}] "
                                                           f"or x[np.arange(N), {labels.name}]")
                    rows = labels.onehot(base.shape[0]).view(np.ndarray)
                    return to_exprs(np.tensordot(rows, base.view(np.ndarray), axes=1))
            row = self._label_row(node.items, text)
            if row is not None and isinstance(base, SymArray):  # W[y[i]]: Σ_c [y[i]=c]·W[c]
                row_labels, i = row
                picks = row_labels.onehot(base.shape[0]).view(np.ndarray)
                rest = self.key(node.items[1:], text) if len(node.items) > 1 else ()
                entries = base.view(np.ndarray)
                rest = rest if isinstance(rest, tuple) else (rest,)
                total = entries[(0,) + rest] * picks[i, 0]
                for c in range(1, base.shape[0]):
                    total = total + entries[(c,) + rest] * picks[i, c]
                return to_exprs(total)
            if isinstance(base, SymArray):
                onehot = self._labels_index(node.items, base, text)
                if onehot is not None:
                    picked = (onehot.view(np.ndarray) * base.view(np.ndarray)).sum(axis=1)
                    return to_exprs(picked)
            return base[self.key(node.items, text)]
        if isinstance(node, F.Call):
            fn = self.calls.get(node.func)
            if fn is None:
                raise FormulaError(text, node.col, f"unknown function '{node.func}' in a block (known: "
                                                   f"{', '.join(sorted(self.calls))})")
            args = [self.value(a, text) for a in node.args]
            axis = None if node.axis is None else self.value(node.axis, text)
            kw = {k: self.value(v, text) for k, v in node.keywords}
            return fn(node, args, axis, kw)
        raise FormulaError(text, None, f"unsupported node {type(node).__name__}")

    def binop(self, op: str, a: Any, b: Any, text: str, col: int) -> Any:
        if _is_number(a) and _is_number(b):  # sizes and constants: exact, never a float
            x, y = sympy.sympify(a), sympy.sympify(b)
            if op == "/" and y == 0:
                raise FormulaError(text, col, "division by zero")
            r = {"+": x + y, "-": x - y, "*": x * y, "/": x / y if op == "/" else None, "**": x**y}.get(op)
            if r is None:
                raise FormulaError(text, col, f"'{op}' needs arrays")
            if isinstance(a, int) and isinstance(b, int) and op in "+-*" and r.is_Integer:
                return int(r)
            return r
        a, b = _arr(a), _arr(b)
        if op == "@":
            if a.ndim == 0 or b.ndim == 0:
                raise FormulaError(text, col, "'@' needs arrays, not a scalar")
            if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
                raise ShapeMismatch(text, col, f"cannot multiply shapes {a.shape} @ {b.shape}")
            return np.matmul(a, b)
        try:
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            if op == "/":
                return a / b
            if op == "**":
                return a**b
        except ValueError as exc:
            raise ShapeMismatch(text, col, f"shapes {a.shape} and {b.shape} do not broadcast for '{op}'") from exc
        raise FormulaError(text, col, f"unknown operator {op}")

    def key(self, items: tuple[F.Node | F.Slice | F.NewAxis, ...], text: str) -> Any:
        out: list[Any] = []
        for item in items:
            if isinstance(item, F.NewAxis):
                out.append(None)
            elif isinstance(item, F.Slice):
                parts = [None if p is None else _int(self.value(p, text), "a slice bound")
                         for p in (item.lower, item.upper, item.step)]
                out.append(slice(*parts))
            else:
                v = self.value(item, text)
                if isinstance(v, Labels):
                    raise FormulaError(text, None, f"labels {v.name} index as x[np.arange(N), {v.name}]")
                if _is_number(v):
                    v = _int(v, "an index")
                out.append(v)
        return tuple(out) if len(out) != 1 else out[0]

    def _label_row(self, items: tuple[Any, ...], text: str) -> tuple[Labels, int] | None:
        """``y[i]`` as the first index (one integer label of ``y``), or None."""
        first = items[0] if items else None
        if not (isinstance(first, F.Index) and isinstance(first.value, F.Name) and len(first.items) == 1):
            return None
        labels = self.env.get(first.value.id)
        if not isinstance(labels, Labels) or isinstance(first.items[0], (F.Slice, F.NewAxis)):
            return None
        i = _int(self.value(first.items[0], text), "an index")
        if not -labels.shape[0] <= i < labels.shape[0]:
            raise FormulaError(text, first.col, f"index {i} out of range for {labels.name} ({labels.shape[0]} labels)")
        return labels, i % labels.shape[0]

    def _labels_index(self, items: tuple[Any, ...], base: SymArray, text: str) -> SymArray | None:
        """The one-hot indicators of ``x[np.arange(N), y]`` (x of shape (N, C)), or None."""
        if len(items) != 2 or isinstance(items[1], (F.Slice, F.NewAxis)):
            return None
        second = self.value(items[1], text) if isinstance(items[1], F.Name) else None
        if not isinstance(second, Labels):
            return None
        first = items[0]
        rows = None if isinstance(first, (F.Slice, F.NewAxis)) else self.value(first, text)
        n = base.shape[0] if base.ndim == 2 else -1
        if not (isinstance(rows, np.ndarray) and not isinstance(rows, SymArray) and list(rows) == list(range(n))):
            raise FormulaError(text, None, f"labels {second.name} index as x[np.arange(N), {second.name}] "
                                           "with x of shape (N, C)")
        if second.shape[0] != n:
            raise FormulaError(text, None, f"{second.name} has {second.shape[0]} labels for {n} rows")
        return second.onehot(base.shape[1])


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, np.integer)):
        return True
    return isinstance(v, sympy.Basic) and bool(v.is_number)


def _plain(a: Any) -> np.ndarray:
    return a.view(np.ndarray) if isinstance(a, SymArray) else np.asarray(a, dtype=object)


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"


# ------------------------------------------------------------------ the function table
Call = Callable[[F.Call, list[Any], Any, dict[str, Any]], Any]


def _axis(axis: Any) -> Any:
    if axis is None:
        return None
    if isinstance(axis, tuple):
        return tuple(_int(a, "an axis") for a in axis)
    return _int(axis, "an axis")


def _keep(kw: dict[str, Any]) -> bool:
    """derive's own sum(x, axis=1) keeps the axis; NumPy's spelling says keepdims=0 unless True."""
    k = kw.get("keepdims")
    return True if k is None else bool(_int(k, "keepdims"))


def _one(name: str, args: list[Any], n: int = 1) -> None:
    if len(args) != n:
        raise NotRepresentable(f"{name}() takes {n} argument(s), got {len(args)}")


def _reduction(np_fn: Callable[..., Any]) -> Call:
    def call(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
        _one(node.func, args)
        return np_fn(_arr(args[0]), axis=_axis(axis), keepdims=_keep(kw))
    return call


def _extremum(sign: int) -> Call:
    def call(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
        _one(node.func, args)
        return _reduce(_arr(args[0]), _axis(axis), _keep(kw), lambda es: max_of(es, sign), {}, node.func)
    return call


def _elementwise(name: str) -> Call:
    act = ACTIVATIONS.get(name)
    base = name[:-len("_prime")] if name.endswith("_prime") else None

    def call(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
        if not 1 <= len(args) <= 2:
            raise NotRepresentable(f"{name}() takes one array (and a slope)")
        slope = None if len(args) == 1 else _arr(args[1]).view(np.ndarray)[()]
        a = _arr(args[0]).view(np.ndarray)
        if act is not None:
            f: Callable[[Expr], Expr] = lambda z: act.apply(z, slope)  # noqa: E731
        else:
            prime = ACTIVATIONS[base]  # type: ignore[index]
            f = lambda z: prime.derivative(z, slope)  # noqa: E731
        return to_exprs(np.frompyfunc(f, 1, 1)(a) if a.shape else f(a[()]))
    return call


def _ufunc(fn: Callable[..., Any]) -> Call:
    def call(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
        _one(node.func, args)
        return fn(_arr(args[0]))
    return call


MAX_VALUE_ENTRIES = 100_000  # entries of one array a block may make (np.ones((N, D)), np.arange(N), kron)


def _sizes(args: list[Any]) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], tuple):
        args = list(args[0])
    sizes = tuple(_int(a, "a size") for a in args)
    _guard(sizes)
    return sizes


def _guard(sizes: tuple[int, ...]) -> None:
    total = 1
    for n in sizes:
        if n < 0:
            raise NotRepresentable(f"a negative size {n}")
        total *= n
        if total > MAX_VALUE_ENTRIES:
            raise NotRepresentable(f"an array of shape {sizes} is larger than the limit of {MAX_VALUE_ENTRIES} "
                                   "entries: derive works entry by entry; use small sizes")


def _shape(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    x = args[0]
    shape = x.shape if isinstance(x, (np.ndarray, Labels)) else ()
    if len(args) == 1:
        return tuple(shape)
    k = _int(args[1], "a dimension")
    return int(shape[k])


def _reshape(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    shape = kw.get("shape")
    sizes = _sizes(args[1:] if shape is None else [shape])
    return _arr(args[0]).reshape(sizes)


def _transpose(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    axes = kw.get("axes")
    order = _sizes(args[1:] if axes is None else [axes])
    return np.transpose(_arr(args[0]), order or None)


def _join(np_fn: Callable[..., Any], default_axis: int | None = 0) -> Call:
    def call(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
        parts = list(args[0]) if len(args) == 1 and isinstance(args[0], tuple) else args
        arrays = [_arr(p) for p in parts]
        if np_fn in (np.hstack, np.vstack):
            return np_fn(arrays)
        return np_fn(arrays, axis=default_axis if axis is None else _axis(axis))
    return call


def _creation(kind: str) -> Call:
    def call(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
        sizes = _sizes(args)
        value = Integer(1) if kind == "ones" else Integer(0)
        out = _EMPTY(sizes, dtype=object)
        out[...] = value
        return to_exprs(out)
    return call


def _like(kind: str) -> Call:
    def call(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
        _one(node.func, args)
        return _creation(kind)(node, list(np.shape(args[0])), None, {})
    return call


def _eye(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    n = _sizes(args)
    return to_exprs(np.eye(*n, dtype=np.int64))


def _arange(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    return np.arange(*_sizes(args))


def _len(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    return int(np.shape(args[0])[0])


def _outer(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _one("outer", args, 2)
    a, b = (_arr(x).reshape(-1) for x in args)
    _guard((a.size, b.size))
    return np.multiply.outer(a.view(np.ndarray), b.view(np.ndarray)).view(SymArray)


def _vec(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _one("vec", args)
    a = _arr(args[0])
    return to_exprs(a.view(np.ndarray).reshape(-1, 1, order="F"))


def _kron(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _one("kron", args, 2)
    a, b = (_arr(x).view(np.ndarray) for x in args)
    if a.ndim != 2 or b.ndim != 2:
        raise NotRepresentable("kron takes two matrices")
    _guard((a.shape[0] * b.shape[0], a.shape[1] * b.shape[1]))
    out = _EMPTY((a.shape[0] * b.shape[0], a.shape[1] * b.shape[1]), dtype=object)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i * b.shape[0]:(i + 1) * b.shape[0], j * b.shape[1]:(j + 1) * b.shape[1]] = a[i, j] * b
    return to_exprs(out)


def _squeeze(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    return np.squeeze(_arr(args[0]), axis=_axis(axis))


def _expand(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    ax = axis if axis is not None else (args[1] if len(args) > 1 else None)
    if ax is None:
        raise NotRepresentable("expand_dims/unsqueeze needs the axis")
    return np.expand_dims(_arr(args[0]), _int(ax, "an axis"))


def _flatten(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    return _arr(args[0]).reshape(-1)


def _refuse(why: str) -> Call:
    def call(node: F.Call, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
        raise NotRepresentable(f"{node.func}: {why}")
    return call


def _calls() -> dict[str, Call]:
    table: dict[str, Call] = {
        "sum": _reduction(np.sum), "mean": _reduction(np.mean), "max": _extremum(1), "min": _extremum(-1),
        "exp": _ufunc(np.exp), "log": _ufunc(np.log), "log1p": _ufunc(np.log1p), "tanh": _ufunc(np.tanh),
        "shape": _shape, "size": lambda n, a, ax, kw: int(np.size(a[0])),
        "ndim": lambda n, a, ax, kw: int(np.ndim(a[0])), "len": _len,
        "reshape": _reshape, "transpose": _transpose, "flatten": _flatten, "squeeze": _squeeze,
        "expand_dims": _expand, "hstack": _join(np.hstack), "vstack": _join(np.vstack),
        "concatenate": _join(np.concatenate), "stack": _join(np.stack),
        "ones": _creation("ones"), "zeros": _creation("zeros"), "ones_like": _like("ones"),
        "zeros_like": _like("zeros"), "eye": _eye, "arange": _arange, "range": _arange, "outer": _outer,
        "vec": _vec, "kron": _kron,
        "argmax": _refuse("the index of a maximum depends on the values: it is not differentiable (use the mask "
                          "x == x.max(axis=..., keepdims=True))"),
        "argmin": _refuse("the index of a minimum depends on the values: it is not differentiable"),
    }
    for name in ACTIVATIONS:
        if ACTIVATIONS[name].elementwise:
            table[name] = _elementwise(name)
            if ACTIVATIONS[name].prime is not None:
                table[f"{name}_prime"] = _elementwise(f"{name}_prime")
    table["relu_prime"] = _elementwise("relu_prime")
    from derive.code.tensor_ops import CALLS  # convolution, pooling, ...: registered there

    table.update(CALLS)
    return table


_ = symbols_array
