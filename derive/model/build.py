"""Build a network from a spec: a layer stack or equations, one function each."""

from __future__ import annotations

from derive.model.build_equations import build_equations
from derive.model.build_layers import build_layer_stack
from derive.model.network import Network
from derive.spec import Spec


def build(spec: Spec) -> Network:
    """The forward graph of a spec (a layer stack, or equations)."""
    if spec.equations is not None:
        return build_equations(spec)
    return build_layer_stack(spec)
