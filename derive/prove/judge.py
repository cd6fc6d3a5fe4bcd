"""Exact proof, exact refutation and diagnosis of ``claimed = true``, entry by entry.

- **Proof** is purely symbolic: the difference of each entry must reduce to exactly 0 by
  ``expand`` (or, for rational functions, ``together`` and ``expand`` of the numerator),
  with atoms treated as independent symbols.  When that fails as written, the same is
  tried after unfolding the adjoint atoms, then after unfolding pre-activations into
  their linear definitions, then with σ/tanh/softplus written through exp, then on each
  side of every relu kink (:mod:`derive.prove.cases`).  Each step only substitutes an atom by
  what it stands for (or splits into cases that cover every point), so an identity
  found at any step is an identity of the network.  ``simplify`` is never
  used, and "did not reduce to 0" is never a refutation.
- **Refutation** evaluates both sides at random small rationals for every leaf symbol:
  in exact rational arithmetic when every value is rational, otherwise in interval
  arithmetic, where a difference counts only if its interval excludes 0.  Points where
  a step function sits at its kink or a logarithm's argument is not positive are skipped.
- **Diagnosis** names the mistake only when the corrected statement is itself proven.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy
from sympy import Expr, Matrix, Symbol

from derive.model.network import Network, compose
from derive.model.truth import AdjointSymbol, Truth
from derive.ops.activations import EXP_REWRITTEN, PIECEWISE, Undetermined, kink_offsets
from derive.ops.losses import ONE_HOT, UnknownLoss
from derive.ops.losses import loss as loss_entry
from derive.ops.registry import OpFunction
from derive.prove import core, graph
from derive.prove.cases import by_cases, normalized, offsets
from derive.prove.domain import NONZERO, Condition, Conditions, DomainVerdict, Violation
from derive.prove.domain import OK as DOMAIN_OK
from derive.prove.numeric import Evaluator, ExactContext, IntervalContext, NotExact
from derive.prove.zero import MAX_OPS, TooLarge, current_core, is_zero, size_exceeds
from derive.records import Counterexample

DOMAIN_POINTS = 18  # extra points for the domain search (see Judge._domain_samples)

__all__ = ["MAX_OPS", "TooLarge", "is_zero", "size_exceeds", "Judge", "Point"]

@dataclass
class Point:
    """One sample: exact rationals for the leaves, and the arithmetic that evaluated it."""

    leaves: dict[Symbol, Fraction]
    evaluator: Evaluator

    def value(self, e: Expr) -> Any:
        return self.evaluator(e)


class Judge:
    """Proves or refutes ``claimed = true`` for one network and one truth engine."""

    def __init__(self, net: Network, truth: Truth, points: int = 6, seed: int = 2024) -> None:
        self.net = net
        self.truth = truth
        self.points = points
        self.seed = seed
        self._definitions = truth.definitions()
        self._functions_of = {atom: applied for applied, atom in net.canon.items()}
        self._piecewise_atoms = {a: f for a, f in self._functions_of.items() if isinstance(f, PIECEWISE)}
        self._cache: list[Point] | None = None

    # ------------------------------------------------------------------ proof
    @functools.cached_property
    def _expression_atoms(self) -> dict[Symbol, Expr]:
        """Each pre-activation atom as its definition, earlier ones substituted (built when
        SymPy first needs it: the fast core substitutes atom by atom)."""
        atoms = self.net.expression_atoms
        return compose(atoms, atoms)

    @functools.cached_property
    def _steps(self) -> list[tuple[str, Callable[[Expr, Expr], Expr | None]]]:
        return self._build_steps()

    def unfold_steps(self) -> list[tuple[str, Callable[[Expr, Expr], Expr | None]]]:
        """The proof steps (built once per judge; see :meth:`_build_steps`)."""
        return self._steps

    def _build_steps(self) -> list[tuple[str, Callable[[Expr, Expr], Expr | None]]]:
        """Ways to write claimed − true, from cheapest to most unfolded.

        1. as written; 2. the true side one chain-rule step deep (the layer-local proof:
        the claim's own ``dV`` stay atoms, i.e. arbitrary upstream gradients); 3. every
        adjoint unfolded on both sides; 4. pre-activations unfolded as well; 5. σ, tanh and
        softplus written through exp; 6. one case per sign pattern of the relu arguments.
        """
        truth = self.truth

        def pre_activations(e: Expr) -> Expr:
            e = truth.unfold(e)
            sub = {s: self._expression_atoms[s] for s in graph.free_symbols(e) if s in self._expression_atoms}
            return graph.xreplace(e, sub) if sub else e

        to_claim = self._to_claim

        def through_exp(c: Expr, t: Expr) -> Expr | None:
            # only when the claim itself writes exp or an activation of a non-atom (σ(−z))
            if not graph.has(c, (sympy.exp, *EXP_REWRITTEN)):
                return None  # the same as an earlier step: skipped as already tried
            return exp_form(to_claim(c, t), self._functions_of, c)

        def piecewise(c: Expr, t: Expr) -> bool:
            return bool(self._piecewise_applications) or graph.has(c, PIECEWISE) or graph.has(t, PIECEWISE)

        def sign_cases(c: Expr, t: Expr) -> Expr | None:  # one case per sign pattern of the relu arguments
            if not piecewise(c, t):
                return None  # no piecewise function anywhere: the same as an earlier step
            return by_cases(self._piecewise(c, t))

        def sign_cases_written_out(c: Expr, t: Expr) -> Expr | None:
            # the same cases, every pre-activation and relu atom written out down to the leaves:
            # a kink's argument built on an atom (relu(A2 − Y − δ) in a claim) and the same
            # argument composed (the whole-cost truth's relu(W2 A1 + b2 − Y − δ)) are then one case
            if not piecewise(c, t):
                return None
            first = e = self._piecewise(c, t)
            before = None
            for _ in range(len(self.net.layers) + 2):
                if e == before:
                    break
                before = e
                free = graph.free_symbols(e)
                sub = {s: self._expression_atoms[s] for s in free if s in self._expression_atoms}
                sub.update({a: f for a, f in self._piecewise_atoms.items() if a in free})
                e = graph.xreplace(e, sub) if sub else e
            return by_cases(e) if e != first else None  # (nothing written out: the step before)

        return [
            ("as written", lambda c, t: c - t),
            ("one chain-rule step", lambda c, t: c - truth.unfold_once(t)),
            ("truth unfolded to the claim's gradients", to_claim),
            ("adjoints unfolded", lambda c, t: truth.unfold(c) - truth.unfold(t)),
            ("pre-activations unfolded", lambda c, t: pre_activations(c) - pre_activations(t)),
            ("activations written through exp", through_exp),
            ("cases on the sign of each relu argument", sign_cases),
            ("cases on the sign of each relu argument, written out", sign_cases_written_out),
        ]

    def step(self, label: str) -> Callable[[Expr, Expr], Expr]:
        """One of :meth:`unfold_steps` by its label (diagnoses compare at a fixed depth); a
        step that does not apply to a pair is the truth unfolded to the claim's gradients."""
        found = dict(self.unfold_steps())[label]

        def step(c: Expr, t: Expr) -> Expr:
            e = found(c, t)
            return self._to_claim(c, t) if e is None else e
        return step

    def prove(self, claimed: Matrix, true: Matrix, cheap: bool = False) -> str | None:
        """Exact proof of every entry; returns the deepest step any entry needed, or None.

        ``cheap`` stops after the layer-local step (no unfolding of whole chains in SymPy;
        the fast core still tries the unfolded steps): the caller then tries a fast numeric
        refutation before the expensive steps.  A step whose difference is too large for
        SymPy is skipped (the next step may still prove the entry); when no step proves an
        entry and one was too large, :class:`TooLarge` is raised.
        """
        steps = self.unfold_steps()
        sympy_steps = 2 if cheap else len(steps)
        fast = self._fast_steps()
        depth = 0
        last = 0  # entries of one statement usually need the same step: try it first
        too_large = False
        for i in range(len(true)):
            c, t = claimed[i], true[i]
            tried: set[Expr] | None = None
            order = [last] + [k for k in range(len(steps)) if k != last]
            for k in order:
                if k in fast:
                    try:
                        verdict = fast[k](c, t)
                    except core.Unknown:
                        verdict = None
                    except TooLarge:  # this step's expansion is too large: a deeper one may be small
                        too_large = True  # (sum(Z1)**64 − sum(W1 X + b1)**64 cancels once Z1 is unfolded)
                        continue  # (SymPy's step would meet the same estimate)
                    if verdict is True:
                        depth, last = max(depth, k), k
                        break
                    if verdict is False:  # final: this step's difference is not 0
                        continue
                if k >= sympy_steps:
                    continue
                if tried is None:
                    tried = set()
                    if t.is_Symbol and t not in graph.free_symbols(c):
                        tried.add(c - t)  # c − t is linear in the atom t, which c lacks: not 0
                step = steps[k][1]
                e = step(c, t)
                if e is None or e in tried:  # this step changed nothing: no new chance
                    continue
                tried.add(e)
                try:
                    zero = is_zero(e)
                except TooLarge:
                    too_large = True
                    continue
                if zero:
                    depth, last = max(depth, k), k
                    break
            else:
                if too_large:
                    raise TooLarge
                return None
        return steps[depth][0]

    def _fast_steps(self) -> dict[int, Callable[[Expr, Expr], bool | None]]:
        """Steps 1–5 of :meth:`unfold_steps` decided by the fast core (True: 0; False: final,
        not 0; None: ask SymPy); empty when the core is SymPy alone."""
        if current_core() != "symengine":
            return {}
        if "_fast" not in self.__dict__:
            symbols: dict[Expr, Any] = {}
            adjoints: dict[Symbol, Expr] = dict(getattr(self.truth, "adjoint_definitions", {}))
            plain = core.Translation(symbols)
            once = core.Translation(symbols, adjoints, mode=lambda s: plain)
            unfolded = core.Translation(symbols, adjoints)
            expressions = self.net.expression_atoms
            pre = core.Translation(symbols, {**adjoints, **expressions})
            self.__dict__["_fast"] = (symbols, adjoints, expressions, plain, once, unfolded, pre, {})
        symbols, adjoints, expressions, plain, once, unfolded, pre, to_claim = self.__dict__["_fast"]

        def pair(left: core.Translation, right: core.Translation,
                 definitions: dict[Symbol, Expr] | None = None) -> Callable[[Expr, Expr], bool | None]:
            def decide(c: Expr, t: Expr) -> bool | None:
                if c == t:
                    return True
                if definitions is not None and t.is_Symbol:
                    # the claim built exactly as the truth's own definition of the atom t
                    # (both are canonical SymPy sums): equal without translating either side
                    d = definitions.get(t)
                    if d is not None and c == d:
                        return True
                a, fa = left(c)
                b, fb = right(t)
                return core.difference_is_zero(a, b, fa | fb)
            return decide

        def unfolded_to(keep: frozenset[Expr]) -> core.Translation:
            if keep not in to_claim:
                if len(to_claim) > 8:
                    to_claim.clear()
                to_claim[keep] = core.Translation(symbols, {s: d for s, d in adjoints.items() if s not in keep})
            return to_claim[keep]

        def folded(c: Expr, t: Expr) -> bool:
            """The claim folded into the truth's atoms (core.Folder), then compared with the
            truth unfolded down to the atoms the folded claim names."""
            if "_folder" not in self.__dict__:
                self.__dict__["_folder"] = core.Folder(symbols, adjoints)
            folder: core.Folder = self.__dict__["_folder"]
            try:
                f = folder(c)
                right = folder.translate(t)[0]
                if f == right:
                    return True
                keep = frozenset(folder.adjoints_of(f))
                return core.difference_is_zero(f, unfolded_to(keep)(t)[0], 1) is True
            except core.Unknown:
                return False

        def claim_gradients(c: Expr, t: Expr) -> bool | None:
            keep = frozenset(plain.adjoints(c))
            if not keep and t.is_Symbol and isinstance(t, AdjointSymbol) and folded(c, t):
                return True  # a written-out chain: folded, not expanded
            return pair(plain, unfolded_to(keep))(c, t)

        return {0: pair(plain, plain), 1: pair(plain, once, adjoints), 2: claim_gradients,
                3: pair(unfolded, unfolded), 4: pair(pre, pre, expressions)}

    def _to_claim(self, c: Expr, t: Expr) -> Expr:
        """claimed − true, the truth unfolded down to the gradients the claim names."""
        return c - self.truth.unfold_to(t, {s for s in graph.free_symbols(c) if isinstance(s, AdjointSymbol)})

    def _piecewise(self, c: Expr, t: Expr) -> Expr:
        """:meth:`_to_claim` with relu and leaky_relu atoms written as their functions."""
        e = self._to_claim(c, t)
        free = graph.free_symbols(e)
        return graph.xreplace(e, {a: f for a, f in self._piecewise_atoms.items() if a in free})

    def holds_off_kinks(self, claimed: Matrix, true: Matrix) -> str | None:
        """The kink arguments, as text, if every entry is proven on both sides of every kink
        and each kink argument is itself nonzero almost everywhere (so the kinks are a set
        of measure zero); None otherwise."""
        forms = [self._piecewise(c, t) for c, t in zip(claimed, true, strict=True)]
        if not any(graph.has(e, PIECEWISE) for e in forms):
            return None
        try:
            if not all(is_zero(by_cases(e, off_kinks=True)) for e in forms):
                return None
        except TooLarge:
            return None
        arguments = sorted({_unsigned(d) for e in forms for d in offsets(normalized(e))}, key=str)
        kinks = [Condition(NONZERO, u, "as the argument of a step function") for u in arguments]
        if not self.domain.judge(kinks).ok:
            return None
        shown = ", ".join(str(u) for u in arguments[:3]) + (", ..." if len(arguments) > 3 else "")
        return shown

    # ------------------------------------------------------------- refutation
    def sample_points(self) -> list[Point]:
        """Random points of the input domain (free constants positive), none of them on a
        kink of the network itself (a relu argument exactly 0 is drawn again)."""
        if self._cache is None:
            rng = random.Random(self.seed)
            out = []
            net_leaves, constants = self.net.leaves, self.net.free_constants
            for _ in range(self.points * 4):
                leaves = {s: _random_fraction(rng) for s in net_leaves}
                for c in constants:
                    leaves[c] = Fraction(rng.randint(1, 9), rng.randint(1, 7))
                leaves.update(self._one_hot_targets(rng))
                point = Point(leaves, self._evaluator(leaves))
                if not self._at_kink(point, self._network_kinks):
                    out.append(point)
                if len(out) == self.points:
                    break
            if out:
                out.extend(self._kink_points(out))
            self._cache = out
        return self._cache

    def _one_hot_targets(self, rng: random.Random) -> dict[Symbol, Fraction]:
        """For a loss whose targets are one-hot (hinge), a class per example: refutations
        then stay inside the loss's own domain (proofs hold for every target that sums to 1,
        one-hot included)."""
        spec = self.net.spec
        if spec is None or spec.equations is not None or "Y" not in self.net.matrices:
            return {}
        try:
            if loss_entry(spec.loss.kind).targets != ONE_HOT:
                return {}
        except (UnknownLoss, AttributeError):
            return {}
        y = self.net.matrices["Y"]
        rows = spec.batch_layout == "rows"
        examples = [list(y.row(k)) for k in range(y.rows)] if rows else [list(y.col(k)) for k in range(y.cols)]
        out: dict[Symbol, Fraction] = {}
        for entries in examples:
            c = rng.randrange(len(entries))
            for i, e in enumerate(entries):
                if isinstance(e, Symbol):  # the last class is 1 − the others: not a leaf
                    out[e] = Fraction(int(i == c))
        return out

    def _kink_points(self, points: list[Point]) -> list[Point]:
        """Extra points, one for each interval between the kinks of a piecewise function of
        the network (relu6: u < 0, 0 < u < 6, u > 6) that no random point reaches: a free
        leaf of one argument (a bias) is set so that the argument lies inside it.  Without
        them a claim that is wrong only for u > 6 would never meet a point that shows it."""
        wanted: dict[tuple[type[OpFunction], int], list[Expr]] = {}  # (class, interval) → arguments
        for f in self._piecewise_applications:
            kinks = type(f).piecewise.kinks
            for i in range(len(kinks) + 1):
                wanted.setdefault((type(f), i), []).append(f.args[0])
        for point in points:  # what the random points already reach
            for key in [k for k in wanted]:
                cls, i = key
                kinks = cls.piecewise.kinks  # type: ignore[union-attr]
                if any(self._interval_of(point, u, kinks) == i for u in wanted[key][:8]):
                    del wanted[key]
        out: list[Point] = []
        for (cls, i), arguments in sorted(wanted.items(), key=lambda kv: (kv[0][0].__name__, kv[0][1])):
            kinks = cls.piecewise.kinks  # type: ignore[union-attr]
            lo = kinks[i - 1] if i > 0 else kinks[0] - 1
            hi = kinks[i] if i < len(kinks) else kinks[-1] + 1
            target = Fraction(int((lo + hi).p), int((lo + hi).q)) / 2  # inside, 1/2 or more from a kink
            for u in sorted(arguments, key=str)[:3]:
                leaves = self._aimed(points[0].leaves, u, target)
                if leaves is None:
                    continue
                point = Point(leaves, self._evaluator(leaves))
                if not self._at_kink(point, self._network_kinks) and self._interval_of(point, u, kinks) == i:
                    out.append(point)
                    break
        return out

    def _interval_of(self, point: Point, u: Expr, kinks: tuple[Expr, ...]) -> int | None:
        """Which interval between the kinks u lies in at the point (None: at a kink or unknown)."""
        for exact in (True, False):
            ev = point.evaluator if exact and point.evaluator.ctx.exact else self.interval_evaluator(point)
            try:
                v = ev(u)
                signs = [ev.ctx.sign(v - ev.ctx.number(k)) for k in kinks]
            except NotExact:
                continue
            except (Undetermined, ArithmeticError, KeyError):
                return None
            return None if 0 in signs else sum(1 for s in signs if s > 0)
        return None

    def _aimed(self, base: dict[Symbol, Fraction], u: Expr, target: Fraction) -> dict[Symbol, Fraction] | None:
        """``base`` with one leaf s changed so that u = target, for u = k·s + r (k a number,
        r free of s): s = (target − r)/k, r taken at the base point (rounded to a small
        fraction when it is not rational: the target is 1/2 or more inside its interval)."""
        try:
            full = sympy.expand(self.domain.unfold(u))
        except TooLarge:
            return None
        for s in sorted(full.free_symbols & set(self.net.leaves), key=str):
            k = sympy.diff(full, s)
            rest = full - k * s
            if not (k.is_Rational and k != 0) or s in rest.free_symbols:
                continue
            r = self._value_at(base, rest)
            if r is None:
                continue
            leaves = dict(base)
            leaves[s] = (target - r) / Fraction(int(k.p), int(k.q))
            return leaves
        return None

    def _value_at(self, leaves: dict[Symbol, Fraction], e: Expr) -> Fraction | None:
        for exact in (True, False):
            ev = self._evaluator(leaves, exact=exact)
            try:
                v = ev(e)
            except NotExact:
                continue
            except (Undetermined, ArithmeticError, KeyError):
                return None
            if exact:
                return v
            return Fraction(str(ev.ctx.mid(v))).limit_denominator(1000)
        return None

    @functools.cached_property
    def _piecewise_applications(self) -> list[Expr]:
        """Every application of a piecewise function (relu, relu′, ...) in the network's own
        definitions, each once, in the order of the definitions (one pass that visits each
        shared subtree once: SymPy's ``atoms`` on every definition was most of the set-up)."""
        recorded = getattr(self.truth, "applications", None)  # the adjoints' (LocalTruth records them)
        definitions = self.net.definitions.values() if recorded is not None else self._definitions.values()
        out: dict[Expr, None] = {}
        seen: set[int] = set()
        for d in definitions:
            found: dict[Expr, None] = {}
            stack = [d]
            while stack:
                e = stack.pop()
                if e.is_Atom or id(e) in seen:
                    continue
                seen.add(id(e))
                if isinstance(e, PIECEWISE):
                    found[e] = None
                if e.is_Mul and all(a.is_Atom for a in e.args):
                    continue  # a monomial (most of a pre-activation)
                stack.extend(e.args)
            out.update(dict.fromkeys(sorted(found, key=str)))
        if recorded is not None:
            out.update(dict.fromkeys(sorted((f for f in recorded if isinstance(f, PIECEWISE)), key=str)))
        return list(out)

    @functools.cached_property
    def _network_kinks(self) -> list[Expr]:
        """u − k for every kink k of every piecewise function f(u) in the network's own definitions."""
        out: list[Expr] = []
        for f in self._piecewise_applications:
            out.extend(kink_offsets(f))
        return out

    def _at_kink(self, point: Point, arguments: list[Expr], flat_ok: bool = False) -> bool:
        """Whether some argument is exactly 0 (or not certifiably nonzero) at the point;
        with ``flat_ok``, an argument that is 0 on a whole neighbourhood does not count."""
        for u in arguments:
            for exact in (True, False):
                ev = point.evaluator if exact and point.evaluator.ctx.exact else self.interval_evaluator(point)
                try:
                    if not ev.ctx.is_nonzero(ev(u)):
                        if flat_ok and self._flat_at(u, point):
                            break
                        return True
                    break
                except NotExact:
                    continue
                except (Undetermined, ArithmeticError, KeyError):
                    return True
        return False

    # ------------------------------------------------------------------ domain
    @functools.cached_property
    def domain(self) -> Conditions:
        """Judges where claims are defined (:mod:`derive.prove.domain`), at these sample points."""
        return Conditions(self._definitions, self.net.leaves, self.net.free_constants, self._domain_samples,
                          facts=self.net.domain)

    def _domain_samples(self) -> list[tuple[dict[Symbol, Fraction], Callable[[bool], Evaluator]]]:
        """The sample points, then as many again and more drawn for the domain search only:
        an open set where a claim is undefined may need a sign pattern (one relu unit
        active, its upstream gradient negative) that six points can miss."""
        points = list(self.sample_points())
        if "_more_points" not in self.__dict__:
            more = Judge(self.net, self.truth, points=DOMAIN_POINTS, seed=self.seed + 1)
            more._definitions = self._definitions
            self.__dict__["_more_points"] = more.sample_points()
        points += self.__dict__["_more_points"]
        return [(point.leaves, self._point_fn(point)) for point in points]

    def _point_fn(self, point: Point) -> Callable[[bool], Evaluator]:
        """Evaluators of one sample point for the domain judge: exact, or intervals."""
        cache = self.__dict__.setdefault("_point_fns", {})
        key = id(point)
        if key not in cache:
            built: dict[bool, Evaluator] = {}

            def at(exact: bool) -> Evaluator:
                if exact not in built:
                    built[exact] = self._evaluator(point.leaves, exact=exact)
                return built[exact]
            cache[key] = (point, at)  # the point is kept so that its id stays unique
        return cache[key][1]

    def _flat_at(self, u: Expr, point: Point) -> bool:
        """Whether ``u`` is identically 0 on a neighbourhood of the point (its germ there is
        0), so that a step function of ``u`` is constant near it: not a kink."""
        germ = self.domain._germ(u, point.leaves, self._point_fn(point))
        try:
            return germ is not None and is_zero(germ)
        except TooLarge:
            return False

    def check_domain(self, conditions: list[Condition], true: Matrix) -> DomainVerdict:
        """Whether a claim with these recorded conditions is defined almost everywhere
        (a violation counts only where the true gradient is defined)."""
        if not conditions:
            return DOMAIN_OK

        def truth_defined(c: Condition, leaves: dict[Symbol, Fraction]) -> bool:
            return self._true_value(true, self._entry(c, true), leaves) is not None
        return self.domain.judge(conditions, truth_defined)

    @staticmethod
    def _entry(c: Condition, true: Matrix) -> tuple[int, int]:
        return c.entry if c.entry[0] < true.shape[0] and c.entry[1] < true.shape[1] else (0, 0)

    def _true_value(self, true: Matrix, entry: tuple[int, int],
                    leaves: dict[Symbol, Fraction]) -> tuple[Evaluator, Any] | None:
        """The true entry at the leaves (exact, else intervals), or None where it is undefined."""
        for exact in (True, False):
            ev = self._evaluator(leaves, exact=exact)
            try:
                return ev, ev(true[entry])
            except NotExact:
                continue
            except (Undetermined, ArithmeticError, KeyError):
                return None
        return None

    def undefined_counterexample(self, violation: Violation, true: Matrix) -> Counterexample:
        """The point of a domain violation as a counterexample: claimed undefined, true value."""
        c = violation.condition
        entry = self._entry(c, true)
        found = self._true_value(true, entry, violation.leaves)
        assert found is not None  # check_domain accepted only points where the truth is defined
        ev, t = found
        point = Point(dict(violation.leaves), ev)
        ce = self._counterexample(point, ev, entry, ev.ctx.zero, t)
        claimed = f"undefined ({c.describe(violation.value)})"
        return Counterexample(ce.values, ce.entry, claimed, ce.true, ce.exact)

    # ------------------------------------------------------------- refutation
    def _evaluator(self, leaves: dict[Symbol, Fraction], exact: bool = True) -> Evaluator:
        if exact:
            return Evaluator(ExactContext(), leaves, self._definitions)
        ctx = IntervalContext()
        return Evaluator(ctx, {s: ctx.number(sympy.Rational(v.numerator, v.denominator))
                               for s, v in leaves.items()}, self._definitions)

    def refute(self, claimed: Matrix, true: Matrix) -> Counterexample | None:
        """A counterexample certified by exact or interval arithmetic, or None.

        ``self.evaluated`` then holds how many points were evaluated in full (every
        entry, no difference), and ``self.skipped`` why the others were not."""
        self.evaluated = 0
        self.skipped: dict[str, int] = {}
        kinks = sorted({d for e in list(claimed) + list(true) for d in offsets(e)}, key=str)
        for point in self.sample_points():
            if kinks and self._at_kink(point, kinks, flat_ok=True):
                self._skip("a relu or mask argument of the claim is 0 there (a kink)")
                continue
            found = self._refute_at(point, claimed, true)
            if found is not None:
                return found
        return None

    def _skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def evaluation_summary(self) -> str:
        """What the last :meth:`refute` evaluated, in words (never more than it did)."""
        n = getattr(self, "evaluated", 0)
        skipped = getattr(self, "skipped", {})
        said = f"{n} random point{'s' if n != 1 else ''} evaluated exactly or in intervals showed no difference"
        if n == 0:
            said = "no random point could be evaluated"
        if skipped:
            said += " (" + "; ".join(f"{k} skipped: {why}" for why, k in skipped.items()) + ")"
        return said

    def interval_evaluator(self, point: Point) -> Evaluator:
        """Switch ``point`` to interval arithmetic (its values are not all rational)."""
        if point.evaluator.ctx.exact:
            point.evaluator = self._evaluator(point.leaves, exact=False)
        return point.evaluator

    def _refute_at(self, point: Point, claimed: Matrix, true: Matrix) -> Counterexample | None:
        ev = point.evaluator
        for attempt in range(2):
            try:
                for i in range(len(true)):
                    c, t = ev(claimed[i]), ev(true[i])
                    if ev.ctx.is_nonzero(c - t):
                        return self._counterexample(point, ev, divmod(i, true.shape[1]), c, t)
                if hasattr(self, "evaluated"):
                    self.evaluated += 1
                return None
            except NotExact as exc:
                if attempt == 0:  # transcendental: redo this point in interval arithmetic
                    ev = self.interval_evaluator(point)
                    continue
                self._note_skip(f"cannot be evaluated ({exc})")
                return None
            except Undetermined:
                self._note_skip("a sign could not be certified in interval arithmetic")
                return None
            except (ZeroDivisionError, ArithmeticError) as exc:
                self._note_skip(f"undefined there ({exc})")
                return None
            except KeyError as exc:
                self._note_skip(f"no value for {exc}")
                return None
        return None

    def _note_skip(self, why: str) -> None:
        if hasattr(self, "skipped"):
            self._skip(why)

    def _counterexample(self, point: Point, ev: Evaluator, entry: tuple[int, int], c: Any, t: Any) -> Counterexample:
        values = {str(s): str(v) for s, v in point.leaves.items()}
        for name, kind in self.net.kinds.items():  # entries fixed by a constraint (softmax targets)
            if kind == "target":
                for e in self.net.matrices[name]:
                    if not isinstance(e, Symbol):
                        ent = self.net.matrices[name]
                        pos = list(ent).index(e)
                        r, col = divmod(pos, ent.shape[1])
                        values[f"{name}[{r},{col}]"] = ev.ctx.show(ev(e))
        return Counterexample(values, entry, ev.ctx.show(c), ev.ctx.show(t), ev.ctx.exact)

    def agrees_numerically(self, claimed: Matrix, true: Matrix) -> bool:
        """Cheap filter for diagnosis candidates: no certified difference at the samples."""
        for point in self.sample_points()[:2]:
            if self._refute_at(point, claimed, true) is not None:
                return False
        return True


def exp_form(e: Expr, functions_of: dict[Symbol, Expr], claim: Expr | None = None) -> Expr:
    """σ, tanh, softplus (every function with an exp form in the registry) and exp
    written through t = exp(u) for each argument u.

    Only what the claim's exp terms reach is rewritten: starting from the symbols inside
    the claim's exp(·) and σ/tanh/softplus of non-atoms, an activation atom is replaced by
    its function, and a function is rewritten with exp, when its atom or argument is
    reached; each rewrite reaches the symbols it introduces (σ(z) = 1/(1 + e^(−z)) reaches
    z, so the truth's σ′(z) is rewritten too, while an unrelated output layer stays an
    atom and keeps the expression small).  Every exp(k·u) (k rational) then becomes
    t_u**k, t_u a fresh positive symbol standing for exp(u).  An identity in the t's is
    an identity for t = exp(u): every substitution here is sound, it only lets
    ``together``/``expand`` see σ(z) = t/(1 + t).
    """
    claim = e if claim is None else claim
    reached: set[Expr] = set()
    for x in graph.atoms(claim, (sympy.exp, *EXP_REWRITTEN)):  # (graph walks: e shares most of its nodes)
        reached |= graph.free_symbols(x)
    while True:
        free = graph.free_symbols(e)
        atoms = {a: f for a, f in functions_of.items()
                 if a in free and (a in reached or graph.free_symbols(f) & reached)}
        rewrite: dict[Expr, Expr] = {}
        for f in graph.atoms(e, EXP_REWRITTEN):
            if graph.free_symbols(f) & reached:
                rewrite[f] = _through_exp(f)
        for a, f in atoms.items():
            rewrite[a] = _through_exp(f) if isinstance(f, EXP_REWRITTEN) else f
        if not rewrite:
            break
        e = graph.xreplace(e, rewrite)
        for r in rewrite.values():
            reached |= graph.free_symbols(r)
    exps = graph.atoms(e, (sympy.exp,))
    if not exps:
        return e
    base: dict[Expr, sympy.Symbol] = {}
    sub = {}
    for x in exps:
        k, u = x.args[0].as_coeff_Mul()
        if not k.is_Rational:
            continue
        if u not in base:
            base[u] = sympy.Dummy("t", positive=True)
        sub[x] = base[u] ** k
    return graph.xreplace(e, sub)


def _through_exp(f: Expr) -> Expr:
    """The registry's exp form of σ, tanh, softplus, silu, gelu … applied to f's arguments."""
    return type(f).through_exp(*f.args)


def _unsigned(u: Expr) -> Expr:
    return -u if u.could_extract_minus_sign() else u


def _random_fraction(rng: random.Random) -> Fraction:
    """Small nonzero rationals of both signs (both branches of every ReLU get exercised)."""
    return Fraction(rng.choice([-1, 1]) * rng.randint(1, 4), rng.randint(2, 5))


def numbered(m: Matrix) -> Iterator[tuple[tuple[int, int], Expr]]:
    for i in range(len(m)):
        yield divmod(i, m.shape[1]), m[i]
