"""The op registry is complete: every activation has every facet, and the LaTeX reader
and printer share one table (issue 13).  A missing facet fails here and at registration,
never as a silent "unproven"."""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy

import derive
from derive.lang import formula as F
from derive.lang.latex_reader import FUNCS, parse_latex_claim
from derive.lang.symbols import FUNCTIONS as SYMBOLS
from derive.lang.symbols import PRINTER, READER, reader_key
from derive.ops.activations import ACTIVATIONS, EXP_REWRITTEN, PIECEWISE, Sigmoid
from derive.ops.registry import (
    FUNCTION_CLASSES,
    Activation,
    MissingFacet,
    OpFunction,
    Param,
    Piecewise,
    register,
)
from derive.prove.domain import Ranges
from derive.prove.numeric import Evaluator, IntervalContext
from derive.render.latex_printer import FUNCTIONS as PRINTED
from derive.render.latex_printer import FormulaPrinter

z = sympy.Symbol("z", real=True)
ELEMENTWISE = sorted(n for n, a in ACTIVATIONS.items() if a.elementwise)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_has_every_facet(name: str) -> None:
    act = ACTIVATIONS[name]
    assert name in SYMBOLS and act.latex == PRINTER[name]  # LaTeX, printed and read
    assert READER[reader_key(act.latex)] == name
    for cls in act.functions:
        assert cls in FUNCTION_CLASSES
        assert cls.numeric is not None or cls.piecewise is not None, cls
        assert cls.value_range is not None and cls.latex_name and cls.printed, cls
        if cls.piecewise is not None:
            pw = cls.piecewise
            assert len(pw.pieces) == len(pw.kinks) + 1 and len(pw.at_kink) == len(pw.kinks)
    if not act.elementwise:
        return
    value, prime = act.apply(z), act.derivative(z)
    for f in (value + prime).atoms(OpFunction):  # every function it uses is registered
        assert type(f) in FUNCTION_CLASSES
    assert sympy.expand(sympy.diff(value, z) - prime) == 0  # the derivative is the derivative
    ctx = IntervalContext()  # and both evaluate to certified enclosures, on both sides of every kink
    for at in (Fraction(-13, 2), Fraction(-1, 3), Fraction(1, 2), Fraction(13, 2)):
        ev = Evaluator(ctx, {z: ctx.number(sympy.Rational(at.numerator, at.denominator))})
        for e in (value, prime):
            assert ev(e).delta < 1e-40


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_activation_and_its_derivative_print_and_read_back(name: str) -> None:
    for func in (name, f"{name}_prime"):
        latex = FormulaPrinter()(F.parse(f"{func}(Z1)"))
        target, formula = parse_latex_claim(rf"\frac{{\partial L}}{{\partial Z_1}} = {latex}", lambda n: (2, 2))
        assert formula == f"{func}(Z1)", latex


@pytest.mark.parametrize("spelling", sorted(FUNCS))
def test_every_spelling_the_reader_knows_the_printer_prints_back(spelling: str) -> None:
    name = FUNCS[spelling]
    assert name in PRINTED
    printed = PRINTED[name]
    assert READER[reader_key(printed)] == name  # printed, then read: the same function


def test_the_reader_and_the_printer_share_one_table() -> None:
    assert FUNCS is READER and PRINTED is PRINTER


def test_the_consumers_see_every_registered_class() -> None:
    piecewise = {c for c in FUNCTION_CLASSES if c.piecewise is not None}
    assert set(PIECEWISE) == piecewise
    assert {c.__name__ for c in piecewise} >= {"Relu", "ReluPrime", "Relu6", "Relu6Prime", "HardTanh", "Elu"}
    assert set(EXP_REWRITTEN) == {c for c in FUNCTION_CLASSES if c.through_exp is not None}
    ranges = Ranges({})
    for cls in FUNCTION_CLASSES:  # the domain judge reads every range facet
        if cls.literal_args:
            e = cls(0, z, 2 * z)  # softmax entry 0 of (z, 2z)
        else:
            e = cls(z) if 1 in cls.nargs else cls(z, sympy.Rational(1, 2))
        r = ranges(e)
        assert r.lo <= r.hi


