"""Validation helpers shared by both kinds of spec: one-line errors naming the file, the
place and what was expected; constants, choices, claims."""

from __future__ import annotations

import difflib
from typing import Any

import sympy

from derive.errors import FormulaError, SpecError
from derive.lang import formula
from derive.ops.registry import activation_named, refused_spelling
from derive.spec.model import VERDICTS, ClaimSpec, reserved_name
from derive.util.text import shown


def _fail(file: str, place: str, message: str) -> SpecError:
    return SpecError(file, place, message)


def _check_keys(file: str, place: str, data: dict[Any, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if not isinstance(key, str):
            raise _fail(file, place, f"keys must be text, got {shown(key)}")
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise _fail(
                file, f"{place}.{key}" if place else key,
                f"unknown key '{key}' (expected one of: {', '.join(allowed)}){hint}",
            )


def _int(file: str, place: str, value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(file, place, f"expected {what} (a whole number), got {shown(value)}")
    if not low <= value <= high:
        raise _fail(file, place, f"expected {what} from {low} to {high}, got {value}")
    return value


def _choice(file: str, place: str, value: Any, choices: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise _fail(file, place, f"unknown {what} {shown(value)} (expected one of: {', '.join(choices)}){hint}")
    return value


def _activation(file: str, place: str, value: Any, choices: tuple[str, ...]) -> str:
    """An activation of ``choices`` as a spec spells it: its name, or another spelling of it
    (``ReLU``, ``LeakyReLU``, Keras' ``linear`` and ``swish``: see derive.ops.registry)."""
    name = activation_named(value)
    if name in choices:
        return name
    why = refused_spelling(value)
    if why is not None:
        raise _fail(file, place, f"{shown(value)} is {why}")
    return _choice(file, place, value, choices, "activation")


def _constant(file: str, place: str, value: Any, allowed: tuple[str, ...] = ()) -> sympy.Expr:
    """A scalar constant: a number, or text such as '1/2' or '1/alpha'; ``allowed`` names
    reserved names it may use all the same (a weight decay's m, the batch size)."""
    if isinstance(value, bool):
        raise _fail(file, place, f"expected a number or an expression such as 1/alpha, got {shown(value)}")
    if isinstance(value, sympy.Rational):
        return value
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, float):
        if value != value or abs(value) == float("inf"):
            raise _fail(file, place, f"expected a finite number, got {shown(value)}")
        return sympy.Rational(repr(value))
    if not isinstance(value, str):
        raise _fail(file, place, f"expected a number or an expression such as 1/alpha, got {shown(value)}")
    try:
        expr = formula.to_scalar(formula.parse(value, max_length=200), value)
    except FormulaError as exc:
        raise _fail(file, place, str(exc)) from None
    for s in sorted(expr.free_symbols, key=str):
        meaning = reserved_name(str(s))
        if meaning is not None and str(s) not in allowed:
            raise _fail(file, place, f"'{s}' is {meaning}, not a free constant "
                        "(expected a number or a free name such as alpha)")
    return expr


def _claims_latex(file: str, raw: Any) -> tuple[ClaimSpec, ...]:
    """A list of LaTeX equations, or of {latex: ..., expect: refuted} mappings."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(file, "claims_latex", f"expected a list of LaTeX equations, got {shown(raw)}")
    out = []
    for i, entry in enumerate(raw):
        place = f"claims_latex[{i}]"
        expect = "proven"
        if isinstance(entry, dict):
            _check_keys(file, place, entry, ("latex", "expect", "note"))
            expect = _choice(file, f"{place}.expect", entry.get("expect", "proven"), VERDICTS, "expected verdict")
            entry = entry.get("latex")
        if not isinstance(entry, str) or not entry.strip():
            raise _fail(file, place, f"expected a LaTeX equation as text, got {shown(entry)}")
        if len(entry) > formula.LIMITS["max_length"]:
            raise _fail(file, place,
                        f"LaTeX claim is {len(entry)} characters long (limit {formula.LIMITS['max_length']})")
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
                raise _fail(file, place,
                            f"expected 'target: formula' or a mapping with target and formula, got {shown(entry)}")
    else:
        raise _fail(file, "claims", f"expected a mapping of target: formula, got {shown(raw)}")
    out = []
    for target, text, place, expect in items:
        if not isinstance(target, str):
            raise _fail(file, place, f"a claim's target must be text such as dW2, got {shown(target)}")
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = str(text)
        if not isinstance(text, str):
            raise _fail(file, place, f"expected a formula as text, got {shown(text)}")
        for part in (target, text):
            try:
                formula.parse(part)
            except FormulaError as exc:
                raise _fail(file, place, str(exc)) from None
        out.append(ClaimSpec(target, text, place, expect))
    return tuple(out)
