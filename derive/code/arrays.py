"""Symbolic NumPy arrays: object arrays whose entries are SymPy expressions, so that a
user's unmodified NumPy code runs on them and computes its result exactly, entry by entry.

:class:`SymArray` is an ``ndarray`` subclass of object dtype.  Every entry is a SymPy
expression (never a float): numbers that come in from the user's code become exact
rationals (:func:`exact`: ``1e-5`` is 1/100000, ``1/3`` computed in floats is 1/3).

- ufuncs (``+ - * / ** @``, ``np.exp/log/tanh/sqrt/maximum/minimum/abs``, comparisons,
  ``np.add.at``, ``np.add.reduce``) go through ``__array_ufunc__``;
- NumPy functions go through ``__array_function__``: structural ones (``reshape``,
  ``transpose``, ``pad``, ``concatenate``, ``dot``, ``einsum``, ...) run NumPy's own code
  on the object entries; reductions (``sum/mean/var/std/max/min/prod``), ``where`` and
  ``clip`` are derive's own;
- anything else raises :class:`NotRepresentable`, naming the NumPy function.

Piecewise operations use derive's own step functions, so the proof by cases and the
numeric evaluator know them: ``x > 0`` is relu′(x) (relu′(0) = 0), ``x >= 0`` is
1 − relu′(−x), ``np.maximum(x, 0)`` is relu(x), ``np.maximum(a, b)`` is b + relu(a − b).
The maximum of several entries (``np.max(window)``) is Σ x_i·[x_i is the first
maximum], its derivative the indicator of the first maximum; ``window == np.max(window)``
is the indicator that x_i is *a* maximum (NumPy's semantics: every tied entry), so the two
differ only where entries tie, a set of measure zero.

Creating arrays: ``np.zeros/ones/empty/full`` (and their ``_like`` forms) return plain
NumPy arrays, which cannot hold symbolic entries; inside :func:`symbolic_numpy` (which
:func:`derive.code.backward.gradcheck` enters around the user's code) they return exact
symbolic arrays instead when their dtype is a float (or object) dtype.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import sympy
from sympy import Expr, Integer

from derive.errors import DeriveError
from derive.ops.activations import ReluPrime, Tanh
from derive.ops.registry import OpFunction

__all__ = ["NotRepresentable", "SymArray", "exact", "symbols_array", "symbolic_numpy", "to_exprs", "concrete"]


# NumPy's own, also while symbolic_numpy() replaces them
_EMPTY, _ASARRAY, _ARRAY = np.empty, np.asarray, np.array


class NotRepresentable(DeriveError, TypeError):
    """The user's NumPy code did something derive cannot represent exactly on symbolic
    arrays; the message names the NumPy function (or Python operation) and says why."""


# ------------------------------------------------------------------ numbers
def exact(v: Any, where: str = "") -> Expr:
    """One entry as an exact SymPy expression.

    A float becomes the simplest rational that rounds to it (denominator ≤ 10⁶: ``1/3``
    computed in floats is 1/3, ``0.1`` is 1/10), else its shortest decimal (``1e-8``)."""
    if isinstance(v, sympy.Basic):
        return v
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return exact(v[()], where)
    if isinstance(v, (bool, np.bool_)):
        return Integer(int(v))
    if isinstance(v, (int, np.integer)):
        return Integer(int(v))
    if isinstance(v, Fraction):
        return sympy.Rational(v.numerator, v.denominator)
    if isinstance(v, (float, np.floating)):
        return _from_float(float(v), where)
    if v is None:  # an entry of np.empty_like on an object array
        return Integer(0)
    raise NotRepresentable(f"{where or 'a value'}: cannot use {type(v).__name__} {v!r} as an entry of a symbolic array")


@functools.lru_cache(maxsize=4096)
def _from_float(f: float, where: str) -> Expr:
    if f != f or f in (float("inf"), float("-inf")):
        raise NotRepresentable(f"{where or 'a value'}: {f} is not a real number (nan or inf in the code)")
    small = Fraction(f).limit_denominator(10**6)
    if float(small) == f:
        return sympy.Rational(small.numerator, small.denominator)
    return sympy.Rational(repr(f))


def exact_floats(a: SymArray) -> SymArray:
    """``a`` with every SymPy Float inside its entries made exact as :func:`exact` makes a
    float (the simplest rational that rounds to it).  Floats reach expressions through
    NumPy's own code, which derive does not see: a float array's ``.dot`` method given a
    symbolic array, ``x_row * expr`` with ``x_row`` a plain float array; left as they are,
    no identity in them is exact (0.5/3 is not 1/6) and a kink's argument cannot be told
    from 0."""
    plain = a.view(np.ndarray)
    if not any(isinstance(e, sympy.Basic) and e.has(sympy.Float) for e in plain.flat):
        return a
    out = _EMPTY(plain.shape, dtype=object)
    for idx in np.ndindex(*plain.shape):
        e = plain[idx]
        if isinstance(e, sympy.Basic) and e.has(sympy.Float):
            e = e.xreplace({f: _from_float(float(f), "") for f in e.atoms(sympy.Float)})
        out[idx] = e
    return out.view(SymArray)


def _is_number(e: Expr) -> bool:
    return bool(e.is_number) and bool(e.is_comparable)


# ------------------------------------------------------------------ the array type
class SymArray(np.ndarray):
    """An object ndarray of SymPy expressions (see the module docstring)."""

    __array_priority__ = 1000.0

    def __new__(cls, data: Any) -> SymArray:
        return to_exprs(data)

    # -------------------------------------------------------- Python protocol
    def __bool__(self) -> bool:
        value = self._concrete_scalar("bool() (a Python if, and, or, or the builtin max/min)")
        return bool(value)

    def __float__(self) -> float:
        return float(self._concrete_scalar("float() (or storing into a plain float array: allocate arrays inside "
                                           "the function with np.zeros/np.zeros_like, which derive makes symbolic)"))

    def __int__(self) -> int:
        return int(self._concrete_scalar("int()"))

    def __index__(self) -> int:
        value = self._concrete_scalar("an index")
        if not value.is_integer:
            raise NotRepresentable(f"an index: {value} is not an integer")
        return int(value)

    def _concrete_scalar(self, what: str) -> Expr:
        if self.size != 1:
            raise NotRepresentable(f"{what} of a symbolic array of shape {self.shape}: the truth value of an array "
                                   "is ambiguous")
        e = self.reshape(-1).view(np.ndarray)[0]
        if not _is_number(e):
            raise NotRepresentable(
                f"{what} of the symbolic value {_short(e)}: which branch the code takes depends on the input values; "
                "write it with a mask or np.where (e.g. x * (x > 0)) so both branches stay in the expression")
        return e

    def __iter__(self) -> Iterator[Any]:  # rows as arrays, entries as 0-d arrays: never a bare expression
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        for i in range(self.shape[0]):
            yield self[i]

    def __repr__(self) -> str:
        return f"SymArray({np.array2string(self.view(np.ndarray), separator=', ')})"

    def __str__(self) -> str:
        return str(self.view(np.ndarray))

    # -------------------------------------------------------- x[mask]: elementwise only
    def _whole(self, what: str) -> None:
        if _selection(self) is not None:
            raise NotRepresentable(f"{what} of x[mask]: {_SELECTION_RULE}")

    def copy(self, order: Any = "C") -> Any:
        out = super().copy(order)
        if _selection(self) is not None:
            out._selection = _selection(self)  # type: ignore[attr-defined]
        return out

    def reshape(self, *args: Any, **kwargs: Any) -> Any:
        self._whole("reshape")
        return super().reshape(*args, **kwargs)

    def transpose(self, *axes: Any) -> Any:
        self._whole("transpose")
        return super().transpose(*axes)

    @property
    def T(self) -> Any:  # noqa: N802
        self._whole(".T")
        return super().T

    def ravel(self, order: Any = "C") -> Any:
        self._whole("ravel")
        return super().ravel(order)

    def flatten(self, order: Any = "C") -> Any:
        self._whole("flatten")
        return super().flatten(order)

    def swapaxes(self, a: Any, b: Any) -> Any:
        self._whole("swapaxes")
        return super().swapaxes(a, b)

    def squeeze(self, axis: Any = None) -> Any:
        self._whole("squeeze")
        return super().squeeze(axis)

    def item(self, *args: Any) -> Any:
        return self.view(np.ndarray).item(*args)

    def tolist(self) -> Any:
        return self.view(np.ndarray).tolist()

    # -------------------------------------------------------- indexing
    def __getitem__(self, key: Any) -> Any:
        key = _index(key, "indexing")
        if _selection(self) is not None:
            raise NotRepresentable(f"indexing x[mask] further: {_SELECTION_RULE}")
        if isinstance(key, _SymbolicMask):
            if key.mask.shape != self.shape:
                raise NotRepresentable(f"indexing with a symbolic mask of another shape: {_SELECTION_RULE}")
            out = self.copy()  # every entry, marked as selected by the mask (see _SELECTION_RULE)
            out._selection = key.source
            return out
        out = super().__getitem__(key)
        if isinstance(out, np.ndarray):
            return out
        return _scalar(out)

    def __setitem__(self, key: Any, value: Any) -> None:
        key = _index(key, "assignment")
        if isinstance(key, _SymbolicMask):  # dx[x <= 0] = 0: a blend, entry by entry
            if key.mask.shape != self.shape:
                raise NotRepresentable(f"assignment through a symbolic mask of another shape: {_SELECTION_RULE}")
            selected = _selection(value)
            if selected is not None and not _same_mask(selected, key.source):
                raise NotRepresentable(f"z[mask] = y[other_mask]: {_SELECTION_RULE}")
            if selected is None and isinstance(value, (np.ndarray, list, tuple)) and np.size(value) != 1:
                raise NotRepresentable(f"assigning an array through a symbolic mask: {_SELECTION_RULE}")
            mask = key.mask
            new = _plain(to_exprs(value))
            blended = _map2(lambda m, v, old: m * v + (1 - m) * old, mask, np.broadcast_to(new, self.shape),
                            self.view(np.ndarray))
            self.view(np.ndarray)[...] = blended
            return
        if isinstance(value, (np.ndarray, list, tuple)) or not isinstance(value, sympy.Basic):
            value = _plain(to_exprs(value, "assignment"))
            if value.ndim == 0:
                value = value[()]
        plain = self.view(np.ndarray)
        if isinstance(value, sympy.Basic) and isinstance(plain[key], np.ndarray):  # broadcast over a slice
            box = _EMPTY((), dtype=object)
            box[()] = value
            value = box
        plain[key] = value  # one entry gets the expression itself (a 0-d box there would be kept as an object)

    # -------------------------------------------------------- NumPy protocols
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return _function(func, args, kwargs)

    # -------------------------------------------------------- methods with our own semantics
    def sum(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> Any:  # type: ignore[override]
        return _out(reduce_sum(self, axis, keepdims, kw, "sum"), out)

    def prod(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> Any:  # type: ignore[override]
        return _out(_reduce(self, axis, keepdims, lambda es: sympy.Mul(*es), kw, "prod"), out)

    def mean(self, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> Any:  # type: ignore[override]
        return _out(mean(self, axis, keepdims, kw), out)

    def var(  # type: ignore[override]
        self, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0, keepdims: bool = False, **kw: Any
    ) -> Any:
        return _out(var(self, axis, keepdims, ddof, kw), out)

    def std(  # type: ignore[override]
        self, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0, keepdims: bool = False, **kw: Any
    ) -> Any:
        return _out(_elementwise(sympy.sqrt, var(self, axis, keepdims, ddof, kw)), out)

    def max(self, axis: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> Any:  # type: ignore[override]
        return _out(_reduce(self, axis, keepdims, lambda es: max_of(es, 1), kw, "max"), out)

    def min(self, axis: Any = None, out: Any = None, keepdims: bool = False, **kw: Any) -> Any:  # type: ignore[override]
        return _out(_reduce(self, axis, keepdims, lambda es: max_of(es, -1), kw, "min"), out)

    def clip(self, a_min: Any = None, a_max: Any = None, out: Any = None, **kw: Any) -> Any:  # type: ignore[override]
        return _out(clip(self, a_min, a_max), out)

    def dot(self, b: Any, out: Any = None) -> Any:
        return _out(_generic(np.dot, (self, b), {}), out)

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> Any:
        kind = np.dtype(dtype).kind
        if kind in "fcO":
            return self.copy()
        if concrete(self) is not None:
            return concrete(self).astype(dtype)  # type: ignore[union-attr]
        raise NotRepresentable(f"astype({np.dtype(dtype)}) of a symbolic array: only float dtypes keep the symbols")

    def argmax(self, *args: Any, **kwargs: Any) -> Any:
        return _refuse("argmax")

    def argmin(self, *args: Any, **kwargs: Any) -> Any:
        return _refuse("argmin")

    def argsort(self, *args: Any, **kwargs: Any) -> Any:
        return _refuse("argsort")

    def sort(self, *args: Any, **kwargs: Any) -> Any:
        return _refuse("sort")

    def nonzero(self) -> Any:
        c = concrete(self)
        if c is None:
            return _refuse("nonzero")
        return c.nonzero()

    def any(self, *args: Any, **kwargs: Any) -> Any:
        return _refuse("any")

    def all(self, *args: Any, **kwargs: Any) -> Any:
        return _refuse("all")


class _SymbolicMask:
    """An index that is a 0/1 array depending on the symbols (x > 0)."""

    def __init__(self, source: SymArray) -> None:
        self.source = source
        self.mask = source.view(np.ndarray)


_SELECTION_RULE = (
    "x[mask] with a mask that depends on the symbolic values selects a number of entries that depends on the inputs; "
    "derive represents it only through elementwise operations assigned back through the same mask "
    "(z[m] = np.exp(-x[m])), not in reductions, reshapes or other indexing; write x * m or np.where(m, a, b)")


def _selection(a: Any) -> SymArray | None:
    """The mask that selected ``a`` (x[mask] with a symbolic mask), or None."""
    return getattr(a, "_selection", None)


def _same_mask(a: SymArray, b: SymArray) -> bool:
    if a is b:
        return True
    return a.shape == b.shape and all(x == y for x, y in zip(a.view(np.ndarray).reshape(-1),
                                                              b.view(np.ndarray).reshape(-1), strict=True))


def _short(e: Any, width: int = 60) -> str:
    text = str(e)
    return text if len(text) <= width else text[: width - 1] + "…"


def _refuse(name: str, why: str = "") -> Any:
    reasons = {
        "argmax": "the index depends on the symbolic values; write a mask instead: (x == x.max()) or "
                  "(x == np.max(x, axis=..., keepdims=True))",
        "argmin": "the index depends on the symbolic values; write a mask instead: (x == x.min())",
        "argsort": "the order depends on the symbolic values",
        "sort": "the order depends on the symbolic values",
        "nonzero": "which entries are nonzero depends on the symbolic values",
        "any": "the truth value depends on the symbolic values",
        "all": "the truth value depends on the symbolic values",
    }
    why = why or reasons.get(name, "not implemented")
    raise NotRepresentable(f"np.{name} on a symbolic array is not supported: {why}")


def _plain(a: Any) -> np.ndarray:
    """A plain object ndarray view (no SymArray dispatch)."""
    if isinstance(a, SymArray):
        return a.view(np.ndarray)
    return a


def _scalar(e: Any) -> SymArray:
    box = _EMPTY((), dtype=object)
    box[()] = exact(e)
    return box.view(SymArray)


_exprs_of = np.frompyfunc(exact, 1, 1)


def to_exprs(data: Any, where: str = "") -> SymArray:
    """``data`` (an array, nested lists, a number or an expression) as a SymArray of exact
    expressions (a new array)."""
    if isinstance(data, sympy.Basic):
        return _scalar(data)
    if isinstance(data, SymArray):
        return data.copy()
    arr = _ASARRAY(data)
    if arr.dtype.kind not in "biufO":
        raise NotRepresentable(f"{where or 'a value'}: cannot use an array of dtype {arr.dtype} in symbolic code")
    if arr.ndim == 0:
        return _scalar(exact(arr[()], where))
    out = _EMPTY(arr.shape, dtype=object)
    if arr.size:
        out[...] = _exprs_of(arr) if where == "" else np.frompyfunc(lambda v: exact(v, where), 1, 1)(arr)
    return out.view(SymArray)


def _as_obj(a: Any) -> Any:
    """An operand for NumPy's own code: arrays as plain object arrays of expressions;
    Python floats as exact rationals; everything else as it is."""
    if isinstance(a, SymArray):
        return a.view(np.ndarray)
    if isinstance(a, np.ndarray):
        if a.dtype.kind in "fcO":
            return to_exprs(a).view(np.ndarray)
        return a
    if isinstance(a, (float, np.floating)):
        return exact(a)
    if isinstance(a, (list, tuple)):
        converted = [_as_obj(x) for x in a]
        return type(a)(converted)
    return a


def _wrap(result: Any) -> Any:
    """NumPy's result as SymArrays of exact expressions (tuples and lists element-wise)."""
    if isinstance(result, np.ndarray):
        if result.dtype.kind in "fO":
            return to_exprs(result)
        return result
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    if isinstance(result, list):
        return [_wrap(r) for r in result]
    if isinstance(result, (sympy.Basic, float, np.floating)):
        return _scalar(result)
    return result


