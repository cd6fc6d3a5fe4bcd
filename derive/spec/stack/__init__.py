"""Layer stacks with tensor layers, translated into a spec written as NumPy code.

```yaml
network:
  inputs: [1, 4, 4]                      # C, H, W of one example; X is then m×1×4×4
  layers:
    - {type: conv2d, filters: 2, kernel: 3, stride: 1, pad: 1, activation: relu}
    - {type: maxpool, kernel: 2}
    - {type: flatten}
    - {type: dense, units: 2, activation: softmax}
  loss: cross_entropy
  batch: 2
```

Each layer type is one registration in :data:`STACK_LAYERS` (a :class:`StackLayer`: its
keys, whether it takes an activation, its builder): images and dense layers in
:mod:`.images`, normalisation and dropout in :mod:`.norm`, embeddings, recurrence and
attention in :mod:`.sequence`, and the residual block here (it builds its inner layers).
A builder writes the layer's forward statements and its closed-form backward rules as
text of the NumPy dialect; the stack becomes a :class:`~derive.spec.ProgramSpec` whose
forward block is the layers' forward statements and whose backward block is their rules
in reverse order, so derive proves its own rules at the spec's sizes exactly as it checks
a user's block (a wrong rule would be refuted, never trusted).

One example is a vector (``inputs: n``), a sequence (``inputs: [T, D]``) or an image
(``inputs: [C, H, W]``, NCHW); examples are rows: X is m × (one example's shape).  With an
``embedding`` first, ``inputs: T`` is the number of token indices per example and X holds
the m·T indices (declared ``labels``).  Losses: ``cross_entropy`` with a softmax output,
L = −Σ Y ⊙ log A / m (Y one-hot rows, declared so), and ``mse``, L = Σ (A − Y)² / (2m).
A stack of plain dense layers only stays on the classic path (:func:`is_tensor_stack`).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from derive.ops.activations import ACTIVATIONS
from derive.spec.common import _activation, _check_keys, _choice, _fail, _int
from derive.spec.model import Limits
from derive.spec.program import ProgramSpec, program_spec
from derive.spec.stack import images, norm, sequence
from derive.spec.stack.base import REQUIRED, Key, Layer, Site, StackLayer
from derive.util.text import shown

__all__ = ["STACK_LAYERS", "StackLayer", "is_tensor_stack", "stack_spec", "translate"]

ACTS = ("identity", "relu", "sigmoid", "tanh", "softmax")


def residual(site: Site) -> Layer:
    """x + f(x), f the inner layers (which keep the shape); d<prev> = dS + dA: the skip
    connection's gradient added to the one through f (S, the block's input, feeds f)."""
    assert site.nest is not None
    t, p = site.tag, site.prev
    inner_prev = f"S{t}" if site.grad_in else p
    inner, last = site.nest(site.cfg["layers"], t, inner_prev, site.shape, site.grad_in)
    f = ([f"S{t} = {p}"] if site.grad_in else []) + inner.forward + [f"A{t} = {p} + {last}"]
    b = [f"d{last} = dA{t}"] + inner.backward
    if site.grad_in:
        b.append(f"d{p} = dS{t} + dA{t}")
    return Layer(f, b, inner.params, site.shape, inner.inputs)


#: layer type → its one registration (keys, takes an activation, builder)
STACK_LAYERS: dict[str, StackLayer] = {
    **images.REGISTRY, **norm.REGISTRY, **sequence.REGISTRY,
    "residual": StackLayer({"layers": Key("layers")}, False, residual),
}


def is_tensor_stack(net: Any) -> bool:
    """A layer stack with a layer of a type only this package knows (every type but dense)."""
    layers = net.get("layers") if isinstance(net, dict) else None
    return isinstance(layers, list) and any(isinstance(x, dict) and x.get("type", "dense") in STACK_LAYERS
                                            and x.get("type", "dense") != "dense" for x in layers)


def _exact(file: str, place: str, value: Any, what: str) -> Fraction:
    """A number read exactly from its decimal text (1e-5 is 1/100000, 0.8 is 4/5)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _fail(file, place, f"expected {what}, got {shown(value)}")
    try:
        v = Fraction(repr(value) if isinstance(value, float) else str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise _fail(file, place, f"expected {what}, got {shown(value)}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(file, place, f"expected {what}, got {shown(value)}")
    if v.denominator > 10**12 or abs(v.numerator) > 10**12:
        raise _fail(file, place, f"expected {what} with at most 12 digits, got {shown(value)}")
    return v


class _Stack:
    """The translation of one network: parses layers (recursively for blocks) into text."""

    def __init__(self, file: str, limits: Limits, m: int, loss: str) -> None:
        self.file, self.limits, self.m, self.loss = file, limits, m, loss

    def key(self, place: str, name: str, key: Key, raw: dict[str, Any], cfg: dict[str, Any]) -> Any:
        if name not in raw:
            if key.default is REQUIRED:
                raise _fail(self.file, place, f"missing key '{name}'")
            if isinstance(key.default, str) and key.default.startswith("="):
                return cfg[key.default[1:]]
            value = key.default
        else:
            value = raw[name]
        where = f"{place}.{name}"
        if key.kind in ("size", "count"):
            low = 1 if key.kind == "size" else 0
            return _int(self.file, where, value, low, self.limits.max_units, f"a {name}")
        if key.kind == "positive":
            v = _exact(self.file, where, value, f"a positive number for {name}")
            if v <= 0:
                raise _fail(self.file, where, f"expected a positive number for {name}, got {shown(value)}")
            return v
        if key.kind == "probability":
            v = _exact(self.file, where, value, f"a probability for {name} (0 < p ≤ 1)")
            if not 0 < v <= 1:
                raise _fail(self.file, where, f"expected a probability for {name} (0 < p ≤ 1), got {shown(value)}")
            return v
        if key.kind == "flag":
            if not isinstance(value, bool):
                raise _fail(self.file, where, f"expected true or false, got {shown(value)}")
            return value
        if key.kind == "choice":
            return _choice(self.file, where, value, key.choices, name)
        if key.kind == "layers":
            if not isinstance(value, list) or not value:
                raise _fail(self.file, where, f"expected a non-empty list of layers, got {shown(value)}")
            return value
        raise AssertionError(key.kind)

    def chain(self, raws: list[Any], place: str, prefix: str, prev: str, shape: tuple[int, ...],
              grad_in: bool, top: bool = False) -> tuple[Layer, str, list[str]]:
        """The layers one after another: tags prefix+1, prefix+2 ... (``2_1`` inside block 2)."""
        forward: list[str] = []
        backward: list[list[str]] = []
        params: dict[str, tuple[int, ...]] = {}
        inputs: dict[str, tuple[tuple[int, ...], str]] = {}
        kinds: list[str] = []
        n = len(raws)
        for i, raw in enumerate(raws):
            where = f"{place}[{i}]"
            tag = f"{prefix}{i + 1}"
            if not isinstance(raw, dict):
                raise _fail(self.file, where, f"expected a mapping such as {{type: conv2d, filters: 2, kernel: 3}}, "
                                              f"got {shown(raw)}")
            kind = _choice(self.file, f"{where}.type", raw.get("type", "dense"), tuple(STACK_LAYERS), "layer type")
            keys, has_act, build = STACK_LAYERS[kind]
            _check_keys(self.file, where, raw, ("type", *keys, *(("activation",) if has_act else ())))
            cfg: dict[str, Any] = {}
            for name, key in keys.items():
                cfg[name] = self.key(where, name, key, raw, cfg)
            act = _activation(self.file, f"{where}.activation", raw.get("activation", "identity"),
                              ACTS) if has_act else "identity"
            if act not in ("identity", "softmax") and act not in ACTIVATIONS:
                raise _fail(self.file, f"{where}.activation", f"unknown activation {act}")
            last = top and i == n - 1
            if act == "softmax" and not (last and self.loss == "cross_entropy" and kind == "dense"):
                raise _fail(self.file, f"{where}.activation", "softmax goes on the last dense layer, with "
                                                              "cross_entropy")
            if last and self.loss == "cross_entropy" and act != "softmax":
                raise _fail(self.file, f"{where}.activation", "cross_entropy here takes a softmax output layer")
            site = Site(tag, prev, shape, self.m, cfg, act, last and has_act, grad_in or i > 0,
                        top and i == 0, self._nest(where))
            try:
                layer = build(site)
            except ValueError as exc:
                raise _fail(self.file, where, str(exc)) from None
            forward += layer.forward
            backward.append(layer.backward)
            params.update(layer.params)
            inputs.update(layer.inputs)
            kinds.append(kind)
            shape, prev = layer.out, f"A{tag}"
        lines = [line for block in reversed(backward) for line in block]
        return Layer(forward, lines, params, shape, inputs), prev, kinds

    def _nest(self, place: str) -> Any:
        def nest(raws: list[Any], tag: str, prev: str, shape: tuple[int, ...],
                 grad_in: bool) -> tuple[Layer, str]:
            inner, last, _ = self.chain(raws, f"{place}.layers", f"{tag}_", prev, shape, grad_in)
            if inner.out != shape:
                raise _fail(self.file, f"{place}.layers", f"the inner layers change the shape {list(shape)} to "
                                                          f"{list(inner.out)}: the skip connection adds x + f(x), "
                                                          "so they must keep it")
            return inner, last
        return nest


def translate(file: str, net: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """The stack as the data of a spec written as NumPy code (network.equations, backward)."""
    _check_keys(file, "network", net, ("inputs", "layers", "loss", "batch"))
    for key in ("inputs", "layers", "loss"):
        if key not in net:
            raise _fail(file, "network", f"missing key '{key}'")
    raw_in = net["inputs"]
    dims = raw_in if isinstance(raw_in, list) else [raw_in]
    if not dims or len(dims) not in (1, 2, 3):
        raise _fail(file, "network.inputs", f"expected a size, [T, D] or [C, H, W], got {shown(raw_in)}")
    shape = tuple(_int(file, "network.inputs", d, 1, limits.max_units, "a size") for d in dims)
    m = _int(file, "network.batch", net.get("batch", 2), 1, limits.max_batch, "a batch size")
    loss = _choice(file, "network.loss", net["loss"], ("cross_entropy", "mse"), "loss")
    raw_layers = net["layers"]
    if not isinstance(raw_layers, list) or not raw_layers:
        raise _fail(file, "network.layers", f"expected a non-empty list of layers, got {shown(raw_layers)}")
    tokens = isinstance(raw_layers[0], dict) and raw_layers[0].get("type") == "embedding"
    if tokens and len(shape) != 1:
        raise _fail(file, "network.inputs", f"with an embedding first, inputs is the number of token indices "
                                            f"per example, got {shown(raw_in)}")
    stack = _Stack(file, limits, m, loss)
    body, top_name, kinds = stack.chain(raw_layers, "network.layers", "", "A0", shape, False, top=True)
    if len(body.out) != 1:
        raise _fail(file, "network.layers", "the last layer must give vectors (a dense layer after flatten, or an "
                                            "rnn's last state)")
    shapes: dict[str, list[int]] = {"X": [m * shape[0]] if tokens else [m, *shape]}
    domains: dict[str, str] = {"X": "labels"} if tokens else {}
    for name, (s, domain) in body.inputs.items():
        shapes[name] = list(s)
        domains[name] = domain
    shapes.update({p: list(s) for p, s in body.params.items()})
    shapes["Y"] = [m, body.out[0]]
    top = top_name
    forward = ["A0 = X", *body.forward]
    if loss == "cross_entropy":
        forward.append(f"L = -np.sum(Y * np.log({top})) / {m}")
        first = [f"dZ{top[1:]} = ({top} - Y) / {m}"]
        domains["Y"] = "one_hot"
    else:
        forward.append(f"L = np.sum(({top} - Y) ** 2) / (2 * {m})")
        first = [f"d{top} = ({top} - Y) / {m}"]
        if STACK_LAYERS[kinds[-1]].has_activation:
            act = raw_layers[-1].get("activation", "identity")
            tag = top[1:]
            first.append(f"dZ{tag} = d{top}" if act == "identity" else f"dZ{tag} = d{top} * {act}_prime(Z{tag})")
    network: dict[str, Any] = {"equations": "\n".join(forward) + "\n", "parameters": list(body.params),
                               "shapes": shapes, "loss": "L", "batch": m}
    if domains:
        network["domains"] = domains
    return {"network": network, "backward": "\n".join(first + body.backward) + "\n"}


def stack_spec(file: str, name: str, net: dict[str, Any], data: dict[str, Any], limits: Limits) -> ProgramSpec:
    """A tensor layer stack as a spec written as NumPy code (its rules: the backward block)."""
    translated = translate(file, net, limits)
    _check_keys(file, "", data, ("name", "description", "network", "claims", "notation", "expect"))
    merged = {**{k: v for k, v in data.items() if k != "network"}, **translated}
    return program_spec(file, name, merged, limits)
