"""derive's own rules as people write them: printing only, never what is proven.

Rules are built mechanically (``1 / alpha * 2 * (o - y)``, ``(-1) * y / a + (-((-1) *
(1 - y) / (1 - a)))``, ``1 / (2 * m) * ones(3, 2) * 2 * (A2 - Y)``); the statement that
was proven is the record's ``formula`` and stays as it is (JSON, the pytest plugin).
:func:`readable` rewrites a formula tree for display by identities only:

- a chain of ``*``, ``/`` and ``-`` is one product: its numbers are collected into one
  rational coefficient, constants (names without a value in the network, such as ``m``
  and ``alpha``, and free constants) join it, ``--x`` is ``x``, and a negative coefficient
  is absorbed by turning a difference around (``-(y - a)`` is ``a - y``);
- ``ones(r, c) * X`` is ``X`` when the rest of the product already has shape r×c;
- ``a + -b`` is ``a - b`` and ``a - -b`` is ``a + b``.

Elementwise products commute, so the order of factors may change; nothing is cancelled
(``x * y / y`` stays), so where a formula is defined is not changed either.  For a
formula of scalars, :func:`readable_text` also checks the rewrite in SymPy and keeps the
original if the two differ (they never should: a test compares every shipped rule).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import sympy

from derive.check.document import Document
from derive.lang import formula as F
from derive.records import Report

Shape = tuple[int, int]


class _Product:
    def __init__(self) -> None:
        self.coefficient = sympy.Rational(1)
        self.absorbed = 0  # numbers and signs taken into the coefficient
        self.num: list[F.Node] = []
        self.den: list[F.Node] = []

    def take(self, node: F.Node, top: bool = True) -> None:
        if isinstance(node, F.Neg):
            self.coefficient = -self.coefficient
            self.absorbed += 1
            self.take(node.operand, top)
        elif isinstance(node, F.Num) and node.value != 0:
            self.absorbed += 1
            self.coefficient = self.coefficient * node.value if top else self.coefficient / node.value
        elif isinstance(node, F.BinOp) and node.op == "*":
            self.take(node.left, top)
            self.take(node.right, top)
        elif isinstance(node, F.BinOp) and node.op == "/" and top:
            self.take(node.left, True)
            self.take(node.right, False)
        else:
            (self.num if top else self.den).append(node)


def _product(factors: list[F.Node]) -> F.Node | None:
    out: F.Node | None = None
    for f in factors:
        out = f if out is None else F.BinOp("*", out, f, 0)
    return out


class Readable:
    """The rewrite, for one network: ``shapes`` of its values, ``constants`` (names that
    are scalars by definition: m, alpha, the free constants)."""

    def __init__(self, shapes: dict[str, Shape], constants: set[str] | frozenset[str] = frozenset()) -> None:
        self.shapes = shapes
        self.constants = set(constants)

    def shape(self, node: F.Node) -> Shape | None:
        """The shape of a subtree where it is plain to see (None: not known)."""
        if isinstance(node, F.Num):
            return (1, 1)
        if isinstance(node, F.Name):
            if node.id in self.shapes:
                return self.shapes[node.id]
            if node.id.startswith("d") and node.id[1:] in self.shapes:
                return self.shapes[node.id[1:]]
            return (1, 1)  # a constant (m, n1): a scalar
        if isinstance(node, F.Neg):
            return self.shape(node.operand)
        if isinstance(node, F.Transpose):
            s = self.shape(node.operand)
            return None if s is None else (s[1], s[0])
        if isinstance(node, F.BinOp):
            a, b = self.shape(node.left), self.shape(node.right)
            if a is None or b is None:
                return None
            if node.op == "@":
                return (a[0], b[1]) if a[1] == b[0] else None
            if node.op == "**":
                return a
            return _broadcast(a, b)
        if isinstance(node, F.Call):
            if node.func in ("ones", "zeros") and len(node.args) == 2 and all(
                    isinstance(x, F.Num) and x.value.is_Integer for x in node.args):
                rows, cols = node.args[0], node.args[1]
                assert isinstance(rows, F.Num) and isinstance(cols, F.Num)
                return (int(rows.value), int(cols.value))
            if node.func in ("sum", "mean", "kron", "vec", "diag", "eye") or not node.args:
                return None
            return self.shape(node.args[0]) if len(node.args) == 1 else None
        return None

    def is_constant(self, node: F.Node) -> bool:
        """A name that is no value of the network (m, n1): a constant of the coefficient."""
        return isinstance(node, F.Name) and node.id not in self.shapes and not (
            node.id.startswith("d") and node.id[1:] in self.shapes)

    def __call__(self, node: F.Node) -> F.Node:
        node = self.children(node)
        if isinstance(node, F.Neg) or (isinstance(node, F.BinOp) and node.op in ("*", "/")):
            return self.product(node)
        if isinstance(node, F.BinOp) and node.op in ("+", "-") and isinstance(node.right, F.Neg):
            return F.BinOp("-" if node.op == "+" else "+", node.left, node.right.operand, node.col)
        return node

    def children(self, node: F.Node) -> F.Node:
        if isinstance(node, F.BinOp):
            return F.BinOp(node.op, self(node.left), self(node.right), node.col)
        if isinstance(node, F.Neg):
            return F.Neg(self(node.operand), node.col)
        if isinstance(node, F.Transpose):
            return F.Transpose(self(node.operand), node.col)
        if isinstance(node, F.Call):
            return F.Call(node.func, tuple(self(a) for a in node.args), node.axis, node.col)
        return node

    def product(self, node: F.Node) -> F.Node:
        p = _Product()
        p.take(node)
        num = p.num
        ones = [f for f in num if isinstance(f, F.Call) and f.func == "ones"]
        for one in ones:  # ones(r, c) * X is X when X is already r×c
            rest = [f for f in num if f is not one] + p.den
            shape = self.shape(one)
            shapes = [self.shape(f) for f in rest]
            if rest and shape is not None and None not in shapes:
                total: Shape | None = (1, 1)
                for s in shapes:
                    total = None if total is None or s is None else _broadcast(total, s)
                if total == shape:
                    num = [f for f in num if f is not one]
        c = p.coefficient
        constants = [f for f in num if self.is_constant(f)]
        if not p.absorbed and len(num) == len(p.num) and not p.den and not constants:
            return node  # nothing to collect: the factors stay in their order
        if c < 0:  # -(y - a) is a - y
            for k, f in enumerate(num):
                if isinstance(f, F.BinOp) and f.op == "-":
                    num = num[:k] + [F.BinOp("-", f.right, f.left, f.col)] + num[k + 1:]
                    c = -c
                    break
        constants = [f for f in num if self.is_constant(f)]
        rest = [f for f in num if not self.is_constant(f)]
        scalar_den = all(self.is_constant(f) or (isinstance(f, F.Name) and f.id in self.constants) for f in p.den)
        top = ([F.Num(sympy.Integer(abs(c.p)), 0)] if abs(c.p) != 1 or not (constants or rest) else []) + constants
        bottom = ([F.Num(sympy.Integer(c.q), 0)] if c.q != 1 else []) + p.den
        if scalar_den or not rest:
            coefficient = _product(top) if not bottom else F.BinOp("/", _product(top) or F.Num(sympy.Integer(1), 0),
                                                                    _product(bottom) or F.Num(sympy.Integer(1), 0), 0)
            out = _product(([coefficient] if coefficient is not None else []) + rest)
        else:  # a value of the network in the denominator: one fraction
            out = F.BinOp("/", _product(top + rest) or F.Num(sympy.Integer(1), 0),
                          _product(bottom) or F.Num(sympy.Integer(1), 0), 0)
        assert out is not None
        return F.Neg(out, 0) if c < 0 else out


def _broadcast(a: Shape, b: Shape) -> Shape | None:
    rows = a[0] if b[0] == 1 else b[0] if a[0] == 1 else a[0] if a[0] == b[0] else None
    cols = a[1] if b[1] == 1 else b[1] if a[1] == 1 else a[1] if a[1] == b[1] else None
    return None if rows is None or cols is None else (rows, cols)


def to_sympy(node: F.Node) -> sympy.Expr:
    """A formula of scalars as a SymPy expression (functions undefined, ``@`` a product)."""
    if isinstance(node, F.Num):
        return node.value
    if isinstance(node, F.Name):
        return sympy.Symbol(node.id)
    if isinstance(node, F.Neg):
        return -to_sympy(node.operand)
    if isinstance(node, F.Transpose):
        return to_sympy(node.operand)
    if isinstance(node, F.Call):
        args = [to_sympy(a) for a in node.args]
        if node.axis is not None:
            args.append(sympy.Symbol("axis=" + F.unparse(node.axis)))
        return sympy.Function(node.func)(*args)
    if not isinstance(node, F.BinOp):  # the NumPy dialect's subscripts and tuples: an opaque symbol
        return sympy.Symbol(F.unparse(node))
    a, b = to_sympy(node.left), to_sympy(node.right)
    if node.op == "+":
        return a + b
    if node.op == "-":
        return a - b
    if node.op in ("*", "@"):
        return a * b
    if node.op == "/":
        return a / b
    return a ** b


def readable_tree(formula: str, shapes: dict[str, Shape], constants: set[str] | frozenset[str] = frozenset(),
                  is_scalar: Callable[[F.Node], bool] | None = None) -> F.Node:
    """The display form of ``formula`` (see the module); for scalars, checked in SymPy."""
    node = F.parse(formula)
    shown = Readable(shapes, constants)(node)
    if len(unparse(shown)) > len(unparse(node)):
        return node  # the rewrite is for reading: a longer form does not read better
    if is_scalar is not None and is_scalar(node):
        if sympy.expand(to_sympy(node) - to_sympy(shown)) != 0:
            return node  # never show a form that is not the same expression
    return shown


def readable_text(formula: str, shapes: dict[str, Shape], constants: set[str] | frozenset[str] = frozenset(),
                  is_scalar: Callable[[F.Node], bool] | None = None) -> str:
    """The display form as formula text (a leading minus without parentheses)."""
    return unparse(readable_tree(formula, shapes, constants, is_scalar))


def unparse(node: F.Node, parent: int = 0) -> str:
    """:func:`derive.lang.formula.unparse`, but ``-x + y`` rather than ``(-x) + y``."""
    if isinstance(node, F.Neg):
        inner = unparse(node.operand, 3)
        return f"(-{inner})" if parent > 1 else f"-{inner}"
    if isinstance(node, F.Transpose):
        return f"{unparse(node.operand, 5)}.T"
    if isinstance(node, F.Call):
        args = [unparse(a) for a in node.args]
        if node.axis is not None:
            args.append(f"axis={unparse(node.axis)}")
        return f"{node.func}({', '.join(args)})"
    if not isinstance(node, F.BinOp):
        return F.unparse(node, parent)
    p = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "**": 4}[node.op]
    mixes_matmul = node.op == "*" and isinstance(node.right, F.BinOp) and node.right.op == "@"
    right_p = p + 1 if node.op in "-/@" or node.op == "**" or mixes_matmul else p
    left_p = p + 1 if node.op == "**" else p
    text = f"{unparse(node.left, left_p)} {node.op} {unparse(node.right, right_p)}"
    return f"({text})" if parent > p else text


def report(doc: Document) -> Report:
    """The document's report with each of derive's own rules given its display form
    (``Check.display``; ``formula``, what was proven, is kept as it is)."""
    from derive.render.latex_printer import scalar_test

    is_scalar = scalar_test(doc.shapes)
    rules = []
    for c in doc.report.rules:
        try:
            shown = readable_text(c.formula, doc.shapes, doc.constants, is_scalar)
        except Exception:  # a formula the rewrite cannot read is shown as it is
            shown = c.formula
        rules.append(dataclasses.replace(c, display=shown) if shown != c.formula else c)
    return dataclasses.replace(doc.report, rules=rules)


RULE_MARK = "   (proven rule)"


def true_forms(doc: Document) -> dict[str, str]:
    """The document's true forms with each proven rule in its display form (printing only)."""
    from derive.render.latex_printer import scalar_test

    is_scalar = scalar_test(doc.shapes)
    out = {}
    for target, form in doc.true_forms.items():
        if form.endswith(RULE_MARK) and " = " in form:
            lhs, rhs = form[: -len(RULE_MARK)].split(" = ", 1)
            try:
                form = f"{lhs} = {readable_text(rhs, doc.shapes, doc.constants, is_scalar)}{RULE_MARK}"
            except Exception:  # the rule as built is always printable
                pass
        out[target] = form
    return out