class _Bare(OpFunction):
    nargs = 1
    printed = "bare"


class _NoRange(OpFunction):
    nargs = 1
    printed = "norange"

    @staticmethod
    def numeric(ctx, x):  # type: ignore[no-untyped-def]
        return x


@pytest.mark.parametrize("act, missing", [
    (Activation("mystery", lambda v: v, lambda v: sympy.Integer(1)), "no LaTeX"),
    (Activation("relu", lambda v: v, lambda v: sympy.Integer(1)), "registered twice"),
    (Activation("gelu", lambda v: v, None), "registered twice"),
])
def test_a_missing_facet_is_a_named_error(act: Activation, missing: str) -> None:
    with pytest.raises(MissingFacet, match=missing):
        register(act)


def test_a_function_without_numeric_or_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from derive.lang import symbols

    monkeypatch.setitem(symbols.FUNCTIONS, "bare", symbols.FunctionSymbol("bare", r"\operatorname{bare}"))
    monkeypatch.setitem(symbols.FUNCTIONS, "norange", symbols.FunctionSymbol("norange", r"\operatorname{norange}"))
    with pytest.raises(MissingFacet, match="no numeric evaluation"):
        register(Activation("bare", _Bare, lambda v: sympy.Integer(0), functions=(_Bare,)))
    with pytest.raises(MissingFacet, match="no static value range"):
        register(Activation("norange", _NoRange, lambda v: sympy.Integer(0), functions=(_NoRange,)))
    with pytest.raises(MissingFacet, match="which no entry registers"):  # a class used but never registered
        register(Activation("bare", lambda v: _Bare(v), lambda v: sympy.Integer(0)))
    with pytest.raises(MissingFacet, match="not SymPy's derivative"):
        register(Activation("norange", Sigmoid, lambda v: Sigmoid(v)))
    assert "bare" not in ACTIVATIONS and "norange" not in ACTIVATIONS


def test_a_piecewise_structure_must_fit_its_kinks() -> None:
    with pytest.raises(MissingFacet):
        Piecewise((sympy.Integer(0),), (lambda u: u,), (-1,))
    with pytest.raises(MissingFacet):
        Piecewise((sympy.Integer(1), sympy.Integer(0)), (lambda u: u,) * 3, (-1, -1))


def test_parameters_are_declared_with_their_spec_key() -> None:
    params = {n: a.param for n, a in ACTIVATIONS.items() if a.param is not None}
    assert {n: p.key for n, p in params.items()} == {"leaky_relu": "slope", "elu": "alpha"}
    assert isinstance(params["elu"], Param) and params["elu"].default == 1
    assert params["elu"].check(sympy.Integer(-1)) and params["elu"].check(sympy.Integer(2)) is None


# ------------------------------------------------------------ formula functions
def test_every_formula_function_is_complete_and_known_everywhere() -> None:
    from derive.lang import formula as F
    from derive.model.evaluate import Evaluator
    from derive.ops.functions import FUNCTIONS
    from derive.render.latex_printer import FormulaPrinter

    d = derive.from_dict({"name": "f", "network": {"inputs": 2, "layers": [{"units": 2, "activation": "tanh"}],
                                                   "loss": "mse", "batch": 2}})
    ev = Evaluator(d.net, d.truth)
    printer = FormulaPrinter()
    for name, fn in FUNCTIONS.items():
        assert name in ev.functions, name  # the evaluator reads the registry
        args = ", ".join(["2"] * fn.arity[0]) if fn.sizes else ", ".join(["Z1"] * fn.arity[0])
        args = "Z1, 1" if name == "shape" else args  # (x.shape[k]: k a literal)
        assert fn.latex in printer(F.parse(f"{name}({args})")), name  # the printer writes its LaTeX
        assert (fn.vjp is not None) == fn.differentiable, name


