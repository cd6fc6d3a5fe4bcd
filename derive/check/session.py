"""The Python face: load a spec, check its rules and claims, get a report.

>>> import derive
>>> d = derive.load("derivations/two_layer_classifier.yaml")   # doctest: +SKIP
>>> d.check_claim("dW2", "dZ2 @ A1.T").verdict                   # doctest: +SKIP
<Verdict.PROVEN: 'proven'>
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from derive.check import claims
from derive.check.runner import DEFAULT_TIMEOUT, DEFAULT_TIMEOUT_RUN, Progress, Runner, auto_jobs
from derive.errors import DeriveError, FormulaError, SpecError
from derive.lang import formula as F
from derive.model import evaluate
from derive.model.build import build
from derive.model.evaluate import Evaluator
from derive.model.network import Network
from derive.model.truth import Truth, make_truth
from derive.prove.judge import Judge
from derive.records import PROVEN, REFUTED, UNPROVEN, Check, Method, Report, RuleKind, show
from derive.rules.identities import ALL_SIZES, IdentityResult
from derive.rules.identities import kron_x_delta as _kron_x_delta
from derive.rules.identities import vec_abc as _vec_abc
from derive.rules.layer_rules import (
    LAYER_RULES,
    Rule,
    RuleConstructionError,
    add,
    loss_rules,
    matmul,
    name,
    rules_for,
    with_decay,
)
from derive.rules.layer_rules import T as _transpose
from derive.spec import ClaimSpec, Limits, ProgramSpec, Spec, load_spec, parse_spec
from derive.util import budget

if TYPE_CHECKING:  # (imported when needed: NumPy and the NumPy-code interpreter, the LaTeX grammar)
    from derive.check.blocks import BlockDerivation

STRATEGIES = ("auto", "global", "local")
ABC_EXPLICIT_LIMIT = 2_500  # products in W_lᵀ dZ_l A_{l-1}ᵀ checked entry by entry; above: by the theorem


@functools.lru_cache(maxsize=1)
def general_vec_abc() -> IdentityResult:
    return _vec_abc()


@functools.lru_cache(maxsize=1)
def general_kron_x_delta() -> IdentityResult:
    return _kron_x_delta()


class Derivation:
    """A loaded network with its truth engine; checks rules and claims."""

    def __init__(self, spec: Spec, strategy: str = "auto") -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.spec = spec
        self.strategy = strategy
        self.runner = Runner(None, None)  # report() sets the budget of its run
        self.net: Network = build(spec)
        self._validate_claims()

    def _validate_claims(self) -> None:
        """Unknown names, functions or targets in the spec's claims are bad input (exit 2).

        LaTeX claims are read into the formula language here (they need the network's
        shapes to tell a matrix product from a plain one).
        """
        names = Evaluator(self.net, None)
        self.claims: list[ClaimSpec] = list(self.spec.claims)
        loss = self.spec.equations.loss if self.spec.equations is not None else "L"
        if self.spec.claims_latex:
            from derive.lang.latex_reader import parse_latex_tree  # (its grammar loads only when used)
        for c in self.spec.claims_latex:
            try:
                target_node, formula_node = parse_latex_tree(c.latex or "", self._shape_of, loss)
            except FormulaError as exc:
                raise SpecError(self.spec.file, c.place, str(exc)) from None
            self.claims.append(ClaimSpec(F.unparse(target_node), F.unparse(formula_node), c.place, c.expect,
                                         c.latex, node=formula_node))
        for c in self.claims:
            try:
                tree = F.parse(c.target)
                names.check_gradient_target(tree, c.target)
                names.validate(tree, c.target)
                names.validate(F.parse(c.formula), c.formula)
            except FormulaError as exc:
                raise SpecError(self.spec.file, c.place, str(exc)) from None

    @cached_property
    def truth(self) -> Truth:
        return make_truth(self.net, self.strategy)

    @cached_property
    def evaluator(self) -> Evaluator:
        return Evaluator(self.net, self.truth)

    @cached_property
    def judge(self) -> Judge:
        return Judge(self.net, self.truth)

    def _repr_html_(self) -> str:  # Jupyter: the network, its forward pass and its claims (not checked)
        return show("derivation html", self)  # the view derive.render.html installs

    def _repr_latex_(self) -> str:
        return show("derivation latex", self)

    def rules(self) -> list[Rule]:
        """The closed-form rules of this network (not yet checked)."""
        return list(self._rules)

    @cached_property
    def _rules(self) -> tuple[Rule, ...]:
        return tuple(rules_for(self.net))  # equation networks derive them: do it once

    def _shape_of(self, name: str) -> tuple[int, int] | None:
        m = self.net.matrices.get(name)  # a value wins over a gradient spelling (an input named dx)
        if m is None and name.startswith("d"):
            m = self.net.matrices.get(name[1:])
        return None if m is None else (int(m.shape[0]), int(m.shape[1]))

    def check_latex_claim(self, latex: str, timeout: float | None = DEFAULT_TIMEOUT) -> Check:
        """Check a claim written in LaTeX, e.g. ``\\frac{\\partial L}{\\partial w_4} = ...``,
        within ``timeout`` seconds (None: no limit)."""
        from derive.lang.latex_reader import parse_latex_tree

        loss = self.spec.equations.loss if self.spec.equations is not None else "L"
        with _budgeted(timeout, ClaimSpec("", latex, "", latex=latex)) as result:
            target, formula = parse_latex_tree(latex, self._shape_of, loss)
            result.append(claims.check(self.evaluator, self.judge, F.unparse(target), F.unparse(formula),
                                       latex=latex, formula_node=formula))
        return result[0]

    def check_rule(self, rule: Rule) -> Check:
        """Check one rule.  derive's own rules (built as trees) are checked as built; a
        failure to evaluate one, or a shape error in one, is a bug in derive
        (:class:`~derive.rules.layer_rules.RuleConstructionError`, exit 3), and a resource limit met
        on the way is *unproven (limit)*, never a refutation."""
        explicit = min(ABC_EXPLICIT_LIMIT, evaluate.MAX_ENTRIES)
        if rule.rule == RuleKind.VEC_ABC and self._abc_products(rule.layer) > explicit:
            return self._abc_instance(rule)  # (the products are also the entries of its kron)
        if rule.rule in (RuleKind.VEC_Z, RuleKind.VEC_DW) and self._kron_entries(rule.layer) > evaluate.MAX_ENTRIES:
            return self._vec_instance(rule)
        if rule.node is None:  # a rule written as text by a caller: checked like a claim
            return claims.check(self.evaluator, self.judge, rule.target, rule.formula, kind="rule",
                                layer=rule.layer, rule=rule.rule)
        return self._check_own(rule.target, rule.node, rule.layer, rule.rule)

    def _check_own(self, target: str, node: F.Node, layer: int, kind: str) -> Check:
        """One of derive's own statements, checked as the tree it was built as."""
        formula = F.unparse(node)
        try:
            check = claims.check(self.evaluator, self.judge, target, formula, kind="rule",
                                 layer=layer, rule=kind, formula_node=node)
        except DeriveError as exc:
            raise RuleConstructionError(
                f"derive's own rule {target} = {formula} could not be evaluated: {exc}") from exc
        if check.verdict == REFUTED and check.method == Method.SHAPES:
            raise RuleConstructionError(f"derive's own rule {target} = {formula} has a shape error: {check.detail}")
        return check

    def _kron_entries(self, layer: int) -> int:
        """Entries of the Kronecker factor A_{l-1}ᵀ ⊗ I_{n_l} of the vec(Z) and vec(dW) rules."""
        s = self.spec.sizes
        return s[layer - 1] * self.spec.batch * s[layer] ** 2

    def _vec_instance(self, rule: Rule) -> Check:
        """vec(Z_l), vec(dW_l) whose Kronecker factor is over the evaluator's size limit:
        instances of identities proven for all sizes, with A = I in vec(ABC) = (Cᵀ ⊗ A) vec(B):

            vec(Z_l) = vec(I W_l A_{l-1}) + vec(b_l 1ᵀ) = (A_{l-1}ᵀ ⊗ I) vec(W_l) + (1 ⊗ I) b_l
            vec(dW_l) = vec(I dZ_l A_{l-1}ᵀ) = (A_{l-1} ⊗ I) vec(dZ_l)   (+ λ vec(W_l) with a weight decay λ)

        ((1 ⊗ I) b = 1 ⊗ b for a column b; row batches: the same for Zᵀ and dZᵀ).  The
        matrix statement they rest on (Z_l = W_l A_{l-1} + b_l, dW_l = dZ_l A_{l-1}ᵀ) is
        checked entry by entry at this network; without it the verdict is unproven (limit).
        """
        start = time.perf_counter()
        l, rows = rule.layer, self.spec.batch_layout == "rows"
        a, w, b = name("X" if l == 1 else f"A{l - 1}"), name(f"W{l}"), name(f"b{l}")
        dz = name(f"dZ{l}")
        identities = [general_vec_abc()]
        if rule.rule == RuleKind.VEC_Z:
            identities.append(general_kron_x_delta())
            target = f"Z{l}"
            plain = add(matmul(a, _transpose(w)), _transpose(b)) if rows else add(matmul(w, a), b)
        else:
            target = f"dW{l}"
            plain = matmul(_transpose(dz), a) if rows else matmul(dz, _transpose(a))
            plain = with_decay(self.spec, plain, w)  # + λ W_l: vec is linear, vec(λ W) = λ vec(W)
        entries = self._kron_entries(l)
        limit = (f"the Kronecker factor has {entries} entries, more than the limit of {evaluate.MAX_ENTRIES} "
                 "(derive.model.evaluate.MAX_ENTRIES): not expanded")
        base = self._check_own(target, plain, l, rule.rule)
        size = len(self.net.matrices[target[1:] if target.startswith("d") else target])
        general = all(g.verdict == ALL_SIZES for g in identities)
        seconds = time.perf_counter() - start
        if general and base.verdict == PROVEN:
            used = " and ".join(g.statement for g in identities)
            return Check("rule", rule.target, rule.formula, PROVEN, Method.INSTANCE, size, seconds,
                         layer=l, rule=rule.rule, detail=limit,
                         basis=f"{used} with A = I, {ALL_SIZES} (derive identities); "
                               f"{base.statement} proven entry by entry")
        why = (f"{base.statement} is {base.verdict} ({base.method})" if base.verdict != PROVEN
               else "an identity is not proven")
        return Check("rule", rule.target, rule.formula, UNPROVEN, Method.LIMIT, size, seconds,
                     layer=l, rule=rule.rule, detail=f"{limit}; {why}")

    def _abc_products(self, layer: int) -> int:
        s = self.spec.sizes
        return s[layer - 1] * s[layer] * self.spec.batch * s[layer - 1]

    def _abc_instance(self, rule: Rule) -> Check:
        """Large layers: vec(ABC) at these shapes is an instance of the all-sizes theorem."""
        start = time.perf_counter()
        general = general_vec_abc()
        s = self.spec.sizes
        entries = s[rule.layer - 1] ** 2  # W_lᵀ dZ_l A_{l-1}ᵀ is n_{l-1}×n_{l-1}
        verdict = PROVEN if general.verdict == ALL_SIZES else UNPROVEN
        return Check("rule", rule.target, rule.formula, verdict, Method.INSTANCE,
                     entries, time.perf_counter() - start, layer=rule.layer, rule=rule.rule,
                     basis=f"{general.statement}, {general.verdict} (derive identities)")

    def check_spec_claim(self, claim: ClaimSpec) -> Check:
        try:
            return claims.check(self.evaluator, self.judge, claim.target, claim.formula,
                                place=claim.place, expect=claim.expect, latex=claim.latex, formula_node=claim.node)
        except FormulaError as exc:
            raise SpecError(self.spec.file, claim.place, str(exc)) from None

    def check_claim(self, target: str, formula: str, timeout: float | None = DEFAULT_TIMEOUT) -> Check:
        """Check ``target = formula``; the result's ``verdict`` is proven/refuted/unproven.
        ``timeout`` seconds (None: no limit) bound the check: past them, or out of memory,
        the verdict is unproven (timeout / limit)."""
        with _budgeted(timeout, ClaimSpec(target, formula, "")) as result:
            result.append(claims.check(self.evaluator, self.judge, target, formula))
        return result[0]

    def check_rules(self, progress: Progress | None = None, jobs: int = 1) -> list[Check]:
        return self.runner.run(self, list(self._rules), progress, jobs)

    def check_claims(self, progress: Progress | None = None, jobs: int = 1) -> list[Check]:
        return self.runner.run(self, list(self.claims), progress, jobs)

    def count_checks(self, rules: bool = True) -> int:
        return (len(self._rules) if rules else 0) + len(self.claims)

    def auto_jobs(self) -> int:
        """Worker processes that pay: two for large networks on a machine with two cores."""
        return auto_jobs(self.net.parameter_count)

    def cost(self, task: Rule | ClaimSpec) -> float:
        """A rough estimate of an item's work (scalar products its formula multiplies out),
        for scheduling only: workers take the longest items first.  Never a verdict."""
        try:
            node = task.node if task.node is not None else F.parse(task.formula)
            shape, _, work = _work(node, self._shape_of, self._number)
            if isinstance(task, Rule) and task.rule == RuleKind.VEC_ABC and \
                    self._abc_products(task.layer) > min(ABC_EXPLICIT_LIMIT, evaluate.MAX_ENTRIES):
                return 1.0  # an instance of the all-sizes theorem: nothing is multiplied out
            return float(work + shape[0] * shape[1]) * (1.0 if isinstance(task, Rule) else 2.0)
        except Exception:  # (an estimate: a formula it cannot size goes last, and is checked all the same)
            return 0.0

    @cached_property
    def _constants(self) -> dict[str, Any]:
        return Evaluator(self.net, None).constants  # (m, n1, n2, ... and the spec's own)

    def _number(self, name: str) -> int | None:
        value = self._constants.get(name)
        return int(value) if value is not None and getattr(value, "is_Integer", False) else None

    def prepare_workers(self) -> None:
        """What forked workers should inherit rather than each build: the sample points."""
        self.judge.sample_points()

    @property
    def assumptions(self) -> list[str]:
        """What every verdict assumes: the network's own assumptions, and free constants
        taken positive (they are scales, slopes, eps: sampled positive, and a claim that
        divides by one is defined only where it is nonzero)."""
        out = list(self.net.assumptions)
        if self.spec.equations is None and self.spec.batch == 1:
            out.append("a batch of m = 1, where a missing or extra factor 1/m cannot be seen "
                       "(give batch: 2 or more to check factors of m)")
        constants = self.net.free_constants
        if constants:
            names = ", ".join(str(c) for c in constants)
            out.append(f"the free constants {names} are taken to be positive (every verdict holds for {names} > 0)")
        return out

    def _truth_method(self) -> str:
        """The truth engine's method, without building it again when its build ran out of time."""
        truth = self.__dict__.get("truth")
        return truth.method if truth is not None else "not built (the run's time budget ran out)"

    def report(self, rules: bool = True, progress: Progress | None = None, jobs: int | None = None,
               timeout: float | None = DEFAULT_TIMEOUT, timeout_run: float | None = DEFAULT_TIMEOUT_RUN) -> Report:
        """Check every rule (unless ``rules=False``) and every claim of the spec.

        ``jobs`` worker processes (default: :meth:`auto_jobs`) share the work; the order of
        the results does not depend on it.  ``timeout`` caps each check and
        ``timeout_run`` the whole run (seconds; None: no cap): an item that runs out is
        *unproven (timeout)* and the run goes on with the rest.
        """
        start = time.perf_counter()
        jobs = self.auto_jobs() if jobs is None else jobs
        self.runner = Runner(timeout, timeout_run).start()
        try:
            with budget.limit(timeout_run):
                _ = self.truth  # build it before any worker forks: they inherit it
        except (budget.Timeout, MemoryError):
            pass  # every check below then times out at once, and says so
        tasks: list[Rule | ClaimSpec] = [*(self._rules if rules else ()), *self.claims]
        checked = self.runner.run(self, tasks, progress, jobs)  # (one pool of workers for both)
        n_rules = len(self._rules) if rules else 0
        checked_rules, checked_claims = checked[:n_rules], checked[n_rules:]
        spec = self.spec
        if spec.equations is not None:
            conventions = {"equations": len(spec.equations.equations), "loss": spec.equations.loss,
                           "parameter_names": list(spec.equations.parameters)}
        else:
            conventions = {
                "activations": [layer.activation for layer in spec.layers],
                "loss": spec.loss.kind, "scale": str(spec.loss.scale),
                **{key: str(value) for key, value in spec.loss.params},  # huber: delta
                "average": spec.average, "batch_layout": spec.batch_layout,
            }
            if spec.weight_decay != 0:
                conventions["weight_decay"] = str(spec.weight_decay)
        return Report(
            spec.file, spec.name, spec.sizes, spec.batch, self.net.parameter_count, self._truth_method(),
            self.assumptions, checked_rules, checked_claims,
            time.perf_counter() - start, conventions,
        )


