"""Point at the mistake: the smallest change to a refuted claim that makes it *proven*.

Candidates, smallest first: one name replaced by another of the same family (w5 → w4,
a0 → x1, A1 → X: a wrong index along the path), a missing or an extra activation
derivative factor g′(z), then two names replaced at once.  Each candidate is screened at
the sample points and then proven exactly; only a proven fix is reported, and the number
of candidates is bounded.
"""

from __future__ import annotations

import itertools
import re

import sympy
from sympy import Matrix

from derive.errors import DeriveError
from derive.lang import formula as F
from derive.model.evaluate import Evaluator
from derive.ops.matrices import is_matrix
from derive.prove.judge import Judge, TooLarge
from derive.records import Diagnosis, DiagnosisCode

MAX_CANDIDATES = 400
#: a fix names the mistake in the claim's own terms: above a factor of symbols (x1/x2 × true)
FIX_PRIORITY = 30
_FAMILY = re.compile(r"^([A-Za-z_]*?[A-Za-z_])(\d+)$")


def family(name: str) -> str | None:
    if name == "X":
        return "A"  # X is A0
    m = _FAMILY.match(name)
    return m.group(1) if m else None


def substitute(node: F.Node, mapping: dict[str, str], functions: dict[str, str] | None = None,
               transpose: str | None = None) -> F.Node:
    """The tree with names (and function names) replaced, or one name transposed (toggled)."""
    fn = functions or {}
    if transpose is not None:
        if isinstance(node, F.Transpose) and isinstance(node.operand, F.Name) and node.operand.id == transpose:
            return node.operand
        if isinstance(node, F.Name) and node.id == transpose:
            return F.Transpose(node, node.col)
        if isinstance(node, F.BinOp):
            return F.BinOp(node.op, substitute(node.left, {}, None, transpose),
                           substitute(node.right, {}, None, transpose), node.col)
        if isinstance(node, F.Neg):
            return F.Neg(substitute(node.operand, {}, None, transpose), node.col)
        if isinstance(node, F.Call):
            return F.Call(node.func, tuple(substitute(a, {}, None, transpose) for a in node.args), node.axis, node.col)
        return node
    if isinstance(node, F.Name):
        return F.Name(mapping.get(node.id, node.id), node.col)
    if isinstance(node, F.BinOp):
        return F.BinOp(node.op, substitute(node.left, mapping, fn), substitute(node.right, mapping, fn), node.col)
    if isinstance(node, F.Neg):
        return F.Neg(substitute(node.operand, mapping, fn), node.col)
    if isinstance(node, F.Transpose):
        return F.Transpose(substitute(node.operand, mapping, fn), node.col)
    if isinstance(node, F.Call):
        args = tuple(substitute(a, mapping, fn) for a in node.args)
        return F.Call(fn.get(node.func, node.func), args, node.axis, node.col)
    return node


def _calls(node: F.Node) -> set[str]:
    if isinstance(node, F.Call):
        out = {node.func}
        for a in node.args:
            out |= _calls(a)
        return out
    if isinstance(node, F.BinOp):
        return _calls(node.left) | _calls(node.right)
    if isinstance(node, (F.Neg, F.Transpose)):
        return _calls(node.operand)
    return set()


def _known(ev: Evaluator) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name in ev.known_names():
        f = family(name)
        if f is not None and name != "A0":
            groups.setdefault(f, []).append(name)
    return groups


def _factors(ev: Evaluator) -> list[str]:
    """g′(z) for every atom that stands for an activation of a whole named value."""
    out = []
    net = ev.net
    for name, values in net.matrices.items():
        if net.kinds.get(name) != "node" or not len(values):
            continue
        first = values[0]
        applied = next((k for k, v in net.canon.items() if v == first), None)
        if applied is None or not hasattr(applied, "printed") or applied.printed == "softmax":
            continue
        arg = applied.args[0]
        source = next((n for n, vs in net.matrices.items() if len(vs) and vs[0] == arg), None)
        if source is not None:
            out.append(f"{applied.printed}_prime({source})")
    return out


