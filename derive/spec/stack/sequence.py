"""Embeddings, recurrence (rnn, lstm, gru) and self-attention, as registrations of a
layer stack.  One example is a sequence (T, D): the stack's ``inputs: [T, D]`` (X is
m×T×D), or an embedding's output.

- ``embedding`` (first layer only): the input X holds the m·T token indices, example
  after example, declared ``labels`` (integers in [0, vocab)); A = W[X] reshaped to
  (m, T, dim); the rule scatter-adds (``dW[X[i]] += dA[i]``, np.add.at as a loop).
- ``rnn``, ``lstm``, ``gru``: ``hidden`` units over the T steps with shared weights,
  h₀ = 0 (and c₀ = 0); ``output: last`` (default) gives the last hidden state (hidden,),
  ``output: all`` every state (T, hidden).  The rules are backpropagation through time:
  one reversed loop, each shared weight's gradient summed over the steps, the carry
  ``dhn`` (and ``dcn``) from step t back to t − 1.  rnn: h = tanh(x Wx + h Wh + b);
  lstm: gates i, f, o, g side by side in Wx (D, 4H), Wh (H, 4H) (cs231n's layout);
  gru: z, r and the candidate with their own Wz, Uz, bz, ... (PyTorch's GRUCell),
  h = (1 − z)·h + z·h̃.
- ``attention``: self-attention with projections Wq, Wk, Wv, Wo (D, D), ``heads``
  heads of D/heads columns each, softmax(Q_h K_hᵀ/√d_h) per example and head, optional
  ``causal: true`` (no position attends to a later one).
"""

from __future__ import annotations

from derive.spec.stack.base import Key, Layer, Site, StackLayer

__all__ = ["REGISTRY"]


def _sequence(site: Site, what: str) -> tuple[int, int]:
    if len(site.shape) != 2:
        raise ValueError(f"{what} takes sequences (T, D): inputs: [T, D], or an embedding before it")
    return site.shape[0], site.shape[1]


def embedding(site: Site) -> Layer:
    if not site.first:
        raise ValueError("embedding takes the integer indices of the input: it must be the first layer")
    (steps,) = site.shape
    t, p, m = site.tag, site.prev, site.m
    v, d = site.cfg["vocab"], site.cfg["dim"]
    f = [f"A{t} = W{t}[{p}].reshape({m}, {steps}, {d})"]
    b = [f"dE{t} = dA{t}.reshape({m * steps}, {d})",
         f"dW{t} = np.zeros_like(W{t})",
         f"for i in range({m * steps}):",
         f"    dW{t}[{p}[i]] += dE{t}[i]"]
    return Layer(f, b, {f"W{t}": (v, d)}, (steps, d))


def _states(site: Site, steps: int, hidden: int) -> tuple[list[str], list[str], tuple[int, ...]]:
    """The output (the last state or all) and the rule that spreads dA over the states dH."""
    t, m = site.tag, site.m
    if site.cfg["output"] == "all":
        return [f"A{t} = H{t}"], [f"dH{t} = dA{t}"], (steps, hidden)
    return ([f"A{t} = H{t}[:, {steps - 1}, :]"],
            [f"dH{t} = np.zeros(({m}, {steps}, {hidden}))", f"dH{t}[:, {steps - 1}, :] = dA{t}"], (hidden,))


def _previous(name: str, tag: str, m: int, steps: int, hidden: int) -> str:
    """The states one step earlier (zeros first): Hp[:, t] is the state step t starts from."""
    return (f"{name}p{tag} = np.concatenate((np.zeros(({m}, 1, {hidden})), {name}{tag}[:, :{steps - 1}, :]), "
            "axis=1)")


def _zeros(names: list[str]) -> list[str]:
    return [f"d{n} = np.zeros_like({n})" for n in names]


def rnn(site: Site) -> Layer:
    steps, dim = _sequence(site, "rnn")
    t, p, m, hd = site.tag, site.prev, site.m, site.cfg["hidden"]
    f = [f"H{t} = np.zeros(({m}, {steps}, {hd}))",
         f"h{t} = np.zeros(({m}, {hd}))",
         f"for t in range({steps}):",
         f"    h{t} = np.tanh({p}[:, t, :].dot(Wx{t}) + h{t}.dot(Wh{t}) + b{t})",
         f"    H{t}[:, t, :] = h{t}"]
    out, spread, shape = _states(site, steps, hd)
    b = spread + [_previous("H", t, m, steps, hd)] + _zeros([f"Wx{t}", f"Wh{t}", f"b{t}"])
    b += _zeros([p]) if site.grad_in else []
    b += [f"dhn{t} = np.zeros(({m}, {hd}))",
          f"for t in reversed(range({steps})):",
          f"    g{t} = (dH{t}[:, t, :] + dhn{t}) * (1 - H{t}[:, t, :] ** 2)"]
    b += [f"    d{p}[:, t, :] = g{t}.dot(Wx{t}.T)"] if site.grad_in else []
    b += [f"    dWx{t} += {p}[:, t, :].T.dot(g{t})",
          f"    dWh{t} += Hp{t}[:, t, :].T.dot(g{t})",
          f"    db{t} += g{t}.sum(axis=0)",
          f"    dhn{t} = g{t}.dot(Wh{t}.T)"]
    return Layer(f + out, b, {f"Wx{t}": (dim, hd), f"Wh{t}": (hd, hd), f"b{t}": (hd,)}, shape)


