"""Validation of a layer-stack spec (``network.inputs``, ``network.layers``, ``network.loss``)."""

from __future__ import annotations

from typing import Any

import sympy

from derive.ops.activations import ACTIVATIONS
from derive.ops.layer_types import DEFAULT_LAYER_TYPE, LAYER_ACTIVATIONS, LAYER_TYPES, OUTPUT_ONLY
from derive.ops.losses import loss as registered_loss
from derive.spec.common import _activation, _check_keys, _choice, _claims, _claims_latex, _constant, _fail, _int
from derive.spec.model import (
    BATCH,
    BATCH_LAYOUTS,
    JACOBIAN_LAYOUTS,
    LOSS_ALIASES,
    LOSSES,
    LayerSpec,
    Limits,
    LossSpec,
    Spec,
)


def layer_stack_spec(file: str, name: str, net: dict[str, Any], data: dict[str, Any], limits: Limits,
                     notation: str) -> Spec:
    """network: {inputs: n0, layers: [...], loss: ..., batch: m, ...}."""
    _check_keys(
        file, "network", net,
        ("inputs", "layers", "loss", "batch", "average", "batch_layout", "layout", "equations", "weight_decay"),
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
    weight_decay = _weight_decay(file, net.get("weight_decay"))
    claims = _claims(file, data.get("claims"))
    spec = Spec(file, name, inputs, layers, loss, batch, average, batch_layout, layout, claims,
                claims_latex=_claims_latex(file, data.get("claims_latex")), notation=notation,
                weight_decay=weight_decay)
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
        kind = _choice(file, f"{place}.type", layer.get("type", DEFAULT_LAYER_TYPE), tuple(LAYER_TYPES), "layer type")
        _check_keys(file, place, layer, tuple(dict.fromkeys(("type", *LAYER_TYPES[kind].keys, *_PARAM_KEYS))))
        if "units" not in layer:
            raise _fail(file, place, "missing key 'units'")
        units = _int(file, f"{place}.units", layer["units"], 1, limits.max_units, "a number of units")
        act = layer.get("activation", "identity")
        if act not in LAYER_ACTIVATIONS:  # the message lists the activation registry (composites aside)
            act = _activation(file, f"{place}.activation", act, tuple(ACTIVATIONS))
        slope = _activation_parameter(file, place, layer, act)
        if act in OUTPUT_ONLY:
            if i != len(raw) - 1:
                raise _fail(file, f"{place}.activation", f"{act} is supported on the output layer only")
            if units < 2:
                raise _fail(file, f"{place}.units", f"{act} needs at least 2 units (with 1 it is constant)")
        out.append(LayerSpec(units, act, slope, kind))
    return tuple(out)


#: the spec keys of every activation parameter (leaky_relu's slope, elu's alpha)
_PARAM_KEYS = tuple(sorted({a.param.key for a in ACTIVATIONS.values() if a.param is not None}))


def _activation_parameter(file: str, place: str, layer: dict[str, Any], act: str) -> sympy.Expr | None:
    """The value of the activation's parameter (its registered key, default and constraint);
    a parameter key of another activation is an error."""
    entry = ACTIVATIONS.get(act)
    param = entry.param if entry is not None else None
    for key in _PARAM_KEYS:
        if key in layer and (param is None or param.key != key):
            users = " and ".join(n for n, a in ACTIVATIONS.items() if a.param is not None and a.param.key == key)
            article = "an" if key[0] in "aeiou" else "a"
            raise _fail(file, f"{place}.{key}", f"{article} {key} is only for {users}, not {act}")
    if param is None:
        return None
    value = _constant(file, f"{place}.{param.key}", layer.get(param.key, param.default))
    problem = param.check(value)
    if problem is not None:
        raise _fail(file, f"{place}.{param.key}", f"{problem}, got {value}")
    return value


def _loss(file: str, raw: Any, layers: tuple[LayerSpec, ...]) -> LossSpec:
    """network.loss: a name, or {type: name, <parameter>: value} (mse's scale, huber's delta).

    Everything checked here comes from the loss's registration (derive.ops.losses)."""
    place = "network.loss"
    given: dict[str, Any] = {}
    if isinstance(raw, dict):
        if "type" not in raw:
            keys = sorted({p.key for loss in LOSSES for p in registered_loss(loss).parameters})
            _check_keys(file, place, raw, ("type", *keys))
            raise _fail(file, place, "missing key 'type'")
        kind_raw = raw["type"]
        given = {k: v for k, v in raw.items() if k != "type"}
        place_kind = f"{place}.type"
    else:
        kind_raw = raw
        place_kind = place
    if isinstance(kind_raw, str):
        kind_raw = LOSS_ALIASES.get(kind_raw, kind_raw)
    kind = _choice(file, place_kind, kind_raw, LOSSES, "loss")
    entry = registered_loss(kind)
    own = tuple(p.key for p in entry.parameters)
    for key in given:
        if key not in own:
            users = [name for name in LOSSES if key in (p.key for p in registered_loss(name).parameters)]
            if users and isinstance(key, str):
                raise _fail(file, f"{place}.{key}", f"a {key} is only for {' and '.join(users)}, not {kind}")
    _check_keys(file, place, given, ("type", *own))
    output = layers[-1].activation
    if entry.outputs and output not in entry.outputs:
        raise _fail(
            file, place_kind,
            f"{kind} needs {entry.output_kind} output: the last layer is "
            f"{output}, expected {' or '.join(entry.outputs)}",
        )
    values: dict[str, sympy.Expr] = {}
    for p in entry.parameters:
        where = f"{place}.{p.key}"
        value = _constant(file, where, given[p.key]) if p.key in given else p.default
        if value == 0:
            raise _fail(file, where, f"{p.meaning} of 0 makes every gradient 0")
        if p.positive and value.is_number and not value.is_positive:
            raise _fail(file, where, f"{p.meaning} must be positive, got {value}")
        values[p.key] = value
    scale = values.pop("scale", sympy.Integer(1))
    return LossSpec(kind, scale, tuple(values.items()))


def _weight_decay(file: str, raw: Any) -> sympy.Expr:
    """network.weight_decay: λ, a number or a constant expression of free names and the batch
    size m (the course's λ/(2m)·‖W‖² is weight_decay: lambd/m)."""
    if raw is None:
        return sympy.Integer(0)
    value = _constant(file, "network.weight_decay", raw, allowed=(BATCH,))
    if value.is_number and value.is_negative:
        raise _fail(file, "network.weight_decay", f"a weight decay must not be negative, got {value}")
    return value
