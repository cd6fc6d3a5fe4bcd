"""The tensor operations of the NumPy dialect beyond NumPy's own (convolution, pooling,
embedding look-ups, ...): one registration each, read by :mod:`derive.code.interpret`.

Each entry maps a function name to ``call(node, args, axis, keywords) -> value``, with the
same conventions as the interpreter's own table: arguments are symbolic arrays
(:class:`~derive.code.arrays.SymArray`), whole numbers or tuples; results are symbolic
arrays computed exactly, entry by entry.

- ``conv2d(x, W, b, stride=1, pad=0)``: x of shape (N, C, H, W), W of shape (F, C, HH, WW),
  b of shape (F,) (optional): the cs231n convention, a cross-correlation with zero padding;
- ``maxpool(x, k, stride=k)`` and ``avgpool(x, k, stride=k)`` on (N, C, H, W): windows of
  k×k; the maximum is :func:`~derive.code.arrays.max_of` (the first maximum of a window
  takes the gradient: ties are kinks, a set of measure zero);
- ``embedding(W, idx)``: rows of W (V, D) picked by integer labels idx (N,) (declared
  ``labels``): Σ_c [idx[i] = c]·W[c], exact on the labels' domain (as ``W[idx]``);
- ``np.einsum('ij,jk->ik', A, B)``: an explicit index contraction (the subscripts were
  checked by the parser: letters, commas, one optional '->'; without '->' the output is
  NumPy's, the letters that occur once, in alphabetical order), each output entry an
  exact sum of products (zero factors skipped);
- NumPy's structural functions the layers need: ``np.pad(x, widths)`` (zeros),
  ``np.flip(x, axis=...)``, ``np.rot90(x, k, axes=...)``, ``np.tensordot(a, b, axes=...)``,
  ``np.tile``, ``np.repeat``, ``np.swapaxes``, ``np.tril``/``np.triu`` (a constant mask).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy
from sympy import Integer

from derive.code.arrays import _EMPTY, NotRepresentable, SymArray, max_of, to_exprs

__all__ = ["CALLS", "conv2d", "einsum", "pool"]

# _EMPTY: NumPy's own np.empty (this module may first be imported inside symbolic_numpy())
MAX_OUTPUT = 20000  # entries one tensor operation may compute (each an exact sum)


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool):
        raise NotRepresentable(f"{what} must be a whole number, got {v!r}")
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v.view(np.ndarray)[()]
    if isinstance(v, sympy.Basic) and v.is_Integer:
        return int(v)
    raise NotRepresentable(f"{what} must be a whole number known from the shapes, got {str(v)[:40]}")


def _plain(v: Any, what: str, ndim: int | None = None) -> np.ndarray:
    if isinstance(v, (int, np.integer, sympy.Basic)) and not isinstance(v, bool):
        v = to_exprs(v)
    if not isinstance(v, np.ndarray):
        raise NotRepresentable(f"{what} must be an array, got {str(v)[:40]}")
    a = v.view(np.ndarray) if isinstance(v, SymArray) else to_exprs(v).view(np.ndarray)
    if ndim is not None and a.ndim != ndim:
        raise NotRepresentable(f"{what} must have {ndim} axes, got shape {a.shape}")
    return a


def _ints(v: Any, what: str) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(_int(x, what) for x in v)
    return (_int(v, what),)


def _check_size(shape: tuple[int, ...], what: str) -> None:
    n = int(np.prod(shape, dtype=np.int64))
    if n > MAX_OUTPUT:
        raise NotRepresentable(f"{what}: {n} output entries (limit {MAX_OUTPUT}): use smaller sizes")


def _zero_pad(x: np.ndarray, pad: int) -> np.ndarray:
    if pad == 0:
        return x
    n, c, h, w = x.shape
    out = _EMPTY((n, c, h + 2 * pad, w + 2 * pad), dtype=object)
    out[...] = Integer(0)
    out[:, :, pad:pad + h, pad:pad + w] = x
    return out


def _out_size(size: int, k: int, stride: int, pad: int, what: str) -> int:
    span = size + 2 * pad - k
    if stride < 1 or k < 1 or span < 0:
        raise NotRepresentable(f"{what}: a window of {k} does not fit a side of {size} with padding {pad}")
    return span // stride + 1  # rows a window does not reach are left out (PyTorch's and cs231n's floor)


def conv2d(x: Any, w: Any, b: Any = None, stride: int = 1, pad: int = 0) -> SymArray:
    """out[n, f, i, j] = Σ_c,a,b' x_pad[n, c, i·s + a, j·s + b'] · W[f, c, a, b'] + b[f]."""
    xa = _plain(x, "conv2d: x (N, C, H, W)", 4)
    wa = _plain(w, "conv2d: W (F, C, HH, WW)", 4)
    n, c, h, wd = xa.shape
    f, c2, hh, ww = wa.shape
    if c != c2:
        raise NotRepresentable(f"conv2d: x has {c} channels, W {c2} (W is (F, C, HH, WW))")
    ba = None
    if b is not None:
        ba = _plain(b, "conv2d: b (F,)").reshape(-1)
        if ba.shape != (f,):
            raise NotRepresentable(f"conv2d: b must have {f} entries (one per filter), got shape {ba.shape}")
    ho = _out_size(h, hh, stride, pad, "conv2d")
    wo = _out_size(wd, ww, stride, pad, "conv2d")
    _check_size((n, f, ho, wo), "conv2d")
    xp = _zero_pad(xa, pad)
    out = _EMPTY((n, f, ho, wo), dtype=object)
    for idx in np.ndindex(n, f, ho, wo):
        i, j = idx[2] * stride, idx[3] * stride
        window = xp[idx[0], :, i:i + hh, j:j + ww].reshape(-1)
        kernel = wa[idx[1]].reshape(-1)
        terms = [p * q for p, q in zip(window, kernel, strict=True) if p != 0 and q != 0]
        if ba is not None:
            terms.append(ba[idx[1]])
        out[idx] = sympy.Add(*terms)
    return out.view(SymArray)


def pool(x: Any, k: int, stride: int, kind: str) -> SymArray:
    """max or average over k×k windows of (N, C, H, W), stride ``stride``."""
    xa = _plain(x, f"{kind}pool: x (N, C, H, W)", 4)
    n, c, h, w = xa.shape
    ho = _out_size(h, k, stride, 0, f"{kind}pool")
    wo = _out_size(w, k, stride, 0, f"{kind}pool")
    _check_size((n, c, ho, wo), f"{kind}pool")
    out = _EMPTY((n, c, ho, wo), dtype=object)
    for idx in np.ndindex(n, c, ho, wo):
        i, j = idx[2] * stride, idx[3] * stride
        window = list(xa[idx[0], idx[1], i:i + k, j:j + k].reshape(-1))
        out[idx] = max_of(window, 1) if kind == "max" else sympy.Add(*window) / (k * k)
    return out.view(SymArray)


MAX_TERMS = 400_000  # products one einsum may form (the sizes of all its letters multiplied)


def einsum(subscripts: str, *operands: Any) -> SymArray:
    """out[output letters] = Σ over the other letters of the product of the operands'
    entries, by explicit loops over every letter's range (NumPy's meaning, exactly)."""
    inputs, arrow, output = subscripts.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise NotRepresentable(f"einsum: {subscripts!r} names {len(terms)} arrays, given {len(operands)}")
    arrays = [_plain(a, f"einsum: operand {i + 1}") for i, a in enumerate(operands)]
    sizes: dict[str, int] = {}
    for term, a in zip(terms, arrays, strict=True):
        if len(term) != a.ndim:
            raise NotRepresentable(f"einsum: {term!r} has {len(term)} letters for an array of shape {a.shape}")
        for letter, n in zip(term, a.shape, strict=True):
            if sizes.setdefault(letter, n) != n:
                raise NotRepresentable(f"einsum: the letter {letter!r} has sizes {sizes[letter]} and {n}")
    if not arrow:
        output = "".join(sorted(x for x in sizes if inputs.count(x) == 1))
    if any(x not in sizes for x in output) or len(set(output)) != len(output):
        raise NotRepresentable(f"einsum: output {output!r} must name letters of the inputs, each once")
    letters = list(output) + [x for x in sizes if x not in output]
    total = 1
    for x in letters:
        total *= sizes[x]
    if total > MAX_TERMS:
        raise NotRepresentable(f"einsum: {total} products (limit {MAX_TERMS}): use smaller sizes")
    shape = tuple(sizes[x] for x in output)
    _check_size(shape, "einsum")
    sums: dict[tuple[int, ...], list[Any]] = {}
    places = [[letters.index(x) for x in term] for term in terms]
    for idx in np.ndindex(*(sizes[x] for x in letters)):
        factors = [a[tuple(idx[k] for k in where)] for a, where in zip(arrays, places, strict=True)]
        bucket = sums.setdefault(idx[:len(output)], [])
        if all(f != 0 for f in factors):
            bucket.append(sympy.Mul(*factors))
    out = _EMPTY(shape, dtype=object)
    for key, parts in sums.items():
        out[key] = sympy.Add(*parts)
    if not shape:
        out[()] = sympy.Add(*sums.get((), []))
    return out.view(SymArray)


# ------------------------------------------------------------------ the registrations
Call = Callable[..., Any]


def _unknown(name: str, kw: dict[str, Any], allowed: tuple[str, ...]) -> None:
    extra = sorted(set(kw) - set(allowed))
    if extra:
        raise NotRepresentable(f"{name}() takes no keyword {', '.join(extra)} (it takes: "
                               f"{', '.join(allowed) or 'none'})")


def _conv2d(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _unknown("conv2d", kw, ("stride", "pad"))
    if not 2 <= len(args) <= 3:
        raise NotRepresentable("conv2d(x, W, b, stride=1, pad=0) takes x, W and optionally b")
    stride = _int(kw.get("stride", 1), "conv2d: stride")
    pad = _int(kw.get("pad", 0), "conv2d: pad")
    return conv2d(args[0], args[1], args[2] if len(args) == 3 else None, stride, pad)


def _pool(kind: str) -> Call:
    def call(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
        _unknown(f"{kind}pool", kw, ("stride",))
        if len(args) != 2:
            raise NotRepresentable(f"{kind}pool(x, k, stride=k) takes x and the window size k")
        k = _int(args[1], f"{kind}pool: k")
        stride = _int(kw.get("stride", k), f"{kind}pool: stride")
        return pool(args[0], k, stride, kind)
    return call


def _embedding(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    from derive.code.interpret import Labels  # the interpreter's own label values

    _unknown("embedding", kw, ())
    if len(args) != 2 or not isinstance(args[1], Labels):
        raise NotRepresentable("embedding(W, idx) takes a matrix W (V, D) and integer indices idx declared "
                               "labels (domains: {idx: labels})")
    w = _plain(args[0], "embedding: W (V, D)", 2)
    onehot = args[1].onehot(w.shape[0]).view(np.ndarray)
    return to_exprs(onehot.dot(w))


def _pad(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _unknown("pad", kw, ())
    if len(args) != 2:
        raise NotRepresentable("np.pad(x, widths) takes the array and its widths (zeros: the constant mode)")
    a = _plain(args[0], "np.pad: x")
    widths = args[1]
    if isinstance(widths, tuple) and all(isinstance(p, tuple) for p in widths):
        pairs = [tuple(_int(v, "a pad width") for v in p) for p in widths]
    else:
        pairs = [_ints(widths, "a pad width")]
    if len(pairs) == 1:
        pairs = pairs * a.ndim
    pairs = [p * 2 if len(p) == 1 else p for p in pairs]
    if len(pairs) != a.ndim or any(len(p) != 2 or min(p) < 0 for p in pairs):
        raise NotRepresentable(f"np.pad: widths {pairs} do not fit an array of {a.ndim} axes")
    out = _EMPTY(tuple(s + lo + hi for s, (lo, hi) in zip(a.shape, pairs, strict=True)), dtype=object)
    out[...] = Integer(0)
    out[tuple(slice(lo, lo + s) for s, (lo, _) in zip(a.shape, pairs, strict=True))] = a
    return out.view(SymArray)


def _flip(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _unknown("flip", kw, ())
    if len(args) == 2 and axis is None:
        axis = args[1]
    ax = None if axis is None else _ints(axis, "an axis")
    return np.flip(_plain(args[0], "np.flip: x"), ax).copy().view(SymArray)


def _rot90(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _unknown("rot90", kw, ("axes",))
    k = _int(args[1], "np.rot90: k") if len(args) > 1 else 1
    axes = _ints(kw["axes"], "an axis") if "axes" in kw else (0, 1)
    if len(axes) != 2:
        raise NotRepresentable("np.rot90: axes=(a, b), two axes")
    return np.rot90(_plain(args[0], "np.rot90: x"), k, (axes[0], axes[1])).copy().view(SymArray)


def _tensordot(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _unknown("tensordot", kw, ("axes",))
    if len(args) not in (2, 3):
        raise NotRepresentable("np.tensordot(a, b, axes=...) takes two arrays")
    a, b = _plain(args[0], "np.tensordot: a"), _plain(args[1], "np.tensordot: b")
    spec = kw.get("axes", args[2] if len(args) == 3 else 2)
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise NotRepresentable("np.tensordot: axes=(axes of a, axes of b)")
        axes: Any = (_ints(spec[0], "an axis"), _ints(spec[1], "an axis"))
    else:
        axes = _int(spec, "np.tensordot: axes")
    return to_exprs(np.tensordot(a, b, axes=axes))


def _tile(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _unknown("tile", kw, ())
    return np.tile(_plain(args[0], "np.tile: x"), _ints(args[1], "a repetition")).view(SymArray)


def _repeat(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _unknown("repeat", kw, ())
    if len(args) == 3 and axis is None:
        axis = args[2]
    ax = None if axis is None else _int(axis, "an axis")
    return np.repeat(_plain(args[0], "np.repeat: x"), _int(args[1], "a repetition"), axis=ax).view(SymArray)


def _swapaxes(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _unknown("swapaxes", kw, ())
    if len(args) != 3:
        raise NotRepresentable("np.swapaxes(x, a, b) takes the array and two axes")
    return np.swapaxes(_plain(args[0], "np.swapaxes: x"), _int(args[1], "an axis"),
                       _int(args[2], "an axis")).copy().view(SymArray)


def _band(lower: bool) -> Call:
    def call(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
        _unknown("tril" if lower else "triu", kw, ())
        a = _plain(args[0], "np.tril/np.triu: x")
        k = _int(args[1], "a diagonal offset") if len(args) > 1 else 0
        if a.ndim < 2:
            raise NotRepresentable("np.tril/np.triu need a matrix")
        out = a.copy()
        rows, cols = np.indices(a.shape[-2:])
        zero = (cols - rows > k) if lower else (cols - rows < k)
        out[..., zero] = Integer(0)
        return out.view(SymArray)
    return call


def _einsum(node: Any, args: list[Any], axis: Any, kw: dict[str, Any]) -> Any:
    _unknown("einsum", kw, ())
    if not args or not isinstance(args[0], str):
        raise NotRepresentable("np.einsum('ij,jk->ik', A, B) takes its subscripts first")
    return einsum(args[0], *args[1:])


CALLS: dict[str, Call] = {
    "conv2d": _conv2d, "maxpool": _pool("max"), "avgpool": _pool("avg"), "embedding": _embedding,
    "pad": _pad, "flip": _flip, "rot90": _rot90, "tensordot": _tensordot, "tile": _tile, "repeat": _repeat,
    "swapaxes": _swapaxes, "tril": _band(True), "triu": _band(False), "einsum": _einsum,
}