def lstm(site: Site) -> Layer:
    steps, dim = _sequence(site, "lstm")
    t, p, m, hd = site.tag, site.prev, site.m, site.cfg["hidden"]
    gates = [f"{g}{t}" for g in ("I", "F", "O", "G", "C", "H")]
    f = [f"{g} = np.zeros(({m}, {steps}, {hd}))" for g in gates]
    f += [f"h{t} = np.zeros(({m}, {hd}))", f"c{t} = np.zeros(({m}, {hd}))",
          f"for t in range({steps}):",
          f"    a{t} = {p}[:, t, :].dot(Wx{t}) + h{t}.dot(Wh{t}) + b{t}",
          f"    I{t}[:, t, :] = sigmoid(a{t}[:, :{hd}])",
          f"    F{t}[:, t, :] = sigmoid(a{t}[:, {hd}:{2 * hd}])",
          f"    O{t}[:, t, :] = sigmoid(a{t}[:, {2 * hd}:{3 * hd}])",
          f"    G{t}[:, t, :] = np.tanh(a{t}[:, {3 * hd}:])",
          f"    c{t} = F{t}[:, t, :] * c{t} + I{t}[:, t, :] * G{t}[:, t, :]",
          f"    h{t} = O{t}[:, t, :] * np.tanh(c{t})",
          f"    C{t}[:, t, :] = c{t}",
          f"    H{t}[:, t, :] = h{t}"]
    out, spread, shape = _states(site, steps, hd)
    b = spread + [_previous("H", t, m, steps, hd), _previous("C", t, m, steps, hd)]
    b += _zeros([f"Wx{t}", f"Wh{t}", f"b{t}"]) + (_zeros([p]) if site.grad_in else [])
    i, fg, o, g, c = (f"{x}{t}[:, t, :]" for x in ("I", "F", "O", "G", "C"))
    b += [f"dhn{t} = np.zeros(({m}, {hd}))", f"dcn{t} = np.zeros(({m}, {hd}))",
          f"for t in reversed(range({steps})):",
          f"    gh{t} = dH{t}[:, t, :] + dhn{t}",
          f"    tc{t} = np.tanh({c})",
          f"    gc{t} = dcn{t} + gh{t} * {o} * (1 - tc{t} ** 2)",
          f"    ga{t} = np.hstack((gc{t} * {g} * {i} * (1 - {i}), gc{t} * Cp{t}[:, t, :] * {fg} * (1 - {fg}), "
          f"gh{t} * tc{t} * {o} * (1 - {o}), gc{t} * {i} * (1 - {g} ** 2)))"]
    b += [f"    d{p}[:, t, :] = ga{t}.dot(Wx{t}.T)"] if site.grad_in else []
    b += [f"    dWx{t} += {p}[:, t, :].T.dot(ga{t})",
          f"    dWh{t} += Hp{t}[:, t, :].T.dot(ga{t})",
          f"    db{t} += ga{t}.sum(axis=0)",
          f"    dhn{t} = ga{t}.dot(Wh{t}.T)",
          f"    dcn{t} = gc{t} * {fg}"]
    return Layer(f + out, b, {f"Wx{t}": (dim, 4 * hd), f"Wh{t}": (hd, 4 * hd), f"b{t}": (4 * hd,)}, shape)


def gru(site: Site) -> Layer:
    steps, dim = _sequence(site, "gru")
    t, p, m, hd = site.tag, site.prev, site.m, site.cfg["hidden"]
    x = f"{p}[:, t, :]"
    z, r, hc = (f"{n}{t}[:, t, :]" for n in ("Zg", "Rg", "Hc"))
    f = [f"{n}{t} = np.zeros(({m}, {steps}, {hd}))" for n in ("Zg", "Rg", "Hc", "H")]
    f += [f"h{t} = np.zeros(({m}, {hd}))",
          f"for t in range({steps}):",
          f"    {z} = sigmoid({x}.dot(Wz{t}) + h{t}.dot(Uz{t}) + bz{t})",
          f"    {r} = sigmoid({x}.dot(Wr{t}) + h{t}.dot(Ur{t}) + br{t})",
          f"    {hc} = np.tanh({x}.dot(Wh{t}) + ({r} * h{t}).dot(Uh{t}) + bh{t})",
          f"    h{t} = (1 - {z}) * h{t} + {z} * {hc}",
          f"    H{t}[:, t, :] = h{t}"]
    out, spread, shape = _states(site, steps, hd)
    params = [f"{w}{g}{t}" for g in ("z", "r", "h") for w in ("W", "U", "b")]
    hp = f"Hp{t}[:, t, :]"
    b = spread + [_previous("H", t, m, steps, hd)] + _zeros(params) + (_zeros([p]) if site.grad_in else [])
    b += [f"dhn{t} = np.zeros(({m}, {hd}))",
          f"for t in reversed(range({steps})):",
          f"    gh{t} = dH{t}[:, t, :] + dhn{t}",
          f"    gz{t} = gh{t} * ({hc} - {hp}) * {z} * (1 - {z})",
          f"    gc{t} = gh{t} * {z} * (1 - {hc} ** 2)",
          f"    grh{t} = gc{t}.dot(Uh{t}.T)",
          f"    gr{t} = grh{t} * {hp} * {r} * (1 - {r})"]
    for g, src in (("z", hp), ("r", hp), ("h", f"({r} * {hp})")):
        b += [f"    dW{g}{t} += {x}.T.dot(g{'c' if g == 'h' else g}{t})",
              f"    dU{g}{t} += {src}.T.dot(g{'c' if g == 'h' else g}{t})",
              f"    db{g}{t} += g{'c' if g == 'h' else g}{t}.sum(axis=0)"]
    b += [f"    d{p}[:, t, :] = gc{t}.dot(Wh{t}.T) + gz{t}.dot(Wz{t}.T) + gr{t}.dot(Wr{t}.T)"] if site.grad_in else []
    b += [f"    dhn{t} = gh{t} * (1 - {z}) + grh{t} * {r} + gz{t}.dot(Uz{t}.T) + gr{t}.dot(Ur{t}.T)"]
    shapes: dict[str, tuple[int, ...]] = {n: ((dim, hd) if n[0] == "W" else (hd, hd) if n[0] == "U" else (hd,))
                                          for n in params}
    return Layer(f + out, b, shapes, shape)


