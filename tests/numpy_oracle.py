"""A second independent oracle: networks written by hand in NumPy (float64), gradients of
*any* named value by central differences, and an evaluator for formula text in NumPy's
own semantics.

Nothing here imports derive: derive is only the system under test.  A network is a list
of equations ``(name, function of the env dict)`` in order; ``∂L/∂V`` for a leaf or an
intermediate ``V`` perturbs ``env[V][i, j]`` by ±h and recomputes only the equations that
come after ``V`` (so ``V`` is treated as a node of the graph, as derive's ``dV`` is).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

H = 1e-6  # central-difference step: error ~ h² f''' + ulp(L)/h ≈ 1e-10 here

Env = dict[str, np.ndarray]
Equation = tuple[str, Callable[[Env], np.ndarray]]


# ------------------------------------------------------------------ activations

def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def relu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, 0.0)


def leaky_relu(z: np.ndarray, slope: float = 0.1) -> np.ndarray:
    return np.where(z > 0, z, slope * z)


ACT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": relu, "leaky_relu": leaky_relu, "sigmoid": sigmoid, "tanh": np.tanh,
    "identity": lambda z: z,
}


def softmax(s: np.ndarray, axis: int = 0) -> np.ndarray:
    e = np.exp(s - np.max(s, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# ------------------------------------------------------------------ networks

@dataclass
class Network:
    """Leaves with their shapes, equations in order, the loss's name.

    ``positive``: leaves sampled in (0.1, 2) (constants such as eps, d); ``kinks``: values
    whose entries must stay away from 0 at a random point (arguments of relu)."""

    leaves: dict[str, tuple[int, int]]
    equations: list[Equation]
    loss: str = "L"
    positive: tuple[str, ...] = ()
    kinks: tuple[str, ...] = ()
    scalars: dict[str, float] = field(default_factory=dict)  # m and other plain numbers

    def forward(self, leaves: Mapping[str, np.ndarray], start: int = 0, env: Env | None = None) -> Env:
        env = dict(leaves) if env is None else env
        with np.errstate(all="ignore"):
            for name, f in self.equations[start:]:
                env[name] = np.asarray(f(env), dtype=float)
        return env

    def names(self) -> list[str]:
        return [*self.leaves, *(n for n, _ in self.equations)]

    def _after(self, name: str) -> int:
        for k, (n, _) in enumerate(self.equations):
            if n == name:
                return k + 1
        if name in self.leaves:
            return 0
        raise KeyError(name)

    def gradient(self, env: Env, name: str, h: float = H) -> np.ndarray:
        """∂L/∂name at env, by central differences (float64, h = 1e-6)."""
        start = self._after(name)
        base = env[name]
        out = np.zeros(base.shape)
        for idx in np.ndindex(*base.shape):
            vals = []
            for sign in (1, -1):
                e = dict(env)
                v = base.copy()
                v[idx] += sign * h
                e[name] = v
                vals.append(float(np.sum(self.forward(e, start, e)[self.loss])))
            out[idx] = (vals[0] - vals[1]) / (2 * h)
        return out

    def gradients(self, env: Env, h: float = H) -> dict[str, np.ndarray]:
        """'d' + name for every leaf and intermediate (the loss excluded)."""
        return {"d" + n: self.gradient(env, n, h) for n in self.names() if n != self.loss}

    def coarse_if_well_conditioned(self, env: Env, grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """The gradients again at 10h, if central differences at h and 10h agree to 1e-7
        (relative): not so near a saturated sigmoid under a log loss, or a kink, that the
        oracle itself is unsure.  Formulas evaluated on both sets show their own sensitivity."""
        coarse = self.gradients(env, 10 * H)
        ok = all(np.allclose(grads[k], coarse[k], rtol=1e-7, atol=1e-9) for k in grads)
        return coarse if ok else None

    def random_leaves(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = {}
        for name, shape in self.leaves.items():
            mag = rng.uniform(0.1, 2.0, size=shape)
            out[name] = mag if name in self.positive else mag * rng.choice([-1.0, 1.0], size=shape)
        return out

    def near_kink(self, env: Env, margin: float = 1e-3) -> bool:
        return any(np.any(np.abs(env[k]) < margin) for k in self.kinks)

    def random_point(self, rng: np.random.Generator, margin: float = 1e-3
                     ) -> tuple[Env, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """A forward pass at random leaves (uniform in ±(0.1..2)) away from every kink, where
        the central differences are well conditioned; every gradient there at h and at 10h."""
        for _ in range(1000):
            env = self.forward(self.random_leaves(rng))
            if self.near_kink(env, margin) or not np.isfinite(env[self.loss]).all():
                continue
            grads = self.gradients(env)
            coarse = self.coarse_if_well_conditioned(env, grads)
            if coarse is not None:
                return env, grads, coarse
        raise RuntimeError("no well-conditioned random point away from the kinks")

    def leaves_from_text(self, values: Mapping[str, str]) -> dict[str, np.ndarray]:
        """Leaf arrays from a counterexample's values: 'W1[0,1]': '3/4', 'b1[2]': '-1', 'eps': '4/3'."""
        out = {n: np.full(s, np.nan) for n, s in self.leaves.items()}
        for key, text in values.items():
            m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)(?:,\s*(\d+))?\])?", key.strip())
            if m is None or m.group(1) not in out:
                raise KeyError(f"unknown leaf in a counterexample: {key!r}")
            i = int(m.group(2) or 0)
            j = int(m.group(3) or 0)
            out[m.group(1)][i, j] = float(Fraction(text))
        missing = [n for n, v in out.items() if np.isnan(v).any()]
        if missing:
            raise KeyError(f"the counterexample gives no value to {missing}")
        return out


