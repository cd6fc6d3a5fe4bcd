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
pointing at its column.  The one string taken is ``np.einsum``'s first argument, its
subscripts (``'ij,jk->ik'``): checked against a strict pattern and kept as data
(:class:`Subscripts`), never evaluated.

Limits (raised with the keyword arguments of :func:`parse`): text length, nesting depth,
and the size (absolute value) of an exponent.
"""

from __future__ import annotations

import ast
import re
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
    #: the other keyword arguments, by their NumPy names (keepdims, ddof, dtype, ...)
    keywords: tuple[tuple[str, Node], ...] = ()

    def keyword(self, name: str) -> Node | None:
        for key, value in self.keywords:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class Slice:
    """``lower:upper:step`` inside a subscript (each part optional)."""

    lower: Node | None
    upper: Node | None
    step: Node | None
    col: int


@dataclass(frozen=True)
class NewAxis:
    """``None`` or ``np.newaxis`` inside a subscript."""

    col: int


@dataclass(frozen=True)
class Index:
    """``value[item, item, ...]``: integers, slices, new axes, index arrays or masks."""

    value: Node
    items: tuple[Node | Slice | NewAxis, ...]
    col: int


@dataclass(frozen=True)
class Tuple:
    """``(N, D)``: a shape or a tuple of axes."""

    items: tuple[Node, ...]
    col: int


@dataclass(frozen=True)
class Equal:
    """``a == b`` or ``a != b`` elementwise (a 0/1 mask; the mask of a maximum, for one)."""

    op: str  # "==" | "!="
    left: Node
    right: Node
    col: int


@dataclass(frozen=True)
class Subscripts:
    """The subscripts of ``np.einsum('ij,jk->ik', A, B)``: data, validated by
    :data:`SUBSCRIPTS` (letters, commas, one optional '->'), never evaluated.  The only
    string the language takes, and only as einsum's first argument."""

    text: str
    col: int


Node = Num | Name | BinOp | Neg | Transpose | Call | Index | Tuple | Equal | Subscripts

#: einsum subscripts: terms of letters separated by commas, then optionally '->' and the
#: output's letters (no spaces, no '...')
SUBSCRIPTS = re.compile(r"[A-Za-z]{1,12}(,[A-Za-z]{1,12}){0,7}(->[A-Za-z]{0,12})?")

