"""The spec as frozen, typed records (what YAML becomes), with the names it reserves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy

from derive.lang.formula import Node
from derive.ops.layer_types import LAYER_TYPES
from derive.ops.losses import LOSS_ALIASES as LOSS_ALIASES  # re-exported
from derive.ops.losses import LOSSES as LOSS_REGISTRY

LOSSES = tuple(LOSS_REGISTRY)  # the registry is derive.ops.losses: one entry per loss
BATCH_LAYOUTS = ("columns", "rows")
JACOBIAN_LAYOUTS = ("numerator", "denominator")
BATCH = "m"  # the batch size: the one reserved name a weight decay may use (lambd/m)
RESERVED = {"X", "Y", BATCH, "J", "L"}
#: names a layer-stack network gives meaning to: a free constant may not take one
_VALUE = re.compile(r"(X|Y|J|L|[WbZA][0-9]+)$")
_SIZE = re.compile(r"n[0-9]+$")


def reserved_name(name: str) -> str | None:
    """What a name already means in a layer-stack network, or None if it is free."""
    if name in RESERVED or _VALUE.match(name):
        return "a name of the network"
    if _SIZE.match(name):
        return "a layer size (n0 … nL)"
    if name.startswith("d") and _VALUE.match(name[1:]):
        return f"the gradient ∂J/∂{name[1:]}"
    return None


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one spec may ask for; raise them with CLI flags."""

    max_parameters: int = 10_000
    max_batch: int = 1_000
    max_units: int = 1_000
    max_layers: int = 100
    max_aliases: int = 100
    max_digits: int = 100  # digits of an integer written in the spec
    max_file_bytes: int = 1_000_000  # a spec file's size, checked before reading
    max_symbols: int = 100_000  # entries of every input, target and parameter together


@dataclass(frozen=True)
class LayerSpec:
    units: int
    activation: str
    slope: sympy.Expr | None = None  # leaky_relu only
    type: str = "dense"  # one of derive.ops.layer_types.LAYER_TYPES


@dataclass(frozen=True)
class LossSpec:
    kind: str  # one of LOSSES
    scale: sympy.Expr = sympy.Rational(1, 2)  # mse: ℓ = scale·‖a − y‖²; 1 for the others
    params: tuple[tuple[str, sympy.Expr], ...] = ()  # the loss's other parameters (huber: delta)

    @property
    def values(self) -> dict[str, sympy.Expr]:
        """Every parameter of the loss by its spec key (``scale`` always)."""
        return {"scale": self.scale, **dict(self.params)}


@dataclass(frozen=True)
class ClaimSpec:
    target: str
    formula: str
    place: str  # where in the file, for messages: "claims.dW2" or "claims[3]"
    expect: str = "proven"  # a worked example may ship a mistake that must be refuted
    latex: str | None = None  # the claim as written in LaTeX, when it came from claims_latex
    node: Node | None = None  # the formula's syntax tree when derive built it (a LaTeX claim read)


@dataclass(frozen=True)
class Equation:
    name: str
    formula: str
    place: str


@dataclass(frozen=True)
class EquationsSpec:
    """A network written as equations (scalar, or matrix with declared shapes)."""

    equations: tuple[Equation, ...]
    parameters: tuple[str, ...]
    loss: str
    shapes: dict[str, tuple[int, int]]


@dataclass(frozen=True)
class Spec:
    file: str
    name: str
    inputs: int
    layers: tuple[LayerSpec, ...]
    loss: LossSpec
    batch: int = 1
    average: bool = True
    batch_layout: str = "columns"
    layout: str = "numerator"
    claims: tuple[ClaimSpec, ...] = field(default=())
    equations: EquationsSpec | None = None  # set instead of inputs/layers for equation networks
    claims_latex: tuple[ClaimSpec, ...] = field(default=())  # target/formula filled in by the network stage
    notation: str = "default"  # LaTeX: W_l (default) or W^{[l]} (course)
    #: L2 weight decay λ: J gains (λ/2)‖W_l‖² per layer (biases not decayed); may name m
    weight_decay: sympy.Expr = sympy.Integer(0)

    @property
    def sizes(self) -> list[int]:
        if self.equations is not None:
            return []
        return [self.inputs] + [layer.units for layer in self.layers]

    @property
    def parameters(self) -> int:
        if self.equations is not None:
            eq = self.equations
            return sum(eq.shapes.get(p, (1, 1))[0] * eq.shapes.get(p, (1, 1))[1] for p in eq.parameters)
        s = self.sizes
        total = 0
        for i, layer in enumerate(self.layers):
            for p in LAYER_TYPES[layer.type].parameters:
                rows, cols = p.shape(s[i + 1], s[i])
                total += rows * cols
        return total

    @property
    def symbols(self) -> set[sympy.Symbol]:
        """The free constants of the spec (α in a loss scale or a slope)."""
        out: set[sympy.Symbol] = set()
        for value in self.loss.values.values():
            out |= value.free_symbols
        out |= {s for s in self.weight_decay.free_symbols if str(s) != BATCH}
        for layer in self.layers:
            if layer.slope is not None:
                out |= layer.slope.free_symbols
        return out


VERDICTS = ("proven", "refuted", "unproven")
