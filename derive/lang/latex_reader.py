"""Claims written in LaTeX, as in one's notes, read into the formula language.

    \\frac{\\partial L}{\\partial w_4} = \\frac{\\partial L}{\\partial z_2} a_0

A lark grammar (Earley) reads what people write: ``\\frac{\\partial L}{\\partial v}`` and
``\\frac{dL}{dv}`` (on the right they mean the true derivative), subscripts (``a_2``,
``w_{4}``, ``W^{[2]}``, ``A^{[1]T}``), ``\\sigma``, ``\\sigma'(·)``, ``\\sigma^\\prime``,
``\\tanh``, ``\\exp``, ``\\log``, juxtaposition, ``\\times``, ``\\cdot``, ``\\odot``,
``\\otimes``, ``^T``, ``^\\top``, ``\\operatorname{vec}``, ``\\mathrm{diag}``,
``\\frac{a}{b}``, ``\\left( \\right)``, ``\\tfrac12``; ``\\dfrac`` and the inline ``\\partial L /
\\partial v``; accents and bold (``\\hat{y}`` is the network's ``yhat`` or ``y_hat``,
``\\mathbf{W}`` is ``W``); Greek letters; ``\\delta_2`` for ∂L/∂z₂ where no ``delta2`` exists.  The result is a claim
``target = formula`` in derive's own formula language (never evaluated as code).

Products, read as textbooks write them:

* Juxtaposition, ``\\cdot``, ``\\times`` (and ``*``) between two matrices are the matrix
  product ``@``, whatever their sizes: sizes that do not chain (``\\frac{\\partial
  L}{\\partial Z_2} W_2^T``, the product in the wrong order) are a shape error, so the
  claim is refuted ("shapes"), never read as a broadcasting elementwise product.  A
  scalar (a number, a constant such as ``m`` or ``\\alpha``, a 1×1 value) times anything is
  the plain product.
* Precedence, tightest first: ``^`` and ``^T``; then juxtaposition, ``\\cdot``, ``\\times``,
  ``*``, ``/`` and ``\\otimes`` (one level, left to right); then ``\\odot``; then ``+`` and
  ``-``.  So ``\\sigma'(Z_1) \\odot W_2^T \\frac{\\partial L}{\\partial Z_2}`` is
  ``σ'(Z1) ⊙ (W2ᵀ dZ2)``.
* ``\\odot`` is elementwise and may broadcast one operand onto the other's shape (a
  per-row ``\\gamma`` onto a matrix), but an ``\\odot`` that would stretch both operands (a
  row ⊙ a column: an outer product) is refused.
"""

from __future__ import annotations

from collections.abc import Callable

import lark
import sympy

from derive.errors import FormulaError
from derive.lang import formula as F
from derive.lang.symbols import READER