def _work(node: F.Node, shape_of: Callable[[str], tuple[int, int] | None],
          number: Callable[[str], int | None]) -> tuple[tuple[int, int], int, int]:
    """(shape, nonzero entries, scalar products) of a formula, roughly: a matrix product
    costs the left side's nonzero entries times the right side's columns (``eye`` and
    its Kronecker products are sparse), anything else its entries."""
    if isinstance(node, F.Name):
        shape = shape_of(node.id) or (1, 1)
        return shape, shape[0] * shape[1], 0
    if isinstance(node, (F.Neg, F.Transpose)):
        (a, b), nnz, w = _work(node.operand, shape_of, number)
        return ((b, a) if isinstance(node, F.Transpose) else (a, b)), nnz, w
    if isinstance(node, F.BinOp):
        (p, q), nnz, w1 = _work(node.left, shape_of, number)
        (q2, r), _, w2 = _work(node.right, shape_of, number)
        if node.op == "@":
            return (p, r), p * r, w1 + w2 + nnz * r
        shape = (max(p, q2), max(q, r))
        return shape, shape[0] * shape[1], w1 + w2 + shape[0] * shape[1]
    if isinstance(node, F.Call):
        if node.func in ("eye", "ones", "zeros"):
            sizes = [number(a.id) if isinstance(a, F.Name) else int(a.value) if isinstance(a, F.Num) else None
                     for a in node.args]
            n, k = (sizes + [None, None])[:2]
            n = n or 1
            k = n if node.func == "eye" and k is None else (k or 1)
            return (n, k), (n if node.func == "eye" else n * k), 0
        parts = [_work(a, shape_of, number) for a in node.args]
        if not parts:
            return (1, 1), 1, 0
        work = sum(w for _, _, w in parts)
        if node.func == "kron" and len(parts) == 2:
            (a, b), nnz1, _ = parts[0]
            (c, d), nnz2, _ = parts[1]
            return (a * c, b * d), nnz1 * nnz2, work + nnz1 * nnz2
        (a, b), nnz, _ = parts[0]
        if node.func == "vec":
            return (a * b, 1), nnz, work
        return (a, b), a * b, work + a * b
    return (1, 1), 1, 0


