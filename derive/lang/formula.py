"""The safe parser for the formula language: text → a small immutable syntax tree.

The language is NumPy-like (``@``, ``*``, ``+ - /``, ``**`` with a constant exponent, ``.T``,
calls such as ``sum(dZ2, axis=1)``).  An exponent is a constant expression of number
literals, folded to an exact rational here: ``A1**2``, ``v ** 0.5``, ``v ** -0.5``,
``x ** 1.5``, ``x ** (1/2)``, ``x ** (-1/2)`` (``0.5`` is the rational 1/2, never a float).
``sqrt(x)`` and ``np.sqrt(x)`` are ``x ** (1/2)``, and ``np.power(x, p)`` and
``np.square(x)`` are ``x ** p`` and ``x ** 2``: they become the same tree.  User text is untrusted:
it is read by Python's
``ast.parse`` in ``eval`` mode (which only *parses*), then every node is checked against a
whitelist and copied into derive's own node types.  Nothing is ever evaluated, imported or
looked up as a Python object; names are plain strings that :mod:`derive.model.evaluate` resolves
against the network.  Anything else (attributes other than ``.T``, subscripts, lambdas,
comprehensions, strings, keyword arguments other than ``axis``) is a :class:`FormulaError`
pointing at its column.

Limits (raised with the keyword arguments of :func:`parse`): text length, nesting depth,
and the size (absolute value) of an exponent.
"""

from __future__ import annotations

import ast
import unicodedata
from dataclasses import dataclass

import sympy

from derive.errors import FormulaError

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_EXPONENT = 64


@dataclass(frozen=True)
class Num:
    value: sympy.Rational
    col: int


@dataclass(frozen=True)
class Name:
    id: str
    col: int


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / @ **
    left: Node
    right: Node
    col: int


@dataclass(frozen=True)
class Neg:
    operand: Node
    col: int


@dataclass(frozen=True)
class Transpose:
    operand: Node
    col: int


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]
    axis: Node | None
    col: int


Node = Num | Name | BinOp | Neg | Transpose | Call

#: NumPy spellings accepted as function names (np.sum → sum, np.dot → @, ...).
NUMPY = {
    "sum": "sum", "exp": "exp", "log": "log", "tanh": "tanh", "ones": "ones", "zeros": "zeros",
    "eye": "eye", "diag": "diag", "kron": "kron", "dot": "@", "matmul": "@", "multiply": "*",
    "transpose": ".T", "heaviside": "heaviside", "mean": "mean", "where": "where", "maximum": "maximum",
    "power": "power", "square": "square", "sqrt": "sqrt",
}

_BINOPS: dict[type, str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@", ast.Pow: "**",
}
_HINTS: dict[type, str] = {
    ast.BitXor: "'^' is not a power here: write '**'",
    ast.FloorDiv: "'//' is not supported: write '/'",
    ast.Mod: "'%' is not supported",
}


LIMITS = {"max_length": MAX_LENGTH, "max_depth": MAX_DEPTH, "max_exponent": MAX_EXPONENT}


def configure(**limits: int) -> None:
    """Raise (or lower) the parser's limits for this process (the CLI's --max-* flags)."""
    for key, value in limits.items():
        if key not in LIMITS or not isinstance(value, int) or value < 1:
            raise ValueError(f"bad formula limit {key}={value!r}")
        LIMITS[key] = value


