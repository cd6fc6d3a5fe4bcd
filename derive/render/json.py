"""JSON: one object per spec file, one line (``derive check --json``).

The keys and text values are a public format (README): codes serialise as their text,
and ``method`` is written from the method code by :func:`derive.render.words.method_text`.
"""

from __future__ import annotations

import json
from typing import Any

from derive.check.document import Document
from derive.records import Check, Counterexample, Report
from derive.render import words
from derive.render.base import Renderer


def counterexample(ce: Counterexample) -> dict[str, Any]:
    return {
        "values": dict(ce.values), "entry": list(ce.entry),
        "claimed": ce.claimed, "true": ce.true,
        "arithmetic": words.ARITHMETIC_JSON[ce.exact],
    }


def check(c: Check) -> dict[str, Any]:
    out: dict[str, Any] = {
        "target": c.target, "formula": c.formula, "statement": c.statement,
        "verdict": str(c.verdict), "method": words.method_text(c), "entries": c.entries,
        "seconds": round(c.seconds, 4), "diagnosis": c.diagnosis,
        "counterexample": counterexample(c.counterexample) if c.counterexample else None,
        "detail": c.detail, "expect": str(c.expect), "latex": c.latex,
        "codes": {
            "method": str(c.method), "step": None if c.step is None else str(c.step),
            "diagnosis": None if c.finding is None else str(c.finding.code),
        },
    }
    if c.kind == "rule":
        out = {"layer": c.layer, "rule": c.rule, **out}
    return out


def report(r: Report) -> dict[str, Any]:
    return {
        "file": r.file, "name": r.name,
        "network": {"sizes": r.sizes, "batch": r.batch, "parameters": r.parameters, **r.conventions},
        "strategy": r.strategy, "assumptions": r.assumptions,
        "rules": [check(c) for c in r.rules],
        "claims": [check(c) for c in r.claims],
        "summary": r.summary(), "seconds": round(r.seconds, 3),
    }


class JsonRenderer(Renderer):
    name = "json"
    extension = ".json"
    description = "one JSON object per file, one line"

    def render(self, document: Document) -> str:
        out = report(document.report)
        for c in out["rules"] + out["claims"]:  # what the right statement is, for each one found wrong
            if c["verdict"] == "refuted":
                c["true_form"] = document.true_forms.get(c["target"])
        return json.dumps(out, ensure_ascii=False)
