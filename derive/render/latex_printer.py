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
import unicodedata
from collections.abc import Callable

import sympy

from derive.errors import FormulaError
from derive.lang import formula as F
from derive.lang.symbols import PRINTER

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "eta", "theta", "kappa", "lambda", "mu", "nu", "rho",
         "sigma", "tau", "phi", "chi", "psi", "omega"}
#: bases that course notation writes with a bracketed layer superscript (W^{[2]}, b^{[2]})
COURSE_LOWER = {"b"}
#: formula-language function → LaTeX head: the table the reader shares (derive.lang.symbols)
FUNCTIONS = PRINTER
_NAME = re.compile(r"^([A-Za-z]+?)(\d+)$")


def _ident(text: str) -> str:
    """An identifier's text with nothing LaTeX could read as a command (ASCII letters and
    digits; a Greek letter spelled in Unicode, α, as its name; anything else as its code point)."""
    out = []
    for ch in text:
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif not ch.isascii():
            greek = _unicode_greek(ch)
            out.append(greek if greek is not None else f"u{ord(ch):04x}")
    return "".join(out) or "x"


def _unicode_greek(ch: str) -> str | None:
    """``α`` → ``alpha`` (a small Greek letter derive's printer knows), else None."""
    words = unicodedata.name(ch, "").split()
    letter = words[3].lower().replace("lamda", "lambda") if len(words) == 4 else ""
    return letter if words[:3] == ["GREEK", "SMALL", "LETTER"] and letter in GREEK else None


def _greek(text: str) -> str | None:
    """``alpha``, ``α`` and the reader's ``lambda_`` (a Python keyword, renamed) are Greek letters."""
    bare = text.rstrip("_")
    if len(bare) == 1 and not bare.isascii():
        bare = _unicode_greek(bare) or bare
    return "\\" + bare if bare in GREEK else None


def name(text: str, notation: str = "default", loss: str = "J") -> str:
    """A variable name in LaTeX; ``dV`` is the derivative of the loss (named ``loss``) by V.

    Whatever the name, the result is safe: only ASCII letters and digits of it reach LaTeX."""
    greek = _greek(text)
    if greek is not None:
        return greek
    rest = text[1:]
    if text.startswith("d") and rest and (len(rest) == 1 or rest[0].isupper() or _NAME.match(rest)
                                          or _greek(rest) is not None):
        return rf"\frac{{\partial {name(loss)}}}{{\partial {name(rest, notation)}}}"
    m = _NAME.match(text)
    if m:
        base, index = m.groups()
        shown = _greek(base) or (base if len(base) == 1 else rf"\mathit{{{base}}}")
        if notation == "course" and (base[:1].isupper() or base in COURSE_LOWER):
            return f"{shown}^{{[{index}]}}"
        return f"{shown}_{{{index}}}"
    if "_" in text.strip("_"):  # x_hat: x with the subscript hat
        head, _, tail = text.strip("_").partition("_")
        shown_head = name(head, notation, loss)
        if "_" in shown_head or "^" in shown_head:  # W2_1: {W_{2}}_{1}, never a double subscript
            shown_head = f"{{{shown_head}}}"
        return f"{shown_head}_{{{name(tail, notation, loss)}}}"
    plain = _ident(text)
    return plain if len(plain) == 1 else rf"\mathit{{{plain}}}"


def scalar_test(shapes: dict[str, tuple[int, int]]) -> Callable[[F.Node], bool]:
    """``is_scalar(node)`` for a network with these value shapes: numbers, constants (names
    without a shape), 1×1 values, and anything built of them elementwise, are scalars."""
    def is_scalar(node: F.Node) -> bool:
        if isinstance(node, F.Num):
            return True
        if isinstance(node, F.Name):
            if not shapes:  # no network at hand (a check shown on its own): W, A, dZ are matrices
                bare = node.id[1:] if node.id.startswith("d") and len(node.id) > 1 else node.id
                return not bare[:1].isupper()
            base = node.id[1:] if node.id.startswith("d") and node.id[1:] in shapes else node.id
            shape = shapes.get(base)
            return shape is None or shape == (1, 1)
        if isinstance(node, F.Neg | F.Transpose):
            return is_scalar(node.operand)
        if isinstance(node, F.BinOp):
            if node.op == "**":
                return is_scalar(node.left)
            return is_scalar(node.left) and is_scalar(node.right)
        if isinstance(node, F.Call):
            if node.func in ("sum", "mean"):
                return node.axis is None or is_scalar(node.args[0])
            if node.func in ("eye", "ones", "zeros", "kron", "vec", "diag"):
                return False
            return all(is_scalar(a) for a in node.args)
        return False
    return is_scalar