def parse(
    text: str,
    *,
    max_length: int | None = None,
    max_depth: int | None = None,
    max_exponent: int | None = None,
) -> Node:
    """Parse one formula.  Raises :class:`FormulaError` with the column of the problem."""
    max_length = LIMITS["max_length"] if max_length is None else max_length
    max_depth = LIMITS["max_depth"] if max_depth is None else max_depth
    max_exponent = LIMITS["max_exponent"] if max_exponent is None else max_exponent
    if not isinstance(text, str):
        raise FormulaError(str(text), None, f"expected a formula as text, got {type(text).__name__}")
    if len(text) > max_length:
        raise FormulaError(text[:40] + "…", None, f"formula is {len(text)} characters long (limit {max_length})")
    if not text.strip():
        raise FormulaError(text, None, "empty formula")
    _check_characters(text)
    depth = 0
    for ch in text:  # reject pathological nesting before Python's parser recurses on it
        depth += ch in "(["
        depth -= ch in ")]"
        if depth > max_depth:
            raise FormulaError(text, None, f"nesting deeper than {max_depth} levels")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(text, exc.offset, f"syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaError(text, None, "formula too deeply nested or malformed") from None
    offset = len(text) - len(text.lstrip())
    try:
        node = _Converter(text, offset, max_depth, max_exponent).convert(tree.body, 0)
        if _digits(node) > MAX_DIGITS:  # before any number is computed: (10**30)**64)**64 ... would hang
            raise FormulaError(text, None, f"its numbers would have about {_digits(node)} digits "
                                           f"(limit {MAX_DIGITS}): powers of powers grow too fast")
        return node
    except RecursionError:
        raise FormulaError(text, None, "formula too long a chain to analyse; split it") from None


#: digits a formula's numbers may reach (estimated from its tree before anything is computed)
MAX_DIGITS = 4_000  # (Python converts integers of up to 4,300 digits to text)


def _check_characters(text: str) -> None:
    """Python reads identifiers in NFKC form (full-width Ｘ is X, ℓ is l): a formula must
    say what it means, so a character that normalizes to another is refused."""
    if text.isascii():
        return
    for i, ch in enumerate(text):
        if not ch.isascii() and unicodedata.normalize("NFKC", ch) != ch:
            raise FormulaError(text, i + 1, f"the character {ch!r} (U+{ord(ch):04X}) stands for "
                                            f"{unicodedata.normalize('NFKC', ch)!r}: write that instead")


def _digits(node: Node) -> int:
    """An upper bound on the digits of the numbers a formula computes (powers multiply them)."""
    if isinstance(node, Num):
        return len(str(abs(node.value.p))) + len(str(node.value.q))
    if isinstance(node, BinOp):
        a, b = _digits(node.left), _digits(node.right)
        if node.op == "**" and isinstance(node.right, Num):
            return (a + 1) * max(1, int(abs(node.right.value)) + 1)
        return a + b + 1
    if isinstance(node, (Neg, Transpose)):
        return _digits(node.operand)
    if isinstance(node, Call):
        return sum(_digits(a) for a in node.args) + 1
    return 1


class _Converter:
    def __init__(self, text: str, offset: int, max_depth: int, max_exponent: int) -> None:
        self.text = text
        self.offset = offset
        self.max_depth = max_depth
        self.max_exponent = max_exponent

    def fail(self, node: ast.AST, message: str) -> FormulaError:
        col = getattr(node, "col_offset", None)
        return FormulaError(self.text, None if col is None else col + 1 + self.offset, message)

    def convert(self, node: ast.AST, depth: int) -> Node:
        if depth > self.max_depth:
            raise self.fail(node, f"expression nested deeper than {self.max_depth} levels")
        col = getattr(node, "col_offset", 0) + 1 + self.offset
        d = depth + 1
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                hint = _HINTS.get(type(node.op), f"operator {type(node.op).__name__} is not allowed")
                raise self.fail(node, hint)
            # a long sum a + b + c + ... is a chain, not nesting: its left spine keeps the depth
            chain = isinstance(node.left, ast.BinOp) and type(node.left.op) is type(node.op)
            left = self.convert(node.left, depth if chain else d)
            right = self.convert(node.right, d)
            if op == "**":
                right = self.exponent(node.right, right)
            return BinOp(op, left, right, col)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return Neg(self.convert(node.operand, d), col)
            if isinstance(node.op, ast.UAdd):
                return self.convert(node.operand, d)
            raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self.fail(node, f"only numbers are allowed as constants, not {v!r}")
            if isinstance(v, float) and not (abs(v) < 1e300):
                raise self.fail(node, f"number {v!r} is out of range")
            if isinstance(v, int) and abs(v) > 10**30:
                raise self.fail(node, "integer literal too large")
            text = ast.get_source_segment(self.text.strip(), node) or repr(v)
            return Num(sympy.Rational(text.replace("_", "")) if isinstance(v, float) else sympy.Integer(v), col)
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise self.fail(node, f"names may not start with '_': {node.id!r}")
            return Name(node.id, col)
        if isinstance(node, ast.Attribute):
            if node.attr != "T":
                raise self.fail(node, f"only the attribute '.T' (transpose) is allowed, not '.{node.attr}'")
            return Transpose(self.convert(node.value, d), col)
        if isinstance(node, ast.Call):
            fname = self.function_name(node.func)
            axis: Node | None = None
            for kw in node.keywords:
                if kw.arg == "keepdims" and isinstance(kw.value, ast.Constant) and kw.value.value is True:
                    continue  # derive's sums always keep the dimension
                if kw.arg != "axis":
                    raise self.fail(kw.value, f"the only keyword argument is 'axis', not {kw.arg!r}")
                axis = self.convert(kw.value, d)
            for a in node.args:
                if isinstance(a, ast.Starred):
                    raise self.fail(a, "starred arguments are not allowed")
            args = tuple(self.convert(a, d) for a in node.args)
            return self.numpy_call(node, fname, args, axis, col)
        if isinstance(node, ast.Compare):
            return self.comparison(node, d, col)
        what = type(node).__name__
        raise self.fail(node, f"{what} is not part of the formula language")

    def function_name(self, func: ast.AST) -> str:
        """A called name: plain (sum) or NumPy-qualified (np.sum, numpy.sum)."""
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("np", "numpy"):
            if func.attr not in NUMPY:
                raise self.fail(func, f"np.{func.attr} is not supported (supported: {', '.join(sorted(NUMPY))})")
            return NUMPY[func.attr]
        if not isinstance(func, ast.Name):
            raise self.fail(func, "only plain function names can be called, e.g. sum(M, axis=1)")
        if func.id.startswith("_"):
            raise self.fail(func, f"names may not start with '_': {func.id!r}")
        return func.id

    def numpy_call(self, node: ast.Call, fname: str, args: tuple[Node, ...], axis: Node | None, col: int) -> Node:
        """np.dot, np.multiply, np.transpose, np.heaviside(Z, 0) and np.mean in derive's terms."""
        if fname in ("@", "*") and len(args) == 2:
            return BinOp(fname, args[0], args[1], col)
        if fname == ".T" and len(args) == 1:
            return Transpose(args[0], col)
        if fname in ("@", "*", ".T"):
            raise self.fail(node, "np.dot/np.matmul/np.multiply take two arguments, np.transpose one")
        if fname == "heaviside":
            if len(args) == 2 and isinstance(args[1], Num):
                return _heaviside(args[0], args[1].value, col)
            raise self.fail(node, "np.heaviside(Z, h) needs a number h, its value at 0 (h = 0: relu_prime(Z))")
        if fname == "where":
            if len(args) == 3 and isinstance(node.args[0], ast.Compare):
                cond, a, b = args  # cond is 0 or 1 in every entry: cond·a + (1 − cond)·b is exact
                rest = BinOp("-", Num(sympy.Integer(1), col), cond, col)
                return BinOp("+", BinOp("*", cond, a, col), BinOp("*", rest, b, col), col)
            raise self.fail(node, "np.where(cond, a, b) needs a comparison with 0 as cond, "
                                  "e.g. np.where(Z > 0, 1, 0.01)")
        if fname == "power":
            if len(args) == 2:
                return BinOp("**", args[0], self.exponent(node.args[1], args[1]), col)
            raise self.fail(node, "np.power takes two arguments, e.g. np.power(A1, 2)")
        if fname == "square":
            if len(args) == 1:
                return BinOp("**", args[0], Num(sympy.Integer(2), col), col)
            raise self.fail(node, "np.square takes one argument")
        if fname == "sqrt":
            if len(args) == 1 and axis is None:
                return BinOp("**", args[0], Num(sympy.Rational(1, 2), col), col)
            raise self.fail(node, "sqrt takes one argument, e.g. sqrt(v + eps)")
        if fname == "maximum":
            if len(args) == 2 and _is_zero(args[1]):
                return Call("relu", args[:1], None, col)
            if len(args) == 2 and _is_zero(args[0]):
                return Call("relu", args[1:], None, col)
            raise self.fail(node, "only np.maximum(Z, 0) is supported (it is relu(Z))")
        if fname == "mean" and len(args) == 1:
            return Call("mean", args, axis, col)
        return Call(fname, args, axis, col)

    def comparison(self, node: ast.Compare, d: int, col: int) -> Node:
        """(Z > 0), (Z < 0), (Z >= 0), (Z <= 0), either way round: 0/1 masks through relu′.

        relu′(u) is 1 for u > 0 and 0 otherwise, so (Z < 0) = relu′(−Z),
        (Z >= 0) = 1 − relu′(−Z) and (Z <= 0) = 1 − relu′(Z), exact at Z = 0 too.
        """
        ops = {ast.Gt: ">", ast.Lt: "<", ast.GtE: ">=", ast.LtE: "<="}
        usage = "a comparison must compare with 0, e.g. (Z1 > 0), (Z1 <= 0): it is a 0/1 mask through relu_prime"
        if len(node.ops) != 1 or type(node.ops[0]) not in ops:
            raise self.fail(node, usage)
        op = ops[type(node.ops[0])]
        left, right = node.left, node.comparators[0]
        if _literal_zero(right):
            side = left
        elif _literal_zero(left):
            side = right
            op = {">": "<", "<": ">", ">=": "<=", "<=": ">="}[op]  # 0 < Z is Z > 0
        else:
            raise self.fail(node, usage)
        m = self.convert(side, d)
        def step(u: Node) -> Node:
            return Call("relu_prime", (u,), None, col)
        one = Num(sympy.Integer(1), col)
        if op == ">":
            return step(m)
        if op == "<":
            return step(Neg(m, col))
        if op == ">=":
            return BinOp("-", one, step(Neg(m, col)), col)
        return BinOp("-", one, step(m), col)

    def exponent(self, raw: ast.AST, node: Node) -> Num:
        """An exponent folded to one rational number: 2, 0.5, -0.5, (1/2), (-1/2), 3/2 ...

        Only number literals combined with + - * / and unary minus (and ** with a whole
        exponent) are constant; anything naming a value is refused.
        """
        value = self.fold(raw, node)
        if value is None:
            raise self.fail(raw, "an exponent must be a literal number (or numbers with + - * /), "
                                 "e.g. A1**2, v**0.5, v**(-1/2)")
        if abs(value) > self.max_exponent:
            raise self.fail(raw, f"exponent {value} is larger than the limit {self.max_exponent}")
        return Num(value, node.col)

    def fold(self, raw: ast.AST, node: Node) -> sympy.Rational | None:
        """The exact value of a constant expression of literals, or None."""
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Neg):
            v = self.fold(raw, node.operand)
            return None if v is None else -v
        if not isinstance(node, BinOp) or node.op == "@":
            return None
        a, b = self.fold(raw, node.left), self.fold(raw, node.right)
        if a is None or b is None:
            return None
        if node.op == "+":
            return a + b
        if node.op == "-":
            return a - b
        if node.op == "*":
            return a * b
        if node.op == "/":
            if b == 0:
                raise self.fail(raw, "division by zero in an exponent")
            return a / b
        # "**" inside an exponent: a whole, bounded power keeps the value rational and small
        if not b.is_Integer or abs(b) > self.max_exponent:
            raise self.fail(raw, "a power inside an exponent needs a whole exponent, e.g. 2**-1")
        if a == 0 and b < 0:
            raise self.fail(raw, "division by zero in an exponent")
        return a**b


