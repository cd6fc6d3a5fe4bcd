"""Dense layers, convolution, pooling and flatten, as registrations of a layer stack.

``dense``: Z = A W + b with W (n_in, units), examples as rows.  ``conv2d``:
:func:`derive.code.tensor_ops.conv2d` (the cs231n cross-correlation, NCHW) with W
(filters, C, kernel, kernel); its rules loop over the output positions (cs231n's
``conv_backward_naive``).  Pooling windows are kernel×kernel, stride = kernel unless
given; max pooling routes each window's gradient to its maxima (ties are kinks).
"""

from __future__ import annotations

from derive.spec.stack.base import Builder, Key, Layer, Site, StackLayer, activation, size

__all__ = ["REGISTRY"]


def dense(site: Site) -> Layer:
    if len(site.shape) != 1:
        raise ValueError("a dense layer takes vectors: put {type: flatten} before it")
    t, p, units = site.tag, site.prev, site.cfg["units"]
    f = [f"Z{t} = {p}.dot(W{t}) + b{t}"]
    b = [f"dW{t} = {p}.T.dot(dZ{t})", f"db{t} = np.sum(dZ{t}, axis=0)"]
    if site.grad_in:
        b.append(f"d{p} = dZ{t}.dot(W{t}.T)")
    activation(f, b, t, site.act, site.folded)
    return Layer(f, b, {f"W{t}": (site.shape[0], units), f"b{t}": (units,)}, (units,))


def conv2d(site: Site) -> Layer:
    if len(site.shape) != 3:
        raise ValueError("conv2d takes images (C, H, W)")
    c, h, w = site.shape
    t, prev = site.tag, site.prev
    f_, k, s, p = (site.cfg[key] for key in ("filters", "kernel", "stride", "pad"))
    if h + 2 * p < k or w + 2 * p < k:  # the last rows a stride does not reach are left out (floor)
        raise ValueError(f"a {k}×{k} kernel does not fit {h}×{w} with pad {p}")
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    f = [f"Z{t} = conv2d({prev}, W{t}, b{t}, stride={s}, pad={p})"]
    b = [f"db{t} = np.sum(dZ{t}, axis=(0, 2, 3))",
         f"P{t} = np.pad({prev}, ((0, 0), (0, 0), ({p}, {p}), ({p}, {p})))",
         f"dW{t} = np.zeros_like(W{t})"]
    if site.grad_in:
        b.append(f"dP{t} = np.zeros_like(P{t})")
    window = f"i*{s}:i*{s}+{k}, j*{s}:j*{s}+{k}"
    b += [f"for i in range({ho}):", f"    for j in range({wo}):",
          f"        dW{t} += np.tensordot(dZ{t}[:, :, i, j], P{t}[:, :, {window}], axes=((0,), (0,)))"]
    if site.grad_in:
        b += [f"        dP{t}[:, :, {window}] += np.tensordot(dZ{t}[:, :, i, j], W{t}, axes=((1,), (0,)))",
              f"d{prev} = dP{t}[:, :, {p}:{p + h}, {p}:{p + w}]"]
    activation(f, b, t, site.act, site.folded)
    return Layer(f, b, {f"W{t}": (f_, c, k, k), f"b{t}": (f_,)}, (f_, ho, wo))


def _pool(kind: str) -> Builder:
    def build(site: Site) -> Layer:
        if len(site.shape) != 3:
            raise ValueError(f"{kind}pool takes images (C, H, W)")
        c, h, w = site.shape
        t, prev, m = site.tag, site.prev, site.m
        k, s = site.cfg["kernel"], site.cfg["stride"]
        if h < k or w < k:  # the last rows a window does not reach are left out (floor, as PyTorch)
            raise ValueError(f"a {k}×{k} window does not fit {h}×{w}")
        ho, wo = (h - k) // s + 1, (w - k) // s + 1
        f = [f"A{t} = {kind}pool({prev}, {k}, stride={s})"]
        window = f"[:, :, i*{s}:i*{s}+{k}, j*{s}:j*{s}+{k}]"
        share = (f"({prev}{window} == A{t}[:, :, i:i+1, j:j+1]) * dA{t}[:, :, i:i+1, j:j+1]" if kind == "max"
                 else f"np.ones(({m}, {c}, {k}, {k})) * dA{t}[:, :, i:i+1, j:j+1] / {k * k}")
        b = [f"d{prev} = np.zeros_like({prev})", f"for i in range({ho}):", f"    for j in range({wo}):",
             f"        d{prev}{window} += {share}"] if site.grad_in else []
        return Layer(f, b, {}, (c, ho, wo))
    return build


def flatten(site: Site) -> Layer:
    n = size(site.shape)
    f = [f"A{site.tag} = {site.prev}.reshape({site.m}, {n})"]
    b = [f"d{site.prev} = dA{site.tag}.reshape({site.m}, {', '.join(map(str, site.shape))})"] if site.grad_in else []
    return Layer(f, b, {}, (n,))


_POOL = {"kernel": Key("size"), "stride": Key("size", "=kernel")}

REGISTRY: dict[str, StackLayer] = {
    "dense": StackLayer({"units": Key("size")}, True, dense),
    "conv2d": StackLayer({"filters": Key("size"), "kernel": Key("size"), "stride": Key("size", 1),
                          "pad": Key("count", 0)}, True, conv2d),
    "maxpool": StackLayer(dict(_POOL), False, _pool("max")),
    "avgpool": StackLayer(dict(_POOL), False, _pool("avg")),
    "flatten": StackLayer({}, False, flatten),
}
