"""Ground truth: ∂J/∂V for every weight, bias, input, pre-activation and activation.

Two independent engines, each giving ``grad(name)`` as a matrix of V's shape:

- :class:`LocalTruth` (default for larger networks): reverse-mode differentiation over the
  network's scalar graph.  For each atom c with definition e_c, SymPy differentiates e_c
  by each symbol v it mentions, and the multivariable chain rule gives
  ``∂J/∂v = Σ_c ∂J/∂c · ∂e_c/∂v``.  Each adjoint is itself an atom (``dZ1[0,1]``) with
  that sum as its definition, so every gradient is a short expression and a rule
  such as ``dW1 = dZ1 @ X.T`` is proven for *any* value of the upstream gradient: the
  layer-local proof, composed by the chain rule.
- :class:`GlobalTruth` (default for small networks, ``--global``): the cost is composed
  into one expression of the leaves and differentiated with ``sympy.diff`` for each
  parameter; ∂J/∂Z_l is the derivative of the cost composed down to Z_l.  Results are
  mapped back to atoms so that they compare cheaply.

Neither engine knows any matrix rule: they are the reference the rules are proven against.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

import sympy
from sympy import Expr, Integer, Matrix, Symbol

from derive.model.network import COST, Network, compose, downstream
from derive.ops.activations import PIECEWISE
from derive.ops.matrices import Key, keyed, keyed_times, keyed_total


class Truth(Protocol):
    method: str
    net: Network

    def grad(self, name: str) -> Matrix: ...

    def definitions(self) -> dict[Symbol, Expr]: ...

    def unfold(self, expr: Expr) -> Expr: ...

    def unfold_once(self, expr: Expr) -> Expr: ...

    def unfold_to(self, expr: Expr, keep: set[Symbol]) -> Expr: ...


def _check_target(net: Network, name: str) -> None:
    if name not in net.matrices:
        raise KeyError(name)
    if net.kinds.get(name) == "target":
        raise KeyError(f"{name} is a target, not something the cost is differentiated by")


class AdjointSymbol(Symbol):
    """The atom standing for ∂J/∂v (spelled ``dZ1[0,1]``, ``dx``): a class of its own, so
    it never equals a leaf of the same spelling (an input named ``dx``), and a proof step
    can tell gradients from values by class, never by name."""

    @classmethod
    def class_key(cls):
        return Symbol.class_key()  # print and sort among the other symbols, by name

    @property
    def base(self) -> str:
        """The name of the atom this is the gradient of (``Z1[0,1]`` for ``dZ1[0,1]``)."""
        return self.name[1:]


def _adjoint_name(s: Symbol) -> Symbol:
    return AdjointSymbol(f"d{s.name}", real=True)


class LocalTruth:
    """Reverse-mode chain rule over the atom graph (adjoints as atoms)."""

    method = "local chain rule (reverse mode over the atom graph)"

    def __init__(self, net: Network) -> None:
        self.net = net
        targets = {e for name, kind in net.kinds.items() if kind == "target"
                   for e in net.matrices[name] if isinstance(e, Symbol)}
        leaves = set(net.leaves) - targets  # the cost is never differentiated by a target
        nodes = set(net.definitions)
        # (the terms with their monomial keys: each key is computed once, SymPy's canonical
        # product and sum are built from them as derive.ops.matrices builds them)
        contributions: dict[Symbol, list[tuple[Expr, Key]]] = defaultdict(list)
        self.adjoint: dict[Symbol, Expr] = {}  # v → its adjoint atom (or 0)
        self.adjoint_definitions: dict[Symbol, Expr] = {}
        #: every function application (relu′(Z1[0,0]), ...) in the adjoint definitions
        self.applications: set[Expr] = set()
        canon = net.canon
        for c in reversed(list(net.definitions)):
            if c == COST:
                dc: Expr = Integer(1)
            else:
                dc = self._close(c, contributions.pop(c, []))
            if dc == 0:
                continue
            kdc = keyed(dc)
            for v, partial in _partials(net.definitions[c], nodes, leaves, canon, self.applications).items():
                contributions[v].append(keyed_times(kdc, keyed(partial)))
        for leaf in leaves:
            self._close(leaf, contributions.pop(leaf, []))
        self._unfolded: dict[Symbol, Expr] = {}

    def _close(self, v: Symbol, terms: list[tuple[Expr, Key]]) -> Expr:
        if not terms:
            self.adjoint[v] = Integer(0)
            return Integer(0)
        atom = _adjoint_name(v)
        self.adjoint_definitions[atom] = keyed_total(terms)
        self.adjoint[v] = atom
        return atom

    def grad(self, name: str) -> Matrix:
        _check_target(self.net, name)
        m = self.net.matrices[name]
        return m.applyfunc(lambda e: self.adjoint.get(e, Integer(0)))

    def definitions(self) -> dict[Symbol, Expr]:
        return {**self.net.definitions, **self.adjoint_definitions}

    def unfold_once(self, expr: Expr) -> Expr:
        """Replace each adjoint atom by its definition, one chain-rule step deep."""
        sub = {s: self.adjoint_definitions[s] for s in expr.free_symbols if s in self.adjoint_definitions}
        return expr.xreplace(sub) if sub else expr

    def unfold_to(self, expr: Expr, keep: set[Symbol]) -> Expr:
        """Unfold adjoint atoms until only those in ``keep`` remain (the gradients a claim
        itself names), so a claim written through dZ3 meets the truth written through dZ3."""
        memo: dict[Symbol, Expr] = {}

        def atom(s: Symbol) -> Expr:
            if s in memo:
                return memo[s]
            d = self.adjoint_definitions[s]
            sub = {a: atom(a) for a in d.free_symbols if a in self.adjoint_definitions and a not in keep}
            memo[s] = d.xreplace(sub) if sub else d
            return memo[s]

        sub = {a: atom(a) for a in expr.free_symbols if a in self.adjoint_definitions and a not in keep}
        return expr.xreplace(sub) if sub else expr

    def unfold(self, expr: Expr) -> Expr:
        """Replace every adjoint atom by its definition, recursively: forward atoms only."""
        atoms = [s for s in expr.free_symbols if s in self.adjoint_definitions]
        if not atoms:
            return expr
        return expr.xreplace({s: self._unfold_atom(s) for s in atoms})

    def _unfold_atom(self, s: Symbol) -> Expr:
        stack = [s]
        while stack:  # iterative: deep networks would overflow recursion
            top = stack[-1]
            if top in self._unfolded:
                stack.pop()
                continue
            d = self.adjoint_definitions[top]
            missing = [
                a for a in d.free_symbols
                if a in self.adjoint_definitions and a not in self._unfolded
            ]
            if missing:
                stack.extend(missing)
                continue
            sub = {a: self._unfolded[a] for a in d.free_symbols if a in self.adjoint_definitions}
            self._unfolded[top] = d.xreplace(sub)
            stack.pop()
        return self._unfolded[s]


def _diff(e: Expr, v: Symbol) -> Expr:
    """SymPy's own derivative rule for the expression's class (``Expr._eval_derivative``,
    which ``sympy.diff`` dispatches to), without the ``Derivative`` object built around it:
    the same result, forty times cheaper on the small terms of a pre-activation."""
    if e == v:
        return Integer(1)
    if e.is_Mul and all(f.is_Symbol or f.is_Number for f in e.args) and e.args.count(v) == 1:
        # a monomial of distinct symbols (W·a in a pre-activation): ∂/∂v drops the v
        others = [f for f in e.args if f != v]
        return others[0] if len(others) == 1 else sympy.Mul(*others)
    power = _power_of_linear(e, v)
    if power is not None:
        return power
    d = e._eval_derivative(v) if hasattr(e, "_eval_derivative") else None
    return sympy.diff(e, v) if d is None else d


def _power_of_linear(e: Expr, v: Symbol) -> Expr | None:
    """∂/∂v of c·u**n (c rational, n ≥ 2 an integer, u = Σ k_i s_i + k_0 linear in
    symbols s_i, k_i rational) by the chain rule: n·c·k_v·u**(n−1), k_v the coefficient
    of v in u; None for any other shape (SymPy then differentiates: a squared error's
    terms were a third of the truth's set-up, in SymPy's assumption queries)."""
    c, p = (e.args if e.is_Mul and len(e.args) == 2 else (Integer(1), e))
    if not (c.is_Rational and p.is_Pow and p.exp.is_Integer and p.exp >= 2 and p.base.is_Add):
        return None
    k = Integer(0)
    for term in p.base.args:
        if term.is_Number:
            continue
        if term.is_Symbol:
            if term == v:
                k += 1
            continue
        if term.is_Mul and len(term.args) == 2 and term.args[0].is_Rational and term.args[1].is_Symbol:
            if term.args[1] == v:
                k += term.args[0]
            continue
        return None  # not linear in plain symbols
    n = p.exp
    return sympy.Mul(n * c * k, p.base ** (n - 1)) if k != 0 else Integer(0)


_DERIVATIVES: dict[type, tuple[Symbol, Expr]] = {}


def _derivative_of(f: Expr, v: Symbol) -> Expr:
    """∂f(v)/∂v for a function of one symbol: SymPy's derivative of the class, taken once
    at a dummy x and then written at v (x → v), instead of once per atom."""
    cls = type(f)
    found = _DERIVATIVES.get(cls)
    if found is None:
        x = sympy.Dummy("x", real=True)
        found = _DERIVATIVES[cls] = (x, _diff(cls(x), x))
    x, d = found
    return d.xreplace({x: v})


#: per class: the dummy x, ∂f(x)/∂x, and the function applications in it (each a node that
#: ``xreplace(canon)`` may replace once x is written as an atom)
_CANON_DERIVATIVES: dict[type, tuple[Symbol, Expr, tuple[Expr, ...]]] = {}


def _derivative_canon(f: Expr, v: Symbol, canon: dict[Expr, Symbol]) -> Expr:
    """``_derivative_of(f, v).xreplace(canon)`` in one rebuild of the class's derivative
    instead of two: each function application F(x) in it is mapped at once to the atom
    that stands for F(v) (when there is one), and x to v.  The same expression (``xreplace``
    matches the same nodes top-down; tests/test_perf19.py compares ``srepr``), a third of
    the truth's set-up on a sigmoid network."""
    cls = type(f)
    found = _CANON_DERIVATIVES.get(cls)
    if found is None:
        _derivative_of(f, v)  # (fills _DERIVATIVES)
        x, d = _DERIVATIVES[cls]
        found = _CANON_DERIVATIVES[cls] = (x, d, tuple(sorted(d.atoms(sympy.Function), key=sympy.default_sort_key)))
    x, d, applied = found
    rule: dict[Expr, Expr] = {x: v}
    for a in applied:
        atom = canon.get(a.xreplace({x: v}))
        if atom is not None:
            rule[a] = atom
    return d.xreplace(rule)