def concrete(a: Any) -> np.ndarray | None:
    """The array as plain numbers (float, or int/bool when every entry is an integer) if
    no entry depends on a symbol, else None."""
    if not isinstance(a, SymArray):
        return _ASARRAY(a)
    flat = [e for e in a.view(np.ndarray).reshape(-1)]
    if not all(_is_number(e) for e in flat):
        return None
    if all(e.is_integer for e in flat):
        return _ARRAY([int(e) for e in flat], dtype=np.int64).reshape(a.shape)
    return _ARRAY([float(e) for e in flat], dtype=np.float64).reshape(a.shape)


def _index(key: Any, what: str) -> Any:
    """An index with SymArray parts turned into plain integer/bool arrays; a symbolic
    0/1 mask as :class:`_SymbolicMask`."""
    if isinstance(key, tuple):
        parts = [_index(k, what) for k in key]
        if any(isinstance(p, _SymbolicMask) for p in parts):
            raise NotRepresentable(f"{what} with a symbolic mask inside a tuple index is not supported")
        return tuple(parts)
    if isinstance(key, SymArray):
        c = concrete(key)
        if c is None:
            return _SymbolicMask(key)
        if c.dtype.kind == "i" and key.ndim and _looks_boolean(key):
            return c.astype(bool) if c.shape and _mask_shaped(key) else c
        return c if c.ndim else int(c)
    return key


