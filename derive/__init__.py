"""derive: a symbolic verifier for neural-network backpropagation derivations.

The public names load on first use (PEP 562): ``import derive`` is cheap and pulls in
neither SymPy nor the LaTeX grammar (the pytest plugin relies on it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name → the module that defines it
_PUBLIC = {
    "Derivation": "derive.check.session", "from_dict": "derive.check.session", "load": "derive.check.session",
    "DeriveError": "derive.errors", "FormulaError": "derive.errors", "ShapeError": "derive.errors",
    "SpecError": "derive.errors",
    "Check": "derive.records", "Counterexample": "derive.records", "Report": "derive.records",
    "gradcheck": "derive.code", "assert_backward": "derive.code",
}
__all__ = [
    "Check", "Counterexample", "DeriveError", "Derivation", "FormulaError", "Report",
    "ShapeError", "SpecError", "assert_backward", "from_dict", "gradcheck", "load",
]

if TYPE_CHECKING:
    from derive.check.session import Derivation, from_dict, load
    from derive.code import assert_backward, gradcheck
    from derive.errors import DeriveError, FormulaError, ShapeError, SpecError
    from derive.records import Check, Counterexample, Report


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'derive' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if module == "derive.check.session":
        importlib.import_module("derive.render.markdown")  # records then show themselves in Jupyter
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