def search_fix(ev: Evaluator, judge: Judge, tree: F.Node, true: Matrix) -> Diagnosis | None:
    """The smallest proven change to ``tree`` (see the module docstring), or None."""

    def fix(code: DiagnosisCode, message: str) -> Diagnosis:
        return Diagnosis(code, message, FIX_PRIORITY)

    groups = _known(ev)
    names = sorted(F.names(tree))
    singles = [(n, o) for n in names if family(n) in groups for o in groups[family(n)] if o != n]  # type: ignore[index]
    text = F.unparse(tree)
    tried = 0

    def works(candidate: F.Node) -> bool:
        nonlocal tried
        tried += 1
        value = _value_of(ev, candidate, true)
        if value is None:
            return False
        try:
            return judge.agrees_numerically(value, true) and judge.prove(value, true) is not None
        except TooLarge:
            return False

    for n, o in singles:
        if tried >= MAX_CANDIDATES:
            return None
        if works(substitute(tree, {n: o})):
            return fix(DiagnosisCode.WRONG_NAME, f"true if {n} → {o} (a wrong index along the path?)")
    edits = structural_edits(tree, _factors(ev))
    for candidate, code, message in [e for e in edits if e[1] == DiagnosisCode.WRONG_AXIS]:
        if works(candidate):  # before transposes: sum(dZ, axis=0) is also sum(dZ.T, axis=1), said less well
            return fix(code, message)
    for n in names:  # a stray or missing transpose on one name
        if tried < MAX_CANDIDATES and works(substitute(tree, {}, None, n)):
            return fix(DiagnosisCode.TRANSPOSED_NAME, f"true with {n} transposed (a stray or missing transpose)")
    for f in sorted(_calls(tree)):  # σ written where σ′ belongs, or the other way round
        other = f[:-6] if f.endswith("_prime") else f"{f}_prime"
        if other in ev.functions and works(substitute(tree, {}, {f: other})):
            return fix(DiagnosisCode.FUNCTION_FOR_DERIVATIVE,
                       f"true if {f} → {other} (the function where its derivative belongs, or back)")
    for factor in _factors(ev):
        if tried >= MAX_CANDIDATES:
            return None
        if factor.split("(")[1].rstrip(")") in names and f"{factor}" in text:
            continue
        for form, words, code in ((f"({text}) * {factor}", "missing", DiagnosisCode.MISSING_ACTIVATION_DERIVATIVE),
                                  (f"({text}) / {factor}", "extra", DiagnosisCode.EXTRA_ACTIVATION_DERIVATIVE)):
            if works(F.parse(form)):
                done = "added" if words == "missing" else "removed"
                return fix(code, f"true with the factor {factor} {done} (a {words} g′ factor)")
    for candidate, code, message in [e for e in edits if e[1] != DiagnosisCode.WRONG_AXIS]:  # one structural change
        if tried >= MAX_CANDIDATES:
            return None
        if works(candidate):
            return fix(code, message)
    for n, o in singles:  # a wrong name and a constant factor at once (a missing 2/alpha, 1/m)
        if tried >= MAX_CANDIDATES:
            return None
        scaled = _scaled(ev, judge, substitute(tree, {n: o}), true)
        if scaled is not None:
            tried += 1
            return fix(DiagnosisCode.WRONG_NAME, f"true if {n} → {o} and the whole is multiplied by {scaled} "
                                                 "(a wrong index and a missing factor)")
    for (n1, o1), (n2, o2) in itertools.combinations(singles, 2):
        if n1 == n2:
            continue
        if tried >= MAX_CANDIDATES:
            return None
        if works(substitute(tree, {n1: o1, n2: o2})):
            return fix(DiagnosisCode.WRONG_NAMES,
                       f"true if {n1} → {o1} and {n2} → {o2} (wrong indices along the path?)")
    return None


def _value_of(ev: Evaluator, candidate: F.Node, true: Matrix) -> Matrix | None:
    """The candidate's value as a matrix of the truth's shape, or None (it does not evaluate, or
    its shape is another)."""
    try:
        value = ev.evaluate(candidate, F.unparse(candidate))
    except DeriveError:
        return None
    value = value if is_matrix(value) else Matrix([[value]])
    return value if value.shape == true.shape else None


def _scaled(ev: Evaluator, judge: Judge, candidate: F.Node, true: Matrix) -> str | None:
    """k (as text) when k·candidate = true is proven for a constant k ≠ 0, 1; else None."""
    from derive.diagnose.semantic import _proven, _ratio, _symbolic_ratio

    value = _value_of(ev, candidate, true)
    if value is None:
        return None
    try:
        for k in (_ratio(judge, true, value), _symbolic_ratio(judge, true, value)):
            named = F.names(candidate)
            if k is None or k in (0, 1) or any(str(s) in named for s in getattr(k, "free_symbols", ())):
                continue  # a ratio of the formula's own values (x1/x0) is no missing constant
            if _proven(judge, value * k, true):
                return str(k)
    except TooLarge:
        return None
    return None


