"""Check NumPy backward code exactly: run the user's own functions on symbolic arrays.

``gradcheck(forward, backward, shapes)`` returns a :class:`~derive.code.report.Result`;
``assert_backward`` raises ``AssertionError`` with the report unless every gradient is
proven.  The symbolic arrays are :class:`~derive.code.arrays.SymArray`.
"""

from derive.code.arrays import NotRepresentable, SymArray, symbolic_numpy, symbols_array
from derive.code.backward import BackwardError, assert_backward, gradcheck
from derive.code.report import Counterexample, GradientCheck, Result

__all__ = [
    "BackwardError", "Counterexample", "GradientCheck", "NotRepresentable", "Result", "SymArray", "assert_backward",
    "gradcheck", "symbolic_numpy", "symbols_array",
]
