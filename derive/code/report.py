"""What :func:`derive.code.backward.gradcheck` returns, and its text.

Plain data: a :class:`Result` with one :class:`GradientCheck` per input, each with its
verdict, why, and for a refutation a :class:`Counterexample` whose arrays print as NumPy
code to paste into a test (``x = np.array([[0.5, -1.25]])``: the values are dyadic
rationals, so the decimal text is the exact point).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from derive.records import Diagnosis, Verdict

__all__ = ["Counterexample", "GradientCheck", "Result", "array_text", "value_text"]


def array_text(a: np.ndarray) -> str:
    """An array as Python source: ``np.array([[0.5, -1.0]])``, or a float for a scalar."""
    if a.dtype.kind in "iu":  # integer labels stay integers
        return repr(int(a)) if a.shape == () else f"np.array({a.tolist()})"
    if a.shape == ():
        return repr(float(a))
    return f"np.array({_nested(a.tolist())})"


def _nested(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_nested(x) for x in v) + "]"
    return repr(float(v))


def value_text(v: Any) -> str:
    """An exact Fraction as itself (and its decimal when it is not short); an interval as
    15 digits of its midpoint."""
    from fractions import Fraction

    if isinstance(v, Fraction):
        text = str(v)
        return text if v.denominator == 1 or len(text) <= 12 else f"{text} (≈ {float(v):.15g})"
    try:
        import mpmath

        return mpmath.nstr(mpmath.mpf(v.mid.a), 15)
    except (AttributeError, TypeError):
        return str(v)


def value_float(v: Any) -> float:
    from fractions import Fraction

    if isinstance(v, Fraction):
        return float(v)
    import mpmath

    return float(mpmath.mpf(v.mid.a))


@dataclass
class Counterexample:
    """A point where a gradient is wrong: the arrays (every input and the upstream gradient),
    the entry, and both values there (exact Fractions, or certified mpmath intervals)."""

    entry: str  # "dx[0, 1]"
    index: tuple[int, ...]
    claimed: Any
    true: Any
    exact: bool
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def claimed_float(self) -> float:
        return value_float(self.claimed)

    @property
    def true_float(self) -> float:
        return value_float(self.true)

    def code(self) -> str:
        """The arrays as lines of Python to paste into a test."""
        return "\n".join(f"{n} = {array_text(a)}" for n, a in self.arrays.items())

    def __str__(self) -> str:
        how = "exact" if self.exact else "certified by interval arithmetic"
        return (f"at {self.entry}: claimed {value_text(self.claimed)}, true {value_text(self.true)} ({how}), with\n"
                + "\n".join("    " + line for line in self.code().splitlines()))


@dataclass
class GradientCheck:
    """The verdict on one returned gradient."""

    name: str  # the input's name: this is d<name>
    verdict: Verdict
    why: str = ""
    entries: int = 0
    seconds: float = 0.0
    counterexample: Counterexample | None = None
    diagnosis: str = ""
    #: the entries whose difference did not reduce to 0 (for a refutation: where to look)
    differing: list[tuple[int, ...]] = field(default_factory=list)
    almost_everywhere: bool = False
    #: proven only on the declared input domains (what they are, in words), else ""
    on_domain: str = ""
    #: the diagnosis with its code, where the finder knew the code (a spec's backward block)
    finding: Diagnosis | None = None

    def line(self) -> str:
        text = f"d{self.name:<10} {self.verdict.value:<9} {self.why}"
        if self.diagnosis:
            text += f"; {self.diagnosis}"
        if self.verdict == Verdict.REFUTED and self.differing and self.entries:
            text += f"; {len(self.differing)} of {self.entries} entries differ symbolically"
        return text


@dataclass
class Result:
    """The verdict on a backward function: every gradient it returned."""

    verdict: Verdict
    gradients: dict[str, GradientCheck]
    seconds: float
    inputs: dict[str, tuple[int, ...]] = field(default_factory=dict)
    timed_out: bool = False
    symbols: int = 0

    @property
    def ok(self) -> bool:
        return self.verdict == Verdict.PROVEN

    @property
    def refuted(self) -> list[GradientCheck]:
        return [g for g in self.gradients.values() if g.verdict == Verdict.REFUTED]

    @property
    def counterexample(self) -> Counterexample | None:
        """The first refuted gradient's counterexample."""
        for g in self.refuted:
            if g.counterexample is not None:
                return g.counterexample
        return None

    def __getitem__(self, name: str) -> GradientCheck:
        return self.gradients[name.removeprefix("d") if name not in self.gradients else name]

    def report(self) -> str:
        shapes = ", ".join(f"{n} {s}" for n, s in self.inputs.items())
        lines = [f"backward: {self.verdict.value} ({shapes}; {self.seconds:.2f}s)"]
        lines += ["  " + g.line() for g in self.gradients.values()]
        shown: list[str] = []
        for g in self.refuted:
            c = g.counterexample
            if c is None:
                continue
            code = c.code()
            how = "exact" if c.exact else "certified by interval arithmetic"
            lines.append(f"d{g.name} is wrong at {c.entry}: claimed {value_text(c.claimed)}, true {value_text(c.true)} "
                         f"({how}), " + ("at the same arrays" if code in shown else "with"))
            if code not in shown:
                lines += ["    " + line for line in code.splitlines()]
                shown.append(code)
        return "\n".join(lines)

    __str__ = report
