"""Networks written as equations: ``z0 = w0*x0 + w1*x1 + b0``, ``A1 = relu(Z1)``, ...

Each equation's left side becomes atoms (one per entry) defined by its right side,
evaluated with the formula language.  Names no equation defines are leaves: the listed
``parameters``, and inputs, targets or constants otherwise (results hold for all their
values).  Shapes come from ``shapes`` (default: scalar); the shape of every defined name
follows from its equation.  Equations may come in any order; a cycle is an error.
"""

from __future__ import annotations

from sympy import Expr, Integer, Matrix, Symbol

from derive.errors import DeriveError, SpecError
from derive.lang import formula as F
from derive.model.network import COST, Network
from derive.ops.activations import _Activation
from derive.spec import Spec


def _leaf(name: str, shape: tuple[int, int]) -> Matrix:
    if shape == (1, 1):
        return Matrix([[Symbol(name, real=True)]])
    return Matrix(shape[0], shape[1], lambda i, j: Symbol(f"{name}[{i},{j}]", real=True))


def order(spec: Spec) -> list[tuple[str, str, str, F.Node]]:
    """The equations in dependency order: (name, formula, place, syntax tree)."""
    eq = spec.equations
    assert eq is not None
    parsed = {e.name: (e.formula, e.place, F.parse(e.formula)) for e in eq.equations}
    deps = {n: F.names(t) & set(parsed) for n, (_, _, t) in parsed.items()}
    done: list[str] = []
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = " → ".join(path[path.index(n):] + [n])
            raise SpecError(spec.file, parsed[n][1], f"the equations are cyclic: {cycle}")
        state[n] = 1
        for d in sorted(deps[n]):
            visit(d, path + [n])
        state[n] = 2
        done.append(n)

    for n in parsed:
        visit(n, [])
    return [(n, parsed[n][0], parsed[n][1], parsed[n][2]) for n in done]


def build_equations(spec: Spec) -> Network:
    from derive.model.evaluate import Evaluator  # the formula language gives each equation its meaning

    eq = spec.equations
    assert eq is not None
    steps = order(spec)
    defined = {name for name, *_ in steps}
    used: set[str] = set()
    for _, _, _, tree in steps:
        used |= F.names(tree)
    leaves = sorted(used - defined - {"m"})
    for p in eq.parameters:
        if p not in used:
            raise SpecError(spec.file, "network.parameters", f"parameter '{p}' does not appear in any equation")
    matrices: dict[str, Matrix] = {}
    kinds: dict[str, str] = {}
    constants: dict[str, Expr] = {"m": Integer(spec.batch)}
    for name in leaves:
        shape = eq.shapes.get(name, (1, 1))
        matrices[name] = _leaf(name, shape)
        kinds[name] = "parameter" if name in eq.parameters else "input"
        if shape == (1, 1) and name not in eq.parameters:
            constants[name] = matrices[name][0]
    net = Network(spec.name, spec, matrices, kinds, {}, {}, constants)
    ev = Evaluator(net, None)
    for name, text, place, tree in steps:
        try:
            value, conditions = ev.evaluate_with_domain(tree, text)
            net.domain.extend(conditions)
        except DeriveError as exc:
            raise SpecError(spec.file, place, str(exc)) from None
        if not isinstance(value, Matrix):
            value = Matrix([[value]])
        atoms = _leaf(name, value.shape)
        for k in range(len(value)):
            e = value[k]
            net.definitions[atoms[k]] = e
            if isinstance(e, _Activation) and all(isinstance(a, (Symbol, Integer)) for a in e.args):
                net.canon[e] = atoms[k]  # the atom stands for this activation
        matrices[name] = atoms
        kinds[name] = "node"
    loss = matrices[eq.loss]
    if loss.shape != (1, 1):
        raise SpecError(spec.file, "network.loss",
                        f"the loss must be a scalar, '{eq.loss}' is {loss.shape[0]}×{loss.shape[1]}")
    net.definitions[COST] = loss[0]
    for name in matrices:  # a value named dV where V is also a value: say how to reach ∂L/∂V
        if name.startswith("d") and name[1:] in matrices and kinds.get(name[1:]) != "target":
            what = {"input": "an input", "parameter": "a parameter"}.get(kinds[name], "defined by an equation")
            net.assumptions.append(f"'{name}' is {what} here, so {name} in a formula means it; "
                                   f"∂{eq.loss}/∂{name[1:]} is written d({name[1:]})")
    return net
