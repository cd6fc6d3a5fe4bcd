"""Proof records: plain, frozen data that every renderer reads.  Imports nothing of derive.

A verdict is one of ``proven`` (an exact symbolic identity was established, entry by
entry), ``refuted`` (a concrete counterexample, checked exactly in rationals or certified
by intervals; or a shape that cannot match) or ``unproven``.

Everything a program may branch on is a code (a ``StrEnum``, so it compares equal to and
serialises as its text): the :class:`Verdict`, the :class:`Method` that settled it, the
:class:`ProofStep` an exact proof needed, the :class:`DiagnosisCode` of a named mistake.
Messages (``detail``, a diagnosis's ``message``) are for people and free to change; the
words renderers print around codes live once, in :mod:`derive.render.words`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    PROVEN = "proven"
    REFUTED = "refuted"
    UNPROVEN = "unproven"


PROVEN, REFUTED, UNPROVEN = Verdict.PROVEN, Verdict.REFUTED, Verdict.UNPROVEN


class Method(StrEnum):
    """How a verdict was reached (the JSON ``method`` text is written from it by
    :func:`derive.render.words.method_text`)."""

    EXACT = "exact"  # every entry's difference expands to 0 (at Check.step)
    EXACT_ALMOST_EVERYWHERE = "exact almost everywhere"  # equal off the kinks
    INSTANCE = "instance"  # an instance of an identity proven for all sizes (Check.basis)
    COUNTEREXAMPLE_EXACT = "counterexample exact"  # rational arithmetic
    COUNTEREXAMPLE_INTERVAL = "counterexample interval"  # certified by intervals
    UNDEFINED_EXACT = "undefined exact"  # the claim is undefined on an open set of inputs
    UNDEFINED_INTERVAL = "undefined interval"
    SHAPES = "shapes"  # a shape error or mismatch
    TIMEOUT = "timeout"  # no verdict within the time budget
    LIMIT = "limit"  # a resource limit (entries, sizes): not checked
    DOMAIN = "domain"  # equal where defined, but where it is defined is not settled
    NEITHER = "neither"  # neither proven nor refuted

    @property
    def undefined(self) -> bool:
        return self in (Method.UNDEFINED_EXACT, Method.UNDEFINED_INTERVAL)

    @property
    def exact_arithmetic(self) -> bool:
        return self in (Method.COUNTEREXAMPLE_EXACT, Method.UNDEFINED_EXACT)


class ProofStep(StrEnum):
    """The steps of :class:`derive.prove.judge.Judge`, by the judge's own labels (the values):
    the deepest step an exact proof needed.  A test keeps the two lists equal."""

    AS_WRITTEN = "as written"
    CHAIN_RULE_STEP = "one chain-rule step"
    TRUTH_TO_CLAIM = "truth unfolded to the claim's gradients"
    ADJOINTS_UNFOLDED = "adjoints unfolded"
    PRE_ACTIVATIONS_UNFOLDED = "pre-activations unfolded"
    THROUGH_EXP = "activations written through exp"
    SIGN_CASES = "cases on the sign of each relu argument"
    SIGN_CASES_WRITTEN_OUT = "cases on the sign of each relu argument, written out"


class RuleKind(StrEnum):
    """Which of derive's own statements a rule is (per layer, or one chain-rule equation)."""

    DA = "dA"
    DZ = "dZ"
    DW = "dW"
    DB = "db"
    VEC_Z = "vec(Z)"
    VEC_DW = "vec(dW)"
    VEC_ABC = "vec(ABC)"
    CHAIN = "chain"  # a rule of a network written as equations

    @property
    def is_vec(self) -> bool:
        return self in (RuleKind.VEC_Z, RuleKind.VEC_DW, RuleKind.VEC_ABC)


class DiagnosisCode(StrEnum):
    """What kind of mistake a diagnosis names (its message says it in words)."""

    TRANSPOSE = "transpose"  # the claim is the transpose of the true gradient
    LAYOUT = "layout"  # a Jacobian in the other layout (numerator/denominator)
    OPPOSITE_SIGN = "opposite sign"
    PER_EXAMPLE = "per-example"  # off by 1/m: the per-example loss's gradient
    EXTRA_1_OVER_M = "extra 1/m"
    SYMBOLIC_FACTOR = "symbolic factor"  # claimed = k × true with k made of symbols
    CONSTANT_FACTOR = "constant factor"
    MISSING_ACTIVATION_DERIVATIVE = "missing activation derivative"
    EXTRA_ACTIVATION_DERIVATIVE = "extra activation derivative"
    CONDITION = "condition"  # holds only for one value of a free constant
    WRONG_NAME = "wrong name"  # one name replaced by another of its family
    WRONG_NAMES = "wrong names"  # two of them
    TRANSPOSED_NAME = "transposed name"  # one name transposed
    FUNCTION_FOR_DERIVATIVE = "function for derivative"  # σ where σ′ belongs, or back
    WRONG_PATH = "wrong path"  # k·∂L/∂v·u: the gradient of another weight of the graph
    DIVIDED_BY_FACTOR = "divided by factor"  # x / g′ where x * g′ belongs
    EXTRA_FACTOR = "extra factor"  # a factor the truth does not have
    MISSING_FACTOR = "missing factor"  # a factor of the truth left out
    WRONG_FACTOR = "wrong factor"  # one factor where another belongs ((1 − A) for (1 − A²))
    WRONG_AXIS = "wrong axis"  # a sum over the other axis
    DOMAIN = "domain"  # true only on a domain nobody declared (one-hot targets, 0/1 masks)
    MISSING_PATH = "missing path"  # the truth without the paths through one reading of a value (dmean, a skip)
    EXTRA_PATH = "extra path"  # the truth with one path counted twice
    PATH_SIGN = "path sign"  # the truth with one path's contribution negated
    KERNEL_FLIP = "kernel flip"  # a convolution's gradient without the 180° kernel flip (correlation for convolution)
    POOL_ROUTING = "pool routing"  # max pooling's gradient spread over the window instead of to its maximum


