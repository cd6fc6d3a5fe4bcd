"""Evaluate a formula's syntax tree against a network: the meaning of the formula language.

Values are SymPy matrices (every operand keeps its 2-D shape, as in NumPy with
``keepdims``) or SymPy scalars (numbers and constants such as ``m`` or ``alpha``).

Semantics, NumPy-like: ``@`` matrix product; ``*``, ``/``, ``+``, ``-`` and ``**``
elementwise with broadcasting (a dimension of 1 stretches); ``.T`` transpose; functions
apply entrywise, except ``softmax`` (per example), ``sum``, ``vec`` (column-major),
``kron``, ``diag``, ``eye``, ``ones``, ``zeros``.  Names resolve to the network's
matrices (``X``, ``A0``, ``Y``, ``W1``, ``b1``, ``Z1``, ``A1``, ...), to the *true*
gradients ``dV`` (through the truth engine, so one wrong claim does not cascade), and to
constants (``m``, layer sizes ``n0``, ``n1``, ..., and free symbols such as ``alpha``).
An activation applied to a pre-activation is mapped back to the atom that stands for it,
so ``sigmoid(Z1)`` and ``A1`` are the same expression.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import sympy
from sympy import Expr, Integer, Matrix, Symbol

from derive.errors import FormulaError, LimitError, ShapeError
from derive.lang import formula as F
from derive.model.conditions import NONNEGATIVE, NONZERO, POSITIVE, Condition
from derive.model.network import COST, Network, compose, downstream
from derive.model.truth import Truth
from derive.ops.activations import ACTIVATIONS, SoftmaxEntry
from derive.ops.functions import FUNCTIONS, FormulaFunction
from derive.ops.matrices import Value, broadcast, is_matrix, matmul, vec
from derive.util.text import shown

MAX_ENTRIES = 1_000_000


def shape_of(v: Value) -> tuple[int, int] | None:
    return v.shape if is_matrix(v) else None


def show_shape(v: Value) -> str:
    s = shape_of(v)
    return "scalar" if s is None else f"{s[0]}×{s[1]}"


class Evaluator:
    """Evaluate formulas of one network with one truth engine."""

    def __init__(self, net: Network, truth: Truth | None) -> None:
        self.net = net
        self.truth = truth
        self.constants: dict[str, Expr] = dict(net.constants)
        sizes = net.spec.sizes if net.spec is not None else []
        for i, n in enumerate(sizes):
            self.constants[f"n{i}"] = Integer(n)  # layer sizes are reserved: a spec cannot name a constant n1
        self._linear: dict[Expr, Symbol] | None = None
        self.functions: dict[str, Callable[[F.Call, list[Value], str], Value]] = {}
        for name in ACTIVATIONS:
            self.functions[name] = self._activation(name)
            self.functions[f"{name}_prime"] = self._activation_prime(name)
        for layer in net.layers:
            self.functions[f"g{layer.index}"] = self._layer_fn(layer.index, prime=False)
            self.functions[f"g{layer.index}_prime"] = self._layer_fn(layer.index, prime=True)
        for fn in FUNCTIONS.values():  # the formula language's own functions (derive.ops.functions)
            self.functions[fn.name] = self._registered(fn)
        self.functions["J"] = self._jacobian
        self.functions["d"] = self._gradient_call  # d(V): ∂J/∂V, also where a value is named dV

    # ----------------------------------------------------------------- names
    def known_names(self) -> list[str]:
        names = [n for n in self.net.matrices] + ["L"]
        for n, k in self.net.kinds.items():
            if k != "target" and n != "A0":
                names.append(f"d({n})" if self.is_value(f"d{n}") else f"d{n}")
        return list(dict.fromkeys(names + sorted(self.constants)))  # (each once)

    def is_value(self, name: str) -> bool:
        """Whether a name is a value of the network (input, parameter, defined name,
        constant, or L for the cost).  A value always wins over a gradient spelling:
        ``dV`` is ∂J/∂V only when no value is named ``dV``; ``d(V)`` always is."""
        return name in self.net.matrices or name in self.constants or name == "L"

    def gradient_name(self, name: str) -> str | None:
        """The V of a name that means ∂J/∂V (``dV``, and no value is named so), else None."""
        if name.startswith("d") and not self.is_value(name) and name[1:] in self.net.matrices:
            return name[1:]
        return None

    def gradient(self, base: str, text: str, col: int) -> Value:
        """∂J/∂V for a name V of the network, as a matrix of V's shape."""
        if self.net.kinds.get(base) == "target":
            raise FormulaError(text, col, f"d{base}: the cost is not differentiated by the targets")
        if self.truth is None:
            raise RuntimeError("this evaluator only validates names")
        return self.truth.grad("X" if base == "A0" else base)

    def gradient_base(self, node: F.Call, text: str) -> str:
        """The V of ``d(V)``, checked: one plain name of the network that is not a target."""
        arg = node.args[0] if len(node.args) == 1 else None
        if node.axis is not None or not isinstance(arg, F.Name) or arg.id not in self.net.matrices:
            raise FormulaError(text, node.col, "d(V) takes one name of the network, e.g. d(x) for ∂J/∂x")
        if self.net.kinds.get(arg.id) == "target":
            raise FormulaError(text, node.col, f"d({arg.id}): the cost is not differentiated by the targets")
        return arg.id

    def _gradient_call(self, node: F.Call, args: list[Value], text: str) -> Value:
        return self.gradient(self.gradient_base(node, text), text, node.col)

    def check_gradient_target(self, node: F.Node, text: str) -> None:
        """A claim's target must be a gradient: ``dV`` (when no value is named dV), ``d(V)``,
        ``vec`` of one, or a Jacobian ``J(y, x)``."""
        inner = node
        while isinstance(inner, F.Call) and inner.func == "vec" and len(inner.args) == 1:
            inner = inner.args[0]
        if isinstance(inner, F.Call) and inner.func == "d":
            self.gradient_base(inner, text)
            return
        if isinstance(inner, F.Name) and inner.id.startswith("d") and self.is_value(inner.id):
            base = inner.id[1:]
            kind = self.net.kinds.get(inner.id, "a constant")
            kind = {"input": "an input", "parameter": "a parameter", "node": "a value",
                    "target": "a target"}.get(kind, kind)
            hint = f"; the gradient ∂J/∂{base} is written d({base})" if base in self.net.matrices else ""
            raise FormulaError(text, inner.col, f"'{inner.id}' is {kind} of this network, not a gradient{hint}")
        F.check_target(node, text)

    def lookup(self, name: str, text: str, col: int) -> Value:
        if name in self.net.matrices:
            return self.net.matrices[name]
        if name == "L":  # the cost, as the first argument of J(L, A2)
            return Matrix([[COST]])
        if name in self.constants:
            return self.constants[name]
        base = self.gradient_name(name)
        if base is not None:
            return self.gradient(base, text, col)
        if name in self.functions:
            raise FormulaError(text, col, f"{name} is a function: call it, e.g. {name}(Z1)")
        close = difflib.get_close_matches(name, self.known_names() + list(self.functions), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        known = ", ".join(self.known_names())
        raise FormulaError(text, col, f"unknown name '{name}' (known: {known}){hint}")

    def validate(self, node: F.Node, text: str) -> None:
        """Check every name and function of a formula without evaluating anything."""
        if isinstance(node, F.Name):
            if not self.is_value(node.id):
                base = self.gradient_name(node.id)
                if base is None or self.net.kinds.get(base) == "target":
                    self.lookup(node.id, text, node.col)  # raises the right message
        elif isinstance(node, F.BinOp):
            self.validate(node.left, text)
            self.validate(node.right, text)
        elif isinstance(node, (F.Neg, F.Transpose)):
            self.validate(node.operand, text)
        elif isinstance(node, F.Call):
            if node.func not in self.functions:
                self.evaluate(F.Call(node.func, (), None, node.col), text)  # raises
            if node.func == "d":
                self.gradient_base(node, text)
                return
            for a in node.args:
                self.validate(a, text)

    # ------------------------------------------------------------------ eval
    def evaluate(self, node: F.Node, text: str) -> Value:
        if isinstance(node, F.Num):
            return node.value
        if isinstance(node, F.Name):
            return self.lookup(node.id, text, node.col)
        if isinstance(node, F.Neg):
            v = self.evaluate(node.operand, text)
            return -v
        if isinstance(node, F.Transpose):
            v = self.evaluate(node.operand, text)
            return v.T if is_matrix(v) else v
        if isinstance(node, F.BinOp):
            a = self.evaluate(node.left, text)
            b = self.evaluate(node.right, text)
            return self._binop(node, a, b, text)
        if isinstance(node, F.Call):
            fn = self.functions.get(node.func)
            if fn is None:
                close = difflib.get_close_matches(node.func, list(self.functions), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise FormulaError(
                    text, node.col,
                    f"unknown function '{node.func}' (known: {', '.join(sorted(self.functions))}){hint}",
                )
            args = [self.evaluate(a, text) for a in node.args]
            return fn(node, args, text)
        raise FormulaError(text, None, f"unsupported node {node!r}")

    def _binop(self, node: F.BinOp, a: Value, b: Value, text: str) -> Value:
        op = node.op
        if op == "@":
            if not (is_matrix(a) and is_matrix(b)):
                raise ShapeError(f"{text!r}: '@' needs two matrices, got {show_shape(a)} @ {show_shape(b)}")
            if a.shape[1] != b.shape[0]:
                raise ShapeError(
                    f"{text!r}: cannot multiply {show_shape(a)} @ {show_shape(b)} "
                    f"(inner sizes {a.shape[1]} and {b.shape[0]} differ) at column {node.col}"
                )
            self._guard(a.shape[0] * b.shape[1])
            return matmul(a, b)
        if op == "**":
            n = b
            if not getattr(n, "is_Integer", True):
                bases = list(a) if is_matrix(a) else [a]
                if any(getattr(x, "is_number", False) and x.is_negative for x in bases):
                    raise FormulaError(text, node.col, f"a negative number to the power {n} is not a real number")
            self._record_power(a, n)
            if is_matrix(a):
                return a.applyfunc(lambda e: e**n)
            return a**n
        if op == "/":
            self._record(NONZERO, b, "in a denominator")
        fns: dict[str, Callable[[Expr, Expr], Expr]] = {
            "+": lambda x, y: x + y, "-": lambda x, y: x - y,
            "*": lambda x, y: x * y, "/": self._divide(text, node.col),
        }
        return broadcast(fns[op], a, b, f"{text!r}: '{op}' at column {node.col}")

    # ---------------------------------------------------------------- domain
    #: conditions recorded while evaluating (None: not recording); see derive.prove.domain
    _conditions: list[Condition] | None = None

    def evaluate_with_domain(self, node: F.Node, text: str) -> tuple[Value, list[Condition]]:
        """The value, and the conditions under which every operation in it is defined,
        recorded *before* SymPy builds (and may cancel) each operation: ``x / x`` is 1
        with the condition ``x ≠ 0``."""
        outer = self._conditions
        self._conditions = []
        try:
            value = self.evaluate(node, text)
            return value, self._conditions
        finally:
            self._conditions = outer

    def _record(self, kind: str, v: Value, what: str) -> None:
        if self._conditions is None:
            return
        if is_matrix(v):
            cols = v.shape[1]
            for k, e in enumerate(v):
                if not e.is_number:
                    self._conditions.append(Condition(kind, e, what, divmod(k, cols)))
        elif not getattr(v, "is_number", False):
            self._conditions.append(Condition(kind, v, what))

    def _record_power(self, base: Value, n: Value) -> None:
        if is_matrix(n) or not getattr(n, "is_number", False):
            return
        if n.is_Integer:
            if n.is_negative:
                self._record(NONZERO, base, "in a denominator (a negative power)")
        elif n.is_negative:
            self._record(POSITIVE, base, f"as the base of ** ({n})")
        else:
            self._record(NONNEGATIVE, base, f"as the base of ** ({n})")

    @staticmethod
    def _divide(text: str, col: int) -> Callable[[Expr, Expr], Expr]:
        def div(x: Expr, y: Expr) -> Expr:
            if y == 0:
                raise FormulaError(text, col, "division by zero")
            return x / y
        return div

    @staticmethod
    def _guard(entries: int) -> None:
        if entries > MAX_ENTRIES:
            raise LimitError(f"a result with {entries} entries is larger than the limit {MAX_ENTRIES} "
                             "(derive.model.evaluate.MAX_ENTRIES)")

    # ------------------------------------------------------------- functions
    def canonical(self, e: Expr) -> Expr:
        """Map an activation of an expression back to the atom standing for it."""
        out = e.xreplace(self.net.canon)
        return out

    def _atom_for(self, e: Expr) -> Expr:
        """A pre-activation written out (W1 @ X + b1) → its atom (Z1), when it is one."""
        if isinstance(e, Symbol):
            return e
        if self._linear is None:
            self._linear = {sympy.expand(d): s for s, d in self.net.expression_atoms.items()}
        return self._linear.get(sympy.expand(e), e)

    def _arity(self, node: F.Call, args: list[Value], text: str, low: int, high: int) -> None:
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise FormulaError(text, node.col, f"{node.func}() takes {want} argument(s), got {len(args)}")
        takes_axis = node.func == "softmax" or (node.func in FUNCTIONS and FUNCTIONS[node.func].axis)
        if node.axis is not None and not takes_axis:
            raise FormulaError(text, node.col, f"{node.func}() takes no axis")

    def _elementwise(self, f: Callable[[Expr], Expr]) -> Callable[[F.Call, list[Value], str], Value]:
        def apply(node: F.Call, args: list[Value], text: str) -> Value:
            self._arity(node, args, text, 1, 1)
            v = args[0]
            g = lambda e: self.canonical(f(self._atom_for(e)))  # noqa: E731
            return v.applyfunc(g) if is_matrix(v) else g(v)
        return apply

    def _registered(self, fn: FormulaFunction) -> Callable[[F.Call, list[Value], str], Value]:
        """A function of :mod:`derive.ops.functions`, with the evaluator's checks around it:
        arity, axis, sizes, the size guard, and its domain condition recorded first."""
        def apply(node: F.Call, args: list[Value], text: str) -> Value:
            self._arity(node, args, text, *fn.arity)
            if fn.condition is not None:
                self._record(fn.condition, args[0], f"as the argument of {fn.name}")
            if fn.elementwise is not None:
                return self._elementwise(fn.elementwise)(node, args, text)
            axis = None
            if fn.axis and node.axis is not None:
                axis = self._int(node.axis, text, node.col, axis_of=args[0])
            sizes = self._size_args(node, args, text) if fn.sizes else []
            if fn.entries is not None:
                self._guard(fn.entries(args, sizes))
            try:
                return fn.forward(args, axis, sizes)
            except ShapeError as exc:
                raise ShapeError(f"{text!r}: {exc}") from None
        return apply

    def _slope(self, name: str, node: F.Call, args: list[Value], text: str) -> Expr:
        """The activation's parameter (leaky_relu's slope, elu's alpha): the second
        argument, else that of the layer whose pre-activation is the argument, else the
        value the network's layers with this activation use (when they agree), else the
        registry's default."""
        param = ACTIVATIONS[name].param
        assert param is not None
        if len(args) == 2:
            if is_matrix(args[1]):
                raise FormulaError(text, node.col, f"the {param.key} of {name} must be a scalar")
            return args[1]
        layers = [layer for layer in self.net.layers if layer.slope is not None and layer.activation.name == name]
        v = args[0] if args else None
        first = v[0] if is_matrix(v) else v  # type: ignore[index]
        for layer in layers:  # elu_prime(Z2): the alpha of layer 2
            z = self.net.matrices.get(f"Z{layer.index}")
            if z is not None and first is not None and first in set(z):
                return layer.slope
        slopes = {layer.slope for layer in layers}
        return slopes.pop() if len(slopes) == 1 else param.default

    def _activation(self, name: str) -> Callable[[F.Call, list[Value], str], Value]:
        act = ACTIVATIONS[name]

        def apply(node: F.Call, args: list[Value], text: str) -> Value:
            if not act.elementwise:  # softmax: one example at a time
                self._arity(node, args, text, 1, 1)
                return self._softmax(node, args[0], text)
            self._arity(node, args, text, 1, 2 if act.needs_slope else 1)
            slope = self._slope(name, node, args, text) if act.needs_slope else None
            return self._elementwise(lambda e: act.apply(e, slope))(node, args[:1], text)
        return apply

    def _activation_prime(self, name: str) -> Callable[[F.Call, list[Value], str], Value]:
        act = ACTIVATIONS[name]

        def apply(node: F.Call, args: list[Value], text: str) -> Value:
            if act.prime is None:
                raise FormulaError(
                    text, node.col,
                    f"{name}_prime is a Jacobian, not an elementwise function; write the product out",
                )
            self._arity(node, args, text, 1, 2 if act.needs_slope else 1)
            slope = self._slope(name, node, args, text) if act.needs_slope else None
            return self._elementwise(lambda e: act.derivative(e, slope))(node, args[:1], text)
        return apply

    def _layer_fn(self, index: int, prime: bool) -> Callable[[F.Call, list[Value], str], Value]:
        layer = self.net.layers[index - 1]

        def apply(node: F.Call, args: list[Value], text: str) -> Value:
            name = layer.activation.name + ("_prime" if prime else "")
            if layer.activation.needs_slope and len(args) == 1:
                args = [args[0], layer.slope]
            return self.functions[name](node, args, text)
        return apply

    def _softmax(self, node: F.Call, v: Value, text: str) -> Value:
        if not is_matrix(v):
            raise FormulaError(text, node.col, "softmax needs a matrix or a vector")
        rows = self.net.spec is not None and self.net.spec.batch_layout == "rows"
        axis = self._int(node.axis, text, node.col, axis_of=v) if node.axis is not None else (1 if rows else 0)
        out = sympy.zeros(*v.shape)
        lines = range(v.shape[0]) if axis == 1 else range(v.shape[1])
        for k in lines:
            idx = [(k, i) for i in range(v.shape[1])] if axis == 1 else [(i, k) for i in range(v.shape[0])]
            zs = [self._atom_for(v[p]) for p in idx]
            for i, p in enumerate(idx):
                out[p] = self.canonical(SoftmaxEntry(i, *zs))
        return out

    def _int(self, node: F.Node | None, text: str, col: int, *, axis_of: Value | None = None) -> int:
        """A whole number; with ``axis_of``, an axis of that value as NumPy reads it.

        derive's values are 2-D (a scalar counts as 1×1): axis 0 runs down the rows,
        axis 1 along them, and a negative axis counts from the end (-1 is 1, -2 is 0).
        Any other axis does not exist: bad input, never silently another axis.
        """
        v = self.evaluate(node, text) if node is not None else None
        if v is None or is_matrix(v) or not getattr(v, "is_Integer", False):
            raise FormulaError(text, col, f"expected a whole number, got {_what(v)}")
        k = int(v)
        if axis_of is None:
            return k
        if not -2 <= k <= 1:  # the error points at the axis itself
            raise FormulaError(text, getattr(node, "col", col),
                               f"axis {k} does not exist: the value is {show_shape(axis_of)} "
                               "(2-D: axis 0 or 1, or -1 and -2 counting from the end)")
        return k % 2

    def _size_args(self, node: F.Call, args: list[Value], text: str) -> list[int]:
        out = []
        for a in args:
            if is_matrix(a) or not getattr(a, "is_Integer", False) or not 0 < int(a) <= 10_000:
                raise FormulaError(text, node.col, f"{node.func}() needs sizes from 1 to 10000, got {_what(a)}")
            out.append(int(a))
        return out

    def _jacobian(self, node: F.Call, args: list[Value], text: str) -> Value:
        """J(y, x) or J(y, x, k): ∂vec(y)/∂vec(x) in the spec's layout (numerator: n×k).

        With k, batch matrices are restricted to example k first.  The derivative is the
        total one: atoms between x and y are composed before SymPy differentiates.
        """
        self._arity(node, args, text, 2, 3)
        y, x = (a if is_matrix(a) else Matrix([[a]]) for a in args[:2])
        if len(args) == 3:
            k = args[2]
            m = int(self.constants["m"])
            if is_matrix(k) or not getattr(k, "is_Integer", False) or not 0 <= int(k) < m:
                raise FormulaError(text, node.col, f"J(y, x, k): k must be an example from 0 to {m - 1}")
            y, x = self._example(y, int(k)), self._example(x, int(k))
        yv, xv = vec(y), vec(x)
        for e in xv:
            if not isinstance(e, Symbol):
                raise FormulaError(text, node.col,
                                   "J(y, x): x must be a value of the network such as b1, vec(W1), Z1 or A1")
        self._guard(len(yv) * len(xv))
        xs = set(xv)
        defs = self.net.definitions
        composed = compose(defs, downstream(defs, xs) - xs)
        back = {v: k for k, v in composed.items()}
        canon = self.net.canon

        def entry(i: int, j: int) -> Expr:
            e = yv[i].xreplace(composed) if yv[i] not in xs else yv[i]
            return sympy.diff(e, xv[j]).xreplace(back).xreplace(canon)

        jac = Matrix(len(yv), len(xv), entry)
        layout = self.net.spec.layout if self.net.spec is not None else "numerator"
        return jac.T if layout == "denominator" else jac

    def _example(self, v: Matrix, k: int) -> Matrix:
        rows = self.net.spec is not None and self.net.spec.batch_layout == "rows"
        m = int(self.constants["m"])
        if rows and v.shape[0] == m and m > 1:
            return v.row(k).T
        if not rows and v.shape[1] == m and m > 1:
            return v.col(k)
        return v


def _what(value: object) -> str:
    """A value named in a message: a matrix by its shape, never printed whole."""
    if value is not None and is_matrix(value):
        return f"a {show_shape(value)} matrix"
    return shown(value)

