"""A spec's forward equations and backward block, checked gradient by gradient.

The forward block runs on symbolic inputs (:mod:`derive.code.interpret`, NumPy's exact
semantics); the loss is the spec's scalar loss, or Σ out ⊙ dout for ``upstream:
{out: dout}`` with ``dout`` a free input.  The backward block runs on the forward's values
and the upstream gradients; every name it assigns that is ``d`` + the name of an input,
a parameter or a forward value (``dx``, ``dgamma``, ``dx_hat``, ``dW1``) is a gradient
and is judged, entry by entry, against the truth ∂L/∂V:

- for an input or a parameter, ``sympy.diff`` of the loss by each entry;
- for a forward value V, the forward pass is run again with V cut loose (its entries
  fresh symbols after its last assignment), differentiated by them, and V's value put
  back: ∂L/∂V with everything downstream of V, exactly as backpropagation means it.

Each gradient is then proven, refuted with a counterexample inside the declared domains
(labels given as integer vectors, as the user's code would see them), or unproven; the
judge is :func:`derive.code.backward._judge`.  This never runs the user's code: the
blocks are parsed, and interpreted through a fixed table of NumPy operations.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
from sympy import Expr

from derive.code import backward as B
from derive.code import induction, paths
from derive.code.arrays import NotRepresentable, SymArray, symbolic_numpy, symbols_array, to_exprs
from derive.code.domains import Domains
from derive.code.gradient import Differentiator
from derive.code.interpret import BlockError, Interpreter, Labels, ShapeMismatch
from derive.code.report import GradientCheck, array_text, value_text
from derive.diagnose.syntactic import structural_edits
from derive.errors import FormulaError
from derive.lang import formula as F
from derive.lang import program as P
from derive.ops.activations import ACTIVATIONS, PIECEWISE
from derive.prove import graph
from derive.prove.cases import branches
from derive.records import PROVEN, REFUTED, UNPROVEN, Check, Counterexample, Diagnosis, DiagnosisCode, Method, Verdict
from derive.util import budget

__all__ = ["Program", "BlockResult", "check_program"]

MAX_ENTRIES = 2000  # symbols of the inputs together
_EMPTY = np.empty  # NumPy's own, also while symbolic_numpy() replaces it


@dataclass(frozen=True)
class Program:
    """What a spec with a backward block declares."""

    forward: tuple[P.Statement, ...]
    backward: tuple[P.Statement, ...]
    shapes: Mapping[str, tuple[int, ...]]  # every leaf (input or parameter); () for a scalar
    parameters: tuple[str, ...]
    upstream: Mapping[str, str] = field(default_factory=dict)  # forward output → its upstream gradient's name
    loss: str | None = None
    domains: Mapping[str, str] = field(default_factory=dict)
    places: Mapping[str, str] = field(default_factory=dict)  # gradient name → where its last line is


@dataclass(frozen=True)
class Claim:
    """``target = formula`` judged locally: dV on the right is the true ∂L/∂V."""

    target: str
    formula: F.Node
    text: str
    place: str | None = None
    expect: Verdict = PROVEN


@dataclass
class BlockResult:
    checks: list[Check]
    gradients: dict[str, GradientCheck]
    unchecked: list[str]  # names assigned that are not gradients of anything
    seconds: float
    symbols: int
    #: each gradient judged locally: its own lines, given the true value of every other gradient
    local: dict[str, GradientCheck] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # the chain in words: first wrong line, conventions
    true_forms: dict[str, str] = field(default_factory=dict)  # refuted target → the true gradient's first entry


def check_program(program: Program, seed: int = 0, points: int = B.POINTS,
                  timeout: float | None = B.DEFAULT_TIMEOUT, claims: tuple[Claim, ...] = ()) -> BlockResult:
    """Run both blocks and judge every gradient the backward block assigns (and each claim)."""
    started = time.monotonic()
    entries = sum(int(np.prod(s, dtype=np.int64)) for s in program.shapes.values())
    if entries > MAX_ENTRIES:
        raise BlockError("", None, f"{entries} input entries: derive works entry by entry; use the smallest "
                                   f"sizes that exercise the derivation (at most {MAX_ENTRIES})")
    run = _Run(program)
    result = BlockResult([], {}, [], 0.0, 0)
    try:
        with budget.limit(timeout):
            run.forward_and_backward()
            result.unchecked = run.unchecked
            for name in run.targets:
                t0 = time.monotonic()
                g = B.within_memory(run.base_of(name) or name, run.judge, name, seed, points)
                g.seconds = time.monotonic() - t0
                result.gradients[name] = g
            if any(g.verdict != PROVEN for g in result.gradients.values()):
                for name in run.targets:  # where does the chain go wrong? each line with true inputs
                    result.local[name] = B.within_memory(run.base_of(name) or name, run.judge_local, name, seed,
                                                         points)
            for c in claims:
                t0 = time.monotonic()
                g = B.within_memory(run.base_of(c.target) or c.target, run.claim, c, seed, points)
                g.seconds = time.monotonic() - t0
                result.checks.append(_claim_check(g, c))
    except budget.Timeout:
        for name in run.targets:
            base = run.base_of(name) or name
            result.gradients.setdefault(name, GradientCheck(name=base, verdict=Verdict.UNPROVEN,
                                                            why=f"timeout after {timeout:g} s: not checked"))
        for c in claims[len(result.checks):]:  # a claim the timeout left unchecked is unproven, never dropped
            base = run.base_of(c.target) or c.target
            result.checks.append(_claim_check(GradientCheck(name=base, verdict=Verdict.UNPROVEN,
                                                            why=f"timeout after {timeout:g} s: not checked"), c))
    result.symbols = run.symbol_count
    conventions = B._bounded({}, _conventions, run, result, seconds=CONVENTION_SECONDS)  # (after the run's budget)
    result.notes = _chain_notes(run, result, conventions)
    result.checks = _records(run, result, conventions) + result.checks
    for done in result.checks:
        if done.verdict == REFUTED and done.target not in result.true_forms:
            of = run.base_of(done.target)
            if of is not None and of in run._truth:
                result.true_forms[done.target] = _entry_text(done.target, run._truth[of])
    result.seconds = time.monotonic() - started
    return result


def _records(run: _Run, result: BlockResult, conventions: dict[str, tuple[Any, list[str]]]) -> list[Check]:
    """Each gradient of the block as a report record: its chain verdict, a convention it
    follows, or where its line stands on its own."""
    own = []
    for name, g in result.gradients.items():
        check = to_check(g, run.program, run)
        if name in conventions:
            k, users = conventions[name]
            base = g.name
            right = [u for u in users if u not in conventions]
            carried = [u for u in users if u in conventions]
            words = f"your {name} is {k}·∂L/∂{base}: a per-example (or unscaled) convention; " + "; ".join(
                x for x in ((f"{', '.join(right)} apply the factor 1/{k}, so they are right" if right else ""),
                            (f"{', '.join(carried)} carry it on" if carried else "")) if x)
            check = Check(**{**check.__dict__, "target": f"{name} (as {k}·∂L/∂{base})", "verdict": PROVEN,
                             "method": Method.EXACT, "counterexample": None, "detail": None,
                             "finding": Diagnosis(DiagnosisCode.PER_EXAMPLE, words), "basis": None})
        elif name in result.local:
            local = result.local[name]
            where = ""
            if local.verdict == PROVEN and g.verdict == REFUTED:
                where = "this line is right given the true gradients it uses: the mistake is upstream"
            elif local.verdict == REFUTED:
                where = "this line is wrong even given the true gradients it uses"
            if where:
                check = Check(**{**check.__dict__, "detail": "; ".join(x for x in (check.detail, where) if x)})
        own.append(check)
    return own


class _Run:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.domains = Domains(dict(program.domains))
        self.leaves: dict[str, Any] = {n: self.domains.leaf(n, tuple(s)) for n, s in program.shapes.items()}
        self.forward_env: dict[str, Any] = {}
        self.backward_env: dict[str, Any] = {}
        self.ups: dict[str, SymArray] = {}
        self.loss: Expr = sympy.Integer(0)
        self.targets: list[str] = []
        self.unchecked: list[str] = []
        self.last: dict[str, int] = {}  # forward name → index of its last top-level assignment
        self._truth: dict[str, np.ndarray] = {}
        #: a forward value V → (the forward values with V's entries as independent symbols, ∂L/∂V in them, back)
        self._general: dict[str, tuple[dict[str, Any], np.ndarray, dict[Expr, Expr], str]] = {}
        self._proven: dict[str, GradientCheck] = {}  # the block's gradients proven so far, in order
        self._ats: list[B._At] = []  # the sample points of the last judgement
        self.symbol_count = 0
        self._at: B._At | None = None  # a sample point inside the domains, for quick rejections
        self._loop_proofs: dict[str, str] | None = None  # gradients proven by induction over a loop (once)

    def base_of(self, name: str) -> str | None:
        """The V of a gradient name dV of this run (an input, a parameter or a forward value)."""
        return _base_of(name, set(self.leaves) | set(self.last), set(self.ups))

    def gradients_named(self, formula: F.Node) -> list[str]:
        """The gradient names dV a claim's formula reads (each the true ∂L/∂V by definition),
        sorted: the names that are no value of the run and have a V."""
        return [n for n in sorted(F.names(formula)) if n not in self.forward_env and n not in self.leaves
                and n not in self.ups and self.base_of(n) is not None]

    # ------------------------------------------------------------ running
    def forward_and_backward(self) -> None:
        p = self.program
        for k, s in enumerate(p.forward):
            for n in P.assigned((s,)):
                self.last[n] = k
        with symbolic_numpy():
            env = dict(self.leaves)
            with _block("network.equations"):
                Interpreter(env).run(p.forward)
            self.forward_env = env
            with _block("network.loss" if p.loss else "upstream"):
                self.loss = self._loss(env, make_upstream=True)
            benv = dict(env)
            benv.update(self.ups)
            with _block("backward"):
                Interpreter(benv).run(p.backward)
            self.backward_env = benv
        for name in P.assigned(p.backward):
            base = self.base_of(name)
            if base is None:
                self.unchecked.append(name)
            elif isinstance(self.leaves.get(base), Labels):
                self.unchecked.append(name)
            else:
                self.targets.append(name)
        self.symbol_count = len(self.loss.free_symbols)

    def _loss(self, env: dict[str, Any], make_upstream: bool) -> Expr:
        p = self.program
        if p.upstream:
            terms: list[Expr] = []
            for out, up in p.upstream.items():
                value = env.get(out)
                if not isinstance(value, np.ndarray):
                    raise BlockError("", None, f"upstream: '{out}' is not an array the forward block computes")
                if make_upstream:
                    self.ups[up] = symbols_array(up, value.shape)
                u = self.ups[up]
                if u.shape != value.shape:
                    raise BlockError("", None, f"upstream {up} has shape {u.shape}, {out} {value.shape}")
                terms.extend(a * g for a, g in zip(value.view(np.ndarray).reshape(-1),
                                                   u.view(np.ndarray).reshape(-1), strict=True))
            return sympy.Add(*terms)
        assert p.loss is not None
        value = env.get(p.loss)
        if not isinstance(value, np.ndarray) or value.size != 1:
            raise BlockError("", None, f"the loss '{p.loss}' must be a scalar, got "
                                       f"{getattr(value, 'shape', value)}")
        return value.view(np.ndarray).reshape(-1)[0]

    # ------------------------------------------------------------ the truth
    def truth(self, base: str) -> np.ndarray:
        if base not in self._truth:
            self._truth[base] = self._compute_truth(base)
        return self._truth[base]

    def _compute_truth(self, base: str) -> np.ndarray:
        if base in self.leaves and base not in self.last:
            plain = self.leaves[base].view(np.ndarray)
            d = Differentiator(self.loss)
            out = _EMPTY(plain.shape, dtype=object)
            for idx in np.ndindex(*plain.shape):
                out[idx] = d.diff(plain[idx])
            return out
        k = self.last[base]
        original = self.forward_env[base]
        if not isinstance(original, np.ndarray):
            raise NotRepresentable(f"{base} is not an array")
        atoms = symbols_array(f"⟨{base}⟩", original.shape).view(np.ndarray)
        cut = atoms.view(SymArray)

        def after(s: P.Statement, j: int) -> None:
            if j == k:
                env[base] = cut.copy()

        with symbolic_numpy():
            env = dict(self.leaves)
            Interpreter(env).run(self.program.forward, after)
            loss = self._loss(env, make_upstream=False)
        back = dict(zip(atoms.reshape(-1), original.view(np.ndarray).reshape(-1), strict=True))
        d = Differentiator(loss)
        general = _EMPTY(original.shape, dtype=object)
        out = _EMPTY(original.shape, dtype=object)
        for idx in np.ndindex(*original.shape):
            general[idx] = g = d.diff(atoms[idx])
            out[idx] = g.xreplace(back)
        self._general[base] = (env, general, back, base)
        return out

    def _generalizations(self, base: str) -> Iterator[tuple[dict[str, Any], np.ndarray, dict[Expr, Expr], str]]:
        """B's generalized truths (see :meth:`general_check`): a forward value's own (B cut
        loose), then through each later forward value V (the nearest first) whose loss, with
        B and V both cut loose, no longer contains B:
        ∂L/∂B_j = Σ_i (∂L/∂V_i)(v) · ∂V_i/∂B_j, exact at v = V(x) (the chain rule: L
        depends on B only through V).  A parameter has only the second kind."""
        if base in self.last:
            self.truth(base)
            if base in self._general:
                yield self._general[base]
        k_base = self.last.get(base, -1)
        tried = 0
        for name, k in sorted(self.last.items(), key=lambda item: item[1]):
            s = self.program.forward[k]
            if k <= k_base or not isinstance(s, P.Assign):
                continue
            through = self._through(base, name)
            if through is None:
                continue
            yield through
            tried += 1
            if tried >= MAX_THROUGH:
                return

    def _through(self, base: str, name: str) -> tuple[dict[str, Any], np.ndarray, dict[Expr, Expr], str] | None:
        """∂L/∂B through V (= ``name``) in V's entries v, or None when L reads B elsewhere."""
        try:
            self.truth(name)
        except (FormulaError, NotRepresentable, ValueError, TypeError, IndexError):
            return None
        if name not in self._general:
            return None
        env_v, v_true, back_v, _ = self._general[name]
        out = self._pullback(base, name, v_true)
        return None if out is None else (env_v, out, back_v, name)

    def _pullback(self, base: str, name: str, upstream: np.ndarray, general: bool = False) -> np.ndarray | None:
        """Σ_i upstream_i · ∂V_i/∂B_j for each entry j of B (V = ``name``): ∂L/∂B when
        ``upstream`` is ∂L/∂V and L depends on B only through V — checked here exactly (the
        loss with B and V both cut loose has none of B's entries), else None.  ``general``:
        in B's entries as the symbols of its own cut (see :meth:`general_check`), not B(x).
        The one-value case of :func:`derive.code.paths.pullback`."""
        return paths.pullback(self, base, {"": name}, {"": upstream}, general)

    def chained_check(self, base: str, name: str, check: GradientCheck,
                      formula: tuple[F.Node, str] | None = None) -> None:
        """An unproven dB proven from a gradient dV the block computed and derive proved
        (dV = ∂L/∂V): the block run again with dV's final value replaced by free symbols g
        computes dB as a function of g; if it equals Σ_i g_i ∂V_i/∂B_j for every g (and L
        depends on B only through V, checked exactly), then at g = dV it is ∂L/∂B — the
        chain rule, one proven line at a time, without expanding the loss through V.
        A claim (``formula``) uses true gradients by name: each dV it names is its g."""
        if check.verdict != Verdict.UNPROVEN:
            return
        statements = self.program.backward
        if formula is None:
            sources = [(dv, proven) for dv, proven in reversed(list(self._proven.items())) if dv != name]
        else:
            exact = GradientCheck(name="", verdict=Verdict.PROVEN)  # a claim's dV is the truth itself
            sources = [(n, exact) for n in self.gradients_named(formula[0])]
        tried = 0
        for dv, proven in sources:
            v = self.base_of(dv)
            if v is None or v == base or v not in self.last:
                continue
            if not paths.depends_on(self.program.forward, v, base):
                continue  # V does not read B: no chain through it (not counted as a try)
            g = symbols_array(f"g⟨{dv}⟩", self.truth(v).shape).view(np.ndarray)
            last = max((k for k, s in enumerate(statements) if dv in P.assigned((s,))), default=-1)

            def compute(env: dict[str, Any], dv: str = dv, last: int = last, g: np.ndarray = g) -> Any:
                if formula is not None:  # a claim: dV's truth is g
                    env[dv] = g.view(SymArray).copy()
                    return Interpreter(env).value(formula[0], formula[1])

                def after(s: P.Statement, j: int) -> None:  # the block: dV's final value is g
                    if j == last:
                        env[dv] = g.view(SymArray).copy()

                Interpreter(env).run(statements, after)
                return env[name]

            true = self._pullback(base, v, g)
            tried += 1
            if true is not None and self._chain_proof(check, compute, dv, true, proven):
                return
            if true is not None and base in self.last and self._at is not None:  # with B's entries as symbols
                self.truth(base)
                general = self._general.get(base)
                true = self._pullback(base, v, g, general=True)
                if general is not None and true is not None and self._chain_proof(
                        check, compute, dv, true, proven, general):
                    return
            if tried >= MAX_THROUGH:
                return

    def _chain_proof(self, check: GradientCheck, compute: Callable[[dict[str, Any]], Any], dv: str,
                     true: np.ndarray, proven: GradientCheck,
                     general: tuple[dict[str, Any], np.ndarray, dict[Expr, Expr], str] | None = None) -> bool:
        """dB as computed from g (on the forward values, or with ``general`` on B's own cut:
        B's entries symbols, the kinks certified as in :meth:`general_check`) equal to
        ``true`` for every g."""
        try:
            with symbolic_numpy():
                env = dict(self.forward_env if general is None else general[0])
                env.update(self.ups)
                claimed = compute(env)
        except (FormulaError, NotRepresentable, ValueError, TypeError, IndexError, KeyError, ZeroDivisionError):
            return False
        claimed = B._objects(claimed if isinstance(claimed, np.ndarray) else to_exprs(claimed))
        if claimed.shape != true.shape:
            return False
        kinks = False
        try:
            for c, t in zip(claimed.reshape(-1), true.reshape(-1), strict=True):
                d = c - t
                if c == t or B.is_zero(d):
                    continue
                if general is None or self._at is None or not d.has(*PIECEWISE):
                    return False
                if self._cases_zero(d, False) == "exact":
                    continue
                if self._cases_zero(d, True, general[2]) != "exact":
                    return False
                kinks = True
        except B.TooLarge:
            return False
        check.verdict = Verdict.PROVEN
        check.differing = []
        aes = proven.almost_everywhere or kinks
        how = " almost everywhere" if proven.almost_everywhere else ""
        check.why = f"by the chain rule from {dv} (proven{how})"
        if general is not None:
            check.why += f"; an identity in {dv}'s and {general[3]}'s entries taken as independent values"
        if kinks:
            check.why += " (equal except where entries of a max tie or the argument of a step is 0)"
        check.almost_everywhere = aes
        if proven.on_domain:
            check.on_domain = proven.on_domain
            check.why += f"; on the declared domain ({proven.on_domain})"
        return True

    def _kinks_null(self, splits: set[Expr], back: dict[Expr, Expr]) -> bool:
        """The points a proof off the kinks left out are a null set of the inputs: each
        argument it split on (in the symbols of a cut), back in the inputs' symbols, is
        analytic (no step or relu inside: relu(z) − relu(z′) is 0 on a whole quadrant) and
        nonzero at one of the sample points (so not identically 0: its zeros have measure 0)."""
        for o in splits:
            x = sympy.sympify(o).xreplace(back)
            if x.has(*PIECEWISE) or not any(at.nonzero(x) is True for at in self._ats):
                return False
        return True

    def _cases_zero(self, d: Expr, off_kinks: bool, back: dict[Expr, Expr] | None = None) -> str | None:
        """d = 0 in every sign case of its steps, each case as written ("exact") or on the
        declared domains ("domain"); None if not shown.  Off the kinks (only > 0 and < 0
        splits), the arguments split on must be a null set of the inputs once ``back``
        writes them there (:meth:`_kinks_null`)."""
        splits: set[Expr] = set()
        cases = branches(d, MAX_GENERAL_CASES, off_kinks, splits)
        if cases is None or (off_kinks and (back is None or not self._kinks_null(splits, back))):
            return None
        how = "exact"
        for e in cases:
            if B.is_zero(e):
                continue
            if not (self.domains.declared and self.domains.zero(e)):
                return None
            how = "domain"
        return how

    def general_check(self, base: str, check: GradientCheck, value: Callable[[dict[str, Any]], Any]) -> None:
        """An unproven ∂L/∂V proven as an identity in V's entries taken as independent values.

        V's truth is the derivative of the loss with V cut loose (its entries fresh symbols
        v); ``value(env)`` computes the claim again on the forward values with V = v (the
        values after V in terms of v).  The claim is a function c(v, x) with c(V(x), x) the
        claim as written, and the truth t(V(x), x) likewise; so c(v, x) = t(v, x) for every
        v proves c = t at v = V(x).  This is what makes max pooling after a layer provable:
        in v the ties of a window are v_i = v_j, which the proof by cases splits on, where
        in x they are polynomial equations it cannot.  Proven "off the kinks", the kink
        arguments must stay nonzero somewhere once v = V(x) (certified at the sample point):
        else the kinks could be all of x's space.  Never a refutation: a counterexample in v
        need not be one in x."""
        if check.verdict != Verdict.UNPROVEN or self._at is None:
            return
        for general in self._generalizations(base):
            if self._general_proof(check, general, value):
                return

    def _general_proof(self, check: GradientCheck,
                       general: tuple[dict[str, Any], np.ndarray, dict[Expr, Expr], str],
                       value: Callable[[dict[str, Any]], Any]) -> bool:
        assert self._at is not None
        env, true, back, via = general
        try:
            with symbolic_numpy():
                claimed = value(dict(env))
        except (FormulaError, NotRepresentable, ValueError, TypeError, IndexError, KeyError, ZeroDivisionError):
            return False
        claimed = B._objects(claimed if isinstance(claimed, np.ndarray) else to_exprs(claimed))
        if claimed.shape != true.shape:
            return False
        kinks = on_domain = 0
        try:
            for c, t in zip(claimed.reshape(-1), true.reshape(-1), strict=True):
                d = c - t
                if c == t or B.is_zero(d):
                    continue
                if self.domains.declared and self.domains.zero(d):
                    on_domain += 1
                    continue
                if not d.has(*PIECEWISE):
                    return False
                how = self._cases_zero(d, False)
                if how:
                    on_domain += how == "domain"
                    continue
                if not self._cases_zero(d, True, back):
                    return False
                kinks += 1
        except B.TooLarge:
            return False
        check.verdict = Verdict.PROVEN
        check.differing = []
        check.why = f"an identity in {via}'s entries taken as independent values"
        if kinks:
            check.why = f"{kinks} of {true.size} entries equal except where entries of a max tie or the argument " \
                        f"of a step is 0; {check.why}"
            check.almost_everywhere = True
        if on_domain:
            check.on_domain = self.domains.text()
            check.why += f", {on_domain} of them on the declared domain only ({check.on_domain})"
        return True

    # ------------------------------------------------------------ judging
    def judge(self, name: str, seed: int, points: int) -> GradientCheck:
        base = self.base_of(name)
        assert base is not None
        value = self.backward_env[name]
        check = GradientCheck(name=base, verdict=Verdict.UNPROVEN, entries=int(np.size(value)))
        if self._loop_proofs is None:  # one induction over a loop proves all its gradients together
            self._loop_proofs = {}
            B._bounded(None, induction.prove, self, self._loop_proofs, seconds=INDUCTION_SECONDS)
        if name in self._loop_proofs:
            check.verdict, check.why, check.differing = Verdict.PROVEN, self._loop_proofs[name], []
            self._proven[name] = check
            return check
        self.chained_check(base, name, check)  # cheap when it holds: no expansion of the loss
        if check.verdict == Verdict.UNPROVEN:  # from several dV at once (X feeding Q, K and V)
            paths.joint_chain(self, base, name, check)
        if check.verdict != Verdict.PROVEN:
            check = self._judge_values(base, value, seed, points, self._line(name))

            def again(env: dict[str, Any]) -> Any:  # the whole backward block on the generalized forward values
                env.update(self.ups)
                Interpreter(env).run(self.program.backward)
                return env[name]

            self.general_check(base, check, again)
        if check.verdict == Verdict.PROVEN:
            self._proven[name] = check
        return check

    def _line(self, name: str) -> tuple[str, P.Assign, dict[str, Any]] | None:
        """dV's one defining line (``dV = expr``, nothing after it) with the names before it."""
        statements = self.program.backward
        group = _group(statements, name)
        if len(group) != 1 or not isinstance(statements[group[0]], P.Assign):
            return None
        with symbolic_numpy():
            env = dict(self.forward_env)
            env.update(self.ups)
            interpreter = Interpreter(env)
            for s in statements[:group[0]]:
                interpreter.statement(s)
        line = statements[group[0]]
        assert isinstance(line, P.Assign)
        return name, line, env

    def _derivatives(self) -> list[str]:
        """g′ of every activation the forward block applies to a whole value: tanh_prime(Z1), ..."""
        out = []
        for s in self.program.forward:
            if isinstance(s, P.Assign) and len(s.targets) == 1 and isinstance(s.value, F.Call):
                f, args = s.value.func, s.value.args
                if f in ACTIVATIONS and ACTIVATIONS[f].prime is not None and len(args) == 1 and isinstance(
                        args[0], F.Name):
                    out.append(f"{f}_prime({args[0].id})")
                elif f == "relu" and len(args) == 1:
                    out.append(f"relu_prime({F.unparse(args[0])})")
        return out

    def _repair(self, line: tuple[str, P.Assign, dict[str, Any]], true: np.ndarray) -> Diagnosis | None:
        """The smallest proven structural change to dV's line (see derive.diagnose.syntactic)."""
        name, statement, env = line
        scalars = tuple(n for n, v in {**self.leaves, **self.forward_env}.items()
                        if n not in self.program.parameters and (
                            (isinstance(v, SymArray) and v.shape == ()) or (isinstance(v, int) and v > 1)))
        decay = self._missing_decay(line, true)
        if decay is not None:
            return decay
        candidates = structural_edits(statement.value, self._derivatives(), scalars) + self._renamings(statement, env)
        for candidate, code, message in candidates[:MAX_REPAIRS]:
            try:
                with symbolic_numpy():
                    value = Interpreter(env if isinstance(env, _Env) else dict(env)).value(candidate, statement.text)
            except (FormulaError, NotRepresentable, ValueError, TypeError, IndexError):
                continue
            value = value if isinstance(value, np.ndarray) else to_exprs(value)
            if value.shape == true.shape and self._same(value.view(np.ndarray), true):
                return Diagnosis(code, message)
        return None

    def _renamings(self, statement: P.Assign, env: Any) -> list[tuple[F.Node, DiagnosisCode, str]]:
        """One name of the line replaced by another value of the same shape (K where Q belongs)."""
        from derive.diagnose.syntactic import substitute

        values = {n: v for n, v in {**self.leaves, **self.forward_env}.items()
                  if isinstance(v, np.ndarray) and v.ndim >= 1}
        out = []
        for n in sorted(F.names(statement.value)):
            if n not in values or n in self.ups:
                continue
            for o, v in values.items():
                if o != n and v.shape == values[n].shape:
                    out.append((substitute(statement.value, {n: o}), DiagnosisCode.WRONG_NAME,
                                f"true if {n} → {o} (a wrong name)"))
        return out

    def _same(self, a: np.ndarray, b: np.ndarray) -> bool:
        """a = b entry by entry: as written, on the declared domains, or by cases at the kinks
        (off the kinks: a set of measure zero, as the gradients' own proofs allow)."""
        a, b = B._objects(a), B._objects(b)  # a 0-d array times a number is a bare expression
        at = self._at
        if at is not None:  # a certified difference at a sample point ends it before any proof
            for x, y in zip(a.reshape(-1), b.reshape(-1), strict=True):
                if at.nonzero(x - y) is True:
                    return False
        for x, y in zip(a.reshape(-1), b.reshape(-1), strict=True):
            d = x - y
            try:
                if B.is_zero(d) or (self.domains.declared and self.domains.zero(d)):
                    continue
                if d.has(*PIECEWISE) and (B._zero_by_cases(d) or B._zero_off_kinks(d)):
                    continue
            except B.TooLarge:
                return False
            return False
        return True

    def _missing_decay(self, line: tuple[str, P.Assign, dict[str, Any]], true: np.ndarray) -> Diagnosis | None:
        """true − claimed = s·P for a parameter P and a scalar s: the weight decay's term left out."""
        name, statement, env = line
        try:
            with symbolic_numpy():
                value = Interpreter(env if isinstance(env, _Env) else dict(env)).value(statement.value, statement.text)
        except (FormulaError, NotRepresentable, ValueError, TypeError, IndexError):
            return None
        value = value if isinstance(value, np.ndarray) else to_exprs(value)
        if value.shape != true.shape:
            return None
        for p in self.program.parameters:
            param = self.leaves.get(p)
            if not isinstance(param, SymArray) or param.shape != true.shape:
                continue
            for s, leaf in self.leaves.items():
                if isinstance(leaf, SymArray) and leaf.shape == () and s not in self.program.parameters:
                    scale = leaf.view(np.ndarray)[()]
                    if self._same(value.view(np.ndarray) + param.view(np.ndarray) * scale, true):
                        return Diagnosis(DiagnosisCode.MISSING_FACTOR, f"the regularisation term {s} * {p} is "
                                         f"missing: true with + {s} * {p}")
        return None

    def _judge_values(self, base: str, claimed: Any, seed: int, points: int,
                      line: tuple[str, P.Assign, dict[str, Any]] | None = None,
                      local: bool = False) -> GradientCheck:
        if not isinstance(claimed, np.ndarray):
            claimed = to_exprs(claimed)
        true = self.truth(base)
        arrays = [a for a in self.leaves.values() if isinstance(a, SymArray)]
        names = [n for n, a in self.leaves.items() if isinstance(a, SymArray)]
        ups = list(self.ups.values())
        pts = self._points(seed, points, arrays, ups)
        self._at = B._At(pts[0]) if pts else None
        self._ats = [B._At(p) for p in pts]
        up_name = next(iter(self.ups)) if len(self.ups) == 1 else "d_out"
        check = B._judge(base, claimed, true, pts, names, arrays, list(ups), up_name, self.domains)
        check.name = base
        ce = check.counterexample
        if ce is not None and len(self.ups) > 1:  # the upstream gradients by their own names
            for k, up in enumerate(self.ups):
                if f"{up_name}{k}" in ce.arrays:
                    ce.arrays[up] = ce.arrays.pop(f"{up_name}{k}")
        found: Diagnosis | None = None
        if check.verdict == REFUTED and not check.diagnosis:
            found = B._bounded(None, self._domain_hint, claimed, true)
        if check.verdict == REFUTED and not check.diagnosis and found is None and line is not None and not local:
            found = B._bounded(None, self._repair, line, true, seconds=REPAIR_SECONDS)
        if check.verdict == REFUTED and not check.diagnosis and found is None:  # a forgotten path, a kernel flip
            adjoints = None if line is None else self._adjoints(line, local)
            found = B._bounded(None, paths.diagnose, self, base, claimed, true, line, adjoints, seconds=PATH_SECONDS)
        if found is not None:
            check.finding, check.diagnosis = found, found.message
        return check

    def _adjoints(self, line: tuple[str, P.Assign, Any], local: bool) -> dict[str, str]:
        """The gradient names dV the line reads whose values there are the true ∂L/∂V
        (name → V): a claim's (the truth by definition), a local line's (replaced by the
        truth just before it), or a block line's proven dV assigned nowhere from the line on
        (its value there is its final one, the one proven)."""
        name, statement, env = line
        later: set[str] = set()
        if not local and not isinstance(env, _Env):
            group = _group(self.program.backward, name)
            later = set(P.assigned(self.program.backward[group[0]:])) if group else set(self.targets)
        out = {}
        for n in F.names(statement.value):
            v = self.base_of(n)
            if v is None or n == name or n in self.forward_env or n in self.leaves or n in self.ups:
                continue
            if isinstance(env, _Env):
                if not dict.__contains__(env, n):  # a claim's dV is the truth itself
                    out[n] = v
            elif local:
                if n in self.targets:
                    out[n] = v
            elif n in self._proven and n not in later:
                out[n] = v
        return out

    def judge_local(self, name: str, seed: int, points: int) -> GradientCheck:
        """dV from its own lines (from its last whole assignment on), every other gradient
        the block computes replaced by its true value first."""
        base = self.base_of(name)
        assert base is not None
        statements = self.program.backward
        group = _group(statements, name)
        if not group:
            return GradientCheck(name=base, verdict=Verdict.UNPROVEN, why="assigned in a loop: not judged locally")
        line = None
        with symbolic_numpy():
            env = dict(self.forward_env)
            env.update(self.ups)
            interpreter = Interpreter(env)
            for k, s in enumerate(statements):
                if k > group[-1]:
                    break
                if k == group[0]:
                    for other in self.targets:
                        if other != name:
                            b = self.base_of(other)
                            env[other] = to_exprs(self.truth(b or other))
                    if len(group) == 1 and isinstance(s, P.Assign):  # one line: the names before it
                        line = (name, s, dict(env))
                interpreter.statement(s)
            value = env[name]
        return self._judge_values(base, value, seed, points, line, local=True)

    def claim(self, c: Claim, seed: int, points: int) -> GradientCheck:
        base = self.base_of(c.target)
        if base is None:
            raise BlockError(c.text, None, f"{c.target}: a claim's target is d + the name of an input, a parameter "
                                           "or a forward value")
        env = _Env(self)
        try:
            with symbolic_numpy():
                claimed = Interpreter(env).value(c.formula, c.text)
        except ShapeMismatch as exc:  # the formula as written is not the gradient: refuted (shapes)
            return GradientCheck(name=base, verdict=Verdict.REFUTED, entries=int(np.size(self.truth(base))),
                                 why=f"shape error: {exc}")
        except FormulaError as exc:  # bad input: the claim's place, not the network's
            if getattr(exc, "place", None) is None:
                exc.place = c.place  # type: ignore[attr-defined]
            raise
        line = (c.target, P.Assign((F.Name(c.target, 0),), c.formula, 0, c.text), env)
        check = GradientCheck(name=base, verdict=Verdict.UNPROVEN, entries=int(np.size(claimed)))
        if not self._differs(claimed, self.truth(base), self._at):  # a wrong claim never pays for a chain
            self.chained_check(base, c.target, check, (c.formula, c.text))  # cheap when it holds
            if check.verdict == Verdict.UNPROVEN:  # from several dV it names at once (dX from dQ, dK, dV)
                paths.joint_chain(self, base, c.target, check, (c.formula, c.text))
        if check.verdict == Verdict.PROVEN:
            return check
        check = self._judge_values(base, claimed, seed, points, line)

        def again(env: dict[str, Any]) -> Any:  # a claim naming a gradient (a truth in x, not v) stops here
            env.update(self.ups)
            return Interpreter(env).value(c.formula, c.text)

        self.general_check(base, check, again)
        return check

    @staticmethod
    def _differs(claimed: Any, true: np.ndarray, at: B._At | None) -> bool:
        """Some entry of claimed − true without a kink (no relu, max or step in it) certified
        nonzero at the sample point ``at``: no identity, exact or on the declared domains
        (the point lies in them), can hold, so no proof need be tried."""
        if at is None:
            return False
        claimed = B._objects(claimed if isinstance(claimed, np.ndarray) else to_exprs(claimed))
        if claimed.shape != true.shape:
            return False
        for c, t in zip(claimed.reshape(-1), true.reshape(-1), strict=True):
            d = sympy.sympify(c - t)
            if not graph.has(d, PIECEWISE) and at.nonzero(d) is True:
                return True
        return False

    def _points(self, seed: int, n: int, arrays: list[SymArray], ups: list[SymArray]) -> list[dict[Expr, Any]]:
        rng = random.Random(seed)
        pts = B._points(rng, arrays, list(ups), n)
        symbols_of = {k: v for k, v in self.leaves.items() if isinstance(v, SymArray)}
        for values in pts:
            self.domains.sample(rng, values, symbols_of)
        return pts

    def _domain_hint(self, claimed: np.ndarray, true: np.ndarray) -> Diagnosis | None:
        """"true if Y is one-hot": the claim holds on a domain nobody declared (proven)."""
        if claimed.shape != true.shape:
            return None
        for name, arr in self.leaves.items():
            if not isinstance(arr, SymArray) or name in self.program.parameters or name in self.domains.kinds:
                continue
            kinds = ["one_hot", "one_hot_columns", "binary"] if arr.ndim == 2 else ["binary"] if arr.ndim else []
            for kind in kinds:
                trial = Domains({name: kind}, {name: arr})
                if self._at is not None:  # the hint's domain holds at a point of it, or it is no hint
                    values = dict(self._at.values)
                    trial.sample(random.Random(len(values)), values, {name: arr})
                    if self._differs(claimed, true, B._At(values)):
                        continue
                plain_c, plain_t = claimed.view(np.ndarray), true
                if all(B.is_zero(c - t) or trial.zero(c - t) for c, t in
                       zip(plain_c.reshape(-1), plain_t.reshape(-1), strict=True)):
                    words = {"one_hot": "one-hot (each row)", "one_hot_columns": "one-hot (each column)",
                             "binary": "a 0/1 mask"}[kind]
                    return Diagnosis(DiagnosisCode.DOMAIN, f"true if {name} is {words}: declare it (domains: "
                                                          f"{{{name}: {kind}}}) and it is proven on that domain")
        return None


