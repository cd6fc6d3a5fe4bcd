"""The op registry: everything derive knows about one activation, in one entry.

An activation is registered once (:func:`register`) with every facet the stages need:

- ``value`` / ``prime``: the forward function and its derivative as SymPy expressions,
  the derivative written through the functions themselves (σ′ = σ(1 − σ));
- the SymPy function classes it introduces (:class:`OpFunction` subclasses), each with
  ``fdiff`` (SymPy's derivative), a ``numeric`` evaluation in both of derive's
  arithmetics (exact ``Fraction`` where the value is rational, else the context raises
  its ``NotExact``; mpmath intervals, certified enclosures) — or, for a piecewise
  function, its :class:`Piecewise` structure, from which the evaluator, the proof by
  cases and the domain judge all work: the kinks (any points, not only 0), the piece on
  each interval and which piece holds *at* each kink (derive's value convention there);
  a static ``value_range`` for the domain judge; an optional ``through_exp`` form
  (σ(u) = 1/(1 + e^(−u))) for the exp-rewriting proof step;
- its LaTeX (a row of :data:`derive.lang.symbols.FUNCTIONS`, read and printed);
- its parameter (leaky_relu's ``slope``, elu's ``alpha``) with a default and a spec
  constraint.

A missing facet is a :class:`MissingFacet` error when the entry is registered (at import
time), never a claim that silently stays unproven; ``tests/test_registry.py`` walks the
registry as well.  Consumers (the evaluator, the numeric evaluator, the judge, the proof
by cases, the domain judge, the spec validator, the LaTeX reader and printer, the VJP
rules) read these facets instead of keeping their own tables.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import sympy
from sympy import Expr, Function

from derive.lang.symbols import FUNCTIONS as LATEX_SYMBOLS


class MissingFacet(TypeError):
    """An op was registered without a facet every stage relies on (a bug in derive)."""


class Undetermined(ArithmeticError):
    """A numeric value cannot be decided (a step function at an interval around a kink)."""


LEFT, RIGHT = -1, 1


@dataclass(frozen=True)
class Piecewise:
    """A function that is analytic between finitely many kinks k_1 < … < k_n.

    ``pieces[i](u, *params)`` is the function on (k_i, k_{i+1}) (k_0 = −∞, k_{n+1} = ∞);
    ``at_kink[i]`` says which neighbouring piece holds at k_i itself: ``LEFT`` (piece i)
    or ``RIGHT`` (piece i + 1).  So relu′ = (0 | 1) with the kink at 0 on the LEFT is
    relu′(0) = 0, and relu6′ = (0 | 1 | 0) with kinks (0, 6) on (LEFT, RIGHT) is 1
    exactly on the open interval (0, 6).
    """

    kinks: tuple[sympy.Rational, ...]
    pieces: tuple[Callable[..., Expr], ...]
    at_kink: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.pieces) != len(self.kinks) + 1 or len(self.at_kink) != len(self.kinks):
            raise MissingFacet("a piecewise function needs one piece more than kinks, and a side for each kink")
        if list(self.kinks) != sorted(set(self.kinks)):
            raise MissingFacet("kinks must be increasing")

    def piece(self, index: int, args: Sequence[Any]) -> Expr:
        return self.pieces[index](*args)

    def right_of(self, i: int, sign: int) -> bool:
        """Whether u is on the right piece of kink i, given the sign of u − k_i."""
        return sign > 0 or (sign == 0 and self.at_kink[i] == RIGHT)

    def partition(self, i: int) -> tuple[frozenset[int], frozenset[int]]:
        """The signs of u − k_i that select the piece right of kink i, and the left one."""
        if self.at_kink[i] == RIGHT:
            return frozenset({1, 0}), frozenset({-1})
        return frozenset({1}), frozenset({0, -1})

    def index(self, signs: Sequence[int]) -> int:
        """The piece that holds, given the sign of u − k_i for every kink."""
        i = 0
        while i < len(self.kinks) and self.right_of(i, signs[i]):
            i += 1
        return i

    def _constant(self, index: int) -> bool:
        piece = self.pieces[index]
        u = sympy.Dummy("u")
        params = [sympy.Dummy(f"p{i}") for i in range(piece.__code__.co_argcount - 1)]
        return not piece(u, *params).has(u)

    @functools.cached_property
    def sign_only(self) -> bool:
        """One kink at 0 and constant pieces: a function of the sign of u alone (a step)."""
        return self.kinks == (0,) and self._constant(0) and self._constant(1)

    @functools.cached_property
    def flat_left(self) -> bool:
        """The first kink is 0, held by the left piece, which is constant: the function
        does not tell apart arguments ≤ 0 (relu, relu′, relu6, leaky_relu′)."""
        return bool(self.kinks) and self.kinks[0] == 0 and self.at_kink[0] == LEFT and self._constant(0)


class OpFunction(Function):
    """Base of derive's SymPy functions: never evaluated automatically (applications stay
    atoms), never through mpmath's look-alikes (``evalf``), printed by their own name.

    Facets as class attributes (checked by :func:`register`): ``numeric`` (or
    ``piecewise``), ``value_range``, ``through_exp`` (optional), ``latex_name``.
    ``literal_args`` leading arguments are indices (softmax's k), passed as ints.
    """

    is_real = True
    printed = ""
    latex_name = ""
    literal_args: ClassVar[int] = 0
    piecewise: ClassVar[Piecewise | None] = None
    # (typed Any: subclasses set them to staticmethods)
    #: Range of the value given the Ranges of the arguments: (list[Range]) -> Range
    value_range: ClassVar[Any] = None
    #: the function written through exp (σ(u) = 1/(1 + e^(−u))), or None: (*args) -> Expr
    through_exp: ClassVar[Any] = None
    #: f(v) = v for v > 0 and f(v) ≤ 0 for v ≤ 0, given the other arguments (relu, leaky with a > 0)
    keeps_positive_part: ClassVar[Any] = None

    @classmethod
    def eval(cls, *args: Expr) -> Expr | None:  # keep applications unevaluated (atoms)
        return None

    def _sympystr(self, printer: Any) -> str:
        return f"{self.printed}({', '.join(printer._print(a) for a in self.args)})"

    def _eval_evalf(self, prec: int) -> None:  # never through mpmath's look-alikes
        return None

    def _latex(self, printer: Any) -> str:
        args = ", ".join(printer._print(a) for a in self.args)
        return rf"{self.latex_name}\left({args}\right)"

    #: (ctx, *argument values) -> value, in the context's arithmetic
    numeric: ClassVar[Any] = None


@dataclass(frozen=True)
class Param:
    """An activation's parameter: its spec key (and formula argument), default, constraint."""

    key: str
    default: Expr
    #: a spec constraint on the value: None if it is acceptable, else why not
    check: Callable[[Expr], str | None] = field(default=lambda v: None)


@dataclass(frozen=True)
class Activation:
    """An activation g with its derivative g′, both on one scalar (or one column)."""

    name: str
    value: Callable[..., Expr]
    prime: Callable[..., Expr] | None
    #: the LaTeX head; a registered activation takes it from derive.lang.symbols (leave it "")
    latex_head: str = ""
    elementwise: bool = True
    param: Param | None = None
    #: the SymPy function classes it introduces (each checked by :func:`register`)
    functions: tuple[type[OpFunction], ...] = ()
    #: other spellings a spec may use for it (Keras' ``linear``, ``swish``); case, ``_`` and
    #: ``-`` never matter (``ReLU``, ``LeakyReLU``) unless ``exact_case`` says why they do: the
    #: name then only as written, another casing refused with that reason (``GELU`` is PyTorch's
    #: exact GELU, not derive's tanh approximation ``gelu``)
    aliases: tuple[str, ...] = ()
    exact_case: str = ""

    @property
    def needs_slope(self) -> bool:
        """Whether it takes a parameter (the name predates elu's alpha)."""
        return self.param is not None

    @property
    def latex(self) -> str:
        return self.latex_head or LATEX_SYMBOLS[self.name].latex

    def apply(self, z: Expr, slope: Expr | None = None) -> Expr:
        if self.param is None:
            return self.value(z)
        return self.value(z, self.param.default if slope is None else slope)

    def derivative(self, z: Expr, slope: Expr | None = None) -> Expr:
        if self.prime is None:
            raise ValueError(f"{self.name} has no elementwise derivative")
        if self.param is None:
            return self.prime(z)
        return self.prime(z, self.param.default if slope is None else slope)


ACTIVATIONS: dict[str, Activation] = {}
_SPELLINGS: dict[str, str] = {}  # a spelling, lower-cased without _ and -, → the activation's name


def _spelling(text: str) -> str:
    return text.lower().replace("_", "").replace("-", "")


def refused_spelling(spelling: object) -> str | None:
    """Why a spelling is refused (another casing of an ``exact_case`` activation), or None."""
    if not isinstance(spelling, str) or spelling in ACTIVATIONS:
        return None
    return next((a.exact_case for a in ACTIVATIONS.values()
                 if a.exact_case and _spelling(a.name) == _spelling(spelling)), None)


def activation_named(spelling: object) -> str | None:
    """The registered activation a spec's spelling means (``ReLU``, ``LeakyReLU``, ``linear``), or None."""
    if not isinstance(spelling, str):
        return None
    if spelling in ACTIVATIONS:
        return spelling
    return _SPELLINGS.get(_spelling(spelling))
#: every registered SymPy function class, in registration order
FUNCTION_CLASSES: list[type[OpFunction]] = []


def register(act: Activation) -> Activation:
    """Add an activation to the registry after checking every facet (:class:`MissingFacet`)."""
    name = act.name
    if name in ACTIVATIONS:
        raise MissingFacet(f"activation {name!r} is registered twice")
    aliases = (() if act.exact_case else (name,)) + act.aliases
    spellings = {_spelling(a): name for a in aliases}
    for alias in aliases:
        taken = _SPELLINGS.get(_spelling(alias), name)
        if taken != name:
            raise MissingFacet(f"activation {name!r}: the spelling {alias!r} already means {taken!r}")
    if name not in LATEX_SYMBOLS:
        raise MissingFacet(f"activation {name!r} has no LaTeX: add its row to derive.lang.symbols.FUNCTIONS")
    if act.latex_head and act.latex_head != LATEX_SYMBOLS[name].latex:
        raise MissingFacet(f"activation {name!r}: its LaTeX differs from derive.lang.symbols.FUNCTIONS")
    if act.elementwise and act.prime is None:
        raise MissingFacet(f"activation {name!r} has no derivative")
    new = [c for c in act.functions if c not in FUNCTION_CLASSES]
    for cls in new:
        _check_function(name, cls)
    FUNCTION_CLASSES.extend(new)
    if act.elementwise:
        z = sympy.Dummy("z", real=True)
        args = () if act.param is None else (act.param.default,)
        value, prime = act.value(z, *args), act.derivative(z, *args)
        for e in (value, prime):
            for f in e.atoms(OpFunction):
                if type(f) not in FUNCTION_CLASSES:
                    raise MissingFacet(f"activation {name!r} uses {type(f).__name__}, which no entry registers")
        if sympy.expand(sympy.diff(value, z) - prime) != 0:
            raise MissingFacet(f"activation {name!r}: its derivative is not SymPy's derivative of its value")
    _SPELLINGS.update(spellings)
    ACTIVATIONS[name] = act
    return act


def _check_function(owner: str, cls: type[OpFunction]) -> None:
    what = f"{cls.__name__} (of {owner!r})"
    if not cls.latex_name:  # relu → \operatorname{relu}, relu_prime → \operatorname{relu}'
        base = cls.printed.removesuffix("_prime")
        if base in LATEX_SYMBOLS:
            cls.latex_name = LATEX_SYMBOLS[base].latex + ("'" if base != cls.printed else "")
    if cls.numeric is None and cls.piecewise is None:
        raise MissingFacet(f"{what} has no numeric evaluation and no piecewise structure")
    if cls.value_range is None:
        raise MissingFacet(f"{what} has no static value range")
    if not cls.latex_name or not cls.printed:
        raise MissingFacet(f"{what} has no printed name or LaTeX")


def function_class(e: Expr) -> type[OpFunction] | None:
    return type(e) if isinstance(e, OpFunction) else None


def piecewise_classes() -> tuple[type[OpFunction], ...]:
    return tuple(c for c in FUNCTION_CLASSES if c.piecewise is not None)


def exp_classes() -> tuple[type[OpFunction], ...]:
    return tuple(c for c in FUNCTION_CLASSES if c.through_exp is not None)


def kink_offsets(f: Expr) -> list[Expr]:
    """u − k for every kink k of a piecewise application f(u, …): where it is not smooth."""
    pw = type(f).piecewise
    assert pw is not None
    u = f.args[0]
    return [u - k for k in pw.kinks]