def _looks_boolean(key: SymArray) -> bool:
    return bool(getattr(key, "_boolean", False))


def _mask_shaped(key: SymArray) -> bool:
    return True


# ------------------------------------------------------------------ elementwise
def _elementwise(fn: Callable[..., Expr], *arrays: Any) -> SymArray:
    plain = [_as_obj(a) if isinstance(a, np.ndarray) else exact(a) for a in arrays]
    result = np.frompyfunc(fn, len(arrays), 1)(*plain)
    if not isinstance(result, np.ndarray):
        return _scalar(result)
    return result.view(SymArray)


def _map2(fn: Callable[..., Expr], *arrays: np.ndarray) -> np.ndarray:
    return np.frompyfunc(fn, len(arrays), 1)(*arrays)


def step(u: Expr) -> Expr:
    """[u > 0] with derive's relu′ (0 at u = 0); a number when u is one."""
    if _is_number(u):
        return Integer(int(bool(u > 0)))
    return ReluPrime(u)


def relu(u: Expr) -> Expr:
    from derive.ops.activations import Relu

    if _is_number(u):
        return u if u > 0 else Integer(0)
    return Relu(u)


#: max/min expressions built here: the expression → (arguments, +1 for max or -1 for min).
#: Kept across interpreter runs: a block's backward lines are interpreted again (a line on
#: its own, a repair) on the forward values of an earlier run, and ``A == maxpool(A)``
#: there must still know its maxima.  Bounded: the oldest half goes past MAX_EXTREMA.
_EXTREMA: dict[Expr, tuple[tuple[Expr, ...], int]] = {}
MAX_EXTREMA = 50_000


