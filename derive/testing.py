"""Assertions for tests of hand derivations (the pytest face, usable anywhere).

>>> import derive
>>> from derive.testing import assert_claim
>>> d = derive.load("derivations/two_layer_classifier.yaml")
>>> assert_claim(d, "dW2", "dZ2 @ A1.T").verdict
<Verdict.PROVEN: 'proven'>
"""

from __future__ import annotations

from derive.check.claims import as_matrix
from derive.check.document import Document
from derive.check.runner import DEFAULT_TIMEOUT
from derive.check.session import Derivation
from derive.code import assert_backward, gradcheck  # noqa: F401 (re-exported: check your backward code)
from derive.lang.formula import parse
from derive.records import PROVEN, REFUTED, Check, Report
from derive.render import words
from derive.render.text import TextRenderer
from derive.util import budget

#: seconds the explanation of a failure may take (it must never outlast the check it explains)
EXPLAIN_SECONDS = 10.0


def true_form(d: Derivation, target: str) -> str:
    """The proven closed-form rule for ``target`` if derive has one, else its first entry
    (within :data:`EXPLAIN_SECONDS`; past them, only the target's meaning)."""
    try:
        with budget.limit(EXPLAIN_SECONDS):
            return _true_form(d, target)
    except (budget.Timeout, MemoryError):
        return f"{target} (∂J/∂{target[1:]})"


def _true_form(d: Derivation, target: str) -> str:
    for rule in d.rules():
        if rule.target == target:
            check = d.check_rule(rule)
            if check.verdict == PROVEN:
                return f"{rule.target} = {rule.formula}   (proven rule)"
    try:
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
    return words.assertion(check, None if d is None else true_form(d, check.target))


def failure_text(d: Derivation, checks: list[Check]) -> str:
    """The plain-text renderer's view of ``checks`` (made on ``d``): each one that is not
    as expected written out with its true form, then the summary line."""
    report = Report(d.spec.file, d.spec.name, d.spec.sizes, d.spec.batch, d.net.parameter_count,
                    d.truth.method, rules=[c for c in checks if c.kind == "rule"],
                    claims=[c for c in checks if c.kind == "claim"])
    forms = {c.target: true_form(d, c.target) for c in checks if not c.ok}
    return TextRenderer().render(Document(report, true_forms=forms))


def assert_claim(d: Derivation, target: str, formula: str, timeout: float | None = DEFAULT_TIMEOUT) -> Check:
    """Assert that ``target = formula`` is proven within ``timeout`` seconds (None: no
    limit); the AssertionError explains why not."""
    check = d.check_claim(target, formula, timeout=timeout)
    if check.verdict != PROVEN:
        raise AssertionError(explain(check, d))
    return check


def assert_refuted(d: Derivation, target: str, formula: str, diagnosis: str | None = None,
                   timeout: float | None = DEFAULT_TIMEOUT) -> Check:
    """Assert that ``target = formula`` is refuted (and, if given, diagnosed as such)."""
    check = d.check_claim(target, formula, timeout=timeout)
    if check.verdict != REFUTED:
        raise AssertionError(f"expected a refutation, got: {explain(check, d)}")
    if diagnosis is not None and diagnosis not in (check.diagnosis or ""):
        raise AssertionError(f"expected a diagnosis containing {diagnosis!r}:\n{explain(check, d)}")
    return check