class _Env(dict):
    """The forward values and upstream gradients, and dV as the true ∂L/∂V on demand."""

    def __init__(self, run: _Run) -> None:
        super().__init__(run.forward_env)
        self.update(run.ups)
        self.run = run

    def _gradient(self, key: object) -> str | None:
        if not isinstance(key, str) or dict.__contains__(self, key):
            return None
        return self.run.base_of(key)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self._gradient(key) is not None

    def __getitem__(self, key: str) -> Any:
        base = self._gradient(key)
        if base is not None:
            return to_exprs(self.run.truth(base))
        return dict.__getitem__(self, key)


def _claim_check(g: GradientCheck, c: Claim) -> Check:
    check = _record(g, c.target, c.text, c.place)
    return Check(**{**check.__dict__, "expect": c.expect})


MAX_REPAIRS = 200  # candidate repairs of one line (each screened at a sample point first)
REPAIR_SECONDS = 20.0  # the search for a block line's fix: each candidate is a proof on the domains
PATH_SECONDS = 20.0  # the search for a forgotten path (derive.code.paths): each a derivative and a proof
MAX_THROUGH = 2  # later forward values tried for a gradient's generalized proof (each a forward pass)
MAX_GENERAL_CASES = 256  # sign cases of a generalized proof (entries of a window: their pairwise orders)
CONVENTION_SECONDS = 10.0  # the search for a consistent factor (the per-example convention)
INDUCTION_SECONDS = 60.0  # the proof by induction over a loop's iterations (derive.code.induction)


