"""Closed-form rules for networks written as equations, by the matrix chain rule.

For every equation ``V = f(...)`` the upstream gradient ``dV`` is pushed through f's
syntax tree with the standard vector-Jacobian products (MATH.md §3, §4):

    A + B, A − B    dA += dV,  dB += ±dV        (summed over broadcast axes)
    A @ B           dA += dV @ Bᵀ,  dB += Aᵀ @ dV
    A * B, A / B    dA += dV * B,  dB += dV * A;  dA += dV / B,  dB += −(dV * A / B**2)
    A ** k          dA += dV * k * A**(k−1)     (k a rational number: sqrt is A ** (1/2))
    g(A)            dA += dV * g_prime(A)      (exp: * exp(A), log: / A)
    Aᵀ              dA += dVᵀ;  sum(A, axis)   dA += dV * ones(A's shape) (broadcast back)

Each parameter and each defined name U gets the rule ``dU = Σ contributions``.  Rules are
built as syntax trees of the formula language (:mod:`derive.lang.formula`'s nodes), never as
text that is parsed again: the text shown in reports is :func:`derive.lang.formula.unparse` of
the tree that is checked.  Each rule is then *proven* against the truth like any claim:
these rules are derived statements, not trusted ones.  Constructs without a rule here
(softmax, kron, vec, diag, J) leave the names below them without a rule, and the report
says so.  A gradient is written ``dU``, or ``d(U)`` where a value of the network is
itself named ``dU``.
"""

from __future__ import annotations

from collections import defaultdict

from derive.errors import DeriveError
from derive.lang import formula as F
from derive.model.build_equations import order
from derive.model.evaluate import Evaluator
from derive.model.network import Network
from derive.ops.activations import ACTIVATIONS
from derive.ops.functions import FUNCTIONS
from derive.ops.matrices import is_matrix
from derive.rules.trees import RuleConstructionError, T, add, call, div, grad_ref, matmul, mul, neg, num, power

#: activations with an elementwise derivative: dA += dV * g_prime(A, parameter)
ELEMENTWISE = {name for name, act in ACTIVATIONS.items() if act.elementwise}

Shape = tuple[int, int]


class Unsupported(Exception):
    """A construct without a vector-Jacobian product here: no rule below it."""


