"""Closed-form rules for networks written as equations, by the matrix chain rule.

For every equation ``V = f(...)`` the upstream gradient ``dV`` is pushed through f's
syntax tree with the standard vector-Jacobian products (MATH.md §3, §4):

    A + B, A − B    dA += dV,  dB += ±dV        (summed over broadcast axes)
    A @ B           dA += dV @ Bᵀ,  dB += Aᵀ @ dV
    A * B, A / B    dA += dV * B,  dB += dV * A;  dA += dV / B,  dB += −dV * A / B**2
    A ** k          dA += dV * k * A**(k−1)
    g(A)            dA += dV * g_prime(A)      (exp: * exp(A), log: / A)
    Aᵀ              dA += dVᵀ;  sum(A, axis)   dA += dV broadcast back

Each parameter and each defined name U gets the rule ``dU = Σ contributions``, written in
the formula language and then *proven* against the truth like any claim: these rules are
derived statements, not trusted ones.  Constructs without a rule here (softmax, kron,
vec, diag, J) leave the names below them without a rule, and the report says so.
"""

from __future__ import annotations

from collections import defaultdict

from derive import formula as F
from derive.activations import ACTIVATIONS
from derive.matrices import is_matrix
from derive.network import Network

ELEMENTWISE = set(ACTIVATIONS) - {"softmax"}


class Unsupported(Exception):
    pass


def _p(text: str) -> str:
    """Parenthesise unless the text is a name or a number."""
    return text if text.replace("_", "").replace(".", "").isalnum() else f"({text})"


class _Pusher:
    def __init__(self, net: Network, differentiable: set[str], loss: str) -> None:
        from derive.evaluate import Evaluator

        self.ev = Evaluator(net, None)
        self.net = net
        self.differentiable = differentiable
        self.loss = loss
        self.contributions: dict[str, list[str]] = defaultdict(list)

    def shape(self, node: F.Node) -> tuple[int, int]:
        v = self.ev.evaluate(node, F.unparse(node))
        return v.shape if is_matrix(v) else (1, 1)  # type: ignore[union-attr,return-value]

    def reduce(self, up: str, frm: tuple[int, int], to: tuple[int, int]) -> str:
        if frm == to:
            return up
        if to == (1, 1):
            return f"sum({up})"
        if to[0] == frm[0] and to[1] == 1:
            return f"sum({up}, axis=1)"
        if to[1] == frm[1] and to[0] == 1:
            return f"sum({up}, axis=0)"
        raise Unsupported

    def push(self, node: F.Node, up: str, up_shape: tuple[int, int]) -> None:
        if isinstance(node, F.Num):
            return
        if isinstance(node, F.Name):
            if node.id in self.differentiable:
                self.contributions[node.id].append(self.reduce(up, up_shape, self.shape(node)))
            return
        if isinstance(node, F.Neg):
            self.push(node.operand, f"-{_p(up)}", up_shape)
            return
        if isinstance(node, F.Transpose):
            self.push(node.operand, f"{_p(up)}.T", (up_shape[1], up_shape[0]))
            return
        if isinstance(node, F.BinOp):
            self.binop(node, up, up_shape)
            return
        if isinstance(node, F.Call) and len(node.args) >= 1:
            a = node.args[0]
            text = F.unparse(a)
            if node.func in ELEMENTWISE and (len(node.args) == 1 or node.func == "leaky_relu"):
                extra = "".join(f", {F.unparse(x)}" for x in node.args[1:])
                self.push(a, f"{_p(up)} * {node.func}_prime({text}{extra})", up_shape)
                return
            if node.func == "exp":
                self.push(a, f"{_p(up)} * exp({text})", up_shape)
                return
            if node.func == "log":
                self.push(a, f"{_p(up)} / {_p(text)}", up_shape)
                return
            if node.func == "sum" and len(node.args) == 1:
                r, c = self.shape(a)
                axis = F.unparse(node.axis) if node.axis is not None else None
                back = {"1": f"{_p(up)} @ ones(1, {c})", "0": f"ones({r}, 1) @ {_p(up)}",
                        None: f"{_p(up)} * ones({r}, {c})"}.get(axis)
                if back is None:
                    raise Unsupported
                self.push(a, back, (r, c))
                return
        raise Unsupported

    def binop(self, node: F.BinOp, up: str, shape: tuple[int, int]) -> None:
        lt, rt = F.unparse(node.left), F.unparse(node.right)
        ls, rs = self.shape(node.left), self.shape(node.right)
        op = node.op
        if op in "+-":
            self.push(node.left, self.reduce(up, shape, ls), ls)
            right = up if op == "+" else f"-{_p(up)}"
            self.push(node.right, self.reduce(right, shape, rs), rs)
        elif op == "@":
            self.push(node.left, f"{_p(up)} @ {_p(rt)}.T", ls)
            self.push(node.right, f"{_p(lt)}.T @ {_p(up)}", rs)
        elif op == "*":
            self.push(node.left, self.reduce(f"{_p(up)} * {_p(rt)}", shape, ls), ls)
            self.push(node.right, self.reduce(f"{_p(up)} * {_p(lt)}", shape, rs), rs)
        elif op == "/":
            self.push(node.left, self.reduce(f"{_p(up)} / {_p(rt)}", shape, ls), ls)
            self.push(node.right, self.reduce(f"-{_p(up)} * {_p(lt)} / {_p(rt)} ** 2", shape, rs), rs)
        elif op == "**":
            k = node.right.value if isinstance(node.right, F.Num) else -node.right.operand.value  # type: ignore[union-attr]
            self.push(node.left, f"{_p(up)} * {k} * {_p(lt)} ** {k - 1}" if k != 2 else f"{_p(up)} * 2 * {_p(lt)}", ls)
        else:
            raise Unsupported


def equation_rules(net: Network) -> tuple[list[tuple[str, str]], list[str]]:
    """(target, formula) rules in backprop order, and names left without a rule."""
    spec = net.spec
    assert spec is not None and spec.equations is not None
    from derive.equation_network import order

    steps = order(spec)
    loss = spec.equations.loss
    defined = {n for n, *_ in steps}
    differentiable = (defined | set(spec.equations.parameters)) - {loss}
    pusher = _Pusher(net, differentiable, loss)
    blocked: list[str] = []
    for name, _text, _place, tree in reversed(steps):
        up = "1" if name == loss else f"d{name}"
        try:
            pusher.push(tree, up, net.shape(name))
        except Unsupported:
            blocked.extend(sorted(F.names(tree) & differentiable))
    rules = []
    for name, *_ in reversed(steps):
        if name in pusher.contributions and name not in blocked:
            rules.append((f"d{name}", " + ".join(pusher.contributions[name])))
    for p in spec.equations.parameters:
        if p in pusher.contributions and p not in blocked:
            rules.append((f"d{p}", " + ".join(pusher.contributions[p])))
    return rules, sorted(set(blocked))
