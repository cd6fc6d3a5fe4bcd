"""The ``terminal`` output format: rich renderables for reports.  No mathematics here: it
only reads records, and takes its words from :mod:`derive.render.words`.

Built here, printed by :mod:`derive.cli`.  Tests render at a fixed width with colour off.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from derive.check.document import Document, Entry, Section, Statement
from derive.records import PROVEN, REFUTED, UNPROVEN, Check, Report
from derive.render import readable, words
from derive.render.base import Renderer
from derive.rules.identities import ALL_SIZES, IdentityResult
from derive.util.text import printable

STYLE = {PROVEN: "bold green", REFUTED: "bold red", UNPROVEN: "bold yellow"}
MAX_VALUES = 8


def _text(value: str, style: str = "") -> Text:
    """Untrusted text (a spec's names, claims, LaTeX) as a Text: never read as rich markup,
    control characters escaped (an ESC in a spec name must not reach the terminal)."""
    return Text(printable(value, keep_newlines=True), style=style)


def verdict_text(c: Check) -> Text:
    return Text(words.verdict_label(c), style=STYLE.get(c.verdict, ""))


def header(report: Report) -> Text:
    t = Text()
    t.append(printable(report.name), style="bold")
    t.append(printable(words.header(report)))
    return t


def conventions(report: Report) -> Text:
    return _text("\n".join(words.conventions(report)), style="dim")


def rules_table(checks: list[Check]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    columns: tuple[tuple[str, dict[str, Any]], ...] = (
        ("layer", {"justify": "right"}), ("rule", {}), ("statement", {}), ("entries", {"justify": "right"}),
        ("verdict", {}), ("time", {"justify": "right"}))
    for col, kw in columns:
        t.add_column(col, **kw)
    for c in checks:
        t.add_row(str(c.layer) if c.layer else "", _text(c.rule or ""), _text(c.shown), str(c.entries),
                  verdict_text(c), words.seconds(c.seconds))
    return t


def claims_table(checks: list[Check]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("claim", "verdict", "why"):
        t.add_column(col)
    for c in checks:
        v = verdict_text(c)
        v.append(words.expectation(c), style="dim")
        t.add_row(_text(c.statement + (f"\n  from {c.latex}" if c.latex else "")), v, _text(words.why(c) or ""))
    return t


def counterexamples(checks: list[Check], true_forms: dict[str, str] | None = None) -> RenderableType | None:
    lines = Text()
    forms = true_forms or {}
    for c in checks:
        line = words.counterexample_line(c, MAX_VALUES)
        if line is None:
            continue
        lines.append(printable(c.statement), style="bold")
        lines.append(printable(line) + "\n")
        if c.target in forms:
            lines.append(f"  true: {printable(forms[c.target])}\n", style="green")
    return lines if lines.plain else None


def render(report: Report, true_forms: dict[str, str] | None = None) -> Group:
    parts: list[RenderableType] = [header(report), conventions(report)]
    if report.rules:
        parts.append(rules_table(report.rules))
    if report.claims:
        parts.append(claims_table(report.claims))
        ce = counterexamples(report.claims, true_forms)
        if ce is not None:
            parts.append(ce)
    parts.append(_text(words.summary_line(report)))
    return Group(*parts)


class TerminalRenderer(Renderer):
    """The report as rich tables; with the document's sections, the derivation after it."""

    name = "terminal"
    extension = ".txt"
    description = "tables for a terminal (the default)"

    def render(self, document: Document) -> Group:
        parts: list[RenderableType] = [render(readable.report(document), readable.true_forms(document))]
        if document.sections is not None:
            parts.append(explanation(document.sections))
        return Group(*parts)


def identities(results: list[IdentityResult], sizes: dict[str, int], limit: int) -> Group:
    """The vec/Kronecker identities with their verdicts and index-calculus steps."""
    parts: list[RenderableType] = []
    for r in results:
        t = Text()
        style = "bold green" if r.verdict == ALL_SIZES else "bold red" if r.verdict == REFUTED else "bold yellow"
        t.append(f"{r.statement}", style="bold")
        t.append("  ")
        t.append(r.verdict, style=style)
        for k, step in enumerate(r.steps, start=1):
            t.append(f"\n  {k}. {step}")
        if r.counterexample:
            t.append(f"\n  counterexample: {r.counterexample}")
        if r.name in sizes:
            t.append(f"\n  also checked with symbolic entries at all {sizes[r.name]} size combinations up to {limit}",
                     style="dim")
        parts.append(t)
        parts.append(Text(""))
    proven = sum(1 for r in results if r.verdict == ALL_SIZES)
    refuted = sum(1 for r in results if r.verdict == REFUTED)
    parts.append(Text(f"{proven} identities proven for all sizes; {refuted} wrong variants refuted."))
    return Group(*parts)


def explanation(sections: list[Section]) -> Group:
    """``--explain``: the same sections as the LaTeX document, as terminal text."""

    parts: list[RenderableType] = []
    for k, s in enumerate(sections, start=1):
        parts.append(_text(f"\n{k}. {s.title}", style="bold underline"))
        for t in s.text:
            parts.append(_text(t))
        for code in s.code:  # the user's own code, as written (never markup)
            parts.append(_text(f"  {code}", style="cyan"))
        for it in s.items:
            if isinstance(it, Entry):
                parts.append(_text(f"  {it.lhs} = {it.rhs}"))
                parts.append(_text(f"      {it.why}", style="dim"))
            elif isinstance(it, Statement):
                line = _text(f"  {it.target} = {it.formula}")
                if it.check is not None:
                    line.append("   ")
                    line.append_text(verdict_text(it.check))
                    if it.check.verdict == PROVEN:
                        line.append(printable(f" for {words.count(it.check.entries, 'entry')}"), style="dim")
                parts.append(line)
                if it.why:
                    parts.append(_text(f"      {it.why}", style="dim"))
        for r in s.identities:
            parts.append(_text(f"  {r.statement}: {r.verdict}"))
        for c in s.claims:
            line = _text(f"  {c.statement}   ")
            line.append_text(verdict_text(c))
            parts.append(line)
            detail = words.why(c)
            if detail and c.verdict != PROVEN:
                parts.append(_text(f"      {detail}", style="dim"))
    return Group(*parts)