def test_a_differentiable_function_without_a_vjp_is_a_named_error() -> None:
    from derive.ops.functions import FormulaFunction, MissingFunctionFacet

    with pytest.raises(MissingFunctionFacet, match="needs its vjp"):
        FormulaFunction("cube", (1, 1), lambda a, k, s: a[0], r"\operatorname{cube}")


@pytest.mark.parametrize("equations, wrong_target, wrong", [
    ("y = exp(w * x)\nL = sum(y * t)", "dw", "sum(t * exp(w * x))"),          # the chain through w*x dropped
    ("y = log(w * w + 1)\nL = sum(y * t)", "dw", "sum(t / (w * w + 1))"),     # 2w dropped
    ("y = sum(W @ X, axis=1)\nL = sum(y * t)", "dW", "t @ X.T"),              # shapes: the sum not spread back
    ("y = mean(W @ X, axis=0)\nL = sum(y * t)", "dW", "ones(2, 1) @ t @ X.T"),  # 1/2 (the mean) dropped
])
def test_registered_vjps_give_proven_rules(equations: str, wrong_target: str, wrong: str) -> None:
    if "W" in equations:
        shapes = {"W": [2, 2], "X": [2, 3], "t": [2, 1] if "axis=1" in equations else [1, 3]}
        spec = {"equations": equations, "parameters": ["W"], "shapes": shapes}
    else:
        spec = {"equations": equations, "parameters": ["w"]}
    d = derive.from_dict({"name": "vjp", "network": spec})
    rules = d.check_rules()
    assert rules and all(c.verdict == "proven" for c in rules), [(c.statement, c.verdict) for c in rules]
    assert d.check_claim(wrong_target, wrong).verdict == "refuted"


# ---------------------------------------------------------------- spellings of an activation
@pytest.mark.parametrize("spelling, name", [
    ("ReLU", "relu"), ("LeakyReLU", "leaky_relu"), ("leaky-relu", "leaky_relu"), ("Tanh", "tanh"),
    ("Sigmoid", "sigmoid"), ("linear", "identity"), ("swish", "silu"), ("SiLU", "silu"), ("ReLU6", "relu6"),
    ("GELU_erf", "gelu_erf"), ("gelu", "gelu"), ("GELU", None), ("Gelu", None), ("relu2", None), (3, None),
])
def test_a_spec_may_spell_an_activation_as_frameworks_do(spelling: object, name: str | None) -> None:
    from derive.ops.registry import activation_named

    assert activation_named(spelling) == name


def test_an_alias_that_means_two_activations_is_a_registration_error() -> None:
    from derive.ops.registry import Activation, register

    with pytest.raises(MissingFacet, match="already means 'relu'"):
        register(Activation("relu_like", lambda z: z, lambda z: sympy.Integer(1), aliases=("RELU",)))


def test_spelled_activations_check_as_their_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``ReLU`` then ``Sigmoid`` is the same network as ``relu`` then ``sigmoid``: the same
    rules proven, the same wrong claim refuted; ``GELU`` (erf or tanh?) is refused."""
    def report(hidden: str, out: str) -> list[tuple[str, str]]:
        d = derive.from_dict({"name": "s", "network": {
            "inputs": 2, "layers": [{"units": 2, "activation": hidden}, {"units": 1, "activation": out}],
            "loss": "binary_cross_entropy", "batch": 2},
            "claims": [{"dZ1": "(W2.T @ dZ2) * sigmoid_prime(Z1)"}]})
        r = d.report(jobs=1)
        return [(c.target, c.verdict.value) for c in [*r.rules, *r.claims]]

    assert report("ReLU", "Sigmoid") == report("relu", "sigmoid")
    assert report("relu", "sigmoid")[-1] == ("dZ1", "refuted")
    with pytest.raises(derive.SpecError, match="ambiguous: write gelu"):
        derive.from_dict({"name": "s", "network": {"inputs": 2, "layers": [{"units": 1, "activation": "GELU"}],
                                                    "loss": "mse", "batch": 2}})