def attention(site: Site) -> Layer:
    steps, dim = _sequence(site, "attention")
    heads = site.cfg["heads"]
    if dim % heads:
        raise ValueError(f"{heads} heads do not divide the {dim} features")
    t, p, m, hd = site.tag, site.prev, site.m, dim // heads
    cols = f"j*{hd}:(j+1)*{hd}"
    mask = f" * M{t}" if site.cfg["causal"] else ""
    f = [f"Q{t} = {p}.dot(Wq{t})", f"K{t} = {p}.dot(Wk{t})", f"V{t} = {p}.dot(Wv{t})",
         f"Y{t} = np.zeros(({m}, {steps}, {dim}))", f"Pa{t} = np.zeros(({m}, {heads}, {steps}, {steps}))"]
    f += [f"M{t} = np.tril(np.ones(({steps}, {steps})))"] if mask else []
    f += [f"for n in range({m}):",
          f"    for j in range({heads}):",
          f"        E{t} = np.exp(Q{t}[n, :, {cols}].dot(K{t}[n, :, {cols}].T) / np.sqrt({hd})){mask}",
          f"        Pa{t}[n, j] = E{t} / E{t}.sum(axis=1, keepdims=True)",
          f"        Y{t}[n, :, {cols}] = Pa{t}[n, j].dot(V{t}[n, :, {cols}])",
          f"A{t} = Y{t}.dot(Wo{t})"]
    both = "axes=((0, 1), (0, 1))"
    b = [f"dWo{t} = np.tensordot(Y{t}, dA{t}, {both})",
         f"dY{t} = dA{t}.dot(Wo{t}.T)"] + _zeros([f"Q{t}", f"K{t}", f"V{t}"])
    b += [f"for n in range({m}):",
          f"    for j in range({heads}):",
          f"        dV{t}[n, :, {cols}] = Pa{t}[n, j].T.dot(dY{t}[n, :, {cols}])",
          f"        gp{t} = dY{t}[n, :, {cols}].dot(V{t}[n, :, {cols}].T)",
          f"        gs{t} = Pa{t}[n, j] * (gp{t} - np.sum(gp{t} * Pa{t}[n, j], axis=1, keepdims=True))",
          f"        dQ{t}[n, :, {cols}] = gs{t}.dot(K{t}[n, :, {cols}]) / np.sqrt({hd})",
          f"        dK{t}[n, :, {cols}] = gs{t}.T.dot(Q{t}[n, :, {cols}]) / np.sqrt({hd})"]
    b += [f"dW{w}{t} = np.tensordot({p}, d{w.upper()}{t}, {both})" for w in ("q", "k", "v")]
    if site.grad_in:
        b.append(f"d{p} = dQ{t}.dot(Wq{t}.T) + dK{t}.dot(Wk{t}.T) + dV{t}.dot(Wv{t}.T)")
    return Layer(f, b, {f"W{w}{t}": (dim, dim) for w in ("q", "k", "v", "o")}, (steps, dim))


_OUTPUT = Key("choice", "last", ("last", "all"))

REGISTRY: dict[str, StackLayer] = {
    "embedding": StackLayer({"vocab": Key("size"), "dim": Key("size")}, False, embedding),
    "rnn": StackLayer({"hidden": Key("size"), "output": _OUTPUT}, False, rnn),
    "lstm": StackLayer({"hidden": Key("size"), "output": _OUTPUT}, False, lstm),
    "gru": StackLayer({"hidden": Key("size"), "output": _OUTPUT}, False, gru),
    "attention": StackLayer({"heads": Key("size", 1), "causal": Key("flag", False)}, False, attention),
}
