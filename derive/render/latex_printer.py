"""LaTeX for derive's formulas and expressions, with textbook notation and no SymPy
artefacts.  Renderers only: no mathematics is decided here.

- Formula-language trees: ``@`` is juxtaposition, ``*`` is ⊙ between matrices and a
  plain product between scalars, ``.T`` is ᵀ, ``kron`` is ⊗, ``sigmoid_prime`` is σ′,
  ``dW2`` is ∂J/∂W_2, ``sum(M, axis=1)`` is M 1.
- Names: ``W2`` → ``W_{2}`` (default) or ``W^{[2]}`` (``notation="course"``); ``X`` stays
  ``X``; ``w4`` → ``w_{4}``; Greek names become Greek letters.
- SymPy expressions of atoms (``W1[0,1]``) print as entries ``W_{1}[0,1]`` through a
  symbol-name map; activations print through their own ``_latex`` methods.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sympy

from derive.lang import formula as F
from derive.lang.symbols import PRINTER

GREEK = {"alpha", "beta", "gamma", "delta", "eta", "lambda", "mu", "sigma", "theta"}
#: formula-language function → LaTeX head: the table the reader shares (derive.lang.symbols)
FUNCTIONS = PRINTER
_NAME = re.compile(r"^([A-Za-z]+?)(\d+)$")


def name(text: str, notation: str = "default") -> str:
    """A variable name in LaTeX."""
    if text in GREEK:
        return "\\" + text
    rest = text[1:]
    if text.startswith("d") and rest and (len(rest) == 1 or rest[0].isupper() or _NAME.match(rest) or rest in GREEK):
        return rf"\frac{{\partial J}}{{\partial {name(rest, notation)}}}"
    m = _NAME.match(text)
    if m:
        base, index = m.groups()
        base = "\\" + base if base in GREEK else base
        if notation == "course" and base[:1].isupper():
            return f"{base}^{{[{index}]}}"
        return f"{base}_{{{index}}}"
    return text if len(text) == 1 else rf"\mathit{{{text}}}"


class FormulaPrinter:
    """Formula-language tree → LaTeX.  ``is_scalar(node)`` decides ⊙ against a plain product."""

    def __init__(self, notation: str = "default", is_scalar: Callable[[F.Node], bool] | None = None) -> None:
        self.notation = notation
        self.is_scalar = is_scalar or (lambda node: False)

    def __call__(self, node: F.Node, parent: int = 0) -> str:
        if isinstance(node, F.Num):
            v = node.value
            if v.q != 1:
                return rf"\frac{{{abs(v.p)}}}{{{v.q}}}" if v > 0 else rf"-\frac{{{abs(v.p)}}}{{{v.q}}}"
            return str(v)
        if isinstance(node, F.Name):
            return name(node.id, self.notation)
        if isinstance(node, F.Neg):
            inner = self(node.operand, 3)
            return rf"\left(-{inner}\right)" if parent > 1 else f"-{inner}"
        if isinstance(node, F.Transpose):
            operand = node.operand
            if isinstance(operand, F.Name):
                text = self(operand)
                if text.endswith("]}"):  # course notation A^{[1]}: one superscript, A^{[1]\top}
                    return text[:-1] + r"\top}"
                if not text.startswith(r"\frac"):
                    return f"{text}^{{\\top}}"
            return rf"\left({self(operand)}\right)^{{\top}}"
        if isinstance(node, F.Call):
            return self.call(node)
        if not isinstance(node, F.BinOp):  # the NumPy dialect's subscripts and tuples: as text
            return r"\texttt{" + F.unparse(node).replace("_", r"\_").replace("[", "{[}").replace("]", "{]}") + "}"
        return self.binop(node, parent)

    def binop(self, node: F.BinOp, parent: int) -> str:
        op = node.op
        if op == "/":
            return rf"\frac{{{self(node.left)}}}{{{self(node.right)}}}"
        if op == "**":
            return f"{self(node.left, 5)}^{{{self(node.right)}}}"
        prec = {"+": 1, "-": 1, "*": 2, "@": 2}[op]
        left = self(node.left, prec)
        right = self(node.right, prec + (1 if op == "-" else 0))
        if op == "+":
            text = f"{left} + {right}"
        elif op == "-":
            text = f"{left} - {right}"
        elif op == "@":
            text = f"{left} \\, {right}"
        else:
            scalar = self.is_scalar(node.left) or self.is_scalar(node.right)
            text = f"{left} \\, {right}" if scalar else f"{left} \\odot {right}"
        return rf"\left({text}\right)" if parent > prec else text

    def call(self, node: F.Call) -> str:
        args = [self(a) for a in node.args]
        f = node.func
        if f.endswith("_prime") and f[:-6] in FUNCTIONS:
            return rf"{FUNCTIONS[f[:-6]]}'\left({', '.join(args)}\right)"
        if re.fullmatch(r"g\d+_prime", f):
            return rf"g_{{{f[1:-6]}}}'\left({args[0]}\right)"
        if re.fullmatch(r"g\d+", f):
            return rf"g_{{{f[1:]}}}\left({args[0]}\right)"
        if f == "kron":
            return rf"\left({args[0]} \otimes {args[1]}\right)"
        if f == "eye":
            return rf"I_{{{args[0]}}}"
        if f in ("ones", "zeros"):
            sym = r"\mathbf{1}" if f == "ones" else r"\mathbf{0}"
            size = r" \times ".join(args)
            return rf"{sym}_{{{size}}}"
        if f in ("sum", "mean"):
            axis = _axis(node.axis)
            if f == "mean":  # the axis is part of the meaning: never dropped
                where = "" if axis is None else rf"_{{\text{{axis }} {axis}}}"
                return rf"\operatorname{{mean}}{where}\left({args[0]}\right)"
            if axis == 1:
                return rf"{self(node.args[0], 5)} \, \mathbf{{1}}"
            if axis == 0:
                return rf"\mathbf{{1}}^{{\top}} {self(node.args[0], 5)}"
            if node.axis is not None:
                return rf"\textstyle\sum_{{\text{{axis }} {self(node.axis)}}} {self(node.args[0], 5)}"
            return rf"\textstyle\sum {self(node.args[0], 5)}"
        if f == "J":
            y, x = args[:2]
            return rf"\frac{{\partial {y}}}{{\partial {x}}}"
        head = FUNCTIONS.get(f, rf"\operatorname{{{f}}}")
        return rf"{head}\left({', '.join(args)}\right)"


def _axis(node: F.Node | None) -> int | None:
    """A literal axis as derive's 2-D values read it (-1 is 1, -2 is 0); None otherwise."""
    if isinstance(node, F.Num) and node.value.is_Integer and -2 <= int(node.value) <= 1:
        return int(node.value) % 2
    if isinstance(node, F.Neg) and isinstance(node.operand, F.Num) and node.operand.value in (1, 2):
        return (-int(node.operand.value)) % 2
    return None