@dataclass(frozen=True)
class Diagnosis:
    """A named mistake, proven: rewriting the claim as the message says gives a proof.

    ``priority`` orders two diagnoses of one claim: the higher one is reported (a factor
    x1/x2 is true but "x1 → x2" says more)."""

    code: DiagnosisCode
    message: str
    priority: int = 50

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Counterexample:
    """Values of every symbol at which claimed and true entries differ."""

    values: dict[str, str]
    entry: tuple[int, int]
    claimed: str
    true: str
    exact: bool  # True: checked in rationals; False: certified by intervals


@dataclass(frozen=True)
class Check:
    """One checked statement ``target = formula``: a built-in rule or a user's claim."""

    kind: str  # "rule" | "claim"
    target: str
    formula: str
    verdict: Verdict
    method: Method
    entries: int
    seconds: float
    layer: int | None = None
    rule: RuleKind | str | None = None  # derive's own rules: their kind
    finding: Diagnosis | None = None
    counterexample: Counterexample | None = None
    detail: str | None = None  # what was tried, or the shape error
    place: str | None = None  # where in the spec file
    expect: Verdict = PROVEN  # the verdict the spec expects (a shipped mistake expects refuted)
    latex: str | None = None  # the claim as the user wrote it in LaTeX
    step: ProofStep | None = None  # Method.EXACT: the deepest proof step any entry needed
    basis: str | None = None  # what the proof rests on: the truth engine, or the identity instantiated
    #: derive's own rule as printed for reading (constants collected; derive.render.readable):
    #: equal to ``formula`` by identities only, set by the report document, never proven itself
    display: str | None = None

    @property
    def statement(self) -> str:
        return f"{self.target} = {self.formula}"

    @property
    def shown(self) -> str:
        """The statement as printed for reading: ``display`` when there is one."""
        return f"{self.target} = {self.display or self.formula}"

    @property
    def diagnosis(self) -> str | None:
        """The diagnosis's message (its code: ``finding.code``)."""
        return None if self.finding is None else self.finding.message

    @property
    def ok(self) -> bool:
        """The verdict is the expected one (by default: proven)."""
        return self.verdict == self.expect

    def _repr_markdown_(self) -> str:  # Jupyter
        return _show_markdown(self)

    def _repr_html_(self) -> str:  # Jupyter: the HTML report's fragment for this check
        return _show("html", self)

    def _repr_latex_(self) -> str:
        return _show("latex", self)


@dataclass(frozen=True)
class Report:
    """Everything derive established about one spec file: the plain document renderers read."""

    file: str
    name: str
    sizes: list[int]
    batch: int
    parameters: int
    strategy: str
    assumptions: list[str] = field(default_factory=list)
    rules: list[Check] = field(default_factory=list)
    claims: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    conventions: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        out = {str(v): 0 for v in Verdict}
        for c in self.rules + self.claims:
            out[str(c.verdict)] += 1
        return out

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.rules + self.claims)

    def _repr_markdown_(self) -> str:  # Jupyter
        return _show_markdown(self)

    def _repr_html_(self) -> str:  # Jupyter: the HTML report's fragment (refuted first, then tables)
        return _show("html", self)

    def _repr_latex_(self) -> str:
        return _show("latex", self)


#: how records show themselves in Jupyter: installed by :mod:`derive.render.markdown` when it
#: is imported (records import nothing above them; ``import derive`` then loads it)
markdown_view: Callable[[Check | Report], str] | None = None


def show_markdown_with(view: Callable[[Check | Report], str]) -> None:
    global markdown_view
    markdown_view = view


def _show_markdown(record: Check | Report) -> str:
    if markdown_view is None:  # no renderer loaded: the bare facts
        return repr(record)
    return markdown_view(record)


#: further views (``"html"``, ``"latex"``, ``"derivation html"``, ...) installed by their
#: renderers (derive.render.html): what Jupyter shows of records and derivations
VIEWS: dict[str, Callable[[Any], str]] = {}


def show_with(kind: str, view: Callable[[Any], str]) -> None:
    VIEWS[kind] = view


def show(kind: str, thing: Any) -> str:
    """``thing`` in the view ``kind``; without that view (no renderer loaded), its repr."""
    view = VIEWS.get(kind)
    return repr(thing) if view is None else view(thing)


def _show(kind: str, record: Check | Report) -> str:
    view = VIEWS.get(kind)
    if view is None:  # no renderer loaded: the Markdown view (itself the bare facts without one)
        return _show_markdown(record)
    return view(record)
