"""Validation of a layer-stack spec (``network.inputs``, ``network.layers``, ``network.loss``)."""

from __future__ import annotations

from typing import Any

import sympy

from derive.ops.activations import ACTIVATIONS, DEFAULT_LEAKY_SLOPE
from derive.spec.common import _check_keys, _choice, _claims, _claims_latex, _constant, _fail, _int
from derive.spec.model import BATCH_LAYOUTS, JACOBIAN_LAYOUTS, LOSS_ALIASES, LOSSES, LayerSpec, Limits, LossSpec, Spec


def layer_stack_spec(file: str, name: str, net: dict[str, Any], data: dict[str, Any], limits: Limits,
                     notation: str) -> Spec:
    """network: {inputs: n0, layers: [...], loss: ..., batch: m, ...}."""
    _check_keys(
        file, "network", net,
        ("inputs", "layers", "loss", "batch", "average", "batch_layout", "layout", "equations"),
    )
    for key in ("inputs", "layers", "loss"):
        if key not in net:
            raise _fail(file, "network", f"missing key '{key}'")
    inputs = _int(file, "network.inputs", net["inputs"], 1, limits.max_units, "a number of inputs")
    layers = _layers(file, net["layers"], limits)
    loss = _loss(file, net["loss"], layers)
    batch = _int(file, "network.batch", net.get("batch", 1), 1, limits.max_batch, "a batch size")
    average = net.get("average", True)
    if not isinstance(average, bool):
        raise _fail(file, "network.average", f"expected true or false, got {average!r}")
    batch_layout = _choice(
        file, "network.batch_layout", net.get("batch_layout", "columns"), BATCH_LAYOUTS, "batch layout"
    )
    layout = _choice(file, "network.layout", net.get("layout", "numerator"), JACOBIAN_LAYOUTS, "layout")
    claims = _claims(file, data.get("claims"))
    spec = Spec(file, name, inputs, layers, loss, batch, average, batch_layout, layout, claims,
                claims_latex=_claims_latex(file, data.get("claims_latex")), notation=notation)
    if spec.parameters > limits.max_parameters:
        raise _fail(
            file, "network",
            f"{spec.parameters} parameters exceed the limit {limits.max_parameters} "
            "(raise it with --max-parameters)",
        )
    return spec


def _layers(file: str, raw: Any, limits: Limits) -> tuple[LayerSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail(file, "network.layers", f"expected a non-empty list of layers, got {raw!r}")
    if len(raw) > limits.max_layers:
        raise _fail(file, "network.layers", f"{len(raw)} layers exceed the limit {limits.max_layers}")
    out = []
    for i, layer in enumerate(raw):
        place = f"network.layers[{i}]"
        if not isinstance(layer, dict):
            raise _fail(file, place, f"expected a mapping such as {{units: 4, activation: tanh}}, got {layer!r}")
        _check_keys(file, place, layer, ("units", "activation", "slope"))
        if "units" not in layer:
            raise _fail(file, place, "missing key 'units'")
        units = _int(file, f"{place}.units", layer["units"], 1, limits.max_units, "a number of units")
        act = _choice(
            file, f"{place}.activation", layer.get("activation", "identity"), tuple(ACTIVATIONS), "activation"
        )
        slope = None
        if act == "leaky_relu":
            slope = _constant(file, f"{place}.slope", layer.get("slope", DEFAULT_LEAKY_SLOPE))
        elif "slope" in layer:
            raise _fail(file, f"{place}.slope", f"a slope is only for leaky_relu, not {act}")
        if act == "softmax":
            if i != len(raw) - 1:
                raise _fail(file, f"{place}.activation", "softmax is supported on the output layer only")
            if units < 2:
                raise _fail(file, f"{place}.units", "softmax needs at least 2 units (with 1 it is constant)")
        out.append(LayerSpec(units, act, slope))
    return tuple(out)


def _loss(file: str, raw: Any, layers: tuple[LayerSpec, ...]) -> LossSpec:
    place = "network.loss"
    scale_raw: Any = None
    if isinstance(raw, dict):
        _check_keys(file, place, raw, ("type", "scale"))
        if "type" not in raw:
            raise _fail(file, place, "missing key 'type'")
        kind_raw = raw["type"]
        scale_raw = raw.get("scale")
        place_kind = f"{place}.type"
    else:
        kind_raw = raw
        place_kind = place
    if isinstance(kind_raw, str):
        kind_raw = LOSS_ALIASES.get(kind_raw, kind_raw)
    kind = _choice(file, place_kind, kind_raw, LOSSES, "loss")
    output = layers[-1].activation
    if kind == "binary_cross_entropy" and output != "sigmoid":
        raise _fail(
            file, place_kind,
            f"binary_cross_entropy needs a probability output: the last layer is {output}, expected sigmoid",
        )
    if kind == "cross_entropy" and output != "softmax":
        raise _fail(
            file, place_kind,
            f"cross_entropy needs a probability output: the last layer is {output}, expected softmax",
        )
    if scale_raw is not None and kind != "mse":
        raise _fail(file, f"{place}.scale", f"a scale is only for mse, not {kind}")
    default = sympy.Rational(1, 2) if kind == "mse" else sympy.Integer(1)
    scale = _constant(file, f"{place}.scale", scale_raw) if scale_raw is not None else default
    if scale == 0:
        raise _fail(file, f"{place}.scale", "a loss scale of 0 makes every gradient 0")
    return LossSpec(kind, scale)
