"""YAML → frozen, typed dataclasses.  All input validation happens here, once.

Invariants:
- YAML is read with a ``SafeLoader`` subclass that also rejects duplicate keys and
  documents with many aliases (alias bombs); nothing in a spec is ever executed.
- Every error is a :class:`~derive.errors.SpecError` naming file, place, bad value and
  what was expected, e.g. ``net.yaml: network.layers[1].activation: unknown activation
  'relu6' (expected one of: sigmoid, tanh, ...)``.
- A loaded :class:`Spec` is internally consistent: the network stage does not re-check.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy
import yaml

from derive.lang import formula
from derive.ops.activations import ACTIVATIONS, DEFAULT_LEAKY_SLOPE
from derive.errors import FormulaError, SpecError

LOSSES = ("mse", "binary_cross_entropy", "cross_entropy")
LOSS_ALIASES = {"bce": "binary_cross_entropy", "ce": "cross_entropy", "squared_error": "mse"}
BATCH_LAYOUTS = ("columns", "rows")
JACOBIAN_LAYOUTS = ("numerator", "denominator")
RESERVED = {"X", "Y", "m", "J", "L"}
#: names a layer-stack network gives meaning to: a free constant may not take one
_VALUE = re.compile(r"(X|Y|J|L|[WbZA][0-9]+)$")
_SIZE = re.compile(r"n[0-9]+$")


def reserved_name(name: str) -> str | None:
    """What a name already means in a layer-stack network, or None if it is free."""
    if name in RESERVED or _VALUE.match(name):
        return "a name of the network"
    if _SIZE.match(name):
        return "a layer size (n0 … nL)"
    if name.startswith("d") and _VALUE.match(name[1:]):
        return f"the gradient ∂J/∂{name[1:]}"
    return None


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one spec may ask for; raise them with CLI flags."""

    max_parameters: int = 10_000
    max_batch: int = 1_000
    max_units: int = 1_000
    max_layers: int = 100
    max_aliases: int = 100


@dataclass(frozen=True)
class LayerSpec:
    units: int
    activation: str
    slope: sympy.Expr | None = None  # leaky_relu only


@dataclass(frozen=True)
class LossSpec:
    kind: str  # one of LOSSES
    scale: sympy.Expr = sympy.Rational(1, 2)  # mse: ℓ = scale·‖a − y‖²; 1 for the others


@dataclass(frozen=True)
class ClaimSpec:
    target: str
    formula: str
    place: str  # where in the file, for messages: "claims.dW2" or "claims[3]"
    expect: str = "proven"  # a worked example may ship a mistake that must be refuted
    latex: str | None = None  # the claim as written in LaTeX, when it came from claims_latex


@dataclass(frozen=True)
class Equation:
    name: str
    formula: str
    place: str


@dataclass(frozen=True)
class EquationsSpec:
    """A network written as equations (scalar, or matrix with declared shapes)."""

    equations: tuple[Equation, ...]
    parameters: tuple[str, ...]
    loss: str
    shapes: dict[str, tuple[int, int]]


