"""Validation of networks written as equations (``network.equations``): the names, the
parameters, the loss and the declared shapes.  The equations themselves are parsed with
the formula parser here and given meaning by :mod:`derive.model.build_equations`.
"""

from __future__ import annotations

import re
from typing import Any

import sympy

from derive.errors import FormulaError
from derive.lang import formula
from derive.spec.common import _check_keys, _choice, _claims, _claims_latex, _fail, _int
from derive.spec.model import JACOBIAN_LAYOUTS, Equation, EquationsSpec, Limits, LossSpec, Spec

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*$")  # x_hat, next_h: the NumPy dialect's names


def declared_shapes(file: str, net: dict[str, Any], defined: set[str], batch: int, limits: Limits,
                    ranks: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """``network.shapes``: name → sizes, each a whole number or m (the batch); a name an
    equation defines has none.  ``ranks``: how many sizes a shape may have."""
    shapes: dict[str, tuple[int, ...]] = {}
    raw_shapes = net.get("shapes", {})
    if not isinstance(raw_shapes, dict):
        raise _fail(file, "network.shapes", f"expected a mapping such as {{X: [3, m]}}, got {raw_shapes!r}")
    for key, value in raw_shapes.items():
        place = f"network.shapes.{key}"
        if not isinstance(key, str) or not NAME.match(key):
            raise _fail(file, place, f"expected a plain name, got {key!r}")
        if key in defined:
            raise _fail(file, place, f"'{key}' is defined by an equation: its shape follows from it")
        if isinstance(value, int) and not isinstance(value, bool) and 1 in ranks:
            value = [value]
        if not isinstance(value, list) or len(value) not in ranks:
            want = "[rows, columns]" if ranks == (2,) else f"{min(ranks)} to {max(ranks)} sizes such as [4, 3]"
            raise _fail(file, place, f"expected {want}, got {value!r}")
        shapes[key] = tuple(_int(file, place, batch if v == "m" else v, 1, limits.max_units, "a size (or m)")
                            for v in value)
    return shapes


def equation_spec(file: str, name: str, net: dict[str, Any], data: dict[str, Any], limits: Limits) -> Spec:
    """network: {equations: 'z = w*x + b\n...', parameters: [...], loss: L, shapes: {...}}."""
    _check_keys(file, "network", net, ("equations", "parameters", "loss", "shapes", "batch", "layout"))
    raw = net["equations"]
    if isinstance(raw, list):
        raw = "\n".join(str(x) for x in raw)
    if not isinstance(raw, str):
        raise _fail(file, "network.equations", f"expected equations as text, one per line, got {raw!r}")
    equations: list[Equation] = []
    defined: dict[str, str] = {}
    for number, line in enumerate(raw.splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        place = f"network.equations line {number}"
        lhs, eq, rhs = text.partition("=")
        lhs, rhs = lhs.strip(), rhs.strip()
        if not eq or rhs.startswith("="):
            raise _fail(file, place, f"expected 'name = formula', got {text!r}")
        if not NAME.match(lhs):
            raise _fail(file, place, f"the left side must be a plain name such as z1, got {lhs!r}")
        if lhs in defined:
            raise _fail(file, place, f"'{lhs}' is defined twice (first at {defined[lhs]})")
        try:
            formula.parse(rhs)
        except FormulaError as exc:
            raise _fail(file, place, str(exc)) from None
        defined[lhs] = place
        equations.append(Equation(lhs, rhs, place))
    if not equations:
        raise _fail(file, "network.equations", "no equations")
    params = net.get("parameters")
    if not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params):
        raise _fail(file, "network.parameters", f"expected a list of parameter names, got {params!r}")
    for i, p in enumerate(params):
        if p in defined:
            raise _fail(file, f"network.parameters[{i}]", f"'{p}' is defined by an equation ({defined[p]}), "
                        "so it is not a free parameter")
        if not NAME.match(p):
            raise _fail(file, f"network.parameters[{i}]", f"expected a plain name, got {p!r}")
    loss = net.get("loss", equations[-1].name)
    if not isinstance(loss, str) or loss not in defined:
        raise _fail(file, "network.loss",
                    f"expected the name of an equation (one of: {', '.join(defined)}), got {loss!r}")
    batch = _int(file, "network.batch", net.get("batch", 1), 1, limits.max_batch, "a batch size")
    shapes = {k: (v[0], v[1]) for k, v in declared_shapes(file, net, set(defined), batch, limits, (2,)).items()}
    layout = _choice(file, "network.layout", net.get("layout", "numerator"), JACOBIAN_LAYOUTS, "layout")
    eq_spec = EquationsSpec(tuple(equations), tuple(params), loss, shapes)
    claims = _claims(file, data.get("claims"))
    spec = Spec(file, name, 0, (), LossSpec("equations", sympy.Integer(1)), batch, True, "columns", layout,
                claims, eq_spec, _claims_latex(file, data.get("claims_latex")), data.get("notation", "default"))
    if spec.parameters > limits.max_parameters:
        raise _fail(file, "network", f"{spec.parameters} parameters exceed the limit {limits.max_parameters}")
    return spec
