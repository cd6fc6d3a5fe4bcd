"""Proof records: plain, frozen data that the renderers (terminal, JSON, LaTeX) read.

A verdict is one of ``proven`` (an exact symbolic identity was established, entry by
entry), ``refuted`` (a concrete counterexample, checked in exact rational arithmetic or
certified by interval arithmetic; or a shape that cannot match) or ``unproven``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROVEN, REFUTED, UNPROVEN = "proven", "refuted", "unproven"


@dataclass(frozen=True)
class Counterexample:
    """Values of every symbol at which claimed and true entries differ."""

    values: dict[str, str]
    entry: tuple[int, int]
    claimed: str
    true: str
    exact: bool  # True: rational arithmetic; False: certified by interval arithmetic

    def as_json(self) -> dict[str, Any]:
        return {
            "values": dict(self.values), "entry": list(self.entry),
            "claimed": self.claimed, "true": self.true,
            "arithmetic": "exact rational" if self.exact else "interval (200 bits)",
        }


@dataclass(frozen=True)
class Check:
    """One checked statement ``target = formula``: a built-in rule or a user's claim."""

    kind: str  # "rule" | "claim"
    target: str
    formula: str
    verdict: str
    method: str
    entries: int
    seconds: float
    layer: int | None = None
    rule: str | None = None  # dZ | dA | dW | db
    diagnosis: str | None = None
    counterexample: Counterexample | None = None
    detail: str | None = None  # what was tried, or the shape error
    place: str | None = None  # where in the spec file
    expect: str = PROVEN  # the verdict the spec expects (a shipped mistake expects refuted)
    latex: str | None = None  # the claim as the user wrote it in LaTeX

    @property
    def statement(self) -> str:
        return f"{self.target} = {self.formula}"

    @property
    def ok(self) -> bool:
        """The verdict is the expected one (by default: proven)."""
        return self.verdict == self.expect

    def _repr_markdown_(self) -> str:  # Jupyter
        lines = [f"**{self.verdict}**: `{self.statement}`"]
        if self.diagnosis:
            lines.append(f"- diagnosis: {self.diagnosis}")
        if self.counterexample is not None:
            ce = self.counterexample
            lines.append(f"- counterexample at entry {list(ce.entry)}: claimed {ce.claimed}, true {ce.true}")
        if self.detail and self.verdict != PROVEN:
            lines.append(f"- {self.detail}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target, "formula": self.formula, "statement": self.statement,
            "verdict": self.verdict, "method": self.method, "entries": self.entries,
            "seconds": round(self.seconds, 4), "diagnosis": self.diagnosis,
            "counterexample": self.counterexample.as_json() if self.counterexample else None,
            "detail": self.detail, "expect": self.expect, "latex": self.latex,
        }
        if self.kind == "rule":
            out = {"layer": self.layer, "rule": self.rule, **out}
        return out


@dataclass(frozen=True)
class Report:
    """Everything derive established about one spec file."""

    file: str
    name: str
    sizes: list[int]
    batch: int
    parameters: int
    strategy: str
    assumptions: list[str] = field(default_factory=list)
    rules: list[Check] = field(default_factory=list)
    claims: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    conventions: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        out = {PROVEN: 0, REFUTED: 0, UNPROVEN: 0}
        for c in self.rules + self.claims:
            out[c.verdict] += 1
        return out

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.rules + self.claims)

    def _repr_markdown_(self) -> str:  # Jupyter
        s = self.summary()
        rows = ["| kind | statement | verdict |", "|---|---|---|"]
        rows += [f"| {c.kind} | `{c.statement}` | {c.verdict} |" for c in self.rules + self.claims]
        return (f"**{self.name}**: {s['proven']} proven, {s['refuted']} refuted, {s['unproven']} unproven\n\n"
                + "\n".join(rows))

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file, "name": self.name,
            "network": {
                "sizes": self.sizes, "batch": self.batch, "parameters": self.parameters,
                **self.conventions,
            },
            "strategy": self.strategy, "assumptions": self.assumptions,
            "rules": [c.as_json() for c in self.rules],
            "claims": [c.as_json() for c in self.claims],
            "summary": self.summary(), "seconds": round(self.seconds, 3),
        }
