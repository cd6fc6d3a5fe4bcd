"""The report as one self-contained HTML page: the LaTeX document's content, typeset in the browser.

``derive check FILE --html report.html`` and ``derive report FILE -o report.html`` write it.
The page carries everything it needs: KaTeX (vendored from npm, see
``assets/katex/SOURCE.md``), its stylesheet and fonts (as data: URLs) are embedded, so it
renders with no network when viewed.  Its parts:

- the summary, then the refuted and unproven statements first, each with its diagnosis and
  its counterexample as a table;
- the derivation's sections (conventions, forward pass, each layer's backward pass, the
  vec/Kronecker forms, the claims) as collapsible ``<details>``.

Mathematics is the LaTeX of :mod:`derive.render.latex_printer` (the same as the PDF) in
``<span class="math">\\(…\\)</span>``: HTML-escaped like every other text, so no name or
claim in a spec can inject markup or script.  :func:`fragment` is the page without the
script and styles (what Jupyter shows: its own MathJax typesets the ``\\(…\\)``).
"""

from __future__ import annotations

import base64
import functools
import html
import re
from pathlib import Path

from derive.check.document import Document, Entry, Section, Statement, build
from derive.check.session import Derivation
from derive.lang import formula as F
from derive.records import PROVEN, REFUTED, Check, Method, Report, show_with
from derive.render import words
from derive.render.base import Renderer
from derive.render.latex import _Writer
from derive.render.latex_printer import FormulaPrinter, symbol_latex
from derive.render.prose import index_segments, name_segments
from derive.rules.identities import ALL_SIZES, IdentityResult
from derive.util.files import write_atomic

ASSETS = Path(__file__).parent / "assets" / "katex"
MAX_VALUES = 64

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:58rem;margin:2rem auto;padding:0 1rem;
 color:#1b1f24;line-height:1.5}
