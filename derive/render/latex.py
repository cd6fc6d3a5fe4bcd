"""The derivation as a standalone LaTeX document (amsmath and amssymb only).

Renders :mod:`derive.check.document` sections; decides nothing about the mathematics.  Text that
comes from derive's own messages is escaped and its Unicode mathematics (Σ, ∂, ⊙, ...)
mapped to LaTeX; a user's LaTeX claim is shown through derive's own printer, never
pasted in, so nothing a spec says reaches pdflatex as a command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import sympy

from derive.check.document import Document, Entry, Section, Statement, build
from derive.check.session import Derivation
from derive.records import PROVEN, REFUTED, Check, Method, Report
from derive.render import words
from derive.render.base import Renderer
from derive.render.latex_printer import (
    FormulaPrinter,
    expr_latex,
    parsed_or_verbatim,
    scalar_test,
    symbol_latex,
    verbatim,
)
from derive.render.prose import index_segments, name_segments
from derive.render.readable import readable_tree
from derive.rules.identities import ALL_SIZES, IdentityResult
from derive.util.files import write_atomic

MAX_VALUES = 16
_UNICODE = {
    "Σ": r"$\Sigma$", "∂": r"$\partial$", "ℓ": r"$\ell$", "−": "-", "→": r"$\to$", "′": "'",
    "⊙": r"$\odot$", "⊗": r"$\otimes$", "ᵀ": r"$^\top$", "×": r"$\times$", "α": r"$\alpha$",
    "σ": r"$\sigma$", "δ": r"$\delta$", "…": r"\dots{}", "≤": r"$\leq$", "·": r"$\cdot$", "—": "---",
    "≥": r"$\geq$", "δ_": r"$\delta$", "²": r"$^2$", "₁": r"$_1$", "ⁿ": r"$^n$", "ᵏ": r"$^k$",
    "°": r"$^\circ$", "√": r"$\surd$",
}
_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:/\d+)?(?:e-?\d+)?$")


def value_tex(text: str) -> str:
    """A value of a counterexample: a number in math mode (a true minus sign), else text."""
    return f"${text}$" if _NUMBER.match(text) else tex_text(text)


def index_tex(text: str) -> str:
    """An index-calculus step (derive.rules.identities) with its mathematics typeset."""
    return "".join(tex_text(piece) if kind == "text" else f"${piece}$" for kind, piece in index_segments(text))


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
        self.loss = doc.loss
        self.doc = doc
        self.is_scalar = scalar_test(doc.shapes)
        self.printer = FormulaPrinter(doc.notation, self.is_scalar, doc.loss)

    def is_name(self, text: str) -> bool:
        return text in self.shapes or (text.startswith("d") and text[1:] in self.shapes)

    def name(self, text: str) -> str:
        """A network name as written in derive's messages (``W2[0,0]``, ``dZ2``), in LaTeX."""
        return symbol_latex(sympy.Symbol(text), self.notation, self.loss)

    def prose(self, text: str) -> str:
        """derive's own sentence, its network names typeset in the document's notation."""
        return "".join(tex_text(piece) if kind == "text" else f"${self.name(piece)}$"
                       for kind, piece in name_segments(text, self.is_name))

    def formula(self, formula: str, check: Check | None = None) -> str:
        """derive's own rules are shown in their display form (readable; printing only)."""
        if check is not None and check.kind == "rule":
            try:
                return self.printer(readable_tree(formula, self.shapes, self.doc.constants, self.is_scalar))
            except Exception:  # the display form is a nicety: the rule as built is always printable
                pass
        return parsed_or_verbatim(self.printer, formula)

    def statement(self, target: str, formula: str, check: Check | None = None) -> str:
        return f"{parsed_or_verbatim(self.printer, target)} = {self.formula(formula, check)}"

    def verdict(self, c: Check) -> str:
        if c.verdict == PROVEN:
            how = "instance of the all-sizes identity" if c.method == Method.INSTANCE else \
                "the difference of every entry expands to exactly 0"
            if self.doc.scalar or c.entries == 1:
                how = "an instance of the all-sizes identity" if c.method == Method.INSTANCE else \
                    "the difference expands to exactly 0"
                return rf"$\checkmark$ \textbf{{proven}} ({tex_text(how)})"
            return rf"$\checkmark$ \textbf{{proven}} for all {c.entries} entries ({tex_text(how)})"
        mark = r"$\times$ \textbf{refuted}" if c.verdict == REFUTED else r"\textbf{unproven}"
        mark += tex_text(words.expectation(c))
        return mark

    def entry(self, e: Entry) -> str:
        show = symbol_latex if isinstance(e.lhs, sympy.Symbol) else expr_latex
        lhs = show(e.lhs, self.notation, self.loss)
        rhs = expr_latex(e.rhs, self.notation, self.loss)
        body = f"{lhs} = {rhs}"
        math = f"\\[ {body} \\]\n" if len(rhs) < 160 else f"\\begin{{multline*}}\n{body}\n\\end{{multline*}}\n"
        return math + f"\\noindent\\emph{{{self.prose(e.why)}}}\\par\\medskip\n"

    def item(self, it: Entry | Statement) -> str:
        if isinstance(it, Entry):
            return self.entry(it)
        out = f"\\[ {self.statement(it.target, it.formula, it.check)} \\]\n"
        if it.why:
            out += f"\\noindent {self.prose(it.why)}\\par\n"
        if it.check is not None:
            out += f"\\noindent {self.verdict(it.check)}\\par\\medskip\n"
        return out

    def identity(self, r: IdentityResult) -> str:
        mark = r"$\checkmark$ \textbf{" + tex_text(r.verdict) + "}" if r.verdict == ALL_SIZES else \
            r"$\times$ \textbf{" + tex_text(r.verdict) + "}"
        out = f"\\paragraph{{{index_tex(r.statement)}}} {mark}\n"
        if r.steps:
            out += "\\begin{enumerate}\n" + "".join(f"\\item {index_tex(s)}\n" for s in r.steps) + "\\end{enumerate}\n"
        if r.counterexample:
            out += f"Counterexample: {tex_text(r.counterexample)}.\n"
        return out

    def claim(self, c: Check) -> str:
        out = f"\\[ {self.statement(c.target, c.formula)} \\]\n\\noindent {self.verdict(c)}\\par\n"
        if c.diagnosis:
            out += f"\\noindent Diagnosis: {self.prose(c.diagnosis)}.\\par\n"
        if c.detail and c.verdict != PROVEN:
            out += f"\\noindent {self.prose(c.detail)}\\par\n"
        ce = c.counterexample
        if ce is not None:
            i, j = ce.entry
            how = words.arithmetic(ce)
            where = "" if c.entries == 1 else f"at entry $[{i},{j}]$ "
            out += (f"\\noindent Counterexample ({tex_text(how)}): {where}the claim gives "
                    f"{value_tex(ce.claimed)} and the true value is {value_tex(ce.true)}, with\\par\n")
            values = list(ce.values.items())
            cells = [f"${self.name(k)}$ & {value_tex(v)}" for k, v in values[:MAX_VALUES]]
            rows = [" & ".join(cells[i:i + 4]) + " \\\\" for i in range(0, len(cells), 4)]
            out += ("\\begin{center}\\small\\begin{tabular}{llllllll}\n" + "\n".join(rows)
                    + "\n\\end{tabular}\\end{center}\n")
            if len(values) > MAX_VALUES:
                more = tex_text(f"and {len(values) - MAX_VALUES} more values (derive check --json lists all).")
                out += f"\\noindent {more}\\par\n"
        return out + "\\medskip\n"

    def summary(self) -> str:
        """The first page's list: each refuted claim, its diagnosis and the true form."""
        r = self.doc.report
        wrong = [c for c in r.rules + r.claims if c.verdict == REFUTED]
        if not wrong:
            return ""
        out = "\\subsection*{Refuted}\n\\begin{itemize}\n"
        for c in wrong:
            out += f"\\item ${self.statement(c.target, c.formula, c)}$"
            if c.diagnosis:
                out += f"\\\\ {tex_text('Diagnosis: ' + c.diagnosis)}"
            form = self.doc.true_forms.get(c.target)
            if form:
                out += f"\\\\ True: {verbatim(form)}"
            out += "\n"
        return out + "\\end{itemize}\n"

    def section(self, number: int, s: Section) -> str:
        out = f"\\section*{{{number}. {tex_text(s.title)}}}\n"
        for t in s.text:
            out += f"{self.prose(t)}\n\n"
        if s.code:
            out += "\\begin{flushleft}\n" + "\\\\\n".join(verbatim(line) for line in s.code) + "\n\\end{flushleft}\n"
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
        f"{r.summary()}{body}\\end{{document}}\n"
    )


