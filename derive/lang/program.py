"""The safe parser for blocks of statements: forward equations and backward passes written
as their sources write them (NumPy, several lines, ``+=``, masked assignment, loops).

A block is read by Python's ``ast.parse`` in ``exec`` mode, which only *parses*; every
statement is checked against a whitelist and copied into derive's own statement types,
and every expression goes through the formula language's converter
(:mod:`derive.lang.formula`).  Nothing is ever evaluated, imported or looked up.

Statements:

- ``name = expr``, ``a, b = expr`` (a tuple or a shape: ``N, D = x.shape``);
- ``name[index] = expr`` (``dZ[Z <= 0] = 0``, ``dx[np.arange(N), y] -= 1``);
- ``name op= expr`` for ``+ - * / @``;
- ``for t in range(T):`` / ``for t in reversed(range(T)):`` with a body of these, the
  bound a literal or a size expression (at most :data:`MAX_STEPS` steps when run);
- ``pass``.

Comments and blank lines are skipped; anything else is a :class:`FormulaError` naming
its line.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass

import sympy

from derive.errors import FormulaError
from derive.lang import formula as F

MAX_BLOCK = 20_000  # characters
MAX_STATEMENTS = 400
MAX_STEPS = 64  # iterations of one loop when run


@dataclass(frozen=True)
class Assign:
    targets: tuple[F.Name | F.Index, ...]  # several: a, b = ...
    value: F.Node
    line: int
    text: str


@dataclass(frozen=True)
class AugAssign:
    target: F.Name | F.Index
    op: str  # + - * / @
    value: F.Node
    line: int
    text: str


@dataclass(frozen=True)
class For:
    var: str
    start: F.Node
    stop: F.Node
    step: F.Node
    reverse: bool
    body: tuple[Statement, ...]
    line: int
    text: str


Statement = Assign | AugAssign | For

_AUG = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@"}


def parse_block(text: str, first_line: int = 1) -> tuple[Statement, ...]:
    """Parse a block; line numbers count from ``first_line``.  Raises :class:`FormulaError`
    whose message starts with ``line N:``."""
    if not isinstance(text, str):
        raise FormulaError(str(text)[:40], None, f"expected the block as text, got {type(text).__name__}")
    if len(text) > MAX_BLOCK:
        raise FormulaError(text[:40] + "…", None, f"block is {len(text)} characters long (limit {MAX_BLOCK})")
    depth = 0
    for ch in text:  # pathological nesting, before Python's parser recurses on it
        depth += ch in "(["
        depth -= ch in ")]"
        if depth > F.LIMITS["max_depth"]:
            raise FormulaError(text[:40] + "…", None, f"nesting deeper than {F.LIMITS['max_depth']} levels")
    try:
        tree = ast.parse(_dedent(text), mode="exec")
    except SyntaxError as exc:
        line = (exc.lineno or 1) + first_line - 1
        raise FormulaError(exc.text.strip() if exc.text else text[:40], None,
                           f"line {line}: syntax error: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaError(text[:40], None, "block too deeply nested or malformed") from None
    lines = _dedent(text).splitlines()
    count = [0]
    return _statements(tree.body, lines, first_line, count)


def _dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _statements(body: list[ast.stmt], lines: list[str], first: int, count: list[int]) -> tuple[Statement, ...]:
    out: list[Statement] = []
    for node in body:
        count[0] += 1
        if count[0] > MAX_STATEMENTS:
            raise FormulaError("", None, f"more than {MAX_STATEMENTS} statements")
        stmt = _statement(node, lines, first, count)
        if stmt is not None:
            out.append(stmt)
    return tuple(out)


def _source(node: ast.stmt, lines: list[str]) -> str:
    start, end = node.lineno - 1, (node.end_lineno or node.lineno)
    return " ".join(s.strip() for s in lines[start:end])


def _statement(node: ast.stmt, lines: list[str], first: int, count: list[int]) -> Statement | None:
    line = node.lineno + first - 1
    text = _source(node, lines)

    def fail(message: str) -> FormulaError:
        return FormulaError(text, None, f"line {line}: {message}")

    def expr(e: ast.AST) -> F.Node:
        try:
            # column numbers are within this statement's own line
            return F._Converter("\n".join(lines), 0, F.LIMITS["max_depth"], F.LIMITS["max_exponent"]).convert(e, 0)
        except FormulaError as exc:
            raise FormulaError(lines[node.lineno - 1], exc.column, f"line {line}: {exc.message}") from None
        except RecursionError:
            raise fail("expression too long a chain to analyse; split it") from None

    def target(t: ast.AST) -> F.Name | F.Index:
        if isinstance(t, ast.Name):
            if t.id.startswith("_"):
                raise fail(f"names may not start with '_': {t.id!r}")
            return F.Name(t.id, t.col_offset + 1)
        if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name):
            node_ = expr(t)
            assert isinstance(node_, F.Index)
            return node_
        raise fail("the left side must be a name (dx), a subscripted name (dx[mask]) or names (a, b)")

    if isinstance(node, ast.Pass):
        return None
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1:
            raise fail("one '=' per statement (a = b = c is not supported)")
        t = node.targets[0]
        targets = tuple(target(e) for e in t.elts) if isinstance(t, ast.Tuple) else (target(t),)
        return Assign(targets, expr(node.value), line, text)
    if isinstance(node, ast.AugAssign):
        op = _AUG.get(type(node.op))
        if op is None:
            raise fail(f"operator {type(node.op).__name__}= is not supported (+= -= *= /= @=)")
        return AugAssign(target(node.target), op, expr(node.value), line, text)
    if isinstance(node, ast.For):
        if node.orelse:
            raise fail("for ... else is not supported")
        if not isinstance(node.target, ast.Name) or node.target.id.startswith("_"):
            raise fail("a loop variable is one plain name: for t in range(T):")
        it, reverse = node.iter, False
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "reversed" and len(
                it.args) == 1 and not it.keywords:
            it, reverse = it.args[0], True
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and 1 <= len(it.args) <= 3 and not it.keywords):
            raise fail("a loop runs over range(T) or reversed(range(T)), T a size")
        bounds = [expr(a) for a in it.args]
        one, zero = F.Num(sympy.Integer(1), 0), F.Num(sympy.Integer(0), 0)
        start, stop, step = (zero, bounds[0], one) if len(bounds) == 1 else (
            bounds[0], bounds[1], bounds[2] if len(bounds) == 3 else one)
        body = _statements(node.body, lines, first, count)
        return For(node.target.id, start, stop, step, reverse, body, line, text)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return None  # a docstring
    what = {ast.Return: "return", ast.If: "if", ast.While: "while", ast.Import: "import",
            ast.ImportFrom: "import", ast.FunctionDef: "def", ast.Expr: "an expression on its own"}.get(
        type(node), type(node).__name__)
    raise fail(f"{what} is not supported in a block (assignments, +=, masked assignment and for-range loops are)")


def assigned(statements: tuple[Statement, ...]) -> list[str]:
    """Every name a block assigns (whole or by subscript), in order of first assignment."""
    out: list[str] = []
    for s in statements:
        if isinstance(s, For):
            names = assigned(s.body)
        elif isinstance(s, Assign):
            names = [_base(t) for t in s.targets]
        else:
            names = [_base(s.target)]
        for n in names:
            if n not in out:
                out.append(n)
    return out


def used(statements: tuple[Statement, ...]) -> set[str]:
    """Every name a block reads."""
    out: set[str] = set()
    for s in statements:
        if isinstance(s, For):
            out |= F.names(s.start) | F.names(s.stop) | F.names(s.step) | used(s.body)
        elif isinstance(s, Assign):
            out |= F.names(s.value)
            for t in s.targets:
                if isinstance(t, F.Index):
                    out |= F.names(t)
        else:
            out |= F.names(s.value) | F.names(s.target)
    return out


def _base(t: F.Name | F.Index) -> str:
    while isinstance(t, F.Index):
        t = t.value  # type: ignore[assignment]
    assert isinstance(t, F.Name)
    return t.id