@contextlib.contextmanager
def _block(place: str) -> Iterator[None]:
    """Errors while running a block name the block (``backward line 3: ...``)."""
    try:
        yield
    except BlockError as exc:
        if getattr(exc, "place", None) is None:
            exc.place = place  # type: ignore[attr-defined]
        raise


def true_entry(program: Program, target: str, width: int = 300) -> str:
    """``dV[0,0] = <the true ∂L/∂V's first entry>``, for messages (shortened past ``width``)."""
    run = _Run(Program(program.forward, (), program.shapes, program.parameters, program.upstream, program.loss,
                       program.domains))
    run.forward_and_backward()
    base = run.base_of(target)
    if base is None:
        return f"{target} (not the gradient of a value here)"
    return _entry_text(target, run.truth(base), width)


def _entry_text(target: str, true: np.ndarray, width: int = 300) -> str:
    first = true.reshape(-1)[0] if true.size else sympy.Integer(0)
    text = str(first)
    index = ",".join("0" for _ in true.shape)
    text = text if len(text) <= width else text[:width] + " …"
    return f"{target}[{index}] = {text}" if true.shape else f"{target} = {text}"


def _group(statements: tuple[P.Statement, ...], name: str) -> list[int]:
    """The top-level statements that make ``name``'s final value, from its last whole
    assignment on (empty when a loop assigns it)."""
    out: list[int] = []
    for k, s in enumerate(statements):
        if name not in P.assigned((s,)):
            continue
        if isinstance(s, P.For):
            return []
        if isinstance(s, P.Assign) and any(isinstance(t, F.Name) and t.id == name for t in s.targets):
            out = [k]
        else:
            out.append(k)
    return out


