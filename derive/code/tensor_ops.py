"""The tensor operations of the NumPy dialect beyond NumPy's own (convolution, pooling,
embedding look-ups, ...): one registration each, read by :mod:`derive.code.interpret`.

Each entry maps a function name to ``call(node, args, axis, keywords) -> value``, with the
same conventions as the interpreter's own table: arguments are symbolic arrays
(:class:`~derive.code.arrays.SymArray`), whole numbers or tuples; results are symbolic
arrays computed exactly, entry by entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CALLS: dict[str, Callable[..., Any]] = {}
