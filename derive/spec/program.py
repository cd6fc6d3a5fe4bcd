"""Validation of specs written as NumPy code: forward equations, a backward block, an
upstream gradient, input domains (``backward:``, ``upstream:``, ``network.domains``).

```yaml
network:
  equations: |
    mu = np.mean(x, axis=0, keepdims=True)
    ...
  parameters: [gamma, beta]
  shapes: {x: [4, 3], gamma: [1, 3], beta: [1, 3]}     # any rank; a name not listed is a scalar
  domains: {eps: positive, y: labels, mask: binary}
upstream: {out: dout}          # or network.loss: the name of a scalar
backward: |
  dbeta = dout.sum(axis=0, keepdims=True)
  ...
expect: {dgamma: refuted}      # a shipped mistake
claims:                        # optional: dV on the right is the true gradient
  - dx_hat: dout * gamma
```

The blocks are parsed here (:mod:`derive.lang.program`): a syntax error names its line.
Names are checked when the blocks run (:mod:`derive.code.blocks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from derive.errors import FormulaError
from derive.lang import program as P
from derive.spec.common import _check_keys, _choice, _claims, _fail, _int
from derive.spec.equations import NAME, declared_shapes
from derive.spec.model import VERDICTS, ClaimSpec, Limits

DOMAINS = ("real", "positive", "probability", "binary", "one_hot", "one_hot_columns", "labels")
MAX_RANK = 4


@dataclass(frozen=True)
class ProgramSpec:
    """A spec whose network is NumPy code (see the module docstring)."""

    file: str
    name: str
    forward: tuple[P.Statement, ...]
    backward: tuple[P.Statement, ...]
    shapes: dict[str, tuple[int, ...]]  # every leaf: inputs, parameters, scalars (())
    parameters: tuple[str, ...]
    upstream: dict[str, str] = field(default_factory=dict)
    loss: str | None = None
    domains: dict[str, str] = field(default_factory=dict)
    expect: dict[str, str] = field(default_factory=dict)
    places: dict[str, str] = field(default_factory=dict)  # gradient → "backward line N"
    claims: tuple[ClaimSpec, ...] = ()
    notation: str = "default"
    equations: None = None  # what the layer/equation specs have and this has not
    claims_latex: tuple[ClaimSpec, ...] = ()

    @property
    def parameter_count(self) -> int:
        total = 0
        for p in self.parameters:
            n = 1
            for d in self.shapes.get(p, ()):
                n *= d
            total += n
        return total


def is_program(data: dict[str, Any]) -> bool:
    net = data.get("network")
    return ("backward" in data or "upstream" in data
            or (isinstance(net, dict) and "domains" in net and "equations" in net))


def program_spec(file: str, name: str, data: dict[str, Any], limits: Limits) -> ProgramSpec:
    _check_keys(file, "", data, ("name", "description", "network", "claims", "notation", "upstream", "backward",
                                 "expect"))
    net = data.get("network")
    if not isinstance(net, dict) or "equations" not in net:
        raise _fail(file, "network", "a backward block (or upstream, domains) goes with a network written as "
                                     "equations: network: {equations: ..., parameters: [...], shapes: {...}}")
    _check_keys(file, "network", net, ("equations", "parameters", "loss", "shapes", "domains", "batch"))
    forward = _block(file, "network.equations", net["equations"])
    defined = P.assigned(forward)
    if not forward:
        raise _fail(file, "network.equations", "no equations")
    raw_backward = data.get("backward", "")
    backward = _block(file, "backward", raw_backward) if raw_backward else ()
    params = net.get("parameters", [])
    if not isinstance(params, list) or not all(isinstance(p, str) and NAME.match(p) for p in params):
        raise _fail(file, "network.parameters", f"expected a list of names, got {params!r}")
    for i, p in enumerate(params):
        if p in defined:
            raise _fail(file, f"network.parameters[{i}]", f"'{p}' is assigned by an equation, so it is not a "
                                                           "free parameter")
    batch = _int(file, "network.batch", net.get("batch", 2), 1, limits.max_batch, "a batch size")
    shapes = declared_shapes(file, net, set(defined), batch, limits, tuple(range(1, MAX_RANK + 1)))
    used = P.used(forward)  # the inputs are what the forward block reads; the backward block reads values
    upstream: dict[str, str] = {}
    raw_up = data.get("upstream")
    if raw_up is not None:
        if not isinstance(raw_up, dict) or not raw_up:
            raise _fail(file, "upstream", f"expected a mapping output → its gradient's name, e.g. {{out: dout}}, "
                                          f"got {raw_up!r}")
        for out, up in raw_up.items():
            if not isinstance(out, str) or out not in defined:
                raise _fail(file, f"upstream.{out}", f"'{out}' is not assigned by the equations (they assign: "
                                                     f"{', '.join(defined)})")
            if not isinstance(up, str) or not NAME.match(up) or up in defined or up in shapes:
                raise _fail(file, f"upstream.{out}", f"expected a new name for ∂L/∂{out}, e.g. d{out}, got {up!r}")
            upstream[out] = up
    loss = net.get("loss")
    if loss is not None and (not isinstance(loss, str) or loss not in defined):
        raise _fail(file, "network.loss", f"expected the name of a scalar the equations assign, got {loss!r}")
    if loss is not None and upstream:
        raise _fail(file, "upstream", "give either network.loss or upstream, not both")
    if loss is None and not upstream:
        raise _fail(file, "network.loss", "no loss: name the scalar loss (network.loss: L) or the upstream "
                                          "gradient of an output (upstream: {out: dout})")
    # leaves: every name read and never assigned (nor an upstream gradient, nor a loop variable)
    loops = _loop_vars(forward) | _loop_vars(backward)
    leaves = sorted(used - set(defined) - loops - {"None"})
    for n in leaves:
        shapes.setdefault(n, ())
    for p in params:
        if p not in shapes:
            raise _fail(file, "network.parameters", f"parameter '{p}' does not appear in the equations")
    for key in list(shapes):
        if key not in leaves and key not in params:
            raise _fail(file, f"network.shapes.{key}", f"'{key}' is not used by the equations")
    entries = sum(_size(s) for s in shapes.values())
    if entries > limits.max_parameters:
        raise _fail(file, "network.shapes", f"{entries} input entries exceed the limit {limits.max_parameters}")
    domains: dict[str, str] = {}
    raw_dom = net.get("domains", {})
    if not isinstance(raw_dom, dict):
        raise _fail(file, "network.domains", f"expected a mapping such as {{Y: one_hot}}, got {raw_dom!r}")
    for key, kind in raw_dom.items():
        place = f"network.domains.{key}"
        if key not in shapes:
            raise _fail(file, place, f"'{key}' is not an input of the equations (inputs: {', '.join(leaves)})")
        domains[key] = _choice(file, place, kind, DOMAINS, "domain")
        if key in params and domains[key] in ("binary", "one_hot", "one_hot_columns", "labels"):
            raise _fail(file, place, f"a parameter ranges over the reals; {kind} is for data inputs")
        if domains[key] == "labels" and len(shapes[key]) != 1:
            raise _fail(file, f"network.shapes.{key}", f"labels are a vector of N integers: shape [N], got "
                                                       f"{list(shapes[key])}")
        if domains[key].startswith("one_hot") and len(shapes[key]) != 2:
            raise _fail(file, f"network.shapes.{key}", "one-hot targets are a matrix: shape [N, C]")
    places = {}
    for s in backward:
        for n in P.assigned((s,)):
            places[n] = f"backward line {s.line}"
    expect: dict[str, str] = {}
    raw_expect = data.get("expect", {})
    if not isinstance(raw_expect, dict):
        raise _fail(file, "expect", f"expected a mapping such as {{dgamma: refuted}}, got {raw_expect!r}")
    for key, verdict in raw_expect.items():
        if key not in places:
            raise _fail(file, f"expect.{key}", f"'{key}' is not assigned by the backward block")
        expect[key] = _choice(file, f"expect.{key}", verdict, VERDICTS, "verdict")
    claims = _claims(file, data.get("claims"))
    if not backward and not claims:
        raise _fail(file, "backward", "nothing to check: give a backward block or claims")
    notation = _choice(file, "notation", data.get("notation", "default"), ("default", "course"), "notation")
    return ProgramSpec(file, name, forward, backward, shapes, tuple(params), upstream, loss, domains, expect,
                       places, claims, notation)


def _block(file: str, place: str, raw: Any) -> tuple[P.Statement, ...]:
    if isinstance(raw, list):
        raw = "\n".join(str(x) for x in raw)
    if not isinstance(raw, str):
        raise _fail(file, place, f"expected a block of code as text, got {raw!r}")
    try:
        return P.parse_block(raw)
    except FormulaError as exc:
        raise _fail(file, place, str(exc)) from None


def _loop_vars(statements: tuple[P.Statement, ...]) -> set[str]:
    out: set[str] = set()
    for s in statements:
        if isinstance(s, P.For):
            out |= {s.var} | _loop_vars(s.body)
    return out


def _size(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