class FormulaPrinter:
    """Formula-language tree → LaTeX.  ``is_scalar(node)`` decides ⊙ against a plain product
    (and ``A^{\\odot 2}`` against ``a^{2}``); ``loss`` names the loss in ``∂L/∂V``.

    Precedence as the LaTeX reader reads it back: ``+ -`` < ``⊙`` < products and
    juxtaposition < powers."""

    def __init__(self, notation: str = "default", is_scalar: Callable[[F.Node], bool] | None = None,
                 loss: str = "J") -> None:
        self.notation = notation
        self.is_scalar = is_scalar or (lambda node: False)
        self.loss = loss

    def __call__(self, node: F.Node, parent: int = 0) -> str:
        if isinstance(node, F.Num):
            v = node.value
            if v.q != 1:
                text = rf"\frac{{{abs(v.p)}}}{{{v.q}}}" if v > 0 else rf"-\frac{{{abs(v.p)}}}{{{v.q}}}"
            else:
                text = str(v)
            return rf"\left({text}\right)" if v < 0 and parent > 1 else text
        if isinstance(node, F.Name):
            return name(node.id, self.notation, self.loss)
        if isinstance(node, F.Neg):
            inner = self(node.operand, 3)
            return rf"\left(-{inner}\right)" if parent > 1 else f"-{inner}"
        if isinstance(node, F.Transpose):
            operand = node.operand
            if isinstance(operand, F.Name):
                text = self(operand)
                if text.endswith("]}"):  # course notation A^{[1]}: one superscript, A^{[1]\top}
                    return text[:-1] + r"\top}"
                if not text.startswith(r"\frac") and "^" not in text:
                    return f"{text}^{{\\top}}"
            return rf"\left({self(operand)}\right)^{{\top}}"
        if isinstance(node, F.Call):
            return self.call(node)
        if not isinstance(node, F.BinOp):  # the NumPy dialect's subscripts and tuples: as text
            return verbatim(F.unparse(node))
        return self.binop(node, parent)

    def binop(self, node: F.BinOp, parent: int) -> str:
        op = node.op
        if op == "/":
            return rf"\frac{{{self(node.left)}}}{{{self(node.right)}}}"
        if op == "**":
            base = self(node.left, 5)
            if base.startswith(r"\frac") or base.startswith("-"):
                base = rf"\left({base}\right)"
            elif "^" in base or "_" in base:  # A_{1}, A^{[1]}, A^{\top}: one group, then the power
                base = f"{{{base}}}"
            power = self(node.right)
            if not self.is_scalar(node.left):  # an elementwise power of a matrix, not a matrix power
                power = rf"\odot {power}"
            return f"{base}^{{{power}}}"
        hadamard = op == "*" and not (self.is_scalar(node.left) or self.is_scalar(node.right))
        prec = {"+": 1, "-": 1, "*": 3, "@": 3}[op] if not hadamard else 2
        left = self(node.left, prec)
        right = self(node.right, prec + (1 if op == "-" else 0))
        if op == "+":
            text = f"{left} + {right}"
        elif op == "-":
            text = f"{left} - {right}"
        elif hadamard:
            text = f"{left} \\odot {right}"
        elif right[:1].isdigit() or right.startswith("-") or right.startswith(r"\frac{") and left[-1:].isdigit():
            text = f"{left} \\cdot {right}"
        else:
            text = f"{left} \\, {right}"
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


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                "^": r"\^{}", "_": r"\_", "%": r"\%", "~": r"\~{}", "[": "{[}", "]": "{]}"}


def verbatim(text: str) -> str:
    """Code as typewriter text, every TeX special escaped (a block's lines, a subscript)."""
    safe = "".join(_TEX_SPECIAL.get(ch, ch) if ch.isascii() else "?" for ch in text if ch.isprintable())
    return r"\texttt{" + safe + "}"


def parsed_or_verbatim(printer: Callable[[F.Node], str], text: str) -> str:
    """The formula typeset, or (several statements of a block: a; b; c) as code."""
    try:
        node = F.parse(text)
    except FormulaError:
        return verbatim(text)
    return printer(node)


def formula_latex(text: str, notation: str = "default", is_scalar: Callable[[F.Node], bool] | None = None,
                  loss: str = "J") -> str:
    return parsed_or_verbatim(FormulaPrinter(notation, is_scalar, loss), text)


def statement_latex(target: str, formula: str, notation: str = "default",
                    is_scalar: Callable[[F.Node], bool] | None = None, loss: str = "J") -> str:
    p = FormulaPrinter(notation, is_scalar, loss)
    return f"{parsed_or_verbatim(p, target)} = {parsed_or_verbatim(p, formula)}"


_ENTRY = re.compile(r"^(d?)([A-Za-z]+?)(\d*)\[(\d+)(?:,(\d+))?\]$")


def symbol_latex(s: sympy.Symbol, notation: str = "default", loss: str = "J") -> str:
    """``W1[0,1]`` → ``W_{1}[0,1]`` (an entry), ``dZ2[0,0]`` → ∂J/∂Z_2[0,0]."""
    m = _ENTRY.match(s.name)
    if not m:
        return name(s.name, notation, loss)
    d, base, index, i, j = m.groups()
    core = name(f"{base}{index}", notation) if index else name(base, notation)
    where = f"{i},{j}" if j is not None else i
    entry = f"{core}[{where}]"
    return rf"\frac{{\partial {name(loss)}}}{{\partial {entry}}}" if d else entry


def expr_latex(expr: sympy.Expr, notation: str = "default", loss: str = "J") -> str:
    """A SymPy expression of atoms, in LaTeX (activations through their _latex)."""
    names = {s: symbol_latex(s, notation, loss) for s in expr.free_symbols}
    return sympy.latex(expr, symbol_names=names, mul_symbol=None)