def formula_latex(text: str, notation: str = "default", is_scalar: Callable[[F.Node], bool] | None = None) -> str:
    return FormulaPrinter(notation, is_scalar)(F.parse(text))


def statement_latex(target: str, formula: str, notation: str = "default",
                    is_scalar: Callable[[F.Node], bool] | None = None) -> str:
    p = FormulaPrinter(notation, is_scalar)
    return f"{p(F.parse(target))} = {p(F.parse(formula))}"


_ENTRY = re.compile(r"^(d?)([A-Za-z]+?)(\d*)\[(\d+)(?:,(\d+))?\]$")


def symbol_latex(s: sympy.Symbol, notation: str = "default") -> str:
    """``W1[0,1]`` → ``W_{1}[0,1]`` (an entry), ``dZ2[0,0]`` → ∂J/∂Z_2[0,0]."""
    m = _ENTRY.match(s.name)
    if not m:
        return name(s.name, notation)
    d, base, index, i, j = m.groups()
    core = name(f"{base}{index}", notation) if index else base
    where = f"{i},{j}" if j is not None else i
    entry = f"{core}[{where}]"
    return rf"\frac{{\partial J}}{{\partial {entry}}}" if d else entry


def expr_latex(expr: sympy.Expr, notation: str = "default") -> str:
    """A SymPy expression of atoms, in LaTeX (activations through their _latex)."""
    names = {s: symbol_latex(s, notation) for s in expr.free_symbols}
    return sympy.latex(expr, symbol_names=names, mul_symbol=None)