def _literal_zero(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and not isinstance(node.value, bool)
            and isinstance(node.value, (int, float)) and node.value == 0)


def _is_zero(node: Node) -> bool:
    return isinstance(node, Num) and node.value == 0


def _heaviside(m: Node, h0: sympy.Rational, col: int) -> Node:
    """np.heaviside(M, h0): relu′(M) + h0·[M = 0], with [M = 0] = 1 − relu′(M) − relu′(−M)."""
    step = Call("relu_prime", (m,), None, col)
    if h0 == 0:
        return step
    negative = Call("relu_prime", (Neg(m, col),), None, col)
    at_zero = BinOp("-", BinOp("-", Num(sympy.Integer(1), col), step, col), negative, col)
    return BinOp("+", step, BinOp("*", Num(h0, col), at_zero, col), col)


def names(node: Node) -> set[str]:
    """Every name a formula mentions (function names excluded)."""
    if isinstance(node, Name):
        return {node.id}
    if isinstance(node, BinOp):
        return names(node.left) | names(node.right)
    if isinstance(node, (Neg, Transpose)):
        return names(node.operand)
    if isinstance(node, Call):
        out: set[str] = set()
        for a in node.args:
            out |= names(a)
        return out
    return set()


def to_scalar(node: Node, text: str) -> sympy.Expr:
    """A constant scalar expression (a loss scale, a slope): numbers, names, + - * / **.

    Names become real SymPy symbols: results then hold for every value of them.
    """
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Name):
        return sympy.Symbol(node.id, real=True)
    if isinstance(node, Neg):
        return -to_scalar(node.operand, text)
    if isinstance(node, BinOp) and node.op in "+-*/**":
        a, b = to_scalar(node.left, text), to_scalar(node.right, text)
        if node.op == "+":
            return a + b
        if node.op == "-":
            return a - b
        if node.op == "*":
            return a * b
        if node.op == "/":
            if b == 0:
                raise FormulaError(text, node.col, "division by zero")
            return a / b
        return a**b
    raise FormulaError(text, getattr(node, "col", None), "expected a scalar constant such as 1/2 or 1/alpha")


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "**": 4}