class _Pusher:
    def __init__(self, net: Network, differentiable: set[str], loss: str) -> None:
        self.ev = Evaluator(net, None)
        self.net = net
        self.differentiable = differentiable
        self.loss = loss
        self.contributions: dict[str, list[F.Node]] = defaultdict(list)

    def shape(self, node: F.Node) -> Shape:
        """The shape of a forward value (a scalar counts as 1×1)."""
        v = self.ev.evaluate(node, F.unparse(node))
        return v.shape if is_matrix(v) else (1, 1)

    @staticmethod
    def reduce(up: F.Node, frm: Shape, to: Shape) -> F.Node:
        """Sum an upstream gradient of shape ``frm`` over the axes broadcast to reach it."""
        if frm == to:
            return up
        if to == (1, 1):
            return call("sum", up)
        if to[0] == frm[0] and to[1] == 1:
            return call("sum", up, axis=1)
        if to[1] == frm[1] and to[0] == 1:
            return call("sum", up, axis=0)
        raise Unsupported

    def push(self, node: F.Node, up: F.Node, up_shape: Shape) -> None:
        if isinstance(node, F.Num) or not (F.names(node) & self.differentiable):
            return  # a constant of the parameters: no contribution
        if isinstance(node, F.Name):
            self.contributions[node.id].append(self.reduce(up, up_shape, self.shape(node)))
            return
        if isinstance(node, F.Neg):
            self.push(node.operand, neg(up), up_shape)
            return
        if isinstance(node, F.Transpose):
            self.push(node.operand, T(up), (up_shape[1], up_shape[0]))
            return
        if isinstance(node, F.BinOp):
            self.binop(node, up, up_shape)
            return
        if isinstance(node, F.Call) and len(node.args) >= 1 and node.func != "d":
            self.call(node, up, up_shape)
            return
        raise Unsupported

    def call(self, node: F.Call, up: F.Node, up_shape: Shape) -> None:
        a = node.args[0]
        if any(F.names(x) & self.differentiable for x in node.args[1:]):
            raise Unsupported  # a slope that depends on a parameter: not an elementwise rule
        takes_param = node.func in ELEMENTWISE and ACTIVATIONS[node.func].param is not None
        if node.axis is None and (len(node.args) == 1 or takes_param):
            if node.func in ELEMENTWISE:
                self.push(a, mul(up, call(f"{node.func}_prime", *node.args)), up_shape)
                return
        fn = FUNCTIONS.get(node.func)  # the formula language's own functions: their registered VJP
        if fn is not None and fn.vjp is not None and len(node.args) == 1:
            shape = self.shape(a)
            axis = self._axis(node, shape) if fn.axis else None
            self.push(a, fn.vjp(node.args, up, shape, axis), shape)
            return
        raise Unsupported

    def _axis(self, node: F.Call, shape: Shape) -> int | None:
        """The axis of a sum or mean as the evaluator reads it (None: every entry)."""
        if node.axis is None:
            return None
        v = self.ev.evaluate(node.axis, F.unparse(node.axis))
        if is_matrix(v) or not getattr(v, "is_Integer", False) or not -2 <= int(v) <= 1:
            raise Unsupported
        return int(v) % 2

    def binop(self, node: F.BinOp, up: F.Node, shape: Shape) -> None:
        left, right = node.left, node.right
        ls, rs = self.shape(left), self.shape(right)
        op = node.op
        if op in "+-":
            self.push(left, self.reduce(up, shape, ls), ls)
            self.push(right, self.reduce(up if op == "+" else neg(up), shape, rs), rs)
        elif op == "@":
            if shape == (1, 1):  # a 1×1 result: up may be a scalar, and '@' needs matrices
                self.push(left, mul(up, T(right)), ls)
                self.push(right, mul(T(left), up), rs)
            else:
                self.push(left, matmul(up, T(right)), ls)
                self.push(right, matmul(T(left), up), rs)
        elif op == "*":
            self.push(left, self.reduce(mul(up, right), shape, ls), ls)
            self.push(right, self.reduce(mul(up, left), shape, rs), rs)
        elif op == "/":
            self.push(left, self.reduce(div(up, right), shape, ls), ls)
            self.push(right, self.reduce(neg(div(mul(up, left), power(right, 2))), shape, rs), rs)
        elif op == "**":
            k = _exponent(right)
            if F.names(right) & self.differentiable or k is None:
                raise Unsupported
            if k != 0:
                self.push(left, mul(mul(up, num(k)), power(left, k - 1)), ls)
        else:
            raise Unsupported


def _exponent(node: F.Node):
    """The rational value of a literal exponent (the parser folds them to one number)."""
    if isinstance(node, F.Num):
        return node.value
    if isinstance(node, F.Neg) and isinstance(node.operand, F.Num):
        return -node.operand.value
    return None


def equation_rules(net: Network) -> tuple[list[tuple[str, F.Node]], list[str]]:
    """(target, formula tree) rules in backprop order, and names left without a rule.

    A failure while building them is a bug in derive (:class:`RuleConstructionError`),
    never bad input: the equations were already checked when the network was built.
    """
    try:
        return _equation_rules(net)
    except DeriveError as exc:
        raise RuleConstructionError(f"building the chain-rule rules failed: {exc}") from exc


def _equation_rules(net: Network) -> tuple[list[tuple[str, F.Node]], list[str]]:
    spec = net.spec
    assert spec is not None and spec.equations is not None
    steps = order(spec)
    loss = spec.equations.loss
    defined = {n for n, *_ in steps}
    differentiable = (defined | set(spec.equations.parameters)) - {loss}
    pusher = _Pusher(net, differentiable, loss)
    blocked: list[str] = []
    for n, _text, _place, tree in reversed(steps):
        up = num(1) if n == loss else grad_ref(pusher.ev, n)
        try:
            pusher.push(tree, up, net.shape(n))
        except Unsupported:
            blocked.extend(sorted(F.names(tree) & differentiable))
    rules: list[tuple[str, F.Node]] = []
    for n in [n for n, *_ in reversed(steps)] + list(spec.equations.parameters):
        if n in pusher.contributions and n not in blocked:
            terms = pusher.contributions[n]
            total = terms[0]
            for t in terms[1:]:
                total = add(total, t)
            rules.append((F.unparse(grad_ref(pusher.ev, n)), total))
    return rules, sorted(set(blocked))