@contextmanager
def _budgeted(timeout: float | None, task: ClaimSpec) -> Iterator[list[Check]]:
    """Run the block within ``timeout`` seconds; it appends its Check to the yielded list,
    or a timeout / memory limit appends an unproven one (bad input still raises)."""
    result: list[Check] = []
    start = time.perf_counter()
    runner = Runner(timeout, None, hint="raise it with timeout=S, or timeout=None")
    try:
        with budget.limit(timeout):
            yield result
    except budget.Timeout:
        result[:] = [runner.timed_out(task, time.perf_counter() - start)]
    except MemoryError:
        result[:] = [runner.not_checked(task, time.perf_counter() - start, Method.LIMIT,
                                        "not checked (limit): out of memory")]


def load(path: str | Path, strategy: str = "auto", limits: Limits = Limits(),
         timeout: float | None = DEFAULT_TIMEOUT_RUN) -> Derivation | BlockDerivation:
    """Load and validate a spec file; raises :class:`~derive.errors.SpecError` on bad input,
    and :class:`derive.util.budget.Timeout` past ``timeout`` seconds (None: no limit).
    A spec written as NumPy code (a backward block) gives a :class:`BlockDerivation`."""
    with budget.limit(timeout):
        return _derivation(load_spec(path, limits), strategy)


