"""Batch norm, layer norm and inverted dropout, as registrations of a layer stack.

- ``batchnorm`` (train mode): each feature normalised over the batch — vectors (m, D)
  over axis 0, sequences (m, T, D) over (0, 1), images (m, C, H, W) over (0, 2, 3)
  (spatial batch norm, one γ and β per channel); ε exact (1e-5 is 1/100000).
- ``layernorm``: each example normalised over its own features — vectors over axis 1,
  images over (1, 2, 3) with γ, β of shape (C, H, W), sequences over the last axis
  (each position, as transformers do), γ, β of shape (D,).
- ``dropout``: inverted dropout with a fixed 0/1 mask, an input ``mask<tag>`` of the
  layer's full shape declared ``binary``: A = x ⊙ mask / keep_prob.

The rules are the compact forms courses derive (cs231n's ``batchnorm_backward_alt``):
dx = (N·dx̂ − Σ dx̂ − x̂·Σ dx̂ ⊙ x̂) / (N·σ), with the sums over the normalised axes.
"""

from __future__ import annotations

from derive.spec.stack.base import Key, Layer, Site, StackLayer, number, size

__all__ = ["REGISTRY"]


def _axes(axes: tuple[int, ...]) -> str:
    return f"({', '.join(map(str, axes))},)" if len(axes) == 1 else f"({', '.join(map(str, axes))})"


def _normalise(site: Site, axes: tuple[int, ...], batch_axes: tuple[int, ...], param: tuple[int, ...],
               scale: str, count: int) -> Layer:
    t, p = site.tag, site.prev
    eps = number(site.cfg["eps"])
    ax = _axes(axes)
    gamma = f"gamma{t}" if not scale else f"gamma{t}.reshape({scale})"
    beta = f"beta{t}" if not scale else f"beta{t}.reshape({scale})"
    f = [f"mu{t} = np.mean({p}, axis={ax}, keepdims=True)",
         f"xmu{t} = {p} - mu{t}",
         f"var{t} = np.mean(xmu{t} ** 2, axis={ax}, keepdims=True)",
         f"std{t} = np.sqrt(var{t} + {eps})",
         f"xhat{t} = xmu{t} / std{t}",
         f"A{t} = {gamma} * xhat{t} + {beta}"]
    bx = _axes(batch_axes)
    b = [f"dgamma{t} = np.sum(dA{t} * xhat{t}, axis={bx})",
         f"dbeta{t} = np.sum(dA{t}, axis={bx})",
         f"dxhat{t} = dA{t} * {gamma}"]
    if site.grad_in:
        b.append(f"d{p} = ({count} * dxhat{t} - np.sum(dxhat{t}, axis={ax}, keepdims=True) - xhat{t} * "
                 f"np.sum(dxhat{t} * xhat{t}, axis={ax}, keepdims=True)) / ({count} * std{t})")
    return Layer(f, b, {f"gamma{t}": param, f"beta{t}": param}, site.shape)


def batchnorm(site: Site) -> Layer:
    s = site.shape
    if len(s) == 3:  # images: per channel, over the batch and the positions
        c, h, w = s
        return _normalise(site, (0, 2, 3), (0, 2, 3), (c,), f"1, {c}, 1, 1", site.m * h * w)
    axes = tuple(range(len(s)))  # vectors: (0,); sequences: (0, 1)
    return _normalise(site, axes, axes, (s[-1],), "", site.m * size(s[:-1]))


def layernorm(site: Site) -> Layer:
    s = site.shape
    if len(s) == 2:  # sequences: each position over its features
        return _normalise(site, (2,), (0, 1), (s[-1],), "", s[-1])
    axes = tuple(range(1, len(s) + 1))  # vectors: (1,); images: (1, 2, 3)
    return _normalise(site, axes, (0,), s, "", size(s))


def dropout(site: Site) -> Layer:
    t, p = site.tag, site.prev
    kp = number(site.cfg["keep_prob"])
    f = [f"A{t} = {p} * mask{t} / {kp}"]
    b = [f"d{p} = dA{t} * mask{t} / {kp}"] if site.grad_in else []
    return Layer(f, b, {}, site.shape, {f"mask{t}": ((site.m, *site.shape), "binary")})


_EPS = Key("positive", "1e-5")

REGISTRY: dict[str, StackLayer] = {
    "batchnorm": StackLayer({"eps": _EPS}, False, batchnorm),
    "layernorm": StackLayer({"eps": _EPS}, False, layernorm),
    "dropout": StackLayer({"keep_prob": Key("probability", "0.5")}, False, dropout),
}
