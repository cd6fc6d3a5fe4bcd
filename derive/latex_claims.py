"""Claims written in LaTeX, as in one's notes, read into the formula language.

    \\frac{\\partial L}{\\partial w_4} = \\frac{\\partial L}{\\partial z_2} a_0

A lark grammar (Earley) reads what people write: ``\\frac{\\partial L}{\\partial v}`` and
``\\frac{dL}{dv}`` (on the right they mean the true derivative), subscripts (``a_2``,
``w_{4}``, ``W^{[2]}``, ``A^{[1]T}``), ``\\sigma``, ``\\sigma'(·)``, ``\\sigma^\\prime``,
``\\tanh``, ``\\exp``, ``\\log``, juxtaposition, ``\\times``, ``\\cdot``, ``\\odot``,
``\\otimes``, ``^T``, ``^\\top``, ``\\operatorname{vec}``, ``\\mathrm{diag}``,
``\\frac{a}{b}``, ``\\left( \\right)``, ``\\tfrac12``.  The result is a claim
``target = formula`` in derive's own formula language (never evaluated as code).
Juxtaposition, ``\\cdot`` and ``\\times`` are a matrix product when both sides are
matrices whose sizes chain, and a plain product otherwise.
"""

from __future__ import annotations

from typing import Callable

import lark
import sympy

from derive import formula as F
from derive.errors import FormulaError