def from_dict(data: dict[str, Any], name: str = "<dict>", strategy: str = "auto") -> Derivation | BlockDerivation:
    """Build a derivation from an already-parsed mapping (same schema as the YAML)."""
    return _derivation(parse_spec(data, name), strategy)


def items_of(spec: Spec | ProgramSpec) -> tuple[list[Rule], list[str]] | None:
    """What a check of this spec runs, from the spec alone (its network not built): the
    rules, and each claim's name (its LaTeX, or ``target = formula``), in the order of
    :meth:`Derivation.rules` and :attr:`Derivation.claims`, without the derivation's
    set-up (its claims' LaTeX read against the network's shapes: most of loading an
    equations spec).  None for a spec written as NumPy code.  The pytest plugin names
    its items from this, and builds the derivation when the first item runs."""
    if isinstance(spec, ProgramSpec):
        return None
    if spec.equations is not None:
        rules = rules_for(build(spec))  # (equations derive their rules: the network, not the truth)
    else:
        rules = loss_rules(spec)
        for layer in range(len(spec.layers), 0, -1):  # (rules_for's order: output layer first)
            kind = spec.layers[layer - 1].type
            made = LAYER_RULES.get(kind)
            if made is None:
                raise RuleConstructionError(f"the layer type {kind} has no rules in LAYER_RULES")
            rules.extend(made(spec, layer, True))
    names = [c.latex or f"{c.target} = {c.formula}" for c in (*spec.claims, *spec.claims_latex)]
    return rules, names


def from_spec(spec: Spec | ProgramSpec, strategy: str = "auto") -> Derivation | BlockDerivation:
    """The derivation of an already-loaded spec (its network built now)."""
    return _derivation(spec, strategy)


def _derivation(spec: Spec | ProgramSpec, strategy: str) -> Derivation | BlockDerivation:
    if isinstance(spec, ProgramSpec):
        from derive.check.blocks import BlockDerivation  # (NumPy and the code interpreter: only here)

        return BlockDerivation(spec)
    return Derivation(spec, strategy)
