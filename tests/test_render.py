"""Output formats: one Renderer subclass each, chosen by name from one registry, all working
from the same report document and taking every phrase from render/words.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT
from rich.console import Console

import derive
from derive.check.document import Document, build
from derive.records import PROVEN, REFUTED, Check, Counterexample, Method, ProofStep, Report
from derive.render import base, formats, words

RENDER = ROOT / "derive" / "render"


@pytest.fixture(scope="module")
def checked() -> tuple[derive.Derivation, Report]:
    d = derive.load(ROOT / "derivations" / "two_layer_classifier.yaml")
    return d, d.report()


def test_registry_has_every_format() -> None:
    assert formats.names() == ["html", "json", "latex", "markdown", "terminal", "text"]
    for name in formats.names():
        r = formats.get(name)
        assert isinstance(r, base.Renderer) and r.name == name and r.extension.startswith(".")
    with pytest.raises(KeyError, match="unknown output format 'yaml' .expected one of: html, json, latex"):
        formats.get("yaml")


def test_a_new_format_is_one_subclass() -> None:
    class Names(base.Renderer):
        name = "names-only"
        extension = ".txt"

        def render(self, document: Document) -> str:
            return "\n".join(c.statement for c in document.report.claims)

    try:
        assert "names-only" in formats.names()
        doc = Document(Report("f.yaml", "n", [1], 1, 1, "t", claims=[
            Check("claim", "dW1", "dZ1 @ X.T", PROVEN, Method.EXACT, 1, 0.0)]))
        assert formats.get("names-only").render(doc) == "dW1 = dZ1 @ X.T"
        with pytest.raises(ValueError, match="two output formats named 'names-only'"):
            type("Again", (base.Renderer,), {"name": "names-only", "extension": ".x", "render": Names.render})
    finally:
        base.REGISTRY.pop("names-only", None)


def test_every_format_renders_the_same_document(checked: tuple[derive.Derivation, Report]) -> None:
    d, report = checked
    doc = build(d, report, sections=True)
    out = {name: formats.get(name).render(doc) for name in formats.names()}
    assert json.loads(out["json"])["summary"] == report.summary()
    assert "| claim | `dZ2 = A2 - Y` | refuted (expected) |" in out["markdown"]
    assert out["text"] == words.summary_line(report)  # everything as expected: nothing to write out
    assert "\\begin{document}" in out["latex"] and words.counts(report) in out["latex"]
    assert out["html"].startswith("<!DOCTYPE html>") and words.counts(report) in out["html"]
    assert out["html"].index("Refuted and unproven (1)") < out["html"].index("3. Backward pass, layer 2")
    console = Console(width=120, color_system=None, record=True)
    console.print(out["terminal"])
    shown = console.export_text()
    assert words.summary_line(report) in shown and "3. Backward pass, layer 2" in shown
    for text in (out["markdown"], out["text"], shown):
        assert "15 rules proven. 7 claims: 6 proven, 1 refuted as expected." in text


def test_json_keeps_its_text_and_adds_codes(checked: tuple[derive.Derivation, Report]) -> None:
    _, report = checked
    doc = json.loads(formats.get("json").render(Document(report)))
    rule = doc["rules"][0]
    assert re.fullmatch(r"exact: difference expands to 0 \(.+; sympy\.diff of the whole composed cost\)",
                        rule["method"]), rule["method"]
    assert rule["codes"]["method"] == "exact" and rule["codes"]["step"] in {str(s) for s in ProofStep}
    wrong = next(c for c in doc["claims"] if c["verdict"] == "refuted")
    assert wrong["method"] in ("counterexample (exact rational arithmetic)",
                               "counterexample (interval arithmetic (200 bits))")
    assert wrong["counterexample"]["arithmetic"] in ("exact rational", "interval (200 bits)")
    assert wrong["codes"]["diagnosis"] == "per-example" and wrong["diagnosis"].startswith("off by a factor 1/m")


def test_text_writes_out_what_failed(checked: tuple[derive.Derivation, Report]) -> None:
    d, _ = checked
    wrong = d.check_claim("dZ2", "A2 - Y")
    report = Report("f.yaml", "n", [2, 4, 1], 3, 17, "t", claims=[wrong])
    text = formats.get("text").render(Document(report, true_forms={"dZ2": "dZ2 = (A2 - Y) / m"}))
    lines = text.splitlines()
    assert lines[:3] == ["claim dZ2 = A2 - Y is refuted", "  claimed: dZ2 = A2 - Y", "  true:    dZ2 = (A2 - Y) / m"]
    assert lines[3].startswith("  diagnosis: off by a factor 1/m")
    assert lines[-3].startswith("  method: counterexample (") and lines[-1] == "1 claim: 1 refuted."


@pytest.mark.parametrize("method, text", [
    (Method.COUNTEREXAMPLE_EXACT, "counterexample (exact rational arithmetic)"),
    (Method.COUNTEREXAMPLE_INTERVAL, "counterexample (interval arithmetic (200 bits))"),
    (Method.UNDEFINED_EXACT, "counterexample: undefined on a set of positive measure (exact rational arithmetic)"),
    (Method.EXACT_ALMOST_EVERYWHERE, "exact almost everywhere: equal off the kinks"),
    (Method.TIMEOUT, "timeout"), (Method.LIMIT, "limit"), (Method.SHAPES, "shapes"),
])
def test_method_text_is_what_it_always_was(method: Method, text: str) -> None:
    c = Check("claim", "dW1", "W1", REFUTED, method, 1, 0.0)
    assert words.method_text(c) == text


def test_undefined_is_told_by_its_code_not_its_text() -> None:
    ce = Counterexample({"x": "1"}, (0, 0), "-1/2", "1", True)  # a claimed value that says nothing
    c = Check("claim", "dW1", "W1 / x", REFUTED, Method.UNDEFINED_EXACT, 1, 0.0, counterexample=ce)
    assert words.counterexample_line(c, 8) == " is undefined on an open set of inputs (exact) around x = 1"
    c = Check("claim", "dW1", "W1 / x", REFUTED, Method.COUNTEREXAMPLE_EXACT, 1, 0.0, counterexample=ce)
    assert words.counterexample_line(c, 8) == " is false (exact) at x = 1"


def test_each_phrase_is_written_once() -> None:
    """The arithmetic and cost phrases live in words.py only (there were five copies)."""
    phrases = ["exact rational arithmetic", "interval arithmetic (200 bits)", "certified by interval arithmetic",
               "J = (1/m) Σ ℓ (averaged)", " (expected)"]
    sources = {p.name: p.read_text() for p in [*RENDER.glob("*.py"), ROOT / "derive" / "testing.py",
                                                ROOT / "derive" / "cli.py", ROOT / "derive" / "records.py"]}
    for phrase in phrases:
        where = sorted(name for name, text in sources.items() if phrase in text)
        assert where == ["words.py"], (phrase, where)


def test_jupyter_views_come_from_the_markdown_renderer(checked: tuple[derive.Derivation, Report]) -> None:
    d, report = checked
    from derive.render import markdown

    assert report._repr_markdown_() == markdown.report(report)
    c = d.check_claim("dZ2", "A2 - Y")
    assert c._repr_markdown_() == markdown.check(c)


def test_files_get_the_extension_of_their_format(tmp_path: Path) -> None:
    assert {n: formats.get(n).extension for n in formats.names()} == {
        "html": ".html", "json": ".json", "latex": ".tex", "markdown": ".md", "terminal": ".txt", "text": ".txt"}