GRAMMAR = r"""
?start: equation
equation: expr "=" expr
?expr: term | expr "+" term -> add | expr "-" term -> sub
?term: factor | term mulop factor -> mul | term power -> juxt
!mulop: "\\times" | "\\cdot" | "\\odot" | "\\otimes" | "*" | "/"
?factor: "-" factor -> neg | "+" factor | power
?power: postfix | postfix "^" exponent -> pow
exponent: "{" SIGNED_NUMBER "}" | DIGIT
?postfix: atom | atom transpose -> transposed
transpose: "^" ("T" | "\\top" | "{" ("T" | "\\top" | "\\intercal") "}" | "\\intercal")
?atom: number | symbol | deriv | fraction | call | "(" expr ")" | "\\left(" expr "\\right)" | "{" expr "}"
     | "[" expr "]" | "\\left[" expr "\\right]"
number: SIGNED_NUMBER | DIGIT
fraction: "\\frac" "{" expr "}" "{" expr "}" | ("\\tfrac" | "\\dfrac" | "\\frac") DIGIT DIGIT
deriv: "\\frac" "{" dnum "}" "{" dden "}"
dnum: "\\partial" symbol | "d" symbol | DNAME
dden: "\\partial" symbol | "d" symbol | DNAME
call: func "(" expr ")" | func "\\left(" expr "\\right)" | func "{" expr "}" | func symbol
func: SIGMA PRIME? | SIGMA "^" "{" "\\prime" "}" -> fprime | SIGMA "^" "\\prime" -> fprime
    | NAMEDFUNC PRIME? | "\\operatorname" "{" LETTERS "}" PRIME? | "\\mathrm" "{" LETTERS "}" PRIME?
    | "g" "_" index PRIME?
SIGMA: "\\sigma"
NAMEDFUNC: "\\tanh" | "\\exp" | "\\log" | "\\ln"
PRIME: "'"
symbol: LETTER sub? sup?
      | GREEK sub? sup?
sub: "_" index
sup: "^" "{" "[" NUMBER "]" TMARK? "}"
TMARK: "T"
index: DIGIT | LETTER | "{" INDEXTEXT "}"
INDEXTEXT: /[A-Za-z0-9,]+/
GREEK: "\\delta" | "\\alpha" | "\\beta" | "\\lambda" | "\\eta"
LETTER: /[A-Za-z]/
DNAME: /d[A-Za-z]/
LETTERS: /[A-Za-z_]+/
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

FUNCS = {r"\sigma": "sigmoid", r"\tanh": "tanh", r"\exp": "exp", r"\log": "log", r"\ln": "log",
         "vec": "vec", "diag": "diag", "relu": "relu", "softplus": "softplus", "softmax": "softmax",
         "sigmoid": "sigmoid", "tanh": "tanh", "exp": "exp", "log": "log"}
GREEK = {r"\delta": "delta", r"\alpha": "alpha", r"\beta": "beta", r"\lambda": "lambda_", r"\eta": "eta"}


class _Shape:
    """Asks the network for the shape of a name (dV has V's shape)."""

    def __init__(self, shape_of: Callable[[str], tuple[int, int] | None]) -> None:
        self.shape_of = shape_of


def parse_latex_claim(text: str, shape_of: Callable[[str], tuple[int, int] | None], loss: str = "L") -> tuple[str, str]:
    """``(target, formula)`` in the formula language; :class:`FormulaError` on bad input."""
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
    return F.unparse(target), F.unparse(conv.node(rhs))


class _Convert:
    def __init__(self, text: str, shape_of: Callable[[str], tuple[int, int] | None], loss: str) -> None:
        self.text = text
        self.shape_of = shape_of
        self.loss = loss

    def fail(self, tree: object, message: str) -> FormulaError:
        col = getattr(getattr(tree, "meta", None), "column", None)
        return FormulaError(self.text, col, message)

    def shape(self, node: F.Node) -> tuple[int, int] | None:
        """Best-effort shape of a converted subtree (None: unknown or scalar)."""
        if isinstance(node, F.Name):
            return self.shape_of(node.id)
        if isinstance(node, F.Transpose):
            s = self.shape(node.operand)
            return (s[1], s[0]) if s else None
        if isinstance(node, F.BinOp):
            a, b = self.shape(node.left), self.shape(node.right)
            if node.op == "@" and a and b:
                return (a[0], b[1])
            return a if a and a != (1, 1) else b
        if isinstance(node, F.Neg):
            return self.shape(node.operand)
        if isinstance(node, F.Call) and node.args:
            if node.func == "vec":
                s = self.shape(node.args[0])
                return (s[0] * s[1], 1) if s else None
            if node.func == "diag":
                s = self.shape(node.args[0])
                return (max(s), max(s)) if s else None
            return self.shape(node.args[0])
        return None

    def product(self, a: F.Node, b: F.Node, col: int) -> F.Node:
        sa, sb = self.shape(a), self.shape(b)
        if sa and sb and sa != (1, 1) and sb != (1, 1) and sa[1] == sb[0]:
            return F.BinOp("@", a, b, col)
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
        if kind == "juxt":
            return self.product(self.node(ch[0]), self.node(ch[1]), col)
        if kind == "mul":
            a, op, b = self.node(ch[0]), str(ch[1].children[0]), self.node(ch[2])
            if op in (r"\times", r"\cdot", "*"):
                return self.product(a, b, col)
            if op == r"\odot":
                return F.BinOp("*", a, b, col)
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
            if len(ch) == 2 and all(isinstance(c, lark.Token) for c in ch):
                return F.BinOp("/", F.Num(sympy.Integer(int(ch[0])), col), F.Num(sympy.Integer(int(ch[1])), col), col)
            return F.BinOp("/", self.node(ch[0]), self.node(ch[1]), col)
        if kind == "deriv":
            top, bottom = self.dname(ch[0]), self.dname(ch[1])
            if top not in (self.loss, "L", "J"):
                raise self.fail(t, f"only derivatives of the loss are supported (∂{self.loss}/∂·), not ∂{top}")
            return F.Name(f"d{bottom}", col)
        if kind == "symbol":
            return self.symbol(t)
        if kind == "call":
            fname, prime = self.func(ch[0])
            arg = self.node(ch[1])
            return F.Call(f"{fname}_prime" if prime else fname, (arg,), None, col)
        raise self.fail(t, f"unsupported construct {kind}")

    def dname(self, t: lark.Tree) -> str:
        ch = t.children
        if isinstance(ch[0], lark.Token) and ch[0].type == "DNAME":
            return str(ch[0])[1:]
        sym = self.symbol(ch[-1])
        name = sym.operand.id if isinstance(sym, F.Transpose) else sym.id  # type: ignore[union-attr]
        return name

    def symbol(self, t: lark.Tree) -> F.Node:
        col = getattr(t.meta, "column", 1) or 1
        head = str(t.children[0])
        name = GREEK.get(head, head)
        transpose = False
        for part in t.children[1:]:
            if part.data == "sub":
                idx = part.children[0]
                name += "".join(str(c) for c in idx.children).replace(",", "")
            elif part.data == "sup":
                number = str(part.children[0])
                name += number
                transpose = len(part.children) > 1
        node: F.Node = F.Name(name, col)
        return F.Transpose(node, col) if transpose else node

    def func(self, t: lark.Tree) -> tuple[str, bool]:
        tokens = [str(c) for c in t.children if isinstance(c, lark.Token)]
        prime = t.data == "fprime" or "'" in tokens
        head = tokens[0]
        if head == "g":  # g_1(z), g_1'(z): layer 1's own activation
            idx = t.children[1]
            return f"g{''.join(str(c) for c in idx.children)}", prime
        name = FUNCS.get(head)
        if name is None:
            raise self.fail(t, f"unknown function {head}")
        return name, prime