h1{margin-bottom:.2rem}.summary{color:#57606a;margin-top:0}
details{border:1px solid #d0d7de;border-radius:6px;margin:.8rem 0;padding:.2rem .9rem}
summary{cursor:pointer;font-weight:600;font-size:1.1rem;padding:.4rem 0}
.item{margin:.6rem 0 .9rem}.math.display{display:block;overflow-x:auto;overflow-y:hidden;margin:.3rem 0}
.why{color:#57606a;font-style:italic}
.verdict{font-weight:600}.proven{color:#1a7f37}.refuted{color:#cf222e}.unproven{color:#9a6700}
.failures{border:2px solid #cf222e;border-radius:6px;padding:.2rem .9rem;margin:1rem 0}
.failures h2{color:#cf222e;font-size:1.15rem}
table.values{border-collapse:collapse;margin:.4rem 0}table.values td,table.values th{border:1px solid #d0d7de;
 padding:.15rem .6rem;text-align:left}table.values th{background:#f6f8fa}
table.checks{border-collapse:collapse;width:100%}table.checks td,table.checks th{border-bottom:1px solid #d0d7de;
 padding:.3rem .4rem;text-align:left;vertical-align:top}
ol.steps li{margin:.25rem 0}.math-error{color:#cf222e}
"""

SCRIPT = """
(function () {
  var failed = 0;
  document.querySelectorAll(".math").forEach(function (el) {
    var tex = el.textContent.slice(2, -2);
    try {
      katex.render(tex, el, {displayMode: el.classList.contains("display"), throwOnError: true, strict: "ignore"});
    } catch (e) {
      failed += 1;
      el.classList.add("math-error");
      console.error("derive: could not typeset " + tex + ": " + e.message);
    }
  });
  document.body.setAttribute("data-typeset", failed ? "failed" : "done");
})();
"""


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def math(tex: str, display: bool = False) -> str:
    """A formula in LaTeX, escaped, in the delimiters the page's script (or Jupyter) typesets."""
    if display:
        return f'<span class="math display">{esc(chr(92) + "[" + tex + chr(92) + "]")}</span>'
    return f'<span class="math">{esc(chr(92) + "(" + tex + chr(92) + ")")}</span>'


def verdict(c: Check) -> str:
    label = words.verdict_label(c) + words.expectation(c)
    mark = "✓ " if c.verdict == PROVEN else "✗ " if c.verdict == REFUTED else ""
    return f'<span class="verdict {esc(str(c.verdict))}">{esc(mark + label)}</span>'


class _Html:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.tex = _Writer(doc)

    def prose(self, text: str) -> str:
        return "".join(esc(piece) if kind == "text" else math(self.tex.name(piece))
                       for kind, piece in name_segments(text, self.tex.is_name))

    def statement(self, c: Check) -> str:
        try:
            return math(self.tex.statement(c.target, c.formula, c), display=True)
        except Exception:  # a statement the printer cannot read (a shape error's text): as written
            return f"<code>{esc(c.shown)}</code>"

    def proven_how(self, c: Check) -> str:
        if c.verdict != PROVEN:
            return ""
        if c.method == Method.INSTANCE:
            return " (an instance of an identity proven for all sizes)"
        return "" if c.entries == 1 else f" for all {c.entries} entries"

    def check(self, c: Check, statement: bool = True) -> str:
        out = [self.statement(c)] if statement else []
        out.append(f"<div>{verdict(c)}{esc(self.proven_how(c))}</div>")
        if c.latex:
            out.append(f'<div class="why">as written: <code>{esc(c.latex)}</code></div>')
        if c.diagnosis:
            out.append(f"<div>Diagnosis: {self.prose(c.diagnosis)}.</div>")
        if c.detail and c.verdict != PROVEN:
            out.append(f"<div>{self.prose(c.detail)}</div>")
        ce = c.counterexample
        if ce is not None:
            where = "" if c.entries == 1 else f" at entry [{ce.entry[0]},{ce.entry[1]}]"
            out.append(f"<div>Counterexample ({esc(words.arithmetic(ce))}){esc(where)}: the claim gives "
                       f"<code>{esc(ce.claimed)}</code>, the true value is <code>{esc(ce.true)}</code>, with</div>")
            cells = [f"<td>{math(self.tex.name(k))}</td><td><code>{esc(v)}</code></td>"
                     for k, v in list(ce.values.items())[:MAX_VALUES]]
            per = min(4, len(cells)) or 1
            rows = "".join("<tr>" + "".join(cells[i:i + per]) + "</tr>" for i in range(0, len(cells), per))
            head = "<tr>" + "<th>symbol</th><th>value</th>" * per + "</tr>"
            more = len(ce.values) - MAX_VALUES
            out.append(f'<table class="values">{head}{rows}</table>'
                       + (f"<div>and {more} more values (derive check --json lists all)</div>" if more > 0 else ""))
        return '<div class="item">' + "".join(out) + "</div>"

    def item(self, it: Entry | Statement) -> str:
        if isinstance(it, Entry):
            from derive.render.latex_printer import expr_latex

            show = symbol_latex if hasattr(it.lhs, "name") else expr_latex
            body = f"{show(it.lhs, self.doc.notation, self.doc.loss)} = " \
                   f"{expr_latex(it.rhs, self.doc.notation, self.doc.loss)}"
            return f'<div class="item">{math(body, True)}<div class="why">{self.prose(it.why)}</div></div>'
        out = math(self.tex.statement(it.target, it.formula, it.check), display=True)
        if it.why:
            out += f'<div class="why">{self.prose(it.why)}</div>'
        if it.check is not None:
            out += f"<div>{verdict(it.check)}{esc(self.proven_how(it.check))}</div>"
        return f'<div class="item">{out}</div>'

    def identity(self, r: IdentityResult) -> str:
        cls = "proven" if r.verdict == ALL_SIZES else "refuted"
        out = (f'<div class="item"><div>{index_html(r.statement)} '
               f'<span class="verdict {cls}">{esc(r.verdict)}</span></div>')
        if r.steps:
            out += '<ol class="steps">' + "".join(f"<li>{index_html(s)}</li>" for s in r.steps) + "</ol>"
        if r.counterexample:
            out += f"<div>Counterexample: {esc(r.counterexample)}.</div>"
        return out + "</div>"

    def section(self, number: int, s: Section, opened: bool = True) -> str:
        body = "".join(f"<p>{self.prose(t)}</p>" for t in s.text)
        if s.code:
            body += "<pre>" + "\n".join(esc(line) for line in s.code) + "</pre>"
        body += "".join(self.item(it) for it in s.items)
        body += "".join(self.identity(r) for r in s.identities)
        body += "".join(self.check(c) for c in s.claims)
        return f"<details{' open' if opened else ''}><summary>{number}. {esc(s.title)}</summary>{body}</details>"

    def failures(self) -> str:
        report = self.doc.report
        failed = [c for c in report.claims + report.rules if c.verdict != PROVEN]
        if not failed:
            return ""
        items = "".join(self.check(c) for c in failed)
        return f'<section class="failures"><h2>Refuted and unproven ({len(failed)})</h2>{items}</section>'

    def table(self, checks: list[Check], title: str) -> str:
        rows = "".join(f"<tr><td>{self.statement(c)}</td><td>{verdict(c)}</td><td>{self.prose(words.why(c))}</td></tr>"
                       for c in checks)
        return (f"<details open><summary>{esc(title)} ({len(checks)})</summary><table class=\"checks\">"
                f"<tr><th>statement</th><th>verdict</th><th>why</th></tr>{rows}</table></details>")

    def body(self) -> str:
        report = self.doc.report
        out = [f"<h1>{esc(report.name)}</h1>",
               f'<p class="summary">{esc(words.summary_line(report))} ({esc(words.counts(report))}; '
               f"{esc(report.file)})</p>", self.failures()]
        if self.doc.sections is not None:
            out += [self.section(k, s, opened=not s.identities)
                    for k, s in enumerate(self.doc.sections, start=1)]
        else:
            if report.rules:
                out.append(self.table(report.rules, "Rules"))
            if report.claims:
                out.append(self.table(report.claims, "Claims"))
        return "\n".join(x for x in out if x)


def index_html(text: str) -> str:
    return "".join(esc(piece) if kind == "text" else math(piece) for kind, piece in index_segments(text))


@functools.lru_cache(maxsize=1)
def _assets() -> tuple[str, str]:
    """KaTeX's script, and its stylesheet with every font embedded as a data: URL."""
    script = (ASSETS / "katex.min.js").read_text()
    css = (ASSETS / "katex.min.css").read_text()

    def embed(m: re.Match[str]) -> str:
        data = base64.b64encode((ASSETS / m.group(1)).read_bytes()).decode()
        return f"url(data:font/woff2;base64,{data})"

    return script, re.sub(r"url\((fonts/KaTeX_[A-Za-z0-9-]+\.woff2)\)", embed, css)


def fragment(doc: Document) -> str:
    """The report's body, without script or styles (Jupyter typesets the mathematics)."""
    return f'<div class="derive-report">{_Html(doc).body()}</div>'


def page(doc: Document) -> str:
    """A standalone HTML page: the body, the styles, KaTeX and its fonts, all inline."""
    script, css = _assets()
    title = esc(doc.report.name)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="derive"><title>{title} — derive</title>'
            f"<style>{css}</style><style>{STYLE}</style></head>\n<body>\n{_Html(doc).body()}\n"
            f"<script>{script}</script><script>{SCRIPT}</script></body></html>\n")


class HtmlRenderer(Renderer):
    """The derivation as one self-contained HTML page (KaTeX embedded)."""

    name = "html"
    extension = ".html"
    description = "a self-contained HTML page of the derivation (math by embedded KaTeX)"
    needs_sections = True

    def render(self, document: Document) -> str:
        return page(document)


def write(d: Derivation, report: Report, path: str | Path, notation: str | None = None) -> None:
    write_atomic(path, page(build(d, report, sections=True, notation=notation)))


# ------------------------------------------------------------------ Jupyter

def check_html(c: Check) -> str:
    """A check on its own (no network at hand: default notation, products as written)."""
    return f'<div class="derive-check">{_Html(Document(Report("", "", [], 0, 0, ""))).check(c)}</div>'


def check_latex(c: Check) -> str:
    p = FormulaPrinter()
    try:
        body = f"{p(F.parse(c.target))} = {p(F.parse(c.formula))}"
    except Exception:
        body = r"\text{" + re.sub(r"[^A-Za-z0-9 =+*/().,-]", "", c.statement) + "}"
    return rf"$\displaystyle {body} \quad \text{{({words.verdict_label(c)})}}$"


def report_html(r: Report) -> str:
    return fragment(Document(r))


def report_latex(r: Report) -> str:
    lines = [check_latex(c)[1:-1].replace(r"\displaystyle ", "") for c in r.rules + r.claims]
    return "$$\\begin{aligned}" + r" \\ ".join(line.replace(" = ", " &= ", 1) for line in lines) + r"\end{aligned}$$"


def derivation_html(d: Derivation) -> str:
    """A loaded derivation, not yet checked: its network, forward pass and claims."""
    from derive.check.document import forward

    doc = build_unchecked(d)
    w = _Html(doc)
    claims = "".join(f"<li>{math(w.tex.statement(c.target, c.formula), True)}</li>" for c in d.claims)
    return (f'<div class="derive-derivation"><h3>{esc(d.spec.name)}</h3>'
            f"{w.section(1, forward(d))}"
            f"<p>{len(d.claims)} claims, {len(d.rules())} rules to check (<code>d.report()</code> checks them):</p>"
            f"<ol>{claims}</ol></div>")


def derivation_latex(d: Derivation) -> str:
    from derive.check.document import forward

    w = _Html(build_unchecked(d)).tex
    lines = [w.statement(it.target, it.formula) for it in forward(d).items if isinstance(it, Statement)]
    return "$$\\begin{aligned}" + r" \\ ".join(line.replace(" = ", " &= ", 1) for line in lines) + r"\end{aligned}$$"


def build_unchecked(d: Derivation) -> Document:
    empty = Report(d.spec.file, d.spec.name, list(d.spec.sizes), d.spec.batch, d.net.parameter_count, "")
    return build(d, empty)


show_with("html", lambda record: check_html(record) if isinstance(record, Check) else report_html(record))
show_with("latex", lambda record: check_latex(record) if isinstance(record, Check) else report_latex(record))
show_with("derivation html", derivation_html)
show_with("derivation latex", derivation_latex)
