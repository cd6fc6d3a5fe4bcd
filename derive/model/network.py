"""The symbolic forward pass: a network as a graph of scalar atoms.

Every weight, bias, input and target entry is its own real symbol (a *leaf*).  Every
pre-activation and activation entry is an *atom*: a symbol (``Z1[0,1]``, ``A1[0,1]``) with
a definition in terms of earlier atoms and leaves (``Z1[0,1] = W1[0,0]*X[0,1] + …``,
``A1[0,1] = sigmoid(Z1[0,1])``), and so is the cost ``J``.  Keeping atoms instead of
composing expressions is what keeps every later step small: an identity that holds with
the atoms treated as independent symbols holds a fortiori once they are substituted.

``canon`` maps an activation applied to an atom (``sigmoid(Z1[0,1])``) back to the atom
that stands for it (``A1[0,1]``), so a formula that writes ``sigmoid(Z1)`` and one that
writes ``A1`` meet in the same expression.

Names (0-based entries, NumPy order): ``X`` (= ``A0``), ``Y``, ``W1…WL``, ``b1…bL``,
``Z1…ZL``, ``A1…AL``, the cost ``J``; column batch: X is n0×m, Z_l = W_l A_{l-1} + b_l;
row batch: X is m×n0, Z_l = A_{l-1} W_lᵀ + b_lᵀ.  Biases are columns n_l×1 in both.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any

from sympy import Expr, Matrix, Symbol

from derive.ops.activations import Activation
from derive.spec import Spec


class CostSymbol(Symbol):
    """The cost atom: a class of its own, so an equation or input named ``J`` is never it."""

    @classmethod
    def class_key(cls):
        return Symbol.class_key()  # print and sort among the other symbols, by name


COST = CostSymbol("J", real=True)


@dataclass
class Layer:
    """Layer l's activation g_l (and its slope, for leaky_relu)."""

    index: int
    activation: Activation
    slope: Expr | None = None


@dataclass
class Network:
    """Forward graph of one spec.  Build it with :func:`build`; treat it as read-only."""

    name: str
    spec: Spec | None
    matrices: dict[str, Matrix]
    kinds: dict[str, str]  # name → "parameter" | "input" | "target" | "node"
    definitions: dict[Symbol, Expr]  # atoms in topological order, ending with COST
    canon: dict[Expr, Symbol]
    constants: dict[str, Expr]  # "m" → batch size, "alpha" → the symbol α, ...
    layers: list[Layer] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    #: where the forward pass itself is defined (derive.prove.domain.Condition): the truth's domain
    domain: list[Any] = field(default_factory=list)

    @property
    def leaves(self) -> list[Symbol]:
        out: list[Symbol] = []
        for name, kind in self.kinds.items():
            if kind != "node":
                out.extend(e for e in self.matrices[name] if isinstance(e, Symbol))
        return out

    @property
    def parameter_names(self) -> list[str]:
        return [n for n, k in self.kinds.items() if k == "parameter"]

    @property
    def parameter_count(self) -> int:
        return sum(len(self.matrices[n]) for n in self.parameter_names)

    @property
    def free_constants(self) -> list[Symbol]:
        out: set[Symbol] = set()
        for v in self.constants.values():
            out |= v.free_symbols
        return sorted(out, key=str)

    def shape(self, name: str) -> tuple[int, int]:
        return self.matrices[name].shape

    @property
    def activation_atoms(self) -> set[Symbol]:
        """Atoms that stand for an activation applied to another atom (never unfolded)."""
        return set(self.canon.values())

    @property
    def expression_atoms(self) -> dict[Symbol, Expr]:
        """Atoms that only name an expression (pre-activations): safe to substitute."""
        keep = self.activation_atoms
        return {s: d for s, d in self.definitions.items() if s not in keep and s != COST}


def downstream(definitions: Mapping[Symbol, Expr], roots: set[Symbol]) -> set[Symbol]:
    """Atoms that depend, directly or not, on any of ``roots`` (definitions in graph order)."""
    down: set[Symbol] = set()
    for s, d in definitions.items():
        if d.free_symbols & (roots | down):
            down.add(s)
    return down


def compose(definitions: Mapping[Symbol, Expr], atoms: Container[Symbol]) -> dict[Symbol, Expr]:
    """Each of ``atoms`` as its definition with the earlier ones already substituted, in
    graph order: one substitution then unfolds a whole chain (z = w·h, h = w·x)."""
    composed: dict[Symbol, Expr] = {}
    for s, d in definitions.items():
        if s in atoms:
            sub = {a: composed[a] for a in d.free_symbols if a in composed}
            composed[s] = d.xreplace(sub) if sub else d
    return composed
