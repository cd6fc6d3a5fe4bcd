"""An independent oracle for the tests: the cost and its gradients in mpmath, no SymPy.

The forward pass is written out from the spec with plain loops, and gradients come from
central differences at 60 digits (step 1e-25, error ~1e-50): nothing here shares code
with derive's symbolic engine, so agreement is evidence, not a tautology.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath

from derive.spec import Spec

mpmath.mp.dps = 60


def _act(name: str, z: list[mpmath.mpf], slope: mpmath.mpf) -> list[mpmath.mpf]:
    if name == "softmax":
        top = max(z)
        e = [mpmath.exp(v - top) for v in z]
        s = sum(e)
        return [v / s for v in e]
    f = {
        "sigmoid": lambda v: 1 / (1 + mpmath.exp(-v)),
        "tanh": mpmath.tanh,
        "relu": lambda v: v if v > 0 else mpmath.mpf(0),
        "leaky_relu": lambda v: v if v > 0 else slope * v,
        "softplus": lambda v: mpmath.log(1 + mpmath.exp(v)),
        "identity": lambda v: v,
        # (gelu: the tanh approximation, its 0.044715 exact; gelu_erf: z Φ(z))
        "gelu": lambda v: v * (1 + mpmath.tanh(mpmath.sqrt(2 / mpmath.pi) * (v + mpmath.mpf(44715) / 10**6 * v**3))) / 2,
        "gelu_erf": lambda v: v * (1 + mpmath.erf(v / mpmath.sqrt(2))) / 2,
        "silu": lambda v: v / (1 + mpmath.exp(-v)),
        "elu": lambda v: v if v > 0 else slope * (mpmath.exp(v) - 1),  # (slope: the layer's alpha)
        "relu6": lambda v: min(max(v, mpmath.mpf(0)), mpmath.mpf(6)),
        "hardtanh": lambda v: min(max(v, mpmath.mpf(-1)), mpmath.mpf(1)),
    }[name]
    return [f(v) for v in z]


def cost(spec: Spec, values: dict[str, object], constants: dict[str, object] | None = None) -> mpmath.mpf:
    """J at the given leaf values (names as derive prints them: 'W1[0,1]', 'b1[0]', 'X[0,2]')."""
    constants = constants or {}

    def v(name: str) -> mpmath.mpf:
        x = values[name]
        if isinstance(x, Fraction):
            return mpmath.mpf(x.numerator) / x.denominator
        if isinstance(x, str) and "/" in x:
            p, q = x.split("/")
            return mpmath.mpf(int(p)) / int(q)
        return mpmath.mpf(x)  # type: ignore[arg-type]

    rows = spec.batch_layout == "rows"
    sizes = spec.sizes
    m = spec.batch

    def x_at(i: int, k: int) -> str:  # feature i of example k
        return f"X[{k},{i}]" if rows else f"X[{i},{k}]"

    total = mpmath.mpf(0)
    for k in range(m):
        a = [v(x_at(i, k)) for i in range(sizes[0])]
        for l, layer in enumerate(spec.layers, start=1):
            # (dense: W_l is units × inputs; affine, CS231n's: inputs × units, W[j,i] for unit i)
            w = (lambda i, j: f"W{l}[{j},{i}]") if layer.type == "affine" else (lambda i, j: f"W{l}[{i},{j}]")
            z = [sum(v(w(i, j)) * a[j] for j in range(sizes[l - 1])) + v(f"b{l}[{i}]")
                 for i in range(sizes[l])]
            slope = mpmath.mpf(0)
            if layer.slope is not None:
                s = layer.slope.subs({sym: constants[str(sym)] for sym in layer.slope.free_symbols})
                slope = mpmath.mpf(s.p) / s.q
            a = _act(layer.activation, z, slope)
        n = sizes[-1]
        last_free = spec.loss.kind not in ("cross_entropy", "hinge")  # (their last class is 1 − the others)
        y = [v(f"Y[{k},{i}]" if rows else f"Y[{i},{k}]") if i < n - 1 or last_free
             else mpmath.mpf(0) for i in range(n)]
        if spec.loss.kind == "cross_entropy":
            y[-1] = 1 - sum(y[:-1])
        if spec.loss.kind == "mse":
            sc = spec.loss.scale.subs({sym: constants[str(sym)] for sym in spec.loss.scale.free_symbols})
            ell = mpmath.mpf(sc.p) / sc.q * sum((ai - yi) ** 2 for ai, yi in zip(a, y))
        elif spec.loss.kind == "huber":
            dl = dict(spec.loss.params).get("delta", 1)
            delta = mpmath.mpf(dl.p) / dl.q if hasattr(dl, "p") else mpmath.mpf(dl)
            ell = sum((u**2 / 2 if abs(u) <= delta else delta * (abs(u) - delta / 2))
                      for u in (ai - yi for ai, yi in zip(a, y)))
        elif spec.loss.kind == "mae":
            ell = sum(abs(ai - yi) for ai, yi in zip(a, y))
        elif spec.loss.kind == "hinge":  # multiclass SVM; y one-hot, read as Σ_j (1 − y_j) max(0, a_j − y·a + 1)
            y[-1] = 1 - sum(y[:-1])
            score = sum(yi * ai for ai, yi in zip(a, y))
            ell = sum((1 - yj) * max(mpmath.mpf(0), aj - score + 1) for aj, yj in zip(a, y))
        elif spec.loss.kind == "binary_cross_entropy":
            ell = -sum(yi * mpmath.log(ai) + (1 - yi) * mpmath.log(1 - ai) for ai, yi in zip(a, y))
        else:
            ell = -sum(yi * mpmath.log(ai) for ai, yi in zip(a, y))
        total += ell
    return total / m if spec.average else total


def gradient(spec: Spec, values: dict[str, object], leaf: str,
             constants: dict[str, object] | None = None) -> mpmath.mpf:
    """∂J/∂leaf by central differences at 60 digits."""
    h = mpmath.mpf(10) ** -25
    base = dict(values)
    x = values[leaf]
    x0 = mpmath.mpf(x.numerator) / x.denominator if isinstance(x, Fraction) else mpmath.mpf(str(x)) if not isinstance(x, str) else None
    if x0 is None:
        p, _, q = str(x).partition("/")
        x0 = mpmath.mpf(int(p)) / int(q or 1)
    base[leaf] = x0 + h
    up = cost(spec, base, constants)
    base[leaf] = x0 - h
    down = cost(spec, base, constants)
    return (up - down) / (2 * h)