#: NumPy spellings accepted as function names (np.sum → sum, np.dot → @, ...); the values
#: "@ * / + -" are operators, "neg" a negation, "float_cast"/"int_cast" casts (exact
#: arithmetic has one number type; an int cast is allowed on masks only), "copy" the value.
NUMPY = {
    "sum": "sum", "exp": "exp", "log": "log", "tanh": "tanh", "ones": "ones", "zeros": "zeros",
    "eye": "eye", "diag": "diag", "kron": "kron", "dot": "@", "matmul": "@", "multiply": "*",
    "transpose": "transpose", "heaviside": "heaviside", "mean": "mean", "where": "where", "maximum": "maximum",
    "power": "power", "square": "square", "sqrt": "sqrt",
    "var": "var", "std": "std", "abs": "abs", "absolute": "abs", "fabs": "abs", "sign": "sign",
    "max": "max", "amax": "max", "min": "min", "amin": "min", "argmax": "argmax", "argmin": "argmin",
    "clip": "clip", "minimum": "minimum", "outer": "outer", "ones_like": "ones_like", "zeros_like": "zeros_like",
    "arange": "arange", "hstack": "hstack", "vstack": "vstack", "concatenate": "concatenate", "stack": "stack",
    "reshape": "reshape", "divide": "/", "true_divide": "/", "subtract": "-", "add": "+", "negative": "neg",
    "int64": "int_cast", "int32": "int_cast", "int_": "int_cast", "float64": "float_cast",
    "float32": "float_cast", "double": "float_cast", "array": "copy", "asarray": "copy", "copy": "copy",
    "einsum": "einsum", "expand_dims": "expand_dims", "squeeze": "squeeze", "log1p": "log1p",
    "tile": "tile", "repeat": "repeat", "flip": "flip", "rot90": "rot90", "pad": "pad", "tensordot": "tensordot",
    "swapaxes": "swapaxes", "tril": "tril", "triu": "triu",
}
#: torch spellings that mean the same as NumPy's (torch.var and torch.max are not here:
#: their defaults differ, the unbiased variance and a (values, indices) pair)
TORCH = {
    "sum": "sum", "mean": "mean", "exp": "exp", "log": "log", "tanh": "tanh", "sqrt": "sqrt", "abs": "abs",
    "sign": "sign", "matmul": "@", "mm": "@", "t": ".T", "sigmoid": "sigmoid", "relu": "relu",
    "ones_like": "ones_like", "zeros_like": "zeros_like", "clamp": "clip", "cat": "concatenate", "outer": "outer",
    "maximum": "maximum", "minimum": "minimum", "where": "where", "pow": "power", "square": "square", "mul": "*",
    "div": "/", "einsum": "einsum", "stack": "stack",
}
#: methods: ``x.sum(axis=0)`` is sum(x, axis=0) (NumPy's meaning; torch's where it agrees)
METHODS = {
    "sum": "sum", "mean": "mean", "var": "var", "std": "std", "max": "max", "min": "min", "argmax": "argmax",
    "argmin": "argmin", "dot": "@", "transpose": "transpose", "copy": "copy", "reshape": "reshape",
    "clip": "clip", "astype": "float_cast", "flatten": "flatten", "ravel": "flatten", "squeeze": "squeeze",
    "exp": "exp", "log": "log", "sqrt": "sqrt", "abs": "abs", "tanh": "tanh", "sigmoid": "sigmoid",
    "relu": "relu", "clamp": "clip", "matmul": "@", "mm": "@", "t": ".T", "pow": "power", "view": "reshape",
    "permute": "transpose", "detach": "copy", "clone": "copy", "float": "float_cast", "double": "float_cast",
    "numel": "size", "size": "shape", "unsqueeze": "expand_dims", "item": "copy", "repeat": "repeat",
}
#: plain names that are NumPy spellings too
BUILTINS = {"len": "len", "abs": "abs", "sqrt": "sqrt", "range": "range"}
#: where a namespace (np.sum, torch.tanh) is meant, not a value
NAMESPACES = ("np", "numpy", "torch")
#: keyword arguments, by the name NumPy gives them (torch's dim/keepdim are axis/keepdims)
KEYWORDS = {
    "axis": "axis", "dim": "axis", "keepdims": "keepdims", "keepdim": "keepdims", "ddof": "ddof",
    "unbiased": "unbiased", "dtype": "dtype", "a_min": "a_min", "a_max": "a_max", "min": "a_min",
    "max": "a_max", "axes": "axes", "shape": "shape", "exponent": "exponent", "stride": "stride", "pad": "pad",
}
#: reductions: NumPy's spelling drops the axis unless keepdims=True (derive's sum keeps it)
REDUCTIONS = ("sum", "mean", "max", "min", "var", "std", "argmax", "argmin")
#: functions whose second positional argument is the axis (x.sum(0), np.max(x, 1))
AXIS_FUNCTIONS = ("sum", "mean", "max", "min", "argmax", "argmin", "concatenate", "stack", "squeeze",
                  "expand_dims", "flip")

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
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            return self.mask_logic(node, d, col)
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
            if isinstance(node.op, ast.Invert) and _is_mask(node.operand):  # ~mask = 1 − mask
                return BinOp("-", Num(sympy.Integer(1), col), self.convert(node.operand, d), col)
            if isinstance(node.op, ast.Not):
                raise self.fail(node, "'not' is not elementwise: write ~(mask) for a mask")
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
            return self.attribute(node, d, col)
        if isinstance(node, ast.Call):
            return self.call(node, d, col)
        if isinstance(node, ast.Compare):
            return self.comparison(node, d, col)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, d, col)
        if isinstance(node, ast.Tuple):
            return Tuple(tuple(self.convert(e, d) for e in node.elts), col)
        if isinstance(node, ast.BoolOp):
            raise self.fail(node, "'and'/'or' are not elementwise: combine masks with '&' and '|'")
        what = type(node).__name__
        raise self.fail(node, f"{what} is not part of the formula language")

    # ------------------------------------------------------------ attributes
    def attribute(self, node: ast.Attribute, d: int, col: int) -> Node:
        """``.T``; ``.shape``, ``.size``, ``.ndim`` (numbers once the value is known)."""
        if isinstance(node.value, ast.Name) and node.value.id in NAMESPACES:
            raise self.fail(node, f"{node.value.id}.{node.attr} is not supported (a function of "
                                  f"{node.value.id} is called directly, e.g. {node.value.id}.sum(x))")
        if node.attr.startswith("_"):
            raise self.fail(node, f"names may not start with '_': {node.attr!r}")
        if node.attr == "T":
            return Transpose(self.convert(node.value, d), col)
        if node.attr in ("shape", "size", "ndim"):
            return Call(node.attr, (self.convert(node.value, d),), None, col)
        raise self.fail(node, f"attribute '.{node.attr}' is not supported (supported: .T, .shape, .size, .ndim, "
                              f"and the methods {', '.join(sorted(METHODS))})")

    # ------------------------------------------------------------ calls
    def call(self, node: ast.Call, d: int, col: int) -> Node:
        """A function (``sum(x)``, ``np.sum(x)``, ``torch.tanh(x)``) or a method
        (``x.sum(axis=0)``: the object becomes the first argument)."""
        func = node.func
        receiver: ast.AST | None = None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in NAMESPACES:
            table = TORCH if func.value.id == "torch" else NUMPY
            if func.attr not in table:
                supported = ", ".join(sorted(table))
                raise self.fail(func, f"{func.value.id}.{func.attr} is not supported (supported: {supported})")
            fname = table[func.attr]
        elif isinstance(func, ast.Attribute):
            self.convert(func.value, d)  # the object first: its own problem is the one to report
            if func.attr.startswith("_"):
                raise self.fail(func, f"names may not start with '_': {func.attr!r}")
            if func.attr not in METHODS:
                raise self.fail(func, f"method '.{func.attr}()' is not supported (supported: "
                                      f"{', '.join(sorted(METHODS))})")
            fname, receiver = METHODS[func.attr], func.value
        elif isinstance(func, ast.Name):
            if func.id.startswith("_"):
                raise self.fail(func, f"names may not start with '_': {func.id!r}")
            fname = BUILTINS.get(func.id, func.id)
        else:
            raise self.fail(func, "only plain function names can be called, e.g. sum(M, axis=1)")
        raw_args = ([receiver] if receiver is not None else []) + list(node.args)
        if fname == "float_cast" and receiver is not None and node.args:  # x.astype(dtype)
            kind = node.args[0]
            name = kind.attr if isinstance(kind, ast.Attribute) else kind.id if isinstance(kind, ast.Name) else ""
            if name.startswith(("int", "uint", "bool")):
                fname = "int_cast"
            raw_args = [receiver]
        for a in raw_args:
            if isinstance(a, ast.Starred):
                raise self.fail(a, "starred arguments are not allowed")
        subscripts: tuple[Node, ...] = ()
        if fname == "einsum":
            subscripts = (self.subscripts(node, raw_args),)
            raw_args = raw_args[1:]
        args = subscripts + tuple(self.convert(a, d) for a in raw_args)
        axis: Node | None = None
        keywords: list[tuple[str, Node]] = []
        torch_style = False
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(kw.value, "'**' arguments are not allowed")
            key = KEYWORDS.get(kw.arg)
            if key is None:
                raise self.fail(kw.value, f"keyword argument {kw.arg!r} is not supported (supported: "
                                          f"{', '.join(sorted(KEYWORDS))})")
            torch_style |= kw.arg in ("dim", "keepdim", "unbiased")
            if key == "dtype":
                continue  # a dtype changes nothing in exact arithmetic (int casts of masks included)
            flag = kw.value.value if isinstance(kw.value, ast.Constant) and _is_bool(kw.value) else None
            value = self.convert(kw.value, d) if flag is None else Num(sympy.Integer(int(bool(flag))), col)
            if key == "axis":
                axis = value
            else:
                keywords.append((key, value))
        if fname in REDUCTIONS and (receiver is not None or isinstance(func, ast.Attribute)):
            # NumPy's reductions drop the reduced axis unless keepdims=True; derive's own
            # sum(x, axis=1) keeps it.  Say which, so blocks follow NumPy exactly.
            keep = dict(keywords).get("keepdims")
            keywords = [k for k in keywords if k[0] != "keepdims"]
            if keep is None or _is_zero(keep):
                keywords.append(("keepdims", Num(sympy.Integer(0), col)))
        return self.numpy_call(node, fname, args, axis, col, tuple(keywords), raw_args, torch_style)

    def subscripts(self, node: ast.Call, raw: list[ast.AST]) -> Subscripts:
        """einsum's first argument: a string literal of letters, commas and one '->',
        with one term per array and the output's letters each once, from the inputs."""
        first = raw[0] if raw else None
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            raise self.fail(node, "np.einsum takes its subscripts first, as a string literal: "
                                  "np.einsum('ij,jk->ik', A, B)")
        text = first.value
        if not SUBSCRIPTS.fullmatch(text):
            raise self.fail(first, f"einsum subscripts {text[:40]!r} are not letters separated by commas with one "
                                   "optional '->' (e.g. 'ij,jk->ik'; no spaces, no '...')")
        inputs, _, output = text.partition("->")
        terms = inputs.split(",")
        if len(terms) != len(raw) - 1:
            raise self.fail(node, f"einsum subscripts {text!r} name {len(terms)} array(s), given {len(raw) - 1}")
        if "->" in text and (len(set(output)) != len(output) or not set(output) <= set(inputs) - {","}):
            raise self.fail(first, f"einsum output {output!r}: each letter once, and from the inputs")
        return Subscripts(text, getattr(first, "col_offset", 0) + 1 + self.offset)

    def numpy_call(self, node: ast.Call, fname: str, args: tuple[Node, ...], axis: Node | None, col: int,
                   keywords: tuple[tuple[str, Node], ...] = (), raw: list[ast.AST] | None = None,
                   torch_style: bool = False) -> Node:
        """NumPy's spellings in derive's terms: most become the operators or functions the
        language already has (exact rewrites), the rest stay calls with their keywords."""
        raw = raw if raw is not None else list(node.args)
        one = Num(sympy.Integer(1), col)
        if fname in ("@", "*", "/", "+", "-") and len(args) == 2:
            return BinOp(fname, args[0], args[1], col)
        if fname in ("@", "*", "/", "+", "-"):
            raise self.fail(node, f"{fname!r} as a function takes two arguments, e.g. np.dot(W, x)")
        if fname == "neg" and len(args) == 1:
            return Neg(args[0], col)
        if fname == ".T" and len(args) == 1:
            return Transpose(args[0], col)
        if fname == "transpose":
            nums = [a.value for a in args[1:] if isinstance(a, Num)]
            if len(args) == 1 or (len(args) == 3 and len(nums) == 2 and {int(v) for v in nums} == {0, 1}
                                  and not torch_style):
                return Transpose(args[0], col)
            return Call("transpose", args, None, col)
        if fname in ("copy", "float_cast"):
            if len(args) != 1:
                raise self.fail(node, f"{fname.replace('_cast', '')}() takes one value")
            return args[0]
        if fname == "int_cast":
            if len(args) != 1:
                raise self.fail(node, "an integer cast takes one value")
            if not _is_mask(raw[0]):
                raise self.fail(node, "an integer cast of a value rounds it (not differentiable); it is supported "
                                      "on masks only, e.g. np.int64(Z > 0)")
            return args[0]
        if fname == "heaviside":
            if len(args) == 2 and isinstance(args[1], Num):
                return _heaviside(args[0], args[1].value, col)
            raise self.fail(node, "np.heaviside(Z, h) needs a number h, its value at 0 (h = 0: relu_prime(Z))")
        if fname == "where":
            if len(args) == 3 and _is_mask(raw[0]):
                cond, a, b = args  # cond is 0 or 1 in every entry: cond·a + (1 − cond)·b is exact
                rest = BinOp("-", one, cond, col)
                return BinOp("+", BinOp("*", cond, a, col), BinOp("*", rest, b, col), col)
            raise self.fail(node, "np.where(cond, a, b) needs a comparison (a mask) as cond, "
                                  "e.g. np.where(Z > 0, 1, 0.01)")
        if fname == "power":
            if len(args) == 2:
                return BinOp("**", args[0], self.exponent(raw[1], args[1]), col)
            raise self.fail(node, "np.power takes two arguments, e.g. np.power(A1, 2)")
        if fname == "square":
            if len(args) == 1:
                return BinOp("**", args[0], Num(sympy.Integer(2), col), col)
            raise self.fail(node, "np.square takes one argument")
        if fname == "sqrt":
            if len(args) == 1 and axis is None:
                return BinOp("**", args[0], Num(sympy.Rational(1, 2), col), col)
            raise self.fail(node, "sqrt takes one argument, e.g. sqrt(v + eps)")
        if fname == "abs":  # |u| = relu(u) + relu(−u): a kink at 0, proofs by cases as for relu
            self._arity(node, args, 1)
            return BinOp("+", _relu(args[0], col), _relu(Neg(args[0], col), col), col)
        if fname == "sign":  # relu′(u) − relu′(−u): 1, 0 at 0, −1
            self._arity(node, args, 1)
            return BinOp("-", _step(args[0], col), _step(Neg(args[0], col), col), col)
        if fname in ("maximum", "minimum"):
            self._arity(node, args, 2)
            return _extremum(fname, args[0], args[1], col)
        if fname == "clip":
            lo = args[1] if len(args) > 1 else dict(keywords).get("a_min")
            hi = args[2] if len(args) > 2 else dict(keywords).get("a_max")
            if len(args) not in (1, 2, 3) or (lo is None and hi is None):
                raise self.fail(node, "np.clip(x, low, high) takes a value and its bounds (None for no bound)")
            value = args[0]  # NumPy's clip is min(max(x, low), high)
            if lo is not None and not _is_none(lo):
                value = _extremum("maximum", value, lo, col)
            if hi is not None and not _is_none(hi):
                value = _extremum("minimum", value, hi, col)
            return value
        if fname in ("var", "std"):
            ddof = dict(keywords).get("ddof")
            unbiased = dict(keywords).get("unbiased")
            if (ddof is not None and not _is_zero(ddof)) or (unbiased is not None and not _is_zero(unbiased)) or (
                    torch_style and unbiased is None):
                raise self.fail(node, f"{fname} with the unbiased estimate (ddof=1; torch's default) is not "
                                      "supported: batch norm uses the biased one (ddof=0, unbiased=False)")
            if len(args) == 2 and axis is None:
                axis = args[1]
                args = tuple(args[:1])
            self._arity(node, args, 1)
            keep = dict(keywords).get("keepdims")
            inner = Call("mean", args, axis, col)
            centred = BinOp("**", BinOp("-", args[0], inner, col), Num(sympy.Integer(2), col), col)
            outer_kw = (("keepdims", keep),) if keep is not None and _is_zero(keep) else ()
            var = Call("mean", (centred,), axis, col, outer_kw)
            return var if fname == "var" else BinOp("**", var, Num(sympy.Rational(1, 2), col), col)
        if fname in AXIS_FUNCTIONS and len(args) == 2 and axis is None:
            axis = args[1]  # x.sum(0), np.sum(x, 1): the axis given by position
            args = tuple(args[:1])
        if fname in ("ones", "zeros") and len(args) == 1 and isinstance(args[0], Tuple):
            args = args[0].items  # np.ones((N, D)) is ones(N, D)
        if fname == "shape" and len(args) == 2 and not isinstance(args[1], Num):
            raise self.fail(node, "x.shape[k] needs a literal k")
        return Call(fname, args, axis, col, tuple(k for k in keywords if k[0] not in ("ddof", "unbiased")))

    def _arity(self, node: ast.AST, args: tuple[Node, ...], n: int) -> None:
        if len(args) != n:
            raise self.fail(node, f"expected {n} argument(s), got {len(args)}")

    # ------------------------------------------------------------ subscripts
    def subscript(self, node: ast.Subscript, d: int, col: int) -> Node:
        """``x[i]``, ``a[:, :H]``, ``W[:, H:2*H]``, ``x[np.arange(N), y]``, ``dZ[Z <= 0]``,
        ``b[None, :]``, and ``x.shape[0]``."""
        if isinstance(node.value, ast.Attribute) and node.value.attr == "shape" and not isinstance(node.slice,
                                                                                                    ast.Slice):
            k = self.convert(node.slice, d)
            if not isinstance(k, Num) and not (isinstance(k, Neg) and isinstance(k.operand, Num)):
                raise self.fail(node.slice, "x.shape[k] needs a literal k")
            return Call("shape", (self.convert(node.value.value, d), k), None, col)
        raw = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        items: list[Node | Slice | NewAxis] = []
        for r in raw:
            rcol = getattr(r, "col_offset", 0) + 1 + self.offset
            if isinstance(r, ast.Slice):
                parts = [None if p is None else self.convert(p, d) for p in (r.lower, r.upper, r.step)]
                items.append(Slice(parts[0], parts[1], parts[2], rcol))
            elif isinstance(r, ast.Constant) and r.value is None:
                items.append(NewAxis(rcol))
            elif (isinstance(r, ast.Attribute) and r.attr == "newaxis" and isinstance(r.value, ast.Name)
                  and r.value.id in ("np", "numpy")):
                items.append(NewAxis(rcol))
            elif isinstance(r, ast.Constant) and r.value is Ellipsis:
                raise self.fail(r, "'...' in a subscript is not supported: write the ':' for each axis")
            else:
                items.append(self.convert(r, d))
        return Index(self.convert(node.value, d), tuple(items), col)

    def comparison(self, node: ast.Compare, d: int, col: int) -> Node:
        """``a > b``, ``a < b``, ``a >= b``, ``a <= b``: 0/1 masks through relu′ of ``a − b``.

        relu′(u) is 1 for u > 0 and 0 otherwise, so (a > b) = relu′(a − b),
        (a < b) = relu′(b − a), (a >= b) = 1 − relu′(b − a) and (a <= b) = 1 − relu′(a − b),
        exact where a = b too.  ``a == b`` and ``a != b`` stay comparisons (the mask of a
        maximum, ``x == x.max(axis=1, keepdims=True)``, is what they are for).
        """
        ops = {ast.Gt: ">", ast.Lt: "<", ast.GtE: ">=", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}
        if len(node.ops) != 1 or type(node.ops[0]) not in ops:
            raise self.fail(node, "a comparison compares two values, e.g. (Z1 > 0), (x <= b): chained comparisons "
                                  "and 'is'/'in' are not supported")
        op = ops[type(node.ops[0])]
        left, right = node.left, node.comparators[0]
        if op in ("==", "!="):
            return Equal(op, self.convert(left, d), self.convert(right, d), col)
        if _literal_zero(left):  # 0 < Z is Z > 0
            left, right = right, left
            op = {">": "<", "<": ">", ">=": "<=", "<=": ">="}[op]
        m = self.convert(left, d)
        if not _literal_zero(right):
            m = BinOp("-", m, self.convert(right, d), col)

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

    def mask_logic(self, node: ast.BinOp, d: int, col: int) -> Node:
        """``m1 & m2`` = m1·m2 and ``m1 | m2`` = m1 + m2 − m1·m2, for masks (comparisons)."""
        if not (_is_mask(node.left) and _is_mask(node.right)):
            raise self.fail(node, "'&' and '|' combine masks (comparisons such as (x > 0) & (x < 1)); "
                                  "for numbers write '*' or '+'")
        a, b = self.convert(node.left, d), self.convert(node.right, d)
        both = BinOp("*", a, b, col)
        if isinstance(node.op, ast.BitAnd):
            return both
        return BinOp("-", BinOp("+", a, b, col), both, col)

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


