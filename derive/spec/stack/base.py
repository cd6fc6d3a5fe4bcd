"""What a layer type registers for a layer stack, and what its builder is given.

A builder is a function ``Site → Layer``: the site says where the layer sits (its tag,
the name of its input, one example's input shape, the batch, its keys), the layer is
text of the NumPy dialect — forward statements, closed-form backward rules, parameters,
extra data inputs.  Builders only write text: derive runs and proves it afterwards, so a
builder never needs to be trusted.

Naming: a layer's own names end with its tag (``W3``, ``gamma3``, ``W2_1`` inside a
residual block); its output is ``A<tag>``; its input is ``site.prev`` (``A<tag−1>``);
given ``dA<tag>`` its rules make ``d<prev>`` (when ``site.grad_in``) and the gradient of
each parameter.  A backward helper that is not a gradient has a name that is not ``d`` +
a forward name, so derive does not judge it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple

__all__ = ["Key", "Layer", "Site", "StackLayer", "Builder", "number", "activation"]

REQUIRED = object()


@dataclass(frozen=True)
class Key:
    """One key of a layer type: its kind and default (``REQUIRED``: none).

    kinds: ``size`` (a whole number ≥ 1), ``count`` (≥ 0), ``positive`` (an exact positive
    number, read from its decimal text: 1e-5 is 1/100000), ``probability`` (0 < p ≤ 1,
    exact), ``flag`` (true/false), ``choice`` (one of ``choices``), ``layers`` (a list of
    layers, for blocks), ``activation``.  A default ``"=kernel"`` takes the value of that key.
    """

    kind: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()


@dataclass
class Layer:
    forward: list[str]
    backward: list[str]  # given dA<tag> (dZ<tag> when the loss gives it), make d<prev> and the parameters'
    params: dict[str, tuple[int, ...]]
    out: tuple[int, ...]  # the shape of one example's output
    #: data inputs the layer adds (a dropout mask): name → (full shape with the batch, domain)
    inputs: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Site:
    """Where a layer sits in the stack, and its keys (already validated)."""

    tag: str
    prev: str
    shape: tuple[int, ...]
    m: int
    cfg: dict[str, Any]
    act: str = "identity"
    folded: bool = False  # the loss gives dZ<tag> directly (softmax with cross-entropy)
    grad_in: bool = True  # make d<prev>
    first: bool = False  # its input is the network's input X
    #: builds a list of inner layers (a residual block's): (raw layers, place, tag, prev, shape, grad_in)
    nest: Callable[..., tuple[Layer, str]] | None = None

    @property
    def out(self) -> str:
        return f"A{self.tag}"


Builder = Callable[[Site], Layer]


class StackLayer(NamedTuple):
    """A layer type's one registration: its keys, whether it takes an activation, its builder."""

    keys: dict[str, Key]
    has_activation: bool
    build: Builder


def number(v: Fraction) -> str:
    """An exact number as dialect text: 1/100000, 4/5, 2."""
    return str(v.numerator) if v.denominator == 1 else f"({v.numerator}/{v.denominator})"


def activation(lines_f: list[str], lines_b: list[str], tag: str, act: str, folded: bool) -> None:
    """A = g(Z) and, unless the loss gives dZ directly, dZ = dA ⊙ g′(Z) (first in the rules)."""
    if act == "identity":
        lines_f.append(f"A{tag} = Z{tag}")
        if not folded:
            lines_b.insert(0, f"dZ{tag} = dA{tag}")
    elif act == "softmax":
        lines_f.append(f"A{tag} = np.exp(Z{tag}) / np.sum(np.exp(Z{tag}), axis=1, keepdims=True)")
    else:
        fn = "np.tanh" if act == "tanh" else act
        lines_f.append(f"A{tag} = {fn}(Z{tag})")
        if not folded:
            lines_b.insert(0, f"dZ{tag} = dA{tag} * {act}_prime(Z{tag})")


def size(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