def max_of(args: Sequence[Expr], sign: int = 1) -> Expr:
    """max (sign = 1) or min (sign = −1) of the arguments, exactly (see the module docstring)."""
    args = tuple(exact(a) for a in args)
    if len(args) == 1:
        return args[0]
    if all(_is_number(a) for a in args):
        return (sympy.Max if sign > 0 else sympy.Min)(*args)
    if len(args) == 2:
        a, b = args
        if _is_number(a):
            a, b = b, a
        # max(a, b) = b + relu(a − b); min(a, b) = b − relu(b − a)
        result = b + relu(a - b) if sign > 0 else b - relu(b - a)
    else:
        terms = []
        for i, xi in enumerate(args):
            first = [step(sign * (xi - xj)) for xj in args[:i]]  # strictly above the earlier ones
            later = [1 - step(sign * (xj - xi)) for xj in args[i + 1:]]  # at least the later ones
            terms.append(xi * sympy.Mul(*first, *later))
        result = sympy.Add(*terms)
    if len(_EXTREMA) >= MAX_EXTREMA:
        for old in list(_EXTREMA)[:MAX_EXTREMA // 2]:
            del _EXTREMA[old]
    _EXTREMA[result] = (args, sign)
    return result


def _equal(a: Expr, b: Expr) -> Expr:
    d = a - b
    if d == 0:
        return Integer(1)
    if _is_number(d):
        return Integer(0)
    for x, m in ((a, b), (b, a)):
        if m in _EXTREMA:
            args, sign = _EXTREMA[m]
            if x in args:  # x is a maximum: at least every other argument (NumPy: every tied entry)
                return sympy.Mul(*[1 - step(sign * (y - x)) for y in args if y is not x and y != x])
    raise NotRepresentable(
        f"np.equal (==) of two symbolic values ({_short(a, 30)} and {_short(b, 30)}): only the masks of a maximum "
        "or minimum are represented (x == x.max(axis=..., keepdims=True)); equality of other values holds only on a "
        "set of measure zero")


def _absolute(u: Expr) -> Expr:
    if _is_number(u):
        return abs(u)
    return relu(u) + relu(-u)


def _sign_of(u: Expr) -> Expr:
    if _is_number(u):
        return sympy.sign(u)
    return step(u) - step(-u)


def _tanh(u: Expr) -> Expr:
    return Integer(0) if u == 0 else Tanh(u)


def _log(u: Expr) -> Expr:
    return sympy.log(u)


def _power(a: Expr, b: Expr) -> Expr:
    return a**b


def _true_divide(a: Expr, b: Expr) -> Expr:
    if b == 0:
        raise NotRepresentable(f"np.divide: division by exactly 0 (of {_short(a)})")
    return a / b


def _cmp(kind: str) -> Callable[[Expr, Expr], Expr]:
    def compare(a: Expr, b: Expr) -> Expr:
        if kind == ">":
            return step(a - b)
        if kind == ">=":
            return 1 - step(b - a)
        if kind == "<":
            return step(b - a)
        return 1 - step(a - b)  # <=

    return compare


_UFUNCS: dict[Any, Callable[..., Expr]] = {
    np.add: lambda a, b: a + b,
    np.subtract: lambda a, b: a - b,
    np.multiply: lambda a, b: a * b,
    np.true_divide: _true_divide,
    np.negative: lambda a: -a,
    np.positive: lambda a: a,
    np.power: _power,
    np.float_power: _power,
    np.square: lambda a: a**2,
    np.reciprocal: lambda a: _true_divide(Integer(1), a),
    np.sqrt: sympy.sqrt,
    np.cbrt: lambda a: sympy.root(a, 3),
    np.exp: sympy.exp,
    np.expm1: lambda a: sympy.exp(a) - 1,
    np.log: _log,
    np.log1p: lambda a: sympy.log(1 + a),
    np.tanh: _tanh,
    np.maximum: lambda a, b: max_of((a, b), 1),
    np.minimum: lambda a, b: max_of((a, b), -1),
    np.fmax: lambda a, b: max_of((a, b), 1),
    np.fmin: lambda a, b: max_of((a, b), -1),
    np.absolute: _absolute,
    np.sign: _sign_of,
    np.greater: _cmp(">"),
    np.greater_equal: _cmp(">="),
    np.less: _cmp("<"),
    np.less_equal: _cmp("<="),
    np.equal: _equal,
    np.not_equal: lambda a, b: 1 - _equal(a, b),
    np.logical_and: lambda a, b: a * b,
    np.bitwise_and: lambda a, b: a * b,
    np.logical_or: lambda a, b: a + b - a * b,
    np.bitwise_or: lambda a, b: a + b - a * b,
    np.logical_not: lambda a: 1 - a,
    np.invert: lambda a: 1 - a,
    np.conjugate: lambda a: a,
}
_BOOLEAN = {np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal, np.logical_and,
            np.bitwise_and, np.logical_or, np.bitwise_or, np.logical_not, np.invert}
_GENERIC_UFUNCS = {np.matmul}


def _ufunc(ufunc: np.ufunc, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    name = f"np.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
    out = kwargs.pop("out", None)
    for k in ("casting", "subok", "order", "dtype", "signature"):
        kwargs.pop(k, None)
    if kwargs.get("where", True) is not True:
        raise NotRepresentable(f"{name}(..., where=...) on symbolic arrays is not supported")
    kwargs.pop("where", None)
    selections = [m for m in (_selection(a) for a in inputs) if m is not None]
    if selections and (method != "__call__" or ufunc in _GENERIC_UFUNCS or out is not None
                       or any(not _same_mask(m, selections[0]) for m in selections)
                       or any(isinstance(a, np.ndarray) and a.ndim and _selection(a) is None for a in inputs)):
        raise NotRepresentable(f"{name} of x[mask]: {_SELECTION_RULE}")
    if method == "__call__":
        if ufunc in _GENERIC_UFUNCS:
            result = _wrap(ufunc(*[_as_obj(a) for a in inputs], **kwargs))
        elif ufunc in _UFUNCS:
            if kwargs:
                raise NotRepresentable(f"{name}: keyword arguments {sorted(kwargs)} are not supported")
            result = _elementwise(_UFUNCS[ufunc], *inputs)
            if ufunc in _BOOLEAN:
                result._boolean = True  # type: ignore[attr-defined]
            if selections:
                result._selection = selections[0]  # type: ignore[attr-defined]
        else:
            raise NotRepresentable(f"{name} on symbolic arrays is not supported (no exact form in derive)")
        return _out(result, out[0] if isinstance(out, tuple) and len(out) == 1 else out)
    if method == "reduce":
        a = inputs[0]
        axis = kwargs.pop("axis", 0)
        keepdims = kwargs.pop("keepdims", False)
        combine = _REDUCERS.get(ufunc)
        if combine is None:
            raise NotRepresentable(f"{name} on symbolic arrays is not supported")
        return _out(_reduce(to_exprs(a) if not isinstance(a, SymArray) else a, axis, keepdims, combine, kwargs, name),
                    out[0] if isinstance(out, tuple) else out)
    if method == "at":
        if ufunc not in (np.add, np.subtract, np.multiply):
            raise NotRepresentable(f"{name} on symbolic arrays is not supported")
        target, indices = inputs[0], inputs[1]
        values = inputs[2] if len(inputs) > 2 else None
        if not isinstance(target, SymArray):
            raise NotRepresentable(f"{name}: the target must be a symbolic array (allocate it with np.zeros_like of "
                                   "a symbolic array, or inside derive's run where np.zeros is symbolic)")
        idx = _index(indices, name)
        if isinstance(idx, _SymbolicMask):
            raise NotRepresentable(f"{name} with symbolic indices is not supported")
        ufunc.at(target.view(np.ndarray), idx, _as_obj(to_exprs(values)))
        return None
    if method == "outer" and ufunc in _UFUNCS:
        a, b = (to_exprs(x) for x in inputs)
        return _elementwise(_UFUNCS[ufunc], a.reshape(a.shape + (1,) * b.ndim), b)
    raise NotRepresentable(f"{name} on symbolic arrays is not supported")


def _out(result: Any, out: Any) -> Any:
    if out is None:
        return result
    if isinstance(out, tuple):
        out = out[0]
    if not isinstance(out, SymArray):
        if isinstance(out, np.ndarray) and out.dtype.kind == "O":
            out[...] = _plain(result)
            return out
        raise NotRepresentable("out=: a plain float array cannot hold symbolic values (allocate it with "
                               "np.zeros_like of a symbolic array)")
    out.view(np.ndarray)[...] = _plain(result)
    return out


# ------------------------------------------------------------------ reductions
def _axes(axis: Any, ndim: int, name: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = []
    for a in axis:
        a = int(a)
        if not -ndim <= a < ndim:
            raise NotRepresentable(f"{name}: axis {a} is out of bounds for an array of dimension {ndim}")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _reduce(a: Any, axis: Any, keepdims: bool, combine: Callable[[list[Expr]], Expr], kw: dict[str, Any],
            name: str) -> SymArray:
    for k, v in kw.items():
        if k == "initial" and v is not np._NoValue:
            raise NotRepresentable(f"{name}(..., initial=...) on a symbolic array is not supported")
        if k == "where" and v is not True and v is not np._NoValue:
            raise NotRepresentable(f"{name}(..., where=...) on a symbolic array is not supported")
    if _selection(a) is not None:
        raise NotRepresentable(f"{name} of x[mask]: {_SELECTION_RULE}")
    a = a if isinstance(a, SymArray) else to_exprs(a)
    plain = a.view(np.ndarray)
    axes = _axes(axis, plain.ndim, name)
    kept = [d for d in range(plain.ndim) if d not in axes]
    moved = np.transpose(plain, kept + list(axes))
    lead = moved.shape[: len(kept)]
    flat = moved.reshape(lead + (-1,))
    out = _EMPTY(lead, dtype=object)
    for idx in np.ndindex(*lead):
        out[idx] = combine(list(flat[idx]))
    if keepdims:
        out = out.reshape(tuple(1 if d in axes else plain.shape[d] for d in range(plain.ndim)))
    return out.view(SymArray)


def _sum_of(es: list[Expr]) -> Expr:
    return sympy.Add(*es)


_REDUCERS: dict[Any, Callable[[list[Expr]], Expr]] = {
    np.add: _sum_of,
    np.multiply: lambda es: sympy.Mul(*es),
    np.maximum: lambda es: max_of(es, 1),
    np.minimum: lambda es: max_of(es, -1),
    np.fmax: lambda es: max_of(es, 1),
    np.fmin: lambda es: max_of(es, -1),
}


def reduce_sum(a: Any, axis: Any, keepdims: bool, kw: dict[str, Any], name: str = "sum") -> SymArray:
    return _reduce(a, axis, keepdims, _sum_of, kw, name)


def _count(a: SymArray, axis: Any) -> int:
    return int(np.prod([a.shape[d] for d in _axes(axis, a.ndim, "mean")], dtype=np.int64))


def mean(a: Any, axis: Any = None, keepdims: bool = False, kw: dict[str, Any] | None = None) -> SymArray:
    a = a if isinstance(a, SymArray) else to_exprs(a)
    n = _count(a, axis)
    total = reduce_sum(a, axis, keepdims, kw or {}, "mean")
    return _elementwise(lambda e: e / n, total)


def var(a: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0, kw: dict[str, Any] | None = None) -> SymArray:
    a = a if isinstance(a, SymArray) else to_exprs(a)
    n = _count(a, axis) - int(ddof)
    mu = mean(a, axis, True, kw)
    centred = _elementwise(lambda x, m: (x - m) ** 2, a, mu)
    total = reduce_sum(centred, axis, keepdims, {}, "var")
    return _elementwise(lambda e: e / n, total)


def clip(a: Any, lo: Any, hi: Any) -> SymArray:
    out = to_exprs(a) if not isinstance(a, SymArray) else a
    if lo is not None:
        out = _elementwise(lambda x, m: max_of((x, m), 1), out, lo)
    if hi is not None:
        out = _elementwise(lambda x, m: max_of((x, m), -1), out, hi)
    return out


def where(cond: Any, a: Any = None, b: Any = None) -> Any:
    if a is None and b is None:
        c = concrete(cond) if isinstance(cond, SymArray) else _ASARRAY(cond)
        if c is None:
            _refuse("where", "np.where(cond) with one argument returns indices that depend on the symbolic values")
        assert c is not None
        return np.where(c)
    if isinstance(cond, SymArray):
        c = concrete(cond)
        if c is None:  # a symbolic 0/1 mask: c·a + (1 − c)·b
            return _elementwise(lambda m, x, y: m * x + (1 - m) * y, cond, a, b)
        cond = c.astype(bool)
    return _wrap(np.where(cond, _as_obj(to_exprs(a)), _as_obj(to_exprs(b))))


# ------------------------------------------------------------------ NumPy functions
_STRUCTURAL = {
    "reshape", "transpose", "swapaxes", "moveaxis", "rollaxis", "expand_dims", "squeeze", "ravel", "concatenate",
    "stack", "vstack", "hstack", "dstack", "column_stack", "split", "array_split", "hsplit", "vsplit", "dsplit",
    "pad", "tile", "repeat", "broadcast_to", "broadcast_arrays", "flip", "fliplr", "flipud", "rot90", "roll", "copy",
    "atleast_1d", "atleast_2d", "atleast_3d", "dot", "vdot", "tensordot", "einsum", "outer", "inner", "kron", "trace",
    "diagonal", "diag", "diagflat", "cumsum", "cumprod", "diff", "take", "take_along_axis", "shape", "ndim", "size",
    "zeros_like", "ones_like", "empty_like", "full_like", "append", "insert", "delete", "block", "triu", "tril",
    "result_type", "iscomplexobj", "isrealobj", "asarray", "asanyarray", "ascontiguousarray", "array",
    "put_along_axis", "matmul", "linalg.multi_dot", "multi_dot", "unravel_index", "ravel_multi_index",
}


def _function(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    name = func.__name__
    flat = [a for x in args for a in (x if isinstance(x, (list, tuple)) else (x,))] + list(kwargs.values())
    if any(_selection(a) is not None for a in flat):
        raise NotRepresentable(f"np.{name} of x[mask]: {_SELECTION_RULE}")
    own = _OWN.get(name)
    if own is not None:
        return own(*args, **kwargs)
    if name in _STRUCTURAL:
        return _generic(func, args, kwargs)
    if name in ("argmax", "argmin", "argsort", "sort", "nonzero", "any", "all"):
        return _refuse(name)
    raise NotRepresentable(f"np.{name} on symbolic arrays is not supported (derive runs NumPy code exactly only "
                           "through the operations listed in derive.code.arrays)")


def _generic(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    plain_args = [_as_obj(a) for a in args]
    plain_kwargs = {k: _as_obj(v) for k, v in kwargs.items()}
    return _wrap(func(*plain_args, **plain_kwargs))


def _reduction(kind: str) -> Callable[..., Any]:
    def call(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False, **kw: Any) -> Any:
        if keepdims is np._NoValue:
            keepdims = False
        a = a if isinstance(a, SymArray) else to_exprs(a)
        if kind == "max":
            return _out(a.max(axis=axis, keepdims=keepdims, **kw), out)
        if kind == "min":
            return _out(a.min(axis=axis, keepdims=keepdims, **kw), out)
        return _out(getattr(a, kind)(axis=axis, keepdims=keepdims, **kw), out)

    return call


def _max_fn(kind: str) -> Callable[..., Any]:
    def call(a: Any, axis: Any = None, out: Any = None, keepdims: Any = False, **kw: Any) -> Any:
        if keepdims is np._NoValue:
            keepdims = False
        a = a if isinstance(a, SymArray) else to_exprs(a)
        kw = {k: v for k, v in kw.items() if v is not np._NoValue}
        return _out(getattr(a, kind)(axis=axis, keepdims=keepdims, **kw), out)

    return call


def _var_fn(kind: str) -> Callable[..., Any]:
    def call(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0, keepdims: Any = False,
             **kw: Any) -> Any:
        if keepdims is np._NoValue:
            keepdims = False
        kw = {k: v for k, v in kw.items() if v is not np._NoValue}
        if kw:
            raise NotRepresentable(f"np.{kind}: keyword arguments {sorted(kw)} are not supported")
        a = a if isinstance(a, SymArray) else to_exprs(a)
        return _out(getattr(a, kind)(axis=axis, ddof=ddof, keepdims=keepdims), out)

    return call


def _sum_fn(kind: str) -> Callable[..., Any]:
    def call(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = False, **kw: Any) -> Any:
        if keepdims is np._NoValue:
            keepdims = False
        kw = {k: v for k, v in kw.items() if v is not np._NoValue}
        a = a if isinstance(a, SymArray) else to_exprs(a)
        return _out(getattr(a, kind)(axis=axis, keepdims=keepdims, **kw), out)

    return call


def _average(a: Any, axis: Any = None, weights: Any = None, **kw: Any) -> Any:
    if weights is not None:
        raise NotRepresentable("np.average(..., weights=...) on symbolic arrays is not supported")
    return mean(a, axis, bool(kw.get("keepdims", False)))


def _clip_fn(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, **kw: Any) -> Any:
    kw.pop("min", None)
    kw.pop("max", None)
    return _out(clip(a, a_min, a_max), out)


def _creation_like(kind: str) -> Callable[..., Any]:
    def call(a: Any, dtype: Any = None, *args: Any, **kwargs: Any) -> Any:
        fill = kwargs.pop("fill_value", args[0] if (kind == "full" and args) else None)
        return _new(np.shape(a), dtype if dtype is not None else np.float64, kind, fill)

    return call


def _new(shape: Any, dtype: Any, kind: str, fill: Any = None) -> SymArray:
    value = {"zeros": Integer(0), "empty": Integer(0), "ones": Integer(1)}.get(kind)
    if kind == "full":
        value = exact(fill) if not isinstance(fill, SymArray) else None
    out = _EMPTY(shape, dtype=object)
    if value is None:
        out[...] = _plain(np.broadcast_to(_plain(fill), out.shape))
    else:
        out[...] = value
    return out.view(SymArray)


_OWN: dict[str, Callable[..., Any]] = {
    "sum": _sum_fn("sum"),
    "prod": _sum_fn("prod"),
    "mean": _sum_fn("mean"),
    "average": _average,
    "var": _var_fn("var"),
    "std": _var_fn("std"),
    "max": _max_fn("max"),
    "amax": _max_fn("max"),
    "min": _max_fn("min"),
    "amin": _max_fn("min"),
    "where": where,
    "clip": _clip_fn,
    "zeros_like": _creation_like("zeros"),
    "ones_like": _creation_like("ones"),
    "empty_like": _creation_like("empty"),
    "full_like": _creation_like("full"),
}


# ------------------------------------------------------------------ array creation while the user's code runs
def _symbolic_dtype(dtype: Any) -> bool:
    return dtype is None or np.dtype(dtype).kind in "fO"


@contextlib.contextmanager
def symbolic_numpy() -> Iterator[None]:
    """While the user's code runs: ``np.zeros/ones/empty/full`` (and the ``_like`` forms
    of plain arrays) with a float dtype make symbolic arrays of exact numbers, so that the
    code can write symbolic entries into them.  Integer and boolean arrays stay NumPy's.
    Restores NumPy on exit (the table of maxima built is kept: see ``_EXTREMA``)."""
    saved = {name: getattr(np, name) for name in ("zeros", "ones", "empty", "full", "zeros_like", "ones_like",
                                                    "empty_like", "full_like", "array", "asarray", "asanyarray")}

    def creator(kind: str) -> Callable[..., Any]:
        original = saved[kind]

        def make(shape: Any, *args: Any, **kwargs: Any) -> Any:
            dtype = kwargs.get("dtype", args[1] if kind == "full" and len(args) > 1 else
                               (args[0] if kind != "full" and args else None))
            if kind == "full":
                fill = kwargs.get("fill_value", args[0] if args else None)
                if dtype is None and not isinstance(fill, (float, np.floating, sympy.Basic, SymArray)):
                    return original(shape, *args, **kwargs)
            if not _symbolic_dtype(dtype):
                return original(shape, *args, **kwargs)
            return _new(shape, dtype, kind, kwargs.get("fill_value", args[0] if kind == "full" and args else None))

        return make

    def like(kind: str) -> Callable[..., Any]:
        original = saved[f"{kind}_like"]

        def make(a: Any, *args: Any, **kwargs: Any) -> Any:
            dtype = kwargs.get("dtype", args[0] if args and kind != "full" else None)
            base = dtype if dtype is not None else _ASARRAY(a).dtype if not isinstance(a, SymArray) else object
            if isinstance(a, SymArray) or (np.dtype(base).kind in "fO"):
                if kind == "full":
                    fill = kwargs.get("fill_value", args[0] if args else None)
                    if dtype is not None and not _symbolic_dtype(dtype):
                        return original(np.shape(a), *args, **kwargs)
                    return _new(np.shape(a), base, kind, fill)
                if not _symbolic_dtype(dtype) and dtype is not None:
                    return original(a, *args, **kwargs)
                return _new(np.shape(a), base, kind)
            return original(a, *args, **kwargs)

        return make

    def converting(name: str) -> Callable[..., Any]:
        original = saved[name]

        def make(a: Any, *args: Any, **kwargs: Any) -> Any:
            dtype = kwargs.get("dtype", args[0] if args else None)
            if isinstance(a, SymArray) and _symbolic_dtype(dtype):  # np.asarray(x) keeps x symbolic
                return a.copy() if name == "array" else a
            result = original(a, *args, **kwargs)
            if (isinstance(a, (list, tuple)) and isinstance(result, np.ndarray) and result.dtype.kind == "O"
                    and _symbolic_dtype(dtype) and any(isinstance(e, sympy.Basic) for e in result.reshape(-1))):
                return to_exprs(result)  # np.array([a, b]) of symbolic entries
            return result

        return make

    try:
        for name in ("array", "asarray", "asanyarray"):
            setattr(np, name, converting(name))
        for kind in ("zeros", "ones", "empty", "full"):
            setattr(np, kind, creator(kind))
            setattr(np, f"{kind}_like", like(kind))
        yield
    finally:
        for name, f in saved.items():
            setattr(np, name, f)


# ------------------------------------------------------------------ inputs
def symbols_array(name: str, shape: tuple[int, ...]) -> SymArray:
    """A SymArray of fresh real symbols named like NumPy entries: ``x[0,1]`` (a scalar: ``x``)."""
    out = _EMPTY(shape, dtype=object)
    if shape == ():
        out[()] = sympy.Symbol(name, real=True)
    else:
        for idx in np.ndindex(*shape):
            out[idx] = sympy.Symbol(f"{name}[{','.join(map(str, idx))}]", real=True)
    return out.view(SymArray)


def is_function(e: Any) -> bool:
    return isinstance(e, OpFunction)
