"""Markdown: a report as a table, a check as a short paragraph (also Jupyter's view of both)."""

from __future__ import annotations

from derive.check.document import Document
from derive.records import PROVEN, Check, Report, show_markdown_with
from derive.render import words
from derive.render.base import Renderer


def check(c: Check) -> str:
    lines = [f"**{words.verdict_label(c)}**: `{c.statement}`"]
    if c.diagnosis:
        lines.append(f"- diagnosis: {c.diagnosis}")
    if c.counterexample is not None:
        ce = c.counterexample
        lines.append(f"- counterexample {words.at_entry(ce, c.entries == 1)} ({words.arithmetic(ce)})")
    if c.detail and c.verdict != PROVEN:
        lines.append(f"- {c.detail}")
    return "\n".join(lines)


def report(r: Report) -> str:
    rows = ["| kind | statement | verdict | why |", "|---|---|---|---|"]
    rows += [f"| {c.kind} | `{c.shown}` | {words.verdict_label(c)}{words.expectation(c)} | {_cell(words.why(c))} |"
             for c in r.rules + r.claims]
    return f"**{r.name}**: {words.counts(r)}\n\n" + "\n".join(rows) + f"\n\n{words.summary_line(r)}\n"


def _cell(text: str) -> str:
    """Text in a table cell: a pipe or a line break would end the cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def view(record: Check | Report) -> str:
    return check(record) if isinstance(record, Check) else report(record)


show_markdown_with(view)  # records show themselves in Jupyter through this module
from derive.render import html  # noqa: E402, F401  (and as HTML and LaTeX through that one)


class MarkdownRenderer(Renderer):
    name = "markdown"
    extension = ".md"
    description = "a Markdown table of every rule and claim"

    def render(self, document: Document) -> str:
        out = report(document.report)
        forms = [(c, document.true_forms[c.target]) for c in document.report.rules + document.report.claims
                 if c.verdict == "refuted" and c.target in document.true_forms]
        if forms:
            out += "\n" + "\n".join(f"- `{c.statement}` is refuted; true: `{form}`" for c, form in forms) + "\n"
        return out
