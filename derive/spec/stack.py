"""Layer stacks with tensor layers (``type: conv2d``, ``maxpool``, ``avgpool``,
``flatten``, ``dense``), translated into a spec written as NumPy code.

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

Each layer type is one registration in :data:`STACK_LAYERS`: its spec keys, its
parameters with their shapes, its forward statements and its closed-form backward rules,
all as text of the NumPy dialect.  The stack becomes a :class:`~derive.spec.ProgramSpec`
whose forward block is the layers' forward statements and whose backward block is their
rules in reverse order, so derive proves its own rules at the spec's sizes exactly as it
checks a user's block (a wrong rule would be refuted, never trusted).

Conventions: examples are rows (NCHW for images): A0 = X (m, C, H, W); layer l computes
Z_l and A_l = g(Z_l); ``dense`` is Z_l = A_{l−1} W_l + b_l with W_l (n_in, units);
``conv2d`` is :func:`derive.code.tensor_ops.conv2d` (the cs231n cross-correlation) with
W_l (filters, C, kernel, kernel); pooling windows are kernel×kernel (stride = kernel
unless given).  Losses: ``cross_entropy`` with a softmax output, L = −Σ Y ⊙ log A / m
(Y one-hot rows, declared so), and ``mse``, L = Σ (A − Y)² / (2m) (mse's ½, averaged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from derive.ops.activations import ACTIVATIONS
from derive.spec.common import _check_keys, _choice, _fail, _int
from derive.spec.model import Limits
from derive.spec.program import ProgramSpec, program_spec

__all__ = ["STACK_LAYERS", "is_tensor_stack", "stack_spec", "translate"]

ACTS = ("identity", "relu", "sigmoid", "tanh", "softmax")


@dataclass
class _Layer:
    forward: list[str]
    backward: list[str]  # given dA<l> (dZ<l> when the activation is folded), make dA<l-1> and the parameters'
    params: dict[str, tuple[int, ...]]
    out: tuple[int, ...]  # the shape of one example's output


Builder = Callable[[int, tuple[int, ...], dict[str, Any], int, str, bool], _Layer]


def _activation(lines_f: list[str], lines_b: list[str], l: int, act: str, folded: bool) -> None:
    """A_l = g(Z_l) and, unless the loss gives dZ_l directly, dZ_l = dA_l ⊙ g′(Z_l)."""
    if act == "identity":
        lines_f.append(f"A{l} = Z{l}")
        if not folded:
            lines_b.insert(0, f"dZ{l} = dA{l}")
    elif act == "softmax":
        lines_f.append(f"A{l} = np.exp(Z{l}) / np.sum(np.exp(Z{l}), axis=1, keepdims=True)")
    else:
        fn = "np.tanh" if act == "tanh" else act
        lines_f.append(f"A{l} = {fn}(Z{l})")
        if not folded:
            lines_b.insert(0, f"dZ{l} = dA{l} * {act}_prime(Z{l})")


def _dense(l: int, shape: tuple[int, ...], cfg: dict[str, Any], m: int, act: str, folded: bool) -> _Layer:
    if len(shape) != 1:
        raise ValueError("a dense layer takes vectors: put {type: flatten} before it")
    units = cfg["units"]
    f = [f"Z{l} = A{l - 1}.dot(W{l}) + b{l}"]
    b = [f"dW{l} = A{l - 1}.T.dot(dZ{l})", f"db{l} = np.sum(dZ{l}, axis=0)"]
    if l > 1:
        b.append(f"dA{l - 1} = dZ{l}.dot(W{l}.T)")
    _activation(f, b, l, act, folded)
    return _Layer(f, b, {f"W{l}": (shape[0], units), f"b{l}": (units,)}, (units,))


def _conv2d(l: int, shape: tuple[int, ...], cfg: dict[str, Any], m: int, act: str, folded: bool) -> _Layer:
    if len(shape) != 3:
        raise ValueError("conv2d takes images (C, H, W)")
    c, h, w = shape
    f_, k, s, p = cfg["filters"], cfg["kernel"], cfg["stride"], cfg["pad"]
    if (h + 2 * p - k) % s or (w + 2 * p - k) % s or h + 2 * p < k or w + 2 * p < k:
        raise ValueError(f"a {k}×{k} kernel with stride {s} and pad {p} does not tile {h}×{w}")
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    f = [f"Z{l} = conv2d(A{l - 1}, W{l}, b{l}, stride={s}, pad={p})"]
    prev = f"A{l - 1}"
    b = [f"db{l} = np.sum(dZ{l}, axis=(0, 2, 3))",
         f"P{l} = np.pad({prev}, ((0, 0), (0, 0), ({p}, {p}), ({p}, {p})))",
         f"dW{l} = np.zeros_like(W{l})"]
    if l > 1:
        b.append(f"dP{l} = np.zeros_like(P{l})")
    b += [f"for i in range({ho}):", f"    for j in range({wo}):",
          f"        dW{l} += np.tensordot(dZ{l}[:, :, i, j], P{l}[:, :, i*{s}:i*{s}+{k}, j*{s}:j*{s}+{k}], "
          "axes=((0,), (0,)))"]
    if l > 1:
        b += [f"        dP{l}[:, :, i*{s}:i*{s}+{k}, j*{s}:j*{s}+{k}] += np.tensordot(dZ{l}[:, :, i, j], W{l}, "
              "axes=((1,), (0,)))",
              f"dA{l - 1} = dP{l}[:, :, {p}:{p + h}, {p}:{p + w}]"]
    _activation(f, b, l, act, folded)
    return _Layer(f, b, {f"W{l}": (f_, c, k, k), f"b{l}": (f_,)}, (f_, ho, wo))


def _pool(kind: str) -> Builder:
    def build(l: int, shape: tuple[int, ...], cfg: dict[str, Any], m: int, act: str, folded: bool) -> _Layer:
        if len(shape) != 3:
            raise ValueError(f"{kind}pool takes images (C, H, W)")
        c, h, w = shape
        k, s = cfg["kernel"], cfg["stride"]
        if h < k or w < k or (h - k) % s or (w - k) % s:
            raise ValueError(f"a {k}×{k} window with stride {s} does not tile {h}×{w}")
        ho, wo = (h - k) // s + 1, (w - k) // s + 1
        f = [f"A{l} = {kind}pool(A{l - 1}, {k}, stride={s})"]
        window = f"[:, :, i*{s}:i*{s}+{k}, j*{s}:j*{s}+{k}]"
        share = (f"(A{l - 1}{window} == A{l}[:, :, i:i+1, j:j+1]) * dA{l}[:, :, i:i+1, j:j+1]" if kind == "max"
                 else f"np.ones(({m}, {c}, {k}, {k})) * dA{l}[:, :, i:i+1, j:j+1] / {k * k}")
        b = [f"dA{l - 1} = np.zeros_like(A{l - 1})", f"for i in range({ho}):", f"    for j in range({wo}):",
             f"        dA{l - 1}{window} += {share}"] if l > 1 else []
        return _Layer(f, b, {}, (c, ho, wo))
    return build


def _flatten(l: int, shape: tuple[int, ...], cfg: dict[str, Any], m: int, act: str, folded: bool) -> _Layer:
    n = 1
    for d in shape:
        n *= d
    f = [f"A{l} = A{l - 1}.reshape({m}, {n})"]
    b = [f"dA{l - 1} = dA{l}.reshape({m}, {', '.join(map(str, shape))})"] if l > 1 else []
    return _Layer(f, b, {}, (n,))


#: layer type → (its keys with defaults (None: required), whether it has an activation, its builder)
STACK_LAYERS: dict[str, tuple[dict[str, Any], bool, Builder]] = {
    "dense": ({"units": None, "activation": "identity"}, True, _dense),
    "conv2d": ({"filters": None, "kernel": None, "stride": 1, "pad": 0, "activation": "identity"}, True, _conv2d),
    "maxpool": ({"kernel": None, "stride": None}, False, _pool("max")),
    "avgpool": ({"kernel": None, "stride": None}, False, _pool("avg")),
    "flatten": ({}, False, _flatten),
}


def is_tensor_stack(net: Any) -> bool:
    """A layer stack with a layer of a type only this module knows (conv2d, pooling, flatten)."""
    layers = net.get("layers") if isinstance(net, dict) else None
    return isinstance(layers, list) and any(isinstance(x, dict) and x.get("type", "dense") in STACK_LAYERS
                                            and x.get("type", "dense") != "dense" for x in layers)


def translate(file: str, net: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """The stack as the data of a spec written as NumPy code (network.equations, backward)."""
    _check_keys(file, "network", net, ("inputs", "layers", "loss", "batch"))
    for key in ("inputs", "layers", "loss"):
        if key not in net:
            raise _fail(file, "network", f"missing key '{key}'")
    raw_in = net["inputs"]
    dims = raw_in if isinstance(raw_in, list) else [raw_in]
    if not dims or len(dims) not in (1, 3):
        raise _fail(file, "network.inputs", f"expected a size or [C, H, W], got {raw_in!r}")
    shape = tuple(_int(file, "network.inputs", d, 1, limits.max_units, "a size") for d in dims)
    m = _int(file, "network.batch", net.get("batch", 2), 1, limits.max_batch, "a batch size")
    loss = _choice(file, "network.loss", net["loss"], ("cross_entropy", "mse"), "loss")
    raw_layers = net["layers"]
    if not isinstance(raw_layers, list) or not raw_layers:
        raise _fail(file, "network.layers", f"expected a non-empty list of layers, got {raw_layers!r}")
    forward: list[str] = ["A0 = X"]
    backward: list[list[str]] = []
    shapes: dict[str, list[int]] = {"X": [m, *shape]}
    params: list[str] = []
    n = len(raw_layers)
    for i, raw in enumerate(raw_layers):
        place = f"network.layers[{i}]"
        if not isinstance(raw, dict):
            raise _fail(file, place, f"expected a mapping such as {{type: conv2d, filters: 2, kernel: 3}}, got {raw!r}")
        kind = _choice(file, f"{place}.type", raw.get("type", "dense"), tuple(STACK_LAYERS), "layer type")
        keys, has_act, build = STACK_LAYERS[kind]
        _check_keys(file, place, raw, ("type", *keys))
        cfg: dict[str, Any] = {}
        for key, default in keys.items():
            if key == "activation":
                continue
            if key not in raw and default is None and not (key == "stride" and "kernel" in raw):
                raise _fail(file, place, f"missing key '{key}'")
            value = raw.get(key, default if default is not None else raw.get("kernel"))
            low = 0 if key == "pad" else 1
            cfg[key] = _int(file, f"{place}.{key}", value, low, limits.max_units, f"a {key}")
        act = _choice(file, f"{place}.activation", raw.get("activation", "identity"), ACTS, "activation") \
            if has_act else "identity"
        if act != "identity" and act != "softmax" and act not in ACTIVATIONS:
            raise _fail(file, f"{place}.activation", f"unknown activation {act}")
        last = i == n - 1
        if act == "softmax" and not (last and loss == "cross_entropy" and kind == "dense"):
            raise _fail(file, f"{place}.activation", "softmax goes on the last dense layer, with cross_entropy")
        if last and loss == "cross_entropy" and act != "softmax":
            raise _fail(file, f"{place}.activation", "cross_entropy here takes a softmax output layer")
        try:
            layer = build(i + 1, shape, cfg, m, act, last)
        except ValueError as exc:
            raise _fail(file, place, str(exc)) from None
        forward += layer.forward
        backward.append(layer.backward)
        for p, s in layer.params.items():
            shapes[p] = list(s)
            params.append(p)
        shape = layer.out
    if len(shape) != 1:
        raise _fail(file, "network.layers", "the last layer must give vectors (a dense layer after flatten)")
    shapes["Y"] = [m, shape[0]]
    top = n
    if loss == "cross_entropy":
        forward.append(f"L = -np.sum(Y * np.log(A{top})) / {m}")
        first = [f"dZ{top} = (A{top} - Y) / {m}"]
    else:
        forward.append(f"L = np.sum((A{top} - Y) ** 2) / (2 * {m})")
        first = [f"dA{top} = (A{top} - Y) / {m}"]
        act = raw_layers[-1].get("activation", "identity")
        if raw_layers[-1].get("type", "dense") in ("dense", "conv2d"):
            first.append(f"dZ{top} = dA{top}" if act == "identity" else f"dZ{top} = dA{top} * {act}_prime(Z{top})")
    lines = first + [line for block in reversed(backward) for line in block]
    network: dict[str, Any] = {"equations": "\n".join(forward) + "\n", "parameters": params, "shapes": shapes,
                               "loss": "L", "batch": m}
    if loss == "cross_entropy":
        network["domains"] = {"Y": "one_hot"}
    return {"network": network, "backward": "\n".join(lines) + "\n"}


def stack_spec(file: str, name: str, net: dict[str, Any], data: dict[str, Any], limits: Limits) -> ProgramSpec:
    """A tensor layer stack as a spec written as NumPy code (its rules: the backward block)."""
    translated = translate(file, net, limits)
    _check_keys(file, "", data, ("name", "description", "network", "claims", "notation", "expect"))
    merged = {**{k: v for k, v in data.items() if k != "network"}, **translated}
    return program_spec(file, name, merged, limits)