def _partials(e: Expr, nodes: set[Symbol], leaves: set[Symbol], canon: dict[Expr, Symbol],
              applications: set[Expr] | None = None) -> dict[Symbol, Expr]:
    """∂e/∂v for every graph symbol v in e, by ``sympy.diff`` applied term by term.

    Differentiation is linear, so differentiating each term of a sum separately gives the
    same result while touching only the terms that mention v (a pre-activation with k
    terms costs O(k), not O(k²)).  The function applications of the partials are added
    to ``applications``.
    """
    out: dict[Symbol, list[Expr]] = defaultdict(list)
    done: set[Symbol] = set()  # partials already written through canon's atoms
    one = Integer(1)
    for term in (e.args if e.is_Add else (e,)):
        if term.is_Symbol:  # a bias: ∂b/∂b = 1
            if term in nodes or term in leaves:
                out[term].append(one)
            continue
        args = term.args
        if term.is_Mul and len(args) == 2 and args[0].is_Symbol and args[1].is_Symbol:
            # w·a (two distinct symbols: SymPy writes a·a as a power): ∂/∂w = a, ∂/∂a = w
            x, y = args
            if x in nodes or x in leaves:
                out[x].append(y)
            if y in nodes or y in leaves:
                out[y].append(x)
            continue
        if isinstance(term, sympy.Function) and len(args) == 1 and args[0].is_Symbol:
            # an activation of one atom (σ(Z1[0,0])): its class's derivative, taken once
            v = args[0]
            if v in nodes or v in leaves:
                p = _derivative_canon(term, v, canon)
                if p != 0:
                    done.add(v)
                    out[v].append(p)
            continue
        for v in term.free_symbols:
            if v in nodes or v in leaves:
                p = _diff(term, v)
                if p != 0:
                    out[v].append(p)
    result = {}
    for v, ps in out.items():
        d = ps[0] if len(ps) == 1 else sympy.Add(*ps)
        if not d.is_Symbol and d.has(sympy.Function):
            if not (len(ps) == 1 and v in done):  # (one partial from _derivative_canon: through canon already)
                d = d.xreplace(canon)
            if applications is not None:
                applications |= d.atoms(sympy.Function)
        if d != 0:
            result[v] = d
    return result