def _is_bool(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, bool)


def _is_none(node: Node) -> bool:
    return isinstance(node, Name) and node.id == "None"


def _is_mask(node: ast.AST) -> bool:
    """Whether text is a 0/1 mask by its form: a comparison, masks joined by & | ~, or a cast of one."""
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr, ast.Mult)):
        return _is_mask(node.left) and _is_mask(node.right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
        return _is_mask(node.operand)
    if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute):
        if node.func.attr in ("int64", "int32", "float64", "float32", "int_", "double", "array", "asarray"):
            return _is_mask(node.args[0])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "astype":
        return _is_mask(node.func.value)
    return False


def _relu(u: Node, col: int) -> Node:
    return Call("relu", (u,), None, col)


def _step(u: Node, col: int) -> Node:
    return Call("relu_prime", (u,), None, col)


def _extremum(fname: str, a: Node, b: Node, col: int) -> Node:
    """maximum(a, b) = b + relu(a − b) and minimum(a, b) = b − relu(b − a), exact;
    maximum(Z, 0) is relu(Z)."""
    if fname == "maximum":
        if _is_zero(b):
            return _relu(a, col)
        if _is_zero(a):
            return _relu(b, col)
        return BinOp("+", b, _relu(BinOp("-", a, b, col), col), col)
    if _is_zero(b):
        return Neg(_relu(Neg(a, col), col), col)
    if _is_zero(a):
        return Neg(_relu(Neg(b, col), col), col)
    return BinOp("-", b, _relu(BinOp("-", b, a, col), col), col)


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
        for a in (*node.args, *(v for _, v in node.keywords)):
            out |= names(a)
        if node.axis is not None:
            out |= names(node.axis)
        return out
    if isinstance(node, Tuple):
        return set().union(*(names(a) for a in node.items)) if node.items else set()
    if isinstance(node, Equal):
        return names(node.left) | names(node.right)
    if isinstance(node, Index):
        out = names(node.value)
        for item in node.items:
            if isinstance(item, Slice):
                for part in (item.lower, item.upper, item.step):
                    if part is not None:
                        out |= names(part)
            elif not isinstance(item, NewAxis):
                out |= names(item)
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
    if isinstance(node, Subscripts):
        return repr(node.text)
    if isinstance(node, Neg):
        inner = unparse(node.operand, 3)
        return f"(-{inner})" if parent else f"-{inner}"
    if isinstance(node, Transpose):
        return f"{unparse(node.operand, 5)}.T"
    if isinstance(node, Call):
        args = [unparse(a) for a in node.args]
        if node.axis is not None:
            args.append(f"axis={unparse(node.axis)}")
        args.extend(f"{key}={unparse(value)}" for key, value in node.keywords)
        return f"{node.func}({', '.join(args)})"
    if isinstance(node, Tuple):
        inner = ", ".join(unparse(a) for a in node.items)
        return f"({inner},)" if len(node.items) == 1 else f"({inner})"
    if isinstance(node, Equal):
        text = f"{unparse(node.left, 1)} {node.op} {unparse(node.right, 1)}"
        return f"({text})"
    if isinstance(node, Index):
        return f"{unparse(node.value, 5)}[{', '.join(_item_text(i) for i in node.items)}]"
    p = _PRECEDENCE[node.op]
    # a right operand of equal precedence needs parentheses unless regrouping is harmless:
    # a * (b @ c) is not (a * b) @ c once broadcasting is involved
    mixes_matmul = node.op == "*" and isinstance(node.right, BinOp) and node.right.op == "@"
    right_p = p + 1 if node.op in "-/@" or node.op == "**" or mixes_matmul else p
    left_p = p + 1 if node.op == "**" else p
    text = f"{unparse(node.left, left_p)} {node.op} {unparse(node.right, right_p)}"
    return f"({text})" if parent > p else text


def _item_text(item: Node | Slice | NewAxis) -> str:
    if isinstance(item, NewAxis):
        return "None"
    if isinstance(item, Slice):
        parts = ["" if p is None else unparse(p) for p in (item.lower, item.upper, item.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if item.step is not None else "")
    return unparse(item)


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
