"""The derivation as a standalone LaTeX document (amsmath and amssymb only).

Renders :mod:`derive.check.document` sections; decides nothing about the mathematics.  Text that
comes from derive's own messages is escaped and its Unicode mathematics (Σ, ∂, ⊙, ...)
mapped to LaTeX; a user's LaTeX claim is shown through derive's own printer, never
pasted in, so nothing a spec says reaches pdflatex as a command.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import sympy

from derive.check.document import Document, Entry, Section, Statement, build
from derive.check.session import Derivation
from derive.errors import FormulaError
from derive.lang import formula as F
from derive.records import PROVEN, REFUTED, Check, Method, Report
from derive.render import words
from derive.render.base import Renderer
from derive.render.latex_printer import FormulaPrinter, expr_latex, symbol_latex
from derive.rules.identities import ALL_SIZES, IdentityResult
from derive.util.files import write_atomic

MAX_VALUES = 16
_UNICODE = {
    "Σ": r"$\Sigma$", "∂": r"$\partial$", "ℓ": r"$\ell$", "−": "-", "→": r"$\to$", "′": "'",
    "⊙": r"$\odot$", "⊗": r"$\otimes$", "ᵀ": r"$^\top$", "×": r"$\times$", "α": r"$\alpha$",
    "σ": r"$\sigma$", "δ": r"$\delta$", "…": r"\dots{}", "≤": r"$\leq$", "·": r"$\cdot$", "—": "---",
    "≥": r"$\geq$", "δ_": r"$\delta$", "²": r"$^2$", "₁": r"$_1$", "ⁿ": r"$^n$", "ᵏ": r"$^k$",
}
_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def tex_text(s: str) -> str:
    """Plain text → LaTeX text: specials escaped, Unicode mathematics mapped, rest dropped."""
    out = []
    for ch in s:
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append("?")
    return "".join(out).replace("--", "-{}-")


class _Writer:
    def __init__(self, doc: Document) -> None:
        self.shapes = doc.shapes
        self.notation = doc.notation
        self.printer = FormulaPrinter(doc.notation, self.is_scalar)

    def is_scalar(self, node: F.Node) -> bool:
        if isinstance(node, F.Num):
            return True
        if isinstance(node, F.Name):
            base = node.id[1:] if node.id.startswith("d") and node.id[1:] in self.shapes else node.id
            shape = self.shapes.get(base)
            return shape is None or shape == (1, 1)
        if isinstance(node, F.BinOp) and node.op == "/":
            return self.is_scalar(node.left) and self.is_scalar(node.right)
        return False

    def statement(self, target: str, formula: str) -> str:
        try:
            rhs = self.printer(F.parse(formula))
        except FormulaError:  # a backward block's lines (a loop, "a; b"): shown as code
            rhs = f"\\texttt{{{tex_text(formula)}}}"
        return f"{self.printer(F.parse(target))} = {rhs}"

    def verdict(self, c: Check) -> str:
        if c.verdict == PROVEN:
            how = "instance of the all-sizes identity" if c.method == Method.INSTANCE else \
                "the difference of every entry expands to exactly 0"
            entries = "the entry" if c.entries == 1 else f"all {c.entries} entries"
            return rf"$\checkmark$ \textbf{{proven}} for {entries} ({tex_text(how)})"
        mark = r"$\times$ \textbf{refuted}" if c.verdict == REFUTED else r"\textbf{unproven}"
        mark += tex_text(words.expectation(c))
        return mark

    def entry(self, e: Entry) -> str:
        show = symbol_latex if isinstance(e.lhs, sympy.Symbol) else expr_latex
        lhs = show(e.lhs, self.notation)
        rhs = expr_latex(e.rhs, self.notation)
        body = f"{lhs} = {rhs}"
        math = f"\\[ {body} \\]\n" if len(rhs) < 160 else f"\\begin{{multline*}}\n{body}\n\\end{{multline*}}\n"
        return math + f"\\noindent\\emph{{{tex_text(e.why)}}}\\par\\medskip\n"

    def item(self, it: Entry | Statement) -> str:
        if isinstance(it, Entry):
            return self.entry(it)
        out = f"\\[ {self.statement(it.target, it.formula)} \\]\n"
        if it.why:
            out += f"\\noindent {tex_text(it.why)}\\par\n"
        if it.check is not None:
            out += f"\\noindent {self.verdict(it.check)}\\par\\medskip\n"
        return out

    def identity(self, r: IdentityResult) -> str:
        mark = r"$\checkmark$ \textbf{" + tex_text(r.verdict) + "}" if r.verdict == ALL_SIZES else \
            r"$\times$ \textbf{" + tex_text(r.verdict) + "}"
        out = f"\\paragraph{{{tex_text(r.statement)}}} {mark}\n"
        if r.steps:
            out += "\\begin{enumerate}\n" + "".join(f"\\item {tex_text(s)}\n" for s in r.steps) + "\\end{enumerate}\n"
        if r.counterexample:
            out += f"Counterexample: {tex_text(r.counterexample)}.\n"
        return out

    def claim(self, c: Check) -> str:
        out = f"\\[ {self.statement(c.target, c.formula)} \\]\n\\noindent {self.verdict(c)}\\par\n"
        if c.diagnosis:
            out += f"\\noindent Diagnosis: {tex_text(c.diagnosis)}.\\par\n"
        if c.detail and c.verdict != PROVEN:
            out += f"\\noindent {tex_text(c.detail)}\\par\n"
        ce = c.counterexample
        if ce is not None:
            i, j = ce.entry
            how = words.arithmetic(ce)
            out += (f"\\noindent Counterexample ({tex_text(how)}): at entry $[{i},{j}]$ the claim gives "
                    f"${tex_text(ce.claimed)}$ and the true value is ${tex_text(ce.true)}$, with\\par\n")
            values = list(ce.values.items())
            cells = [f"${symbol_latex(sympy.Symbol(k), self.notation)}$ & ${tex_text(v)}$"
                     for k, v in values[:MAX_VALUES]]
            rows = [" & ".join(cells[i:i + 4]) + " \\\\" for i in range(0, len(cells), 4)]
            out += ("\\begin{center}\\small\\begin{tabular}{llllllll}\n" + "\n".join(rows)
                    + "\n\\end{tabular}\\end{center}\n")
            if len(values) > MAX_VALUES:
                out += f"\\noindent and {len(values) - MAX_VALUES} more values (derive check --json lists all).\\par\n"
        return out + "\\medskip\n"

    def section(self, number: int, s: Section) -> str:
        out = f"\\section*{{{number}. {tex_text(s.title)}}}\n"
        for t in s.text:
            out += f"{tex_text(t)}\n\n"
        out += "".join(self.item(it) for it in s.items)
        out += "".join(self.identity(r) for r in s.identities)
        out += "".join(self.claim(c) for c in s.claims)
        return out


def document(d: Derivation, report: Report, notation: str = "default") -> str:
    """The whole document as LaTeX source."""
    return LatexRenderer().render(build(d, report, sections=True, notation=notation))


class LatexRenderer(Renderer):
    """A standalone LaTeX document (amsmath and amssymb only): the derivation written out."""

    name = "latex"
    extension = ".tex"
    description = "a standalone LaTeX document of the derivation"
    needs_sections = True

    def render(self, document: Document) -> str:
        return _source(document)


def _source(doc: Document) -> str:
    report = doc.report
    r = _Writer(doc)
    body = "".join(r.section(k, s) for k, s in enumerate(doc.sections or [], start=1))
    return (
        "\\documentclass[11pt]{article}\n\\usepackage{amsmath}\n\\usepackage{amssymb}\n"
        "\\allowdisplaybreaks\n\\setlength{\\parindent}{0pt}\n"
        f"\\title{{{tex_text(report.name)}}}\n\\author{{derive}}\n\\date{{}}\n"
        "\\begin{document}\n\\maketitle\n"
        f"\\noindent {tex_text(words.counts(report))}.\\par\n"
        f"{body}\\end{{document}}\n"
    )


class PdfError(RuntimeError):
    """pdflatex is missing or failed; the message says which."""


def write(d: Derivation, report: Report, path: str | Path, pdf: bool = False, notation: str = "default") -> Path | None:
    """Write the .tex (atomically); with ``pdf``, also compile it next to it."""
    source = document(d, report, notation)
    write_atomic(path, source)
    if not pdf:
        return None
    return compile_pdf(Path(path))


def compile_pdf(tex: Path) -> Path:
    exe = shutil.which("pdflatex")
    if exe is None:
        raise PdfError("pdflatex is not on PATH: install TeX Live (Debian: texlive-latex-base "
                       "texlive-latex-recommended) or drop --pdf; the .tex file was written")
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                              f"-output-directory={tmp}", str(tex.resolve())],
                             capture_output=True, text=True, timeout=300)
        produced = Path(tmp) / (tex.stem + ".pdf")
        if run.returncode != 0 or not produced.exists():
            error = next((line for line in run.stdout.splitlines() if line.startswith("!")), "unknown error")
            raise PdfError(f"pdflatex failed on {tex}: {error}")
        target = tex.with_suffix(".pdf")
        write_atomic(target, produced.read_bytes())
    return target