def layer_stack(inputs: int, layers: list[tuple[int, str]], loss: str, batch: int,
                slope: float = 0.1) -> Network:
    """Z_l = W_l A_{l-1} + b_l, A_l = g_l(Z_l) (columns are examples); loss averaged over m:
    mse: Σ ½(A − Y)²/m; binary_cross_entropy: −Σ (Y log A + (1 − Y) log(1 − A))/m."""
    leaves: dict[str, tuple[int, int]] = {"X": (inputs, batch)}
    eqs: list[Equation] = []
    kinks = []
    prev, n_prev = "X", inputs
    for l, (n, act) in enumerate(layers, start=1):
        leaves[f"W{l}"] = (n, n_prev)
        leaves[f"b{l}"] = (n, 1)
        eqs.append((f"Z{l}", lambda e, l=l, prev=prev: e[f"W{l}"] @ e[prev] + e[f"b{l}"]))
        g = (lambda z: leaky_relu(z, slope)) if act == "leaky_relu" else ACT[act]
        eqs.append((f"A{l}", lambda e, l=l, g=g: g(e[f"Z{l}"])))
        if act in ("relu", "leaky_relu"):
            kinks.append(f"Z{l}")
        prev, n_prev = f"A{l}", n
    leaves["Y"] = (layers[-1][0], batch)
    last = f"A{len(layers)}"
    if loss == "mse":
        eqs.append(("L", lambda e: np.sum(0.5 * (e[last] - e["Y"]) ** 2) / batch))
    elif loss == "binary_cross_entropy":
        eqs.append(("L", lambda e: -np.sum(e["Y"] * np.log(e[last]) + (1 - e["Y"]) * np.log(1 - e[last])) / batch))
    else:
        raise ValueError(loss)
    return Network(leaves, eqs, "L", kinks=tuple(kinks), scalars={"m": float(batch)})


# ------------------------------------------------------------------ formula text

class _Arr(np.ndarray):
    """float64 arrays whose comparisons give 0/1 floats (derive's masks), not booleans."""

    def _cmp(self, other: object, op: Callable[[object, object], np.ndarray]) -> _Arr:
        return np.asarray(op(np.asarray(self), np.asarray(other)), dtype=float).view(_Arr)

    def __gt__(self, o: object) -> _Arr:  # type: ignore[override]
        return self._cmp(o, np.greater)

    def __ge__(self, o: object) -> _Arr:  # type: ignore[override]
        return self._cmp(o, np.greater_equal)

    def __lt__(self, o: object) -> _Arr:  # type: ignore[override]
        return self._cmp(o, np.less)

    def __le__(self, o: object) -> _Arr:  # type: ignore[override]
        return self._cmp(o, np.less_equal)


def _keep(f: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def g(x: np.ndarray, axis: int | None = None) -> np.ndarray:
        return f(x, axis=axis, keepdims=True) if axis is not None else f(x)
    return g


def _log(x: np.ndarray) -> np.ndarray:
    # log is defined for x > 0: NumPy's log(0) = -inf would be swallowed by a later exp
    # (exp(log(0)) = 0), hiding an undefined value, so 0 and negatives give nan here
    x = np.asarray(x, dtype=float)
    return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)


def _sigmoid_prime(z: np.ndarray) -> np.ndarray:
    s = sigmoid(z)
    return s * (1 - s)


FUNCTIONS: dict[str, object] = {
    "np": np, "numpy": np,
    "sum": _keep(np.sum), "mean": _keep(np.mean),
    "exp": np.exp, "log": _log, "sqrt": np.sqrt,
    "sigmoid": sigmoid, "tanh": np.tanh, "relu": relu, "leaky_relu": leaky_relu,
    "relu_prime": lambda z: (np.asarray(z) > 0) * 1.0,
    "leaky_relu_prime": lambda z, slope=0.1: np.where(np.asarray(z) > 0, 1.0, slope),
    "sigmoid_prime": _sigmoid_prime,
    "tanh_prime": lambda z: 1 - np.tanh(z) ** 2,
    "softmax": softmax,
}


def evaluate(text: str, values: Mapping[str, object]) -> np.ndarray:
    """The value of formula text in NumPy semantics (division by 0 gives inf/nan).

    ``eval`` here runs only on formulas generated by the tests themselves (never on a
    user's spec), with no builtins and a namespace of arrays and the functions above.
    """
    ns: dict[str, object] = dict(FUNCTIONS)
    for k, v in values.items():
        ns[k] = np.array(v, dtype=float).view(_Arr) if isinstance(v, np.ndarray) else v
    with np.errstate(all="ignore"):
        out = eval(text, {"__builtins__": {}}, ns)
    out = np.asarray(out)
    if np.iscomplexobj(out):  # a Python float to a fractional power: not a real number
        out = np.where(out.imag == 0, out.real, np.nan)
    out = np.asarray(out, dtype=float)
    return out.reshape(1, 1) if out.ndim == 0 else out