def _conventions(run: _Run, result: BlockResult) -> dict[str, tuple[Any, list[str]]]:
    """Gradients off by a constant factor k that every later line using them undoes: the
    course's per-example dZ = A − Y with the 1/m applied in dW.  A user that is itself off
    by the same k (dZ1 from the per-example dZ2) is consistent too.  name → (k, users)."""
    statements = run.program.backward
    factors: dict[str, Any] = {}
    for name, g in result.gradients.items():
        if g.verdict != REFUTED or g.counterexample is None or not _group(statements, name):
            continue
        k = B._ratio(g.counterexample.claimed, g.counterexample.true)
        if k is None or k in (0, 1):
            continue
        claimed = run.backward_env[name]
        true = run.truth(g.name)
        if B._all_zero(claimed if isinstance(claimed, np.ndarray) else to_exprs(claimed),
                       true * sympy.Rational(k.numerator, k.denominator)):
            factors[name] = k

    def users(name: str) -> list[str]:
        group = _group(statements, name)
        return [o for o in run.targets if o != name and _group(statements, o) and _group(statements, o)[0] > group[-1]
                and name in P.used(tuple(statements[j] for j in _group(statements, o)))]

    accepted = dict(factors)
    changed = True
    while changed:  # drop a factor whose users are neither right nor off by the same factor
        changed = False
        for name, k in list(accepted.items()):
            us = users(name)
            if not us or not all(result.gradients[u].verdict == PROVEN or accepted.get(u) == k for u in us):
                del accepted[name]
                changed = True
    return {name: (k, users(name)) for name, k in accepted.items()}