GRAMMAR = r"""
?start: equation
equation: expr "=" expr
?expr: hterm | expr "+" hterm -> add | expr "-" hterm -> sub
?hterm: term | hterm "\\odot" term -> hadamard
?term: factor | term mulop factor -> mul | term power -> juxt
!mulop: "\\times" | "\\cdot" | "\\otimes" | "*" | "/"
?factor: "-" factor -> neg | "+" factor | power
?power: postfix | postfix "^" exponent -> pow
exponent: "{" SIGNED_NUMBER "}" | DIGIT
?postfix: atom | atom transpose -> transposed
transpose: "^" ("T" | "\\top" | "{" ("T" | "\\top" | "\\intercal") "}" | "\\intercal")
?atom: number | dsymbol | symbol | deriv | fraction | call | "(" expr ")" | "\\left(" expr "\\right)" | "{" expr "}"
     | "[" expr "]" | "\\left[" expr "\\right]"
number: SIGNED_NUMBER | DIGIT
fraction: FRAC "{" expr "}" "{" expr "}" | FRAC DIGIT DIGIT
FRAC: "\\frac" | "\\dfrac" | "\\tfrac"
deriv.9: FRAC "{" dnum "}" "{" dden "}" | "\\partial" symbol "/" "\\partial" symbol -> inline_deriv
dnum: "\\partial" symbol | "d" symbol | DNAME
dden: "\\partial" symbol | "d" symbol | DNAME
call: func "(" expr ")" | func "\\left(" expr "\\right)" | func "{" expr "}" | func symbol
func: SIGMA PRIME? | SIGMA "^" "{" "\\prime" "}" -> fprime | SIGMA "^" "\\prime" -> fprime
    | NAMEDFUNC PRIME? | "\\operatorname" "{" LETTERS "}" PRIME? | "\\mathrm" "{" LETTERS "}" PRIME?
    | GFUNC "_" index PRIME? | GFUNC "^" "{" "[" index "]" GPRIME? "}" PRIME?
GFUNC: "g"
GPRIME: "'" | "\\prime"
SIGMA: "\\sigma"
NAMEDFUNC: "\\tanh" | "\\exp" | "\\log" | "\\ln"
PRIME: "'"
dsymbol.2: "d" symbol
symbol: LETTER sub? sup?
      | GREEK sub? sup?
      | ACCENT "{" (LETTER | GREEK) "}" sub? sup? | ACCENT (LETTER | GREEK) sub? sup?
      | FONT "{" (LETTER | GREEK) "}" sub? sup? | FONT (LETTER | GREEK) sub? sup?
ACCENT: "\\hat" | "\\widehat" | "\\bar" | "\\overline" | "\\tilde" | "\\widetilde"
FONT: "\\mathbf" | "\\boldsymbol" | "\\bm" | "\\mathit" | "\\vec"
sub: "_" index
sup: "^" "{" "[" NUMBER "]" TMARK? "}"
TMARK: "T"
index: DIGIT | LETTER | "{" INDEXTEXT "}"
INDEXTEXT: /[A-Za-z0-9,]+/
GREEK: "\\delta" | "\\alpha" | "\\beta" | "\\lambda" | "\\eta" | "\\gamma" | "\\mu" | "\\theta"
     | "\\epsilon" | "\\varepsilon" | "\\tau" | "\\phi" | "\\omega" | "\\rho" | "\\kappa" | "\\nu"
     | "\\xi" | "\\zeta" | "\\psi" | "\\chi"
LETTER: /[A-Za-z]/
DNAME: /d[A-Za-z]/
LETTERS: /[A-Za-z](?:[A-Za-z0-9_]|\\_)*/
DIGIT: /[0-9]/
%import common.SIGNED_NUMBER
%import common.NUMBER
%import common.WS
%ignore WS
%ignore "\\,"
%ignore "\\;"
%ignore "\\!"
"""

_PARSER = lark.Lark(GRAMMAR, parser="earley", ambiguity="resolve", propagate_positions=True)

#: spelling → formula-language function: the table the printer shares (derive.lang.symbols)
FUNCS = READER
#: a Greek letter's names in a network, the first the network knows taken (else the first)
GREEK = {r"\delta": ("delta",), r"\alpha": ("alpha",), r"\beta": ("beta",), r"\lambda": ("lambda_", "lambd", "lam"),
         r"\eta": ("eta",), r"\gamma": ("gamma",), r"\mu": ("mu",), r"\theta": ("theta",),
         r"\epsilon": ("epsilon", "eps"), r"\varepsilon": ("epsilon", "eps"), r"\tau": ("tau",), r"\phi": ("phi",),
         r"\omega": ("omega",), r"\rho": ("rho",), r"\kappa": ("kappa",), r"\nu": ("nu",), r"\xi": ("xi",),
         r"\zeta": ("zeta",), r"\psi": ("psi",), r"\chi": ("chi",)}
#: an accent's word in a name (\hat{y}: yhat or y_hat); a font command (\mathbf) adds none
ACCENTS = {r"\hat": "hat", r"\widehat": "hat", r"\bar": "bar", r"\overline": "bar", r"\tilde": "tilde",
           r"\widetilde": "tilde"}


