"""Walks of a SymPy expression as a graph: each distinct subexpression visited once.

SymPy's ``atoms``, ``has``, ``free_symbols`` and ``xreplace`` walk an expression as a
tree: a subexpression shared by many parents (the same softmax denominator in every
entry of an attention gradient, a recurrent state in every later step) is walked once per
path to it, which is exponential in the depth of the sharing.  These give the same
answers (sets, or the same rebuilt expression) walking each node once, by identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sympy

__all__ = ["atoms", "has", "free_symbols", "xreplace", "nodes"]


def nodes(e: Any) -> Iterable[Any]:
    """Every distinct subexpression of e (by identity), e first, each once."""
    if not isinstance(e, sympy.Basic):
        return
    seen: set[int] = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        stack.extend(x.args)


def atoms(e: Any, classes: tuple[type, ...], first: bool = False) -> frozenset[Any]:
    """The subterms of e of one of ``classes`` (SymPy's ``e.atoms(*classes)``); ``first``:
    stop at the first one found."""
    out: set[Any] = set()
    for x in nodes(e):
        if isinstance(x, classes):
            out.add(x)
            if first:
                break
    return frozenset(out)


def has(e: Any, classes: tuple[type, ...]) -> bool:
    """Whether e has a subterm of one of ``classes`` (SymPy's ``e.has`` for types)."""
    return bool(atoms(e, classes, first=True))


def free_symbols(e: Any) -> set[Any]:
    """SymPy's ``e.free_symbols``: the symbols of e, less any a binder inside binds (a node
    that binds symbols is answered by SymPy itself)."""
    out: set[Any] = set()
    if not isinstance(e, sympy.Basic):
        return out
    seen: set[int] = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if x.is_Symbol:
            out.add(x)
        elif getattr(x, "bound_symbols", None):
            out |= x.free_symbols
        else:
            stack.extend(x.args)
    return out


def xreplace(e: Any, rule: Mapping[Any, Any]) -> Any:
    """SymPy's ``e.xreplace(rule)``: each subexpression that is a key replaced by its value
    (outermost first, the replacement not walked again), the parents rebuilt; each shared
    node rebuilt once."""
    if not rule or not isinstance(e, sympy.Basic):
        return rule.get(e, e) if isinstance(e, sympy.Basic) else e
    done: dict[int, Any] = {}
    stack: list[tuple[Any, bool]] = [(e, False)]
    while stack:
        x, ready = stack.pop()
        key = id(x)
        if key in done:
            continue
        if not ready:
            found = rule.get(x)
            if found is not None:
                done[key] = found
                continue
            if not x.args:
                done[key] = x
                continue
            stack.append((x, True))
            stack.extend((a, False) for a in x.args if id(a) not in done)
            continue
        args = tuple(done[id(a)] for a in x.args)
        if any(n is not o for n, o in zip(args, x.args, strict=True)):
            done[key] = x.func(*args)
        else:
            done[key] = x
    return done[id(e)]
