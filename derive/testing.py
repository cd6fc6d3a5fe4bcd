"""Assertions for tests of hand derivations (the pytest face, usable anywhere).

>>> import derive
>>> from derive.testing import assert_claim
>>> d = derive.load("derivations/two_layer_classifier.yaml")
>>> assert_claim(d, "dW2", "dZ2 @ A1.T").verdict
'proven'
"""

from __future__ import annotations

from derive.check.session import Derivation
from derive.records import PROVEN, REFUTED, Check


def true_form(d: Derivation, target: str) -> str:
    """The proven closed-form rule for ``target`` if derive has one, else its first entry."""
    for rule in d.rules():
        if rule.target == target:
            check = d.check_rule(rule)
            if check.verdict == PROVEN:
                return f"{rule.target} = {rule.formula}   (proven rule)"
    try:
        from derive.check.claims import as_matrix
        from derive.lang.formula import parse

        value = as_matrix(d.evaluator.evaluate(parse(target), target))
        entry = d.truth.unfold(value[0])
        text = str(entry)
        if len(text) > 300:
            text = text[:300] + " …"
        return f"{target}[0,0] = {text}"
    except Exception:  # the explanation must never hide the failure it explains
        return f"{target} (∂J/∂{target[1:]})"


def explain(check: Check, d: Derivation | None = None) -> str:
    """A refutation written out: claimed form, true form, counterexample, diagnosis."""
    lines = [f"{check.kind} {check.statement} is {check.verdict}"
             + (f" (expected {check.expect})" if check.expect != PROVEN else "")]
    lines.append(f"  claimed: {check.statement}")
    if d is not None:
        lines.append(f"  true:    {true_form(d, check.target)}")
    if check.diagnosis:
        lines.append(f"  diagnosis: {check.diagnosis}")
    ce = check.counterexample
    if ce is not None:
        i, j = ce.entry
        how = "exact rational arithmetic" if ce.exact else "interval arithmetic"
        lines.append(f"  counterexample ({how}): entry [{i},{j}] claimed {ce.claimed}, true {ce.true}")
        lines.append("    at " + ", ".join(f"{k} = {v}" for k, v in ce.values.items()))
    if check.detail:
        lines.append(f"  {check.detail}")
    lines.append(f"  method: {check.method}")
    return "\n".join(lines)


def assert_claim(d: Derivation, target: str, formula: str) -> Check:
    """Assert that ``target = formula`` is proven; the AssertionError explains why not."""
    check = d.check_claim(target, formula)
    if check.verdict != PROVEN:
        raise AssertionError(explain(check, d))
    return check


def assert_refuted(d: Derivation, target: str, formula: str, diagnosis: str | None = None) -> Check:
    """Assert that ``target = formula`` is refuted (and, if given, diagnosed as such)."""
    check = d.check_claim(target, formula)
    if check.verdict != REFUTED:
        raise AssertionError(f"expected a refutation, got: {explain(check, d)}")
    if diagnosis is not None and diagnosis not in (check.diagnosis or ""):
        raise AssertionError(f"expected a diagnosis containing {diagnosis!r}:\n{explain(check, d)}")
    return check