class _Shape:
    """Asks the network for the shape of a name (dV has V's shape)."""

    def __init__(self, shape_of: Callable[[str], tuple[int, int] | None]) -> None:
        self.shape_of = shape_of


def parse_latex_claim(text: str, shape_of: Callable[[str], tuple[int, int] | None], loss: str = "L") -> tuple[str, str]:
    """``(target, formula)`` as formula-language text, for display (see :func:`parse_latex_tree`)."""
    target, formula = parse_latex_tree(text, shape_of, loss)
    return F.unparse(target), F.unparse(formula)


def parse_latex_tree(text: str, shape_of: Callable[[str], tuple[int, int] | None],
                     loss: str = "L") -> tuple[F.Node, F.Node]:
    """``(target, formula)`` as syntax trees of the formula language, which derive checks as
    they are (never printed and parsed again); :class:`FormulaError` on bad input."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError(str(text), None, "empty LaTeX claim")
    if len(text) > F.LIMITS["max_length"]:
        raise FormulaError(text, None, f"LaTeX claim is {len(text)} characters long (limit {F.LIMITS['max_length']})")
    try:
        tree = _PARSER.parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise FormulaError(text, exc.column if exc.column and exc.column > 0 else None,
                           "unsupported or malformed LaTeX") from None
    except (lark.exceptions.LarkError, RecursionError):
        raise FormulaError(text, None, "unsupported or malformed LaTeX") from None
    conv = _Convert(text, shape_of, loss)
    lhs, rhs = tree.children
    target = conv.node(lhs)
    if not (isinstance(target, F.Name) and target.id.startswith("d")) and not (
            isinstance(target, F.Call) and target.func == "vec"):
        raise FormulaError(text, None, r"the left side must be a derivative such as \frac{\partial L}{\partial w_1}")
    return target, conv.node(rhs)


def _broadcast(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    """The shape of an elementwise operation (NumPy broadcasting); None for scalars or for
    sizes that do not broadcast (the evaluator reports those)."""
    if a is None or b is None:
        return a or b
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y) if 1 in (x, y) else x)
    return (out[0], out[1])


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "**": 4}


class _Convert:
    def __init__(self, text: str, shape_of: Callable[[str], tuple[int, int] | None], loss: str) -> None:
        self.text = text
        self.shape_of = shape_of
        self.loss = loss

    def fail(self, tree: object, message: str) -> FormulaError:
        col = getattr(getattr(tree, "meta", None), "column", None)
        return FormulaError(self.text, col, message)

    def shape(self, node: F.Node) -> tuple[int, int] | None:
        """The shape of a converted subtree as the evaluator will compute it; None for a
        scalar (numbers, constants), for a name the network does not know (validation
        reports it) and for sizes that do not fit (evaluating the subtree is then a shape
        error whatever surrounds it)."""
        if isinstance(node, F.Name):
            return self.shape_of(node.id)
        if isinstance(node, (F.Neg, F.Transpose)):
            s = self.shape(node.operand)
            return (s[1], s[0]) if s and isinstance(node, F.Transpose) else s
        if isinstance(node, F.BinOp):
            a, b = self.shape(node.left), self.shape(node.right)
            if node.op == "@":  # sizes that do not chain: None, the evaluator reports them
                return (a[0], b[1]) if a and b and a[1] == b[0] else None
            if node.op == "**":
                return a
            return _broadcast(a, b)
        if isinstance(node, F.Call) and node.args:
            shapes = [self.shape(x) for x in node.args]
            s = shapes[0]
            if node.func == "vec":
                return (s[0] * s[1], 1) if s else None
            if node.func == "diag":  # a vector's diagonal matrix; a square matrix's diagonal
                if s is None:
                    return (1, 1)
                return (s[0] * s[1],) * 2 if 1 in s else (s[0], 1)
            if node.func == "kron" and len(shapes) == 2:
                t = shapes[1] or (1, 1)
                s = s or (1, 1)
                return (s[0] * t[0], s[1] * t[1])
            return s
        return None

    @staticmethod
    def is_matrix(s: tuple[int, int] | None) -> bool:
        return s is not None and s != (1, 1)

    def product(self, a: F.Node, b: F.Node, col: int) -> F.Node:
        """Juxtaposition, \\cdot, \\times: ``@`` between two matrices (a shape error when
        their sizes do not chain, never a broadcast), ``*`` when one side is a scalar."""
        if self.is_matrix(self.shape(a)) and self.is_matrix(self.shape(b)):
            return F.BinOp("@", a, b, col)
        return F.BinOp("*", a, b, col)

    def hadamard(self, a: F.Node, b: F.Node, t: lark.Tree, col: int) -> F.Node:
        """⊙: elementwise; one side may broadcast onto the other, not both (an outer product)."""
        sa, sb = self.shape(a), self.shape(b)
        if self.is_matrix(sa) and self.is_matrix(sb) and sa != sb:
            out = _broadcast(sa, sb)
            if out is None or (out != sa and out != sb):
                raise self.fail(t, f"\\odot needs matrices of the same size, got {sa[0]}×{sa[1]} "  # type: ignore[index]
                                   f"and {sb[0]}×{sb[1]}")  # type: ignore[index]
        return F.BinOp("*", a, b, col)

    def node(self, t: lark.Tree | lark.Token) -> F.Node:  # noqa: C901 - one case per construct
        col = getattr(getattr(t, "meta", None), "column", 1) or 1
        if isinstance(t, lark.Token):
            raise self.fail(t, f"unexpected {t!s}")
        kind = t.data
        ch = t.children
        if kind == "add":
            return F.BinOp("+", self.node(ch[0]), self.node(ch[1]), col)
        if kind == "sub":
            return F.BinOp("-", self.node(ch[0]), self.node(ch[1]), col)
        if kind == "neg":
            return F.Neg(self.node(ch[0]), col)
        if kind == "hadamard":
            return self.hadamard(self.node(ch[0]), self.node(ch[1]), t, col)
        if kind == "juxt":
            return self.product(self.node(ch[0]), self.node(ch[1]), col)
        if kind == "mul":
            a, op, b = self.node(ch[0]), str(ch[1].children[0]), self.node(ch[2])
            if op in (r"\times", r"\cdot", "*"):
                return self.product(a, b, col)
            if op == r"\otimes":
                return F.Call("kron", (a, b), None, col)
            return F.BinOp("/", a, b, col)
        if kind == "pow":
            base, exp = self.node(ch[0]), ch[1]
            value = sympy.Rational(str(exp.children[0]))
            if not value.is_Integer:
                raise self.fail(t, "only whole-number powers are supported")
            return F.BinOp("**", base, F.Num(value, col), col)
        if kind == "transposed":
            return F.Transpose(self.node(ch[0]), col)
        if kind == "number":
            return F.Num(sympy.Rational(str(ch[0])), col)
        if kind == "fraction":
            ch = ch[1:]  # (\frac, \dfrac or \tfrac: the same)
            if len(ch) == 2 and all(isinstance(c, lark.Token) for c in ch):
                p, q = (F.Num(sympy.Integer(int(str(c))), col) for c in ch)
                return F.BinOp("/", p, q, col)
            return F.BinOp("/", self.node(ch[0]), self.node(ch[1]), col)
        if kind in ("deriv", "inline_deriv"):
            if kind == "deriv":
                top, bottom = self.dname(ch[1]), self.dname(ch[2])
            else:  # \partial L / \partial w
                top, bottom = (self._plain_name(self.symbol(c)) for c in ch)
            if top not in (self.loss, "L", "J"):
                raise self.fail(t, f"only derivatives of the loss are supported (∂{self.loss}/∂·), not ∂{top}")
            return F.Name(f"d{bottom}", col)
        if kind == "symbol":
            return self.symbol(t)
        if kind == "dsymbol":  # dZ^{[2]}: the course's name for ∂L/∂Z2 (d times Z2 if the network names d)
            inner = self.symbol(ch[0])
            if self.shape_of("d") is not None:
                return self.product(F.Name("d", col), inner, col)
            base = inner.operand if isinstance(inner, F.Transpose) else inner
            assert isinstance(base, F.Name)
            node: F.Node = F.Name(f"d{base.id}", col)
            return F.Transpose(node, col) if isinstance(inner, F.Transpose) else node
        if kind == "call":
            fname, prime = self.func(ch[0])
            arg = self.node(ch[1])
            return F.Call(f"{fname}_prime" if prime else fname, (arg,), None, col)
        raise self.fail(t, f"unsupported construct {kind}")

    def dname(self, t: lark.Tree) -> str:
        ch = t.children
        if isinstance(ch[0], lark.Token) and ch[0].type == "DNAME":
            return str(ch[0])[1:]
        return self._plain_name(self.symbol(ch[-1]))

    @staticmethod
    def _plain_name(sym: F.Node) -> str:
        node = sym.operand if isinstance(sym, F.Transpose) else sym
        assert isinstance(node, F.Name)  # (what symbol() builds)
        return node.id

    def symbol(self, t: lark.Tree) -> F.Node:
        col = getattr(t.meta, "column", 1) or 1
        children = list(t.children)
        accent = None
        if isinstance(children[0], lark.Token) and children[0].type in ("ACCENT", "FONT"):
            # \mathbf{W} is W; \hat{y} is the network's name for ŷ (yhat, y_hat, ...)
            accent = ACCENTS.get(str(children[0]))
            children = children[1:]
        head = str(children[0])
        spellings = GREEK.get(head, (head,))
        name = next((n for n in spellings if self.shape_of(n) is not None), spellings[0])
        if accent is not None:
            name = self._accented(name, accent)
        transpose = False
        for part in children[1:]:
            if part.data == "sub":
                idx = part.children[0]
                name += "".join(str(c) for c in idx.children).replace(",", "")
            elif part.data == "sup":
                number = str(part.children[0])
                name += number
                transpose = len(part.children) > 1
        if head == r"\delta" and name != "delta" and self.shape_of(name) is None:
            name = self._error_signal(name[len("delta"):], name)
        node: F.Node = F.Name(name, col)
        return F.Transpose(node, col) if transpose else node

    def _error_signal(self, index: str, name: str) -> str:
        """δ₂, δ^{[2]}: the error signal ∂L/∂z₂ of back-propagation's notes (Nielsen's δˡ), when
        the network names nothing ``delta2`` and does name ``z2`` (or ``Z2``)."""
        for z in (f"z{index}", f"Z{index}"):
            if self.shape_of(z) is not None:
                return f"d{z}"
        return name

    def _accented(self, base: str, accent: str) -> str:
        """The name the network gives ŷ (x̄, x̃): ``yhat``, ``y_hat``, ``hat_y`` or ``haty``,
        the first it knows (``y_hat`` when it knows none: validation then lists the names)."""
        spellings = [f"{base}{accent}", f"{base}_{accent}", f"{accent}_{base}", f"{accent}{base}"]
        return next((n for n in spellings if self.shape_of(n) is not None), f"{base}_{accent}")

    def func(self, t: lark.Tree) -> tuple[str, bool]:
        tokens = [str(c) for c in t.children if isinstance(c, lark.Token)]
        prime = t.data == "fprime" or "'" in tokens or r"\prime" in tokens
        head = tokens[0]
        if head == "g":  # g_1(z), g_1'(z), g^{[1]\prime}(z): layer 1's own activation
            idx = next(c for c in t.children if isinstance(c, lark.Tree) and c.data == "index")
            return f"g{''.join(str(c) for c in idx.children)}", prime
        name = FUNCS.get(head.replace(r"\_", "_"))
        if name is None:
            raise self.fail(t, f"unknown function {head}")
        return name, prime
