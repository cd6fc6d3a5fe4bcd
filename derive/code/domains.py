"""Input domains: what an input ranges over, for proofs and for counterexamples.

``domains: {Y: one_hot, y: labels, mask: binary, eps: positive, p: probability}``

- ``positive`` / ``probability``: the input's symbols carry SymPy's ``positive``
  assumption (√(x²) = x is then an identity); samples are > 0, and < 1 for probabilities;
- ``binary``: every entry 0 or 1 (a dropout mask); ``one_hot``: every row has one 1 and
  0s elsewhere (``one_hot_columns``: every column); ``labels``: integers in [0, C),
  represented by one-hot indicators (:class:`~derive.code.interpret.Labels`).

The finite ones are *proved on* exactly: a difference that is not identically 0 is
checked for every assignment of the finite entries it involves (at most
:data:`MAX_CASES`), each case an exact identity in the other inputs — a proof on the
domain, and the verdict says so.  Counterexamples are sampled inside the domains only.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import sympy
from sympy import Expr, Symbol

from derive.code.arrays import SymArray
from derive.code.interpret import Labels
from derive.ops.activations import PIECEWISE
from derive.prove.cases import by_cases
from derive.prove.zero import TooLarge, is_zero

KINDS = ("real", "positive", "probability", "binary", "one_hot", "one_hot_columns", "labels")
FINITE = ("binary", "one_hot", "one_hot_columns", "labels")
MAX_CASES = 256  # assignments of finite entries tried for one difference

_POSITIVE = [Fraction(k, 8) for k in range(1, 13)]
_UNIT = [Fraction(k, 16) for k in range(1, 16)]


@dataclass
class Domains:
    """The declared domains of one check's inputs."""

    kinds: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, SymArray] = field(default_factory=dict)  # the finite inputs' symbols
    labels: dict[str, Labels] = field(default_factory=dict)

    # ---------------------------------------------------------------- symbols
    def leaf(self, name: str, shape: tuple[int, ...]) -> SymArray | Labels:
        """The symbolic value of an input, with its domain's assumptions."""
        kind = self.kinds.get(name, "real")
        if kind == "labels":
            lab = Labels(name, shape)
            self.labels[name] = lab
            return lab
        assumptions = {"positive": True} if kind in ("positive", "probability") else {"real": True}
        out = np.empty(shape, dtype=object)
        if shape == ():
            out[()] = Symbol(name, **assumptions)
        else:
            for idx in np.ndindex(*shape):
                out[idx] = Symbol(f"{name}[{','.join(map(str, idx))}]", **assumptions)
        arr = out.view(SymArray)
        if kind in FINITE:
            if kind.startswith("one_hot") and arr.ndim != 2:
                raise ValueError(f"{name}: one_hot needs a matrix (rows of classes), got shape {shape}")
            self.arrays[name] = arr
        return arr

    @property
    def declared(self) -> bool:
        return any(k != "real" for k in self.kinds.values())

    def text(self) -> str:
        parts = []
        for name, kind in self.kinds.items():
            if kind == "real":
                continue
            words = {"one_hot": "one-hot rows", "one_hot_columns": "one-hot columns",
                     "labels": "integer labels in [0, C)", "binary": "0/1 entries"}.get(kind, kind)
            parts.append(f"{name}: {words}")
        return ", ".join(parts)

    # ---------------------------------------------------------------- finite groups
    def groups(self) -> list[tuple[tuple[Symbol, ...], list[tuple[int, ...]]]]:
        """Each group of finite symbols with its possible joint values."""
        out: list[tuple[tuple[Symbol, ...], list[tuple[int, ...]]]] = []
        for name, arr in self.arrays.items():
            kind = self.kinds[name]
            plain = arr.view(np.ndarray)
            if kind == "binary":
                out.extend(((s,), [(0,), (1,)]) for s in plain.reshape(-1))
            else:
                lines = plain if kind == "one_hot" else plain.T
                for row in lines:
                    n = len(row)
                    out.append((tuple(row), [tuple(int(i == c) for i in range(n)) for c in range(n)]))
        for lab in self.labels.values():
            if lab.made is None:
                continue
            for row in lab.made.view(np.ndarray):
                n = len(row)
                out.append((tuple(row), [tuple(int(i == c) for i in range(n)) for c in range(n)]))
        return out

    def involves(self, d: Expr) -> bool:
        """Whether d depends on a finite input (a mask, one-hot rows, labels)."""
        free = d.free_symbols
        return any(free.intersection(symbols) for symbols, _ in self.groups())

    def zero(self, d: Expr) -> bool:
        """d = 0 at every point of the finite domains (each case exactly), False if not shown."""
        free = d.free_symbols
        involved = [g for g in self.groups() if free.intersection(g[0])]
        if not involved:
            return False
        cases = 1
        for _, values in involved:
            cases *= len(values)
            if cases > MAX_CASES:
                return False
        for combo in itertools.product(*(values for _, values in involved)):
            subs: dict[Expr, Expr] = {}
            for (symbols, _), vals in zip(involved, combo, strict=True):
                subs.update({s: sympy.Integer(v) for s, v in zip(symbols, vals, strict=True)})
            e = d.xreplace(subs)
            try:
                if is_zero(e):
                    continue
                if e.has(*PIECEWISE) and is_zero(by_cases(e)):
                    continue
            except TooLarge:
                return False
            return False
        return True

    # ---------------------------------------------------------------- samples
    def sample(self, rng: random.Random, values: dict[Expr, Fraction], symbols_of: dict[str, SymArray]) -> None:
        """Overwrite ``values`` inside the declared domains."""
        for name, kind in self.kinds.items():
            if kind in ("positive", "probability") and name in symbols_of:
                pool = _POSITIVE if kind == "positive" else _UNIT
                for s in symbols_of[name].view(np.ndarray).reshape(-1):
                    values[s] = rng.choice(pool)
        for symbols, options in self.groups():
            choice = rng.choice(options)
            for s, v in zip(symbols, choice, strict=True):
                values[s] = Fraction(v)

    def concrete(self, values: dict[Expr, Fraction]) -> dict[str, np.ndarray]:
        """The labels at a point, as the integer vectors the user's code would see."""
        out: dict[str, np.ndarray] = {}
        for name, lab in self.labels.items():
            if lab.made is None:
                continue
            plain = lab.made.view(np.ndarray)
            out[name] = np.array([int(np.argmax([float(values.get(s, 0)) for s in row])) for row in plain])
        return out