Edit = tuple[F.Node, DiagnosisCode, str]


def structural_edits(node: F.Node, factors: list[str], scalars: tuple[str, ...] = ()) -> list[Edit]:
    """Each single structural change of the tree: a division that should multiply
    (``x / g′`` for ``x * g′``), a factor left out or one too many, one factor where a
    derivative g′ belongs (``(1 − A1)`` where ``tanh_prime(Z1)``), a sum over the other axis."""
    out: list[Edit] = []

    def text(n: F.Node) -> str:
        return F.unparse(n)

    def here(n: F.Node) -> list[Edit]:
        found: list[Edit] = []
        if isinstance(n, F.BinOp) and n.op == "/":
            found.append((F.BinOp("*", n.left, n.right, n.col), DiagnosisCode.DIVIDED_BY_FACTOR,
                          f"divides by {text(n.right)} where it multiplies: true with * {text(n.right)}"))
            found.append((n.left, DiagnosisCode.EXTRA_FACTOR, f"true without the division by {text(n.right)}"))
        if isinstance(n, F.BinOp) and n.op == "*":
            for keep, drop in ((n.left, n.right), (n.right, n.left)):
                found.append((keep, DiagnosisCode.EXTRA_FACTOR, f"true without the factor {text(drop)}"))
            for side in ("left", "right"):
                old = n.left if side == "left" else n.right
                for g in factors:
                    new = F.parse(g)
                    if text(old) == g:
                        continue
                    rebuilt = F.BinOp("*", new, n.right, n.col) if side == "left" else F.BinOp("*", n.left, new, n.col)
                    found.append((rebuilt, DiagnosisCode.WRONG_FACTOR, f"{text(old)} where {g} belongs"))
        if isinstance(n, F.Call) and n.func in ("sum", "mean") and isinstance(n.axis, F.Num) and n.axis.value in (0, 1):
            other = F.Num(1 - n.axis.value, n.axis.col)
            found.append((F.Call(n.func, n.args, other, n.col, n.keywords), DiagnosisCode.WRONG_AXIS,
                          f"a {n.func} over the other axis: true with axis={other.value}"))
        return found

    def walk(n: F.Node, rebuild: object) -> None:
        for new, code, message in here(n):
            out.append((rebuild(new), code, message))  # type: ignore[operator]
        if isinstance(n, F.BinOp):
            walk(n.left, lambda x, n=n: rebuild(F.BinOp(n.op, x, n.right, n.col)))  # type: ignore[operator]
            walk(n.right, lambda x, n=n: rebuild(F.BinOp(n.op, n.left, x, n.col)))  # type: ignore[operator]
        elif isinstance(n, F.Neg):
            walk(n.operand, lambda x, n=n: rebuild(F.Neg(x, n.col)))  # type: ignore[operator]
        elif isinstance(n, F.Transpose):
            walk(n.operand, lambda x, n=n: rebuild(F.Transpose(x, n.col)))  # type: ignore[operator]
        elif isinstance(n, F.Call):
            for i, a in enumerate(n.args):
                walk(a, lambda x, n=n, i=i: rebuild(F.Call(n.func, n.args[:i] + (x,) + n.args[i + 1:], n.axis,  # type: ignore[operator]
                                                           n.col, n.keywords)))

    walk(node, lambda x: x)
    for name in scalars:  # a whole factor 1/p or p forgotten (inverted dropout's 1/keep_prob, a 1/N)
        if name in F.names(node):
            continue
        scalar = F.Name(name, 0)
        out.append((F.BinOp("/", node, scalar, 0), DiagnosisCode.MISSING_FACTOR,
                    f"a factor 1/{name} is missing: true with / {name}"))
        out.append((F.BinOp("*", node, scalar, 0), DiagnosisCode.MISSING_FACTOR,
                    f"a factor {name} is missing: true with * {name}"))
        root = F.BinOp("**", scalar, F.Num(sympy.Rational(1, 2), 0), 0)  # attention's 1/√d
        out.append((F.BinOp("/", node, root, 0), DiagnosisCode.MISSING_FACTOR,
                    f"a factor 1/√{name} is missing: true with / np.sqrt({name})"))
    return out
