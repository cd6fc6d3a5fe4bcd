"""derive: a symbolic verifier for neural-network backpropagation derivations."""

from derive.check.session import Derivation, from_dict, load
from derive.errors import DeriveError, FormulaError, ShapeError, SpecError
from derive.records import Check, Counterexample, Report

__all__ = [
    "Check", "Counterexample", "DeriveError", "Derivation", "FormulaError", "Report",
    "ShapeError", "SpecError", "from_dict", "load",
]
__version__ = "0.1.0"
