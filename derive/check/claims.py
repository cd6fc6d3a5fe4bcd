"""Check one statement ``target = formula`` (a user's claim or a built-in rule).

The target must be a gradient ``dV`` (∂J/∂V, V's shape) or ``vec(dV)``; its true value
comes from the truth engine.  Names on the right resolve to the network and to the *true*
gradients, so each statement is judged on its own.  The outcome is a
:class:`~derive.records.Check`: never an exception, except for input that is not a
statement at all (:class:`~derive.errors.FormulaError`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sympy import Matrix

from derive.diagnose.semantic import diagnose
from derive.diagnose.syntactic import FIX_PRIORITY, search_fix
from derive.errors import LimitError, ShapeError
from derive.lang import formula as F
from derive.model.evaluate import Evaluator, is_matrix, show_shape
from derive.prove.judge import Judge, TooLarge
from derive.records import PROVEN, REFUTED, UNPROVEN, Check, Diagnosis, DiagnosisCode, Method, ProofStep, Verdict
from derive.util import budget

DIAGNOSIS_SECONDS = 20.0  # a diagnosis's own budget; the refutation stands without it


def _prove(judge: Judge, claimed: Matrix, true: Matrix, cheap: bool) -> ProofStep | None:
    try:
        label = judge.prove(claimed, true, cheap=cheap)
    except TooLarge:
        return None
    return None if label is None else ProofStep(label)


def as_matrix(v: object) -> Matrix:
    return v if is_matrix(v) else Matrix([[v]])


def check(
    evaluator: Evaluator, judge: Judge, target: str, formula: str, *, kind: str = "claim",
    layer: int | None = None, rule: str | None = None, place: str | None = None,
    expect: str = PROVEN, latex: str | None = None, formula_node: F.Node | None = None,
) -> Check:
    """Prove, refute or leave unproven ``target = formula``.

    A claim's target must be a derivative (``dV``, ``vec(dV)``, ``J(y, x)``); a built-in
    rule (``kind="rule"``) may also state a forward identity such as ``vec(Z1) = ...``.
    ``formula_node``, when given, is the formula's syntax tree (derive's own rules are
    built as trees); ``formula`` is then only its text for display.
    """
    start = time.perf_counter()
    target_node = F.parse(target)
    if kind == "claim":
        evaluator.check_gradient_target(target_node, target)  # dV, d(V), vec(...), J(...)
    jacobian = isinstance(target_node, F.Call) and target_node.func == "J"
    layout = evaluator.net.spec.layout if evaluator.net.spec is not None else "numerator"
    other = "denominator" if layout == "numerator" else "numerator"
    transposed = (Diagnosis(DiagnosisCode.LAYOUT, f"it is the transpose: this is the {other}-layout Jacobian "
                            f"(the spec uses {layout} layout)") if jacobian else None)
    expected = Verdict(expect)
    try:
        true = as_matrix(evaluator.evaluate(target_node, target))
    except LimitError as exc:
        return Check(kind, target, formula, UNPROVEN, Method.LIMIT, 0, time.perf_counter() - start, layer=layer,
                     rule=rule, place=place, expect=expected, latex=latex, detail=f"not checked (limit): {exc}")
    formula_node = F.parse(formula) if formula_node is None else formula_node

    def result(verdict: Verdict, method: Method, **kw: Any) -> Check:
        return Check(kind, target, formula, verdict, method, len(true), time.perf_counter() - start,
                     layer=layer, rule=rule, place=place, expect=expected, latex=latex, **kw)

    try:
        value, conditions = evaluator.evaluate_with_domain(formula_node, formula)
        claimed = as_matrix(value)
    except LimitError as exc:  # a resource limit says nothing about the claim
        return result(UNPROVEN, Method.LIMIT, detail=f"not checked (limit): {exc}")
    except ShapeError as exc:
        fix = _budgeted(lambda: search_fix(evaluator, judge, formula_node, true)) if kind == "claim" else None
        return result(REFUTED, Method.SHAPES, detail=f"shape error: {exc}", finding=fix)

    def why_wrong() -> Diagnosis | None:
        """A proven diagnosis of the claim as a whole, else (for claims) the smallest fix,
        within its own budget: a refutation never waits for (nor is lost to) a diagnosis."""
        def find() -> Diagnosis | None:
            found = diagnose(evaluator.net, judge, claimed, true, transposed)
            if kind == "claim" and (found is None or found.priority < FIX_PRIORITY):
                # "claimed = x1/x2 × true" is proven but "true if x1 → x2" says more
                fix = search_fix(evaluator, judge, formula_node, true)
                found = max((f for f in (found, fix) if f is not None), key=lambda f: f.priority, default=None)
            return found
        return _budgeted(find)

    if claimed.shape != true.shape:
        detail = f"shape mismatch: claimed {show_shape(claimed)}, true {target} is {show_shape(true)}"
        return result(REFUTED, Method.SHAPES, detail=detail, finding=why_wrong())
    # where is the claim defined?  (recorded before SymPy could cancel x/x: derive.prove.domain)
    domain = judge.check_domain(conditions, true)
    if domain.violation is not None:
        undefined = judge.undefined_counterexample(domain.violation, true)
        how = Method.UNDEFINED_EXACT if undefined.exact else Method.UNDEFINED_INTERVAL
        return result(REFUTED, how, counterexample=undefined, finding=why_wrong(),
                      detail="the claim is undefined on an open set of inputs (every point near the "
                             "counterexample), where the true gradient is defined")
    # cheap exact steps first, then a fast numeric refutation, then the expensive unfolding
    method = _prove(judge, claimed, true, cheap=True)
    counterexample = judge.refute(claimed, true) if method is None else None
    if method is None and counterexample is None:
        method = _prove(judge, claimed, true, cheap=False)
    if method is not None:
        if not domain.ok:
            return result(UNPROVEN, Method.DOMAIN, detail=(
                f"it equals the true gradient wherever it is defined, but {domain.unknown}"))
        return result(PROVEN, Method.EXACT, step=method, basis=judge.truth.method)
    if counterexample is not None:
        how = Method.COUNTEREXAMPLE_EXACT if counterexample.exact else Method.COUNTEREXAMPLE_INTERVAL
        return result(REFUTED, how, counterexample=counterexample, finding=why_wrong())
    summary = judge.evaluation_summary()
    kinks = judge.holds_off_kinks(claimed, true)
    if kinks is not None and domain.ok:
        return result(PROVEN, Method.EXACT_ALMOST_EVERYWHERE, basis=judge.truth.method, detail=(
            f"it differs from derive's convention only where {kinks} is 0 (a kink, a set of measure "
            "zero where the loss is not differentiable); derive takes relu′(0) = 0 and "
            "leaky_relu′(0) = slope"))
    why_not = "" if domain.ok else f"; {domain.unknown}"
    return result(
        UNPROVEN, Method.NEITHER,
        detail=f"the difference did not reduce to 0 symbolically, and {summary}{why_not}",
    )


def _budgeted(find: Callable[[], Diagnosis | None]) -> Diagnosis | None:
    """Run a diagnosis in its own budget (at most DIAGNOSIS_SECONDS, and never past the
    check's own): when it runs out, there is simply no diagnosis."""
    try:
        with budget.limit(DIAGNOSIS_SECONDS):
            return find()
    except budget.Timeout:
        return None