@dataclass(frozen=True)
class Spec:
    file: str
    name: str
    inputs: int
    layers: tuple[LayerSpec, ...]
    loss: LossSpec
    batch: int = 1
    average: bool = True
    batch_layout: str = "columns"
    layout: str = "numerator"
    claims: tuple[ClaimSpec, ...] = field(default=())
    equations: EquationsSpec | None = None  # set instead of inputs/layers for equation networks
    claims_latex: tuple[ClaimSpec, ...] = field(default=())  # target/formula filled in by the network stage
    notation: str = "default"  # LaTeX: W_l (default) or W^{[l]} (course)

    @property
    def sizes(self) -> list[int]:
        if self.equations is not None:
            return []
        return [self.inputs] + [layer.units for layer in self.layers]

    @property
    def parameters(self) -> int:
        if self.equations is not None:
            eq = self.equations
            return sum(eq.shapes.get(p, (1, 1))[0] * eq.shapes.get(p, (1, 1))[1] for p in eq.parameters)
        s = self.sizes
        return sum(s[i + 1] * s[i] + s[i + 1] for i in range(len(s) - 1))

    @property
    def symbols(self) -> set[sympy.Symbol]:
        """The free constants of the spec (α in a loss scale or a slope)."""
        out: set[sympy.Symbol] = set(self.loss.scale.free_symbols)  # type: ignore[arg-type]
        for layer in self.layers:
            if layer.slope is not None:
                out |= layer.slope.free_symbols  # type: ignore[arg-type]
        return out


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and counts aliases."""

    aliases_seen = 0
    max_aliases = Limits.max_aliases

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > self.max_aliases:
                mark = self.peek_event().start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"more than {self.max_aliases} YAML aliases (alias bomb?)", mark
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                duplicate = False
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key) if _hashable(key) else None
        return super().construct_mapping(node, deep=deep)


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def read_yaml(path: str | Path, limits: Limits = Limits()) -> Any:
    """Read a YAML file safely; errors become :class:`SpecError` with line numbers."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(file, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(file, "", f"cannot read: {exc}") from None
    loader = _Loader(text)
    loader.max_aliases = limits.max_aliases
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise SpecError(file, where, f"invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise SpecError(file, "", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SpecError(file, "", "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def load_spec(path: str | Path, limits: Limits = Limits()) -> Spec:
    """Load and validate a spec file."""
    return parse_spec(read_yaml(path, limits), str(path), limits)


def _fail(file: str, place: str, message: str) -> SpecError:
    return SpecError(file, place, message)


def _check_keys(file: str, place: str, data: dict[Any, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if not isinstance(key, str):
            raise _fail(file, place, f"keys must be text, got {key!r}")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise _fail(
                file, f"{place}.{key}" if place else key,
                f"unknown key '{key}' (expected one of: {', '.join(allowed)}){hint}",
            )


def _int(file: str, place: str, value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(file, place, f"expected {what} (a whole number), got {value!r}")
    if not low <= value <= high:
        raise _fail(file, place, f"expected {what} from {low} to {high}, got {value}")
    return value


def _choice(file: str, place: str, value: Any, choices: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise _fail(file, place, f"unknown {what} {value!r} (expected one of: {', '.join(choices)}){hint}")
    return value


def _constant(file: str, place: str, value: Any) -> sympy.Expr:
    """A scalar constant: a number, or text such as '1/2' or '1/alpha'."""
    if isinstance(value, bool):
        raise _fail(file, place, f"expected a number or an expression such as 1/alpha, got {value!r}")
    if isinstance(value, sympy.Rational):
        return value
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, float):
        if value != value or abs(value) == float("inf"):
            raise _fail(file, place, f"expected a finite number, got {value!r}")
        return sympy.Rational(repr(value))
    if not isinstance(value, str):
        raise _fail(file, place, f"expected a number or an expression such as 1/alpha, got {value!r}")
    try:
        expr = formula.to_scalar(formula.parse(value, max_length=200), value)
    except FormulaError as exc:
        raise _fail(file, place, str(exc)) from None
    for s in sorted(expr.free_symbols, key=str):
        meaning = reserved_name(str(s))
        if meaning is not None:
            raise _fail(file, place, f"'{s}' is {meaning}, not a free constant "
                        "(expected a number or a free name such as alpha)")
    return expr


def parse_spec(data: Any, file: str = "<spec>", limits: Limits = Limits()) -> Spec:
    """Validate a spec already read from YAML (a mapping)."""
    if data is None:
        raise _fail(file, "", "empty file (expected a mapping with a 'network' key)")
    if not isinstance(data, dict):
        raise _fail(file, "", f"expected a mapping with a 'network' key, got {type(data).__name__}")
    _check_keys(file, "", data, ("name", "description", "network", "claims", "claims_latex", "notation"))
    notation = _choice(file, "notation", data.get("notation", "default"), ("default", "course"), "notation")
    name = data.get("name", Path(file).stem)
    if not isinstance(name, str):
        raise _fail(file, "name", f"expected text, got {name!r}")
    if "network" not in data:
        raise _fail(file, "", "missing key 'network'")
    net = data["network"]
    if not isinstance(net, dict):
        raise _fail(file, "network", f"expected a mapping (inputs, layers, loss, ...), got {net!r}")
    if "equations" in net:
        from derive.spec.equations import equation_spec  # its own module; it reuses the helpers here

        return equation_spec(file, name, net, data, limits)
    _check_keys(
        file, "network", net,
        ("inputs", "layers", "loss", "batch", "average", "batch_layout", "layout", "equations"),
    )
    for key in ("inputs", "layers", "loss"):
        if key not in net:
            raise _fail(file, "network", f"missing key '{key}'")
    inputs = _int(file, "network.inputs", net["inputs"], 1, limits.max_units, "a number of inputs")
    layers = _layers(file, net["layers"], limits)
    loss = _loss(file, net["loss"], layers)
    batch = _int(file, "network.batch", net.get("batch", 1), 1, limits.max_batch, "a batch size")
    average = net.get("average", True)
    if not isinstance(average, bool):
        raise _fail(file, "network.average", f"expected true or false, got {average!r}")
    batch_layout = _choice(
        file, "network.batch_layout", net.get("batch_layout", "columns"), BATCH_LAYOUTS, "batch layout"
    )
    layout = _choice(file, "network.layout", net.get("layout", "numerator"), JACOBIAN_LAYOUTS, "layout")
    claims = _claims(file, data.get("claims"))
    spec = Spec(file, name, inputs, layers, loss, batch, average, batch_layout, layout, claims,
                claims_latex=_claims_latex(file, data.get("claims_latex")), notation=notation)
    if spec.parameters > limits.max_parameters:
        raise _fail(
            file, "network",
            f"{spec.parameters} parameters exceed the limit {limits.max_parameters} "
            "(raise it with --max-parameters)",
        )
    return spec


def _layers(file: str, raw: Any, limits: Limits) -> tuple[LayerSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail(file, "network.layers", f"expected a non-empty list of layers, got {raw!r}")
    if len(raw) > limits.max_layers:
        raise _fail(file, "network.layers", f"{len(raw)} layers exceed the limit {limits.max_layers}")
    out = []
    for i, layer in enumerate(raw):
        place = f"network.layers[{i}]"
        if not isinstance(layer, dict):
            raise _fail(file, place, f"expected a mapping such as {{units: 4, activation: tanh}}, got {layer!r}")
        _check_keys(file, place, layer, ("units", "activation", "slope"))
        if "units" not in layer:
            raise _fail(file, place, "missing key 'units'")
        units = _int(file, f"{place}.units", layer["units"], 1, limits.max_units, "a number of units")
        act = _choice(
            file, f"{place}.activation", layer.get("activation", "identity"), tuple(ACTIVATIONS), "activation"
        )
        slope = None
        if act == "leaky_relu":
            slope = _constant(file, f"{place}.slope", layer.get("slope", DEFAULT_LEAKY_SLOPE))
        elif "slope" in layer:
            raise _fail(file, f"{place}.slope", f"a slope is only for leaky_relu, not {act}")
        if act == "softmax":
            if i != len(raw) - 1:
                raise _fail(file, f"{place}.activation", "softmax is supported on the output layer only")
            if units < 2:
                raise _fail(file, f"{place}.units", "softmax needs at least 2 units (with 1 it is constant)")
        out.append(LayerSpec(units, act, slope))
    return tuple(out)


def _loss(file: str, raw: Any, layers: tuple[LayerSpec, ...]) -> LossSpec:
    place = "network.loss"
    scale_raw: Any = None
    if isinstance(raw, dict):
        _check_keys(file, place, raw, ("type", "scale"))
        if "type" not in raw:
            raise _fail(file, place, "missing key 'type'")
        kind_raw = raw["type"]
        scale_raw = raw.get("scale")
        place_kind = f"{place}.type"
    else:
        kind_raw = raw
        place_kind = place
    if isinstance(kind_raw, str):
        kind_raw = LOSS_ALIASES.get(kind_raw, kind_raw)
    kind = _choice(file, place_kind, kind_raw, LOSSES, "loss")
    output = layers[-1].activation
    if kind == "binary_cross_entropy" and output != "sigmoid":
        raise _fail(
            file, place_kind,
            f"binary_cross_entropy needs a probability output: the last layer is {output}, expected sigmoid",
        )
    if kind == "cross_entropy" and output != "softmax":
        raise _fail(
            file, place_kind,
            f"cross_entropy needs a probability output: the last layer is {output}, expected softmax",
        )
    if scale_raw is not None and kind != "mse":
        raise _fail(file, f"{place}.scale", f"a scale is only for mse, not {kind}")
    default = sympy.Rational(1, 2) if kind == "mse" else sympy.Integer(1)
    scale = _constant(file, f"{place}.scale", scale_raw) if scale_raw is not None else default
    if scale == 0:
        raise _fail(file, f"{place}.scale", "a loss scale of 0 makes every gradient 0")
    return LossSpec(kind, scale)


VERDICTS = ("proven", "refuted", "unproven")


def _claims_latex(file: str, raw: Any) -> tuple[ClaimSpec, ...]:
    """A list of LaTeX equations, or of {latex: ..., expect: refuted} mappings."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(file, "claims_latex", f"expected a list of LaTeX equations, got {raw!r}")
    out = []
    for i, entry in enumerate(raw):
        place = f"claims_latex[{i}]"
        expect = "proven"
        if isinstance(entry, dict):
            _check_keys(file, place, entry, ("latex", "expect", "note"))
            expect = _choice(file, f"{place}.expect", entry.get("expect", "proven"), VERDICTS, "expected verdict")
            entry = entry.get("latex")
        if not isinstance(entry, str) or not entry.strip():
            raise _fail(file, place, f"expected a LaTeX equation as text, got {entry!r}")
        if len(entry) > formula.LIMITS["max_length"]:
            raise _fail(file, place, f"LaTeX claim is {len(entry)} characters long (limit {formula.LIMITS['max_length']})")
        out.append(ClaimSpec("", "", place, expect, entry))
    return tuple(out)


def _claims(file: str, raw: Any) -> tuple[ClaimSpec, ...]:
    """``{target: formula, ...}``, or a list of ``target: formula`` pairs, or of
    ``{target: ..., formula: ..., expect: refuted}`` mappings."""
    if raw is None:
        return ()
    items: list[tuple[Any, Any, str, Any]] = []
    if isinstance(raw, dict):
        items = [(k, v, f"claims.{k}", "proven") for k, v in raw.items()]
    elif isinstance(raw, list):
        for i, entry in enumerate(raw):
            place = f"claims[{i}]"
            if isinstance(entry, dict) and "formula" in entry:
                _check_keys(file, place, entry, ("target", "formula", "expect", "note"))
                if "target" not in entry:
                    raise _fail(file, place, "missing key 'target'")
                expect = entry.get("expect", "proven")
                _choice(file, f"{place}.expect", expect, VERDICTS, "expected verdict")
                items.append((entry["target"], entry["formula"], place, expect))
            elif isinstance(entry, dict) and len(entry) == 1:
                (k, v), = entry.items()
                items.append((k, v, place, "proven"))
            else:
                raise _fail(file, place, f"expected 'target: formula' or a mapping with target and formula, got {entry!r}")
    else:
        raise _fail(file, "claims", f"expected a mapping of target: formula, got {raw!r}")
    out = []
    for target, text, place, expect in items:
        if not isinstance(target, str):
            raise _fail(file, place, f"a claim's target must be text such as dW2, got {target!r}")
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = str(text)
        if not isinstance(text, str):
            raise _fail(file, place, f"expected a formula as text, got {text!r}")
        for part in (target, text):
            try:
                formula.parse(part)
            except FormulaError as exc:
                raise _fail(file, place, str(exc)) from None
        out.append(ClaimSpec(target, text, place, expect))
    return tuple(out)