def _chain_notes(run: _Run, result: BlockResult, conventions: dict[str, Any]) -> list[str]:
    notes: list[str] = []
    wrong_local = [n for n in run.targets if n in result.local and result.local[n].verdict == REFUTED
                   and n not in conventions and not any(n in users for _, users in conventions.values())]
    if wrong_local:
        first = wrong_local[0]
        place = run.program.places.get(first, "")
        notes.append(f"first line wrong on its own (given the true gradients it uses): {first}"
                     + (f" ({place})" if place else ""))
    chain_wrong = [n for n, g in result.gradients.items() if g.verdict == REFUTED and n not in conventions]
    if result.local and chain_wrong:
        notes.append(f"wrong in your chain: {', '.join(chain_wrong)}")
    if conventions:
        names = ", ".join(conventions)
        k = next(iter(conventions.values()))[0]
        notes.append(f"right under the per-example convention for {names}: they are {k}·∂L/∂V, and the lines "
                     f"that use them apply the 1/{k}")
    return notes


def _base_of(name: str, values: set[str], upstream: set[str]) -> str | None:
    """The V of a gradient name dV (``dx_hat`` → ``x_hat``, ``d_x`` → ``x``), or None."""
    if not name.startswith("d") or name in upstream or name in values:
        return None
    for base in (name[1:], name[2:] if name.startswith("d_") else None):
        if base and base in values and base not in upstream:
            return base
    return None