class GlobalTruth:
    """``sympy.diff`` of the whole composed cost, for every parameter."""

    method = "sympy.diff of the whole composed cost"

    def __init__(self, net: Network) -> None:
        self.net = net
        self._cache: dict[str, Matrix] = {}
        self._full = compose(net.definitions, net.definitions)
        self._back_full = {v: k for k, v in self._full.items() if k != COST}

    def grad(self, name: str) -> Matrix:
        _check_target(self.net, name)
        if name in self._cache:
            return self._cache[name]
        entries = self.net.matrices[name]
        if self.net.kinds[name] == "node":
            roots = {e for e in entries if isinstance(e, Symbol)}
            composed = compose(self.net.definitions, downstream(self.net.definitions, roots))
            cost = composed[COST]
            back = {v: k for k, v in composed.items() if k != COST}
        else:
            cost, back = self._full[COST], self._back_full
        out = entries.applyfunc(lambda e: sympy.diff(cost, e).xreplace(back))
        self._cache[name] = out
        return out

    def definitions(self) -> dict[Symbol, Expr]:
        return dict(self.net.definitions)

    def unfold(self, expr: Expr) -> Expr:
        return expr

    def unfold_once(self, expr: Expr) -> Expr:
        return expr

    def unfold_to(self, expr: Expr, keep: set[Symbol]) -> Expr:
        return expr


def make_truth(net: Network, strategy: str = "auto", threshold: int = 20) -> Truth:
    """``global`` or ``local``; ``auto`` picks global for networks up to ``threshold``
    parameters whose cost has no kink of its own (huber, mae, hinge: composed into one
    expression, a kink's argument a − y is no longer a sum the proof by cases can name,
    and right formulas stayed unproven; the local chain rule keeps a − y whole)."""
    if strategy == "global" or (strategy == "auto" and net.parameter_count <= threshold
                                and not net.definitions[COST].has(*PIECEWISE)):
        return GlobalTruth(net)
    return LocalTruth(net)
