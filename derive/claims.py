"""Check one statement ``target = formula`` (a user's claim or a built-in rule).

The target must be a gradient ``dV`` (∂J/∂V, V's shape) or ``vec(dV)``; its true value
comes from the truth engine.  Names on the right resolve to the network and to the *true*
gradients, so each statement is judged on its own.  The outcome is a
:class:`~derive.proof.Check`: never an exception, except for input that is not a
statement at all (:class:`~derive.errors.FormulaError`).
"""

from __future__ import annotations

import time

from sympy import Matrix

from derive import formula as F
from derive.diagnosis import BY_SYMBOLS, diagnose
from derive.equality import Judge, TooLarge
from derive.errors import FormulaError, ShapeError
from derive.evaluate import Evaluator, is_matrix, show_shape
from derive.proof import PROVEN, REFUTED, UNPROVEN, Check
from derive.repair import search_fix


def check_target(node: F.Node, text: str) -> None:
    if isinstance(node, F.Name) and node.id.startswith("d"):
        return
    if isinstance(node, F.Call) and node.func == "vec" and len(node.args) == 1:
        return check_target(node.args[0], text)
    if isinstance(node, F.Call) and node.func == "J":
        return
    raise FormulaError(text, getattr(node, "col", None),
                       "a claim's target must be a gradient such as dW2, db1, dZ1, dA1 or vec(dW1), "
                       "or a Jacobian such as J(Z1, b1)")


def _prove(judge: Judge, claimed: Matrix, true: Matrix, cheap: bool) -> str | None:
    try:
        return judge.prove(claimed, true, cheap=cheap)
    except TooLarge:
        return None


def as_matrix(v: object) -> Matrix:
    return v if is_matrix(v) else Matrix([[v]])  # type: ignore[return-value]


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
    transposed = (f"it is the transpose: this is the {other}-layout Jacobian (the spec uses {layout} layout)"
                  if jacobian else None)
    true = as_matrix(evaluator.evaluate(target_node, target))
    formula_node = F.parse(formula) if formula_node is None else formula_node

    def result(verdict: str, method: str, **kw: object) -> Check:
        return Check(kind, target, formula, verdict, method, len(true), time.perf_counter() - start,
                     layer=layer, rule=rule, place=place, expect=expect, latex=latex, **kw)  # type: ignore[arg-type]

    try:
        claimed = as_matrix(evaluator.evaluate(formula_node, formula))
    except ShapeError as exc:
        fix = search_fix(evaluator, judge, formula_node, true) if kind == "claim" else None
        return result(REFUTED, "shapes", detail=f"shape error: {exc}", diagnosis=fix)
    def why_wrong() -> str | None:
        """A proven diagnosis of the claim as a whole, else (for claims) the smallest fix."""
        found = diagnose(evaluator.net, judge, claimed, true, transposed)
        if kind == "claim" and (found is None or found.startswith(BY_SYMBOLS)):
            # "claimed = x1/x2 × true" is proven but "true if x1 → x2" says more
            found = search_fix(evaluator, judge, formula_node, true) or found
        return found

    if claimed.shape != true.shape:
        detail = f"shape mismatch: claimed {show_shape(claimed)}, true {target} is {show_shape(true)}"
        return result(REFUTED, "shapes", detail=detail, diagnosis=why_wrong())
    # cheap exact steps first, then a fast numeric refutation, then the expensive unfolding
    method = _prove(judge, claimed, true, cheap=True)
    counterexample = judge.refute(claimed, true) if method is None else None
    if method is None and counterexample is None:
        method = _prove(judge, claimed, true, cheap=False)
    if method is not None:
        return result(PROVEN, f"exact: difference expands to 0 ({method}; {judge.truth.method})")
    if counterexample is not None:
        how = "exact rational arithmetic" if counterexample.exact else "interval arithmetic (200 bits)"
        return result(REFUTED, f"counterexample ({how})", counterexample=counterexample, diagnosis=why_wrong())
    if judge.holds_off_kinks(claimed, true):
        return result(UNPROVEN, "neither", detail=(
            "it holds wherever no relu argument is 0 (proven on both sides of every kink) but not at "
            "a kink, where derive takes relu′(0) = 0 and leaky_relu′(0) = slope, e.g. (Z > 0), not (Z >= 0)"))
    return result(
        UNPROVEN, "neither",
        detail=(f"the difference did not reduce to 0 symbolically, and {judge.points} random exact "
                "points showed no difference"),
    )
