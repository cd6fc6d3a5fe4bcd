"""An independent oracle for the tensor layers: forward passes written by hand in plain
NumPy (float64), the standard backward formulas and their classic mistakes written again
here, and gradients by central differences.

Nothing here imports derive: derive is only the system under test.  Each layer is a
``Layer``: its leaves (name → shape), a forward function ``env → out`` (for the upstream
loss L = Σ out ⊙ dout), the right backward (``env → {name: gradient}``) and the mutated
ones (the mistakes the worked derivations ship).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

H = 1e-6

Env = dict[str, np.ndarray]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# ------------------------------------------------------------------ forward passes

def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    n, c, hgt, wid = x.shape
    f, _, hh, ww = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    ho, wo = 1 + (hgt + 2 * pad - hh) // stride, 1 + (wid + 2 * pad - ww) // stride
    out = np.zeros((n, f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]  # (n, c, hh, ww)
            out[:, :, i, j] = np.einsum("nchw,fchw->nf", patch, w) + b
    return out


def pool_forward(x: np.ndarray, k: int, kind: str) -> np.ndarray:
    n, c, hgt, wid = x.shape
    blocks = x.reshape(n, c, hgt // k, k, wid // k, k)
    return blocks.max(axis=(3, 5)) if kind == "max" else blocks.mean(axis=(3, 5))


def layernorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    xhat = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + eps)
    return gamma * xhat + beta


def rnn_forward(x: np.ndarray, h0: np.ndarray, wx: np.ndarray, wh: np.ndarray, b: np.ndarray) -> np.ndarray:
    hs = []
    h = h0
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ wx + h @ wh + b)
        hs.append(h)
    return np.stack(hs, axis=1)


def gru_gates(e: Env) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, h = e["x"], e["prev_h"]
    z = sigmoid(x @ e["Wz"] + h @ e["Uz"] + e["bz"])
    r = sigmoid(x @ e["Wr"] + h @ e["Ur"] + e["br"])
    hh = np.tanh(x @ e["Wh"] + (r * h) @ e["Uh"] + e["bh"])
    return z, r, hh


def attention_probs(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    t, d = q.shape
    s = q @ k.T / np.sqrt(d)
    s = np.where(np.tril(np.ones((t, t))) > 0, s, -np.inf)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def lstm_forward(e: Env) -> np.ndarray:
    x, h, wx, wh, b = e["x"], e["h0"], e["Wx"], e["Wh"], e["b"]
    hn = h.shape[1]
    c = np.zeros_like(h)
    hs = []
    for t in range(x.shape[1]):
        a = x[:, t] @ wx + h @ wh + b
        i, f, o, g = sigmoid(a[:, :hn]), sigmoid(a[:, hn:2 * hn]), sigmoid(a[:, 2 * hn:3 * hn]), np.tanh(a[:, 3 * hn:])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, axis=1)


def multihead_forward(e: Env, heads: int = 2) -> np.ndarray:
    x = e["X"]
    q, k, v = x @ e["Wq"], x @ e["Wk"], x @ e["Wv"]
    d = x.shape[1] // heads
    outs = [attention_probs(q[:, j * d:(j + 1) * d], k[:, j * d:(j + 1) * d]) @ v[:, j * d:(j + 1) * d]
            for j in range(heads)]
    return np.concatenate(outs, axis=1) @ e["Wo"]


# ------------------------------------------------------------------ backward formulas

def conv_backward(e: Env, flip: bool = True) -> dict[str, np.ndarray]:
    x, w, dout = e["x"], e["w"], e["dout"]
    pad = 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dw += np.einsum("nf,nchw->fchw", dout[:, :, i, j], xp[:, :, i:i + w.shape[2], j:j + w.shape[3]])
    # dx: the full convolution of dout with the kernel rotated by 180° (or not, the mistake)
    kernel = w[:, :, ::-1, ::-1] if flip else w
    kh = w.shape[2]
    dp = np.pad(dout, ((0, 0), (0, 0), (kh - 1 - pad, kh - 1 - pad), (kh - 1 - pad, kh - 1 - pad)))
    dx = np.zeros_like(x)
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            dx[:, :, i, j] = np.einsum("nfhw,fchw->nc", dp[:, :, i:i + kh, j:j + kh], kernel)
    return {"x": dx, "w": dw, "b": dout.sum(axis=(0, 2, 3))}


def pool_backward(e: Env, kind: str, mistake: str = "") -> dict[str, np.ndarray]:
    x, dout = e["x"], e["dout"]
    up = np.repeat(np.repeat(dout, 2, axis=2), 2, axis=3)
    if kind == "avg":
        return {"x": up if mistake else up / 4}
    if mistake == "every entry":
        return {"x": up}
    out = np.repeat(np.repeat(pool_forward(x, 2, "max"), 2, axis=2), 2, axis=3)
    return {"x": up * (x == out)}


def layernorm_backward(e: Env, axis: int = 1) -> dict[str, np.ndarray]:
    x, gamma, eps, dout = e["x"], e["gamma"], e["eps"], e["dout"]
    std = np.sqrt(x.var(axis=1, keepdims=True) + eps)
    xhat = (x - x.mean(axis=1, keepdims=True)) / std
    dxhat = dout * gamma
    m = x.shape[axis]
    dx = (m * dxhat - dxhat.sum(axis=axis, keepdims=True)
          - xhat * (dxhat * xhat).sum(axis=axis, keepdims=True)) / (m * std)
    return {"x": dx, "gamma": (dout * xhat).sum(axis=0), "beta": dout.sum(axis=0)}


def embedding_backward(e: Env, overwrite: bool = False) -> dict[str, np.ndarray]:
    dw = np.zeros_like(e["W"])
    idx = e["idx"].astype(int)
    if overwrite:
        dw[idx] = e["dout"]
    else:
        np.add.at(dw, idx, e["dout"])
    return {"W": dw}


def rnn_backward(e: Env, carry: bool = True) -> dict[str, np.ndarray]:
    x, h0, wx, wh = e["x"], e["h0"], e["Wx"], e["Wh"]
    h = rnn_forward(x, h0, wx, wh, e["b"])
    prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    dx, dwx, dwh, db = np.zeros_like(x), np.zeros_like(wx), np.zeros_like(wh), np.zeros_like(e["b"])
    nxt = np.zeros_like(h0)
    for t in range(x.shape[1] - 1, -1, -1):
        da = (e["dh"][:, t] + (nxt if carry else 0)) * (1 - h[:, t] ** 2)
        dx[:, t] = da @ wx.T
        dwx += x[:, t].T @ da
        dwh += prev[:, t].T @ da
        db += da.sum(axis=0)
        nxt = da @ wh.T
    return {"x": dx, "Wx": dwx, "Wh": dwh, "b": db, "h0": nxt}


def gru_backward(e: Env, sign: float = 1.0) -> dict[str, np.ndarray]:
    x, h, g = e["x"], e["prev_h"], e["dnext_h"]
    z, r, hh = gru_gates(e)
    dz = sign * g * (hh - h)
    dah = g * z * (1 - hh ** 2)
    drh = dah @ e["Uh"].T
    daz = dz * z * (1 - z)
    dar = drh * h * r * (1 - r)
    return {
        "Wh": x.T @ dah, "Uh": (r * h).T @ dah, "bh": dah.sum(axis=0),
        "Wz": x.T @ daz, "Uz": h.T @ daz, "bz": daz.sum(axis=0),
        "Wr": x.T @ dar, "Ur": h.T @ dar, "br": dar.sum(axis=0),
        "x": dah @ e["Wh"].T + daz @ e["Wz"].T + dar @ e["Wr"].T,
        "prev_h": g * (1 - z) + drh * r + daz @ e["Uz"].T + dar @ e["Ur"].T,
    }


def attention_backward(e: Env, mistake: str = "") -> dict[str, np.ndarray]:
    q, k, v, dout = e["Q"], e["K"], e["V"], e["dout"]
    a = attention_probs(q, k)
    scale = 1.0 if mistake == "no scale" else 1 / np.sqrt(q.shape[1])
    da = dout @ v.T
    ds = a * (da - (da * a).sum(axis=1, keepdims=True))
    dk = ds.T @ (k if mistake == "swap" else q) * scale
    return {"V": a.T @ dout, "Q": ds @ k * scale, "K": dk}


def multihead_backward(e: Env, heads: int = 2, mistake: str = "") -> dict[str, np.ndarray]:
    """The gradients of Σ (multihead_forward(e) ⊙ dout) by the standard formulas, per head
    (causal softmax): dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = dS K/√d, dK = dSᵀ Q/√d, dV = Pᵀ dY.
    Mistakes: "swap" (dK = dSᵀ K/√d), "no rowsum" (dS = P ⊙ dP), "no scale" (dQ without 1/√d)."""
    x, wq, wk, wv, wo, dout = e["X"], e["Wq"], e["Wk"], e["Wv"], e["Wo"], e["dout"]
    q, k, v = x @ wq, x @ wk, x @ wv
    d = x.shape[1] // heads
    ys, dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v), np.zeros_like(v)
    dy = dout @ wo.T
    for j in range(heads):
        c = slice(j * d, (j + 1) * d)
        p = attention_probs(q[:, c], k[:, c])
        ys[:, c] = p @ v[:, c]
        dv[:, c] = p.T @ dy[:, c]
        dp = dy[:, c] @ v[:, c].T
        ds = p * dp if mistake == "no rowsum" else p * (dp - (dp * p).sum(axis=1, keepdims=True))
        dq[:, c] = ds @ k[:, c] / (1.0 if mistake == "no scale" else np.sqrt(d))
        dk[:, c] = ds.T @ (k[:, c] if mistake == "swap" else q[:, c]) / np.sqrt(d)
    return {"Wq": x.T @ dq, "Wk": x.T @ dk, "Wv": x.T @ dv, "Wo": ys.T @ dout,
            "X": dq @ wq.T + dk @ wk.T + dv @ wv.T}


def residual_backward(e: Env, skip: bool = True) -> dict[str, np.ndarray]:
    x, w1, w2, dout = e["x"], e["W1"], e["W2"], e["dout"]
    a = x @ w1 + e["b1"]
    da = (dout @ w2.T) * (a > 0)
    return {"W2": np.maximum(a, 0).T @ dout, "b2": dout.sum(axis=0), "W1": x.T @ da, "b1": da.sum(axis=0),
            "x": da @ w1.T + (dout if skip else 0)}


# ------------------------------------------------------------------ the layers

@dataclass
class Layer:
    file: str  # the worked derivation in derivations/
    leaves: dict[str, tuple[int, ...]]
    forward: Callable[[Env], np.ndarray]
    upstream: str
    right: Callable[[Env], dict[str, np.ndarray]] | None  # None: checked by finite differences only
    mutated: dict[str, tuple[str, Callable[[Env], dict[str, np.ndarray]]]]  # mistake → (gradient, backward)
    positive: tuple[str, ...] = ()
    integers: dict[str, int] = field(default_factory=dict)  # labels: name → classes


LAYERS: dict[str, Layer] = {
    "conv2d": Layer(
        "conv2d_naive.yaml", {"x": (2, 2, 3, 3), "w": (2, 2, 3, 3), "b": (2,), "dout": (2, 2, 3, 3)},
        lambda e: conv_forward(e["x"], e["w"], e["b"], 1, 1), "dout", conv_backward,
        {"no flip": ("x", lambda e: conv_backward(e, flip=False))}),
    "maxpool": Layer(
        "maxpool_naive.yaml", {"x": (2, 1, 4, 4), "dout": (2, 1, 2, 2)},
        lambda e: pool_forward(e["x"], 2, "max"), "dout", lambda e: pool_backward(e, "max"),
        {"every entry": ("x", lambda e: pool_backward(e, "max", "every entry"))}),
    "avgpool": Layer(
        "avgpool.yaml", {"x": (2, 2, 4, 4), "dout": (2, 2, 2, 2)},
        lambda e: pool_forward(e["x"], 2, "avg"), "dout", lambda e: pool_backward(e, "avg"),
        {"no 1/k²": ("x", lambda e: pool_backward(e, "avg", "no scale"))}),
    "layernorm": Layer(
        "layernorm.yaml", {"x": (2, 3), "gamma": (3,), "beta": (3,), "eps": (), "dout": (2, 3)},
        lambda e: layernorm_forward(e["x"], e["gamma"], e["beta"], e["eps"]), "dout", layernorm_backward,
        {"batch axis": ("x", lambda e: layernorm_backward(e, axis=0))}, positive=("eps",)),
    "embedding": Layer(
        "embedding.yaml", {"W": (3, 2), "idx": (3,), "dout": (3, 2)},
        lambda e: e["W"][e["idx"].astype(int)], "dout", embedding_backward,
        {"overwrite": ("W", lambda e: embedding_backward(e, overwrite=True))}, integers={"idx": 3}),
    "rnn": Layer(
        "rnn_bptt.yaml", {"x": (2, 3, 2), "h0": (2, 2), "Wx": (2, 2), "Wh": (2, 2), "b": (2,), "dh": (2, 3, 2)},
        lambda e: rnn_forward(e["x"], e["h0"], e["Wx"], e["Wh"], e["b"]), "dh", rnn_backward,
        {"no carry": ("Wh", lambda e: rnn_backward(e, carry=False))}),
    "gru": Layer(
        "gru_step.yaml", {"x": (1, 2), "prev_h": (1, 2), **{w: (2, 2) for w in ("Wz", "Uz", "Wr", "Ur", "Wh", "Uh")},
                          "bz": (2,), "br": (2,), "bh": (2,), "dnext_h": (1, 2)},
        lambda e: (lambda z, r, hh: (1 - z) * e["prev_h"] + z * hh)(*gru_gates(e)), "dnext_h", gru_backward,
        {"dz sign": ("Wz", lambda e: gru_backward(e, sign=-1.0))}),
    "attention": Layer(
        "attention.yaml", {"Q": (3, 2), "K": (3, 2), "V": (3, 2), "dout": (3, 2)},
        lambda e: attention_probs(e["Q"], e["K"]) @ e["V"], "dout", attention_backward,
        {"swap": ("K", lambda e: attention_backward(e, "swap")),
         "no scale": ("Q", lambda e: attention_backward(e, "no scale"))}),
    "residual": Layer(
        "residual_block.yaml", {"x": (2, 2), "W1": (2, 3), "b1": (3,), "W2": (3, 2), "b2": (2,), "dout": (2, 2)},
        lambda e: np.maximum(e["x"] @ e["W1"] + e["b1"], 0) @ e["W2"] + e["b2"] + e["x"], "dout", residual_backward,
        {"no skip": ("x", lambda e: residual_backward(e, skip=False))}),
    "lstm": Layer(
        "lstm_bptt.yaml", {"x": (1, 2, 1), "h0": (1, 1), "Wx": (1, 4), "Wh": (1, 4), "b": (4,), "dh": (1, 2, 1)},
        lstm_forward, "dh", None, {}),
    "attention_heads": Layer(
        "attention_heads.yaml", {"X": (2, 2), **{w: (2, 2) for w in ("Wq", "Wk", "Wv", "Wo")}, "dout": (2, 2)},
        multihead_forward, "dout", None, {}),
}


def point(layer: Layer, seed: int) -> Env:
    """A random float point (labels: integers with a repeated one)."""
    rng = np.random.default_rng(seed)
    env: Env = {}
    for name, shape in layer.leaves.items():
        if name in layer.integers:
            v = rng.integers(0, layer.integers[name], size=shape)
            v[-1] = v[0]  # a repeated index: scatter-add and overwrite differ
            env[name] = v.astype(float)
        elif name in layer.positive:
            env[name] = np.asarray(rng.uniform(0.1, 2.0, size=shape))
        else:
            env[name] = rng.normal(size=shape)
    return env


def loss(layer: Layer, env: Env) -> float:
    return float(np.sum(layer.forward(env) * env[layer.upstream]))


def numeric_gradient(layer: Layer, env: Env, name: str, h: float = H) -> np.ndarray:
    """∂L/∂name by central differences."""
    base = env[name]
    g = np.zeros_like(base, dtype=float)
    for idx in np.ndindex(*base.shape):
        plus, minus = dict(env), dict(env)
        plus[name] = base.astype(float).copy()
        minus[name] = base.astype(float).copy()
        plus[name][idx] += h
        minus[name][idx] -= h
        g[idx] = (loss(layer, plus) - loss(layer, minus)) / (2 * h)
    return g


# ------------------------------------------------------------------ layer stacks (network.layers)
# The same stacks as derive's `network.layers`, computed again here in plain floats, layer
# by layer, from the documented conventions only (names W<tag>, gamma<tag>, mask<tag>, ...;
# examples as rows; the defaults eps = 1e-5, keep_prob = 0.5, stride = kernel, output: last).

STACK_DEFAULTS = {"eps": 1e-5, "keep_prob": 0.5, "pad": 0, "heads": 1, "causal": False, "output": "last"}


def _act(z: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z


def _norm(a: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    return (a - a.mean(axis=axes, keepdims=True)) / np.sqrt(a.var(axis=axes, keepdims=True) + eps)


def _recurrent(kind: str, a: np.ndarray, e: Env, tag: str, hidden: int) -> np.ndarray:
    m, steps, _ = a.shape
    h, c = np.zeros((m, hidden)), np.zeros((m, hidden))
    states = []
    for t in range(steps):
        x = a[:, t]
        if kind == "rnn":
            h = np.tanh(x @ e[f"Wx{tag}"] + h @ e[f"Wh{tag}"] + e[f"b{tag}"])
        elif kind == "lstm":
            g = x @ e[f"Wx{tag}"] + h @ e[f"Wh{tag}"] + e[f"b{tag}"]
            i, f, o = (sigmoid(g[:, k * hidden:(k + 1) * hidden]) for k in range(3))
            c = f * c + i * np.tanh(g[:, 3 * hidden:])
            h = o * np.tanh(c)
        else:  # gru, PyTorch's GRUCell with h = (1 − z) h + z h̃
            z = sigmoid(x @ e[f"Wz{tag}"] + h @ e[f"Uz{tag}"] + e[f"bz{tag}"])
            r = sigmoid(x @ e[f"Wr{tag}"] + h @ e[f"Ur{tag}"] + e[f"br{tag}"])
            cand = np.tanh(x @ e[f"Wh{tag}"] + (r * h) @ e[f"Uh{tag}"] + e[f"bh{tag}"])
            h = (1 - z) * h + z * cand
        states.append(h)
    return np.stack(states, axis=1)


def _attention(a: np.ndarray, e: Env, tag: str, heads: int, causal: bool, taps: Taps | None = None) -> np.ndarray:
    m, steps, dim = a.shape
    q, k, v = a @ e[f"Wq{tag}"], a @ e[f"Wk{tag}"], a @ e[f"Wv{tag}"]
    if taps is not None:
        q, k, v = taps(f"Q{tag}", q), taps(f"K{tag}", k), taps(f"V{tag}", v)
    hd = dim // heads
    out = np.zeros_like(a)
    for n in range(m):
        for j in range(heads):
            cols = slice(j * hd, (j + 1) * hd)
            s = q[n, :, cols] @ k[n, :, cols].T / np.sqrt(hd)
            if causal:
                s = np.where(np.tril(np.ones((steps, steps))) > 0, s, -np.inf)
            p = np.exp(s - s.max(axis=1, keepdims=True))
            out[n, :, cols] = (p / p.sum(axis=1, keepdims=True)) @ v[n, :, cols]
    if taps is not None:
        out = taps(f"Y{tag}", out)
    return out @ e[f"Wo{tag}"]


def pool_strided(x: np.ndarray, k: int, s: int, kind: str) -> np.ndarray:
    """k×k windows every s positions (the rows and columns no window reaches are left out)."""
    n, c, hgt, wid = x.shape
    ho, wo = (hgt - k) // s + 1, (wid - k) // s + 1
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = x[:, :, i * s:i * s + k, j * s:j * s + k]
            out[:, :, i, j] = win.max(axis=(2, 3)) if kind == "max" else win.mean(axis=(2, 3))
    return out


class Taps:
    """Named values of a stack's forward pass, by the documented names: A<tag> of every
    layer, Z<tag> of dense and conv2d layers, xhat<tag> of a norm layer, H<tag> (the states)
    of a recurrent one, Q<tag>, K<tag>, V<tag> and Y<tag> (the heads' output before Wo) of
    attention, S<tag> (the input of a residual block's inner layers, not of its skip); recorded, and replaced by ``over`` (for ∂L/∂V of such a V)."""

    def __init__(self, over: Env | None = None) -> None:
        self.over = over or {}
        self.rec: Env = {}

    def __call__(self, name: str, value: np.ndarray) -> np.ndarray:
        value = self.over.get(name, value)
        self.rec[name] = value
        return value


def stack_layer(layer: dict, tag: str, a: np.ndarray, e: Env, taps: Taps | None = None) -> np.ndarray:
    """One layer of a stack on the batch a (m × one example's shape)."""
    tap = taps if taps is not None else (lambda _name, value: value)
    cfg = {**STACK_DEFAULTS, **layer}
    kind = cfg.get("type", "dense")
    if kind == "dense":
        return _act(tap(f"Z{tag}", a @ e[f"W{tag}"] + e[f"b{tag}"]), cfg.get("activation", "identity"))
    if kind == "conv2d":
        z = tap(f"Z{tag}", conv_forward(a, e[f"W{tag}"], e[f"b{tag}"], cfg.get("stride", 1), cfg["pad"]))
        return _act(z, cfg.get("activation", "identity"))
    if kind in ("maxpool", "avgpool"):
        return pool_strided(a, cfg["kernel"], cfg.get("stride", cfg["kernel"]), kind[:3])
    if kind == "flatten":
        return a.reshape(a.shape[0], -1)
    if kind == "batchnorm":
        if a.ndim == 4:
            g, b = e[f"gamma{tag}"][None, :, None, None], e[f"beta{tag}"][None, :, None, None]
            return g * tap(f"xhat{tag}", _norm(a, (0, 2, 3), cfg["eps"])) + b
        xhat = tap(f"xhat{tag}", _norm(a, tuple(range(a.ndim - 1)), cfg["eps"]))
        return e[f"gamma{tag}"] * xhat + e[f"beta{tag}"]
    if kind == "layernorm":
        axes = (2,) if a.ndim == 3 else tuple(range(1, a.ndim))
        return e[f"gamma{tag}"] * tap(f"xhat{tag}", _norm(a, axes, cfg["eps"])) + e[f"beta{tag}"]
    if kind == "dropout":
        return a * e[f"mask{tag}"] / cfg["keep_prob"]
    if kind == "embedding":
        steps = a.shape[0] // e["Y"].shape[0]
        return e[f"W{tag}"][a.astype(int)].reshape(-1, steps, cfg["dim"])
    if kind in ("rnn", "lstm", "gru"):
        states = tap(f"H{tag}", _recurrent(kind, a, e, tag, cfg["hidden"]))
        return states if cfg["output"] == "all" else states[:, -1]
    if kind == "attention":
        return _attention(a, e, tag, cfg["heads"], cfg["causal"], taps)
    if kind == "residual":
        out = tap(f"S{tag}", a)  # the block's input as its inner layers see it (not the skip)
        for k, inner in enumerate(cfg["layers"]):
            inner_tag = f"{tag}_{k + 1}"
            out = tap(f"A{inner_tag}", stack_layer(inner, inner_tag, out, e, taps))
        return a + out
    raise ValueError(kind)


def stack_output(layers: list[dict], e: Env, start: int = 0, value: np.ndarray | None = None,
                 taps: Taps | None = None) -> np.ndarray:
    """The stack's output; with ``value``, A_start is replaced by it (for ∂L/∂A_start)."""
    a = e["X"] if value is None else value
    for i in range(start, len(layers)):
        a = stack_layer(layers[i], str(i + 1), a, e, taps)
        if taps is not None:
            a = taps(f"A{i + 1}", a)
    return a


def stack_loss(net: dict, e: Env, start: int = 0, value: np.ndarray | None = None, taps: Taps | None = None) -> float:
    a = stack_output(net["layers"], e, start, value, taps)
    y, m = e["Y"], e["Y"].shape[0]
    if net["loss"] == "cross_entropy":
        return float(-np.sum(y * np.log(a)) / m)
    return float(np.sum((a - y) ** 2) / (2 * m))


def stack_values(net: dict, e: Env) -> Env:
    """The named values of the forward pass at e (A<tag>, Z<tag>; see :class:`Taps`)."""
    taps = Taps()
    stack_loss(net, e, taps=taps)
    return taps.rec


def stack_gradient(net: dict, e: Env, name: str, h: float = H) -> np.ndarray:
    """∂L/∂name by central differences: a leaf (W1, gamma2, ...), a top-level A<l>, or any
    value :class:`Taps` names (A2_1 inside a residual block, Z3, ...)."""
    if name in e:
        base = e[name]
    else:
        base = stack_values(net, e)[name]
    g = np.zeros(base.shape)
    for idx in np.ndindex(*base.shape):
        plus, minus = base.astype(float).copy(), base.astype(float).copy()
        plus[idx] += h
        minus[idx] -= h
        if name in e:
            lp, lm = stack_loss(net, {**e, name: plus}), stack_loss(net, {**e, name: minus})
        else:
            lp, lm = stack_loss(net, e, taps=Taps({name: plus})), stack_loss(net, e, taps=Taps({name: minus}))
        g[idx] = (lp - lm) / (2 * h)
    return g


def domain_point(shapes: dict[str, Any], domains: dict[str, str], vocab: int,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random float point inside the declared input domains: labels in [0, vocab) with an
    index repeated (the scatter-add case), a binary mask with both a 0 and a 1, one-hot rows,
    normal reals elsewhere."""
    env: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        kind = domains.get(name, "real")
        if kind == "labels":
            v = rng.integers(0, vocab, size=shape)
            v[-1] = v[0]  # a repeated index
            env[name] = v.astype(float)
        elif kind == "binary":
            v = rng.integers(0, 2, size=shape)
            v.reshape(-1)[:2] = (0, 1)[:v.size]
            env[name] = v.astype(float)
        elif kind == "one_hot":
            env[name] = np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])]
        else:
            env[name] = rng.normal(size=shape)
    return env