class PdfError(RuntimeError):
    """pdflatex is missing or failed; the message says which."""


class LatexFailed(PdfError):
    """pdflatex ran and rejected derive's document: a bug in derive (exit 3), never bad
    input (what a spec says is escaped or printed by derive).  The log is kept beside the
    .tex (``log``) and the message quotes its first error and the line it points at."""

    def __init__(self, message: str, log: Path | None) -> None:
        super().__init__(message)
        self.log = log


def first_error(log_text: str) -> str:
    """``! Double superscript. (l.114 ...A^{[1]}^)`` from a pdflatex log: its first error line
    and the input line it names."""
    lines = log_text.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("!"):
            where = next((x.strip() for x in lines[k + 1:k + 12] if re.match(r"l\.\d+", x)), "")
            return f"{line} ({where})" if where else line
    return "no error line in the log"


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
            log = Path(tmp) / (tex.stem + ".log")
            text = log.read_text(errors="replace") if log.exists() else run.stdout
            kept = tex.with_suffix(".log")
            try:
                write_atomic(kept, text)
            except OSError:
                kept = None  # type: ignore[assignment]
            raise LatexFailed(f"pdflatex failed on {tex}: {first_error(text)}"
                              + (f"; the log is {kept}" if kept else "")
                              + " (a bug in derive: please report it with the .tex and .log)", kept)
        target = tex.with_suffix(".pdf")
        write_atomic(target, produced.read_bytes())
    return target