# ------------------------------------------------------------------ records
#: the codes of derive.code.backward's diagnoses (its messages are shared with gradcheck);
#: the block's own finders return their Diagnosis with its code
_CODES = (
    ("transposed", DiagnosisCode.TRANSPOSE), ("opposite sign", DiagnosisCode.OPPOSITE_SIGN),
    ("off by a constant factor", DiagnosisCode.CONSTANT_FACTOR), ("zero:", DiagnosisCode.CONSTANT_FACTOR),
    ("it is the gradient of", DiagnosisCode.WRONG_NAME),
)


def _diagnosis(g: GradientCheck) -> Diagnosis | None:
    if g.finding is not None or not g.diagnosis:
        return g.finding
    for key, code in _CODES:
        if key in g.diagnosis:
            return Diagnosis(code, g.diagnosis)
    return Diagnosis(DiagnosisCode.CONDITION, g.diagnosis)


def to_check(g: GradientCheck, program: Program, run: _Run) -> Check:
    """A block gradient as the report's record (a claim: ``dV = <its line>``)."""
    target = next((n for n in run.targets if run.base_of(n) == g.name), f"d{g.name}")
    return _record(g, target, _last_line(program.backward, target), program.places.get(target))


def _record(g: GradientCheck, target: str, formula: str, place: str | None) -> Check:
    ce = None
    method = Method.NEITHER
    detail: str | None = g.why
    if g.verdict == PROVEN:
        method = Method.EXACT_ALMOST_EVERYWHERE if g.almost_everywhere else Method.EXACT
        detail = g.why if (g.almost_everywhere or g.on_domain) else None
    elif g.verdict == REFUTED and g.counterexample is not None:
        c = g.counterexample
        method = Method.COUNTEREXAMPLE_EXACT if c.exact else Method.COUNTEREXAMPLE_INTERVAL
        idx = tuple(c.index)
        entry = (0, 0) if not idx else (0, idx[0]) if len(idx) == 1 else (idx[0], idx[1]) if len(idx) == 2 else (
            idx[0], idx[1])
        ce = Counterexample({k: array_text(v) for k, v in c.arrays.items()}, entry, value_text(c.claimed),
                            value_text(c.true), c.exact)
        detail = f"entry {c.entry}" if len(idx) > 2 else None
    elif g.verdict == REFUTED:
        method = Method.SHAPES
    elif "timeout" in g.why:
        method = Method.TIMEOUT
    elif "(limit)" in g.why:
        method = Method.LIMIT
    return Check("claim", target, formula, g.verdict, method, g.entries, g.seconds, finding=_diagnosis(g),
                 counterexample=ce, detail=detail, place=place,
                 basis=(f"on the declared domain ({g.on_domain})" if g.on_domain else None))


def _last_line(statements: tuple[P.Statement, ...], name: str) -> str:
    """What the block assigns to ``name``, as written: its lines joined by '; ' from the last
    whole assignment on (``probs.copy(); dx[np.arange(N), y] -= 1; dx /= N``)."""
    lines: list[str] = []
    for s in statements:
        if name not in P.assigned((s,)):
            continue
        if isinstance(s, P.For):
            lines.append(f"for {s.var} in range(...): ...")
        elif isinstance(s, P.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], F.Name):
            lines = [s.text.split("=", 1)[1].strip()]
        else:
            lines.append(s.text)
    return "; ".join(lines) or name


_ = (Verdict, UNPROVEN)