def values_at(net: Network, env: Env, grads: Mapping[str, np.ndarray] | None = None) -> dict[str, object]:
    """Everything a formula may name at a point: leaves, intermediates, their gradients, m."""
    grads = net.gradients(env) if grads is None else grads
    return {**net.scalars, **env, **grads}


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(a, b, rtol=1e-5, atol=1e-7))


def isfinite(a: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(a)))


__all__ = [
    "Network",
    "close",
    "evaluate",
    "isfinite",
    "layer_stack",
    "leaky_relu",
    "relu",
    "sigmoid",
    "softmax",
    "values_at",
]


# ------------------------------------------------------------------ networks with fractional powers

def _mean(x: np.ndarray, axis: int) -> np.ndarray:
    return np.mean(x, axis=axis, keepdims=True)


def batch_norm(features: int = 2, m: int = 3) -> Network:
    """mu = mean(X, 1); D = X - mu; v = mean(D², 1); Y = D (v + eps)^-½; Z = g Y + b; L = Σ(Z - T)²/2."""
    return Network(
        {"X": (features, m), "T": (features, m), "g": (features, 1), "b": (features, 1), "eps": (1, 1)},
        [("mu", lambda e: _mean(e["X"], 1)),
         ("D", lambda e: e["X"] - e["mu"]),
         ("v", lambda e: _mean(e["D"] ** 2, 1)),
         ("Y", lambda e: e["D"] * (e["v"] + e["eps"]) ** -0.5),
         ("Z", lambda e: e["g"] * e["Y"] + e["b"]),
         ("L", lambda e: np.sum((e["Z"] - e["T"]) ** 2) / 2)],
        positive=("eps",), scalars={"m": float(m)})


def layer_norm(features: int = 3, m: int = 2) -> Network:
    """Normalised over the features (axis 0): N = (X - mean(X, 0)) / sqrt(var + eps)."""
    return Network(
        {"X": (features, m), "T": (features, m), "g": (features, 1), "b": (features, 1), "eps": (1, 1)},
        [("mu", lambda e: _mean(e["X"], 0)),
         ("D", lambda e: e["X"] - e["mu"]),
         ("v", lambda e: _mean(e["D"] ** 2, 0)),
         ("N", lambda e: e["D"] / np.sqrt(e["v"] + e["eps"])),
         ("Z", lambda e: e["g"] * e["N"] + e["b"]),
         ("L", lambda e: np.sum((e["Z"] - e["T"]) ** 2) / 2)],
        positive=("eps",), scalars={"m": float(m)})


def rms_norm(features: int = 3, m: int = 2) -> Network:
    """s = mean(X², 0); Y = X / sqrt(s + eps); Z = g Y; L = Σ(Z - T)²/2."""
    return Network(
        {"X": (features, m), "T": (features, m), "g": (features, 1), "eps": (1, 1)},
        [("s", lambda e: _mean(e["X"] ** 2, 0)),
         ("Y", lambda e: e["X"] / np.sqrt(e["s"] + e["eps"])),
         ("Z", lambda e: e["g"] * e["Y"]),
         ("L", lambda e: np.sum((e["Z"] - e["T"]) ** 2) / 2)],
        positive=("eps",), scalars={"m": float(m)})


def attention(dk: int = 2, n: int = 3) -> Network:
    """S = Qᵀ K / √d; A = softmax(S, axis=-1); O = V Aᵀ; L = Σ(O - T)²/2."""
    return Network(
        {"Q": (dk, n), "K": (dk, n), "V": (dk, n), "T": (dk, n), "d": (1, 1)},
        [("S", lambda e: (e["Q"].T @ e["K"]) / np.sqrt(e["d"])),
         ("A", lambda e: softmax(e["S"], axis=-1)),
         ("O", lambda e: e["V"] @ e["A"].T),
         ("L", lambda e: np.sum((e["O"] - e["T"]) ** 2) / 2)],
        positive=("d",), scalars={"m": 1.0})


def scalar_power(m: int = 1) -> Network:
    """s = x² + eps; y = w s^1.5 / (v + eps)^½; L = (y - t)²/2 (scalars; derive takes every
    scalar that is not a parameter for a positive constant, so they are sampled positive)."""
    return Network(
        {"x": (1, 1), "w": (1, 1), "v": (1, 1), "t": (1, 1), "eps": (1, 1)},
        [("s", lambda e: e["x"] ** 2 + e["eps"]),
         ("y", lambda e: e["w"] * e["s"] ** 1.5 / (e["v"] + e["eps"]) ** 0.5),
         ("L", lambda e: np.sum((e["y"] - e["t"]) ** 2) / 2)],
        positive=("x", "v", "t", "eps"), scalars={"m": float(m)})