def unparse(node: Node, parent: int = 0) -> str:
    """Formula text for a syntax tree, with the parentheses it needs."""
    if isinstance(node, Num):
        v = node.value
        text = str(v)
        return f"({text})" if ("/" in text or v < 0) and parent else text
    if isinstance(node, Name):
        return node.id
    if isinstance(node, Neg):
        inner = unparse(node.operand, 3)
        return f"(-{inner})" if parent else f"-{inner}"
    if isinstance(node, Transpose):
        return f"{unparse(node.operand, 5)}.T"
    if isinstance(node, Call):
        args = [unparse(a) for a in node.args]
        if node.axis is not None:
            args.append(f"axis={unparse(node.axis)}")
        return f"{node.func}({', '.join(args)})"
    p = _PRECEDENCE[node.op]
    # a right operand of equal precedence needs parentheses unless regrouping is harmless:
    # a * (b @ c) is not (a * b) @ c once broadcasting is involved
    mixes_matmul = node.op == "*" and isinstance(node.right, BinOp) and node.right.op == "@"
    right_p = p + 1 if node.op in "-/@" or node.op == "**" or mixes_matmul else p
    left_p = p + 1 if node.op == "**" else p
    text = f"{unparse(node.left, left_p)} {node.op} {unparse(node.right, right_p)}"
    return f"({text})" if parent > p else text


def check_target(node: Node, text: str) -> None:
    """A claim's target is a gradient dV, vec(dV) or a Jacobian J(y, x) (syntax only)."""
    if isinstance(node, Name) and node.id.startswith("d"):
        return
    if isinstance(node, Call) and node.func == "vec" and len(node.args) == 1:
        return check_target(node.args[0], text)
    if isinstance(node, Call) and node.func == "J":
        return
    raise FormulaError(text, getattr(node, "col", None),
                       "a claim's target must be a gradient such as dW2, db1, dZ1, dA1 or vec(dW1), "
                       "or a Jacobian such as J(Z1, b1)")
