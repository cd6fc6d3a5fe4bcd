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
from derive.check.session import Derivation
from derive.code import assert_backward, gradcheck  # noqa: F401 (re-exported: check your backward code)
from derive.lang.formula import parse
from derive.records import PROVEN, REFUTED, Check, Report
from derive.render import words
from derive.render.text import TextRenderer


def true_form(d: Derivation, target: str) -> str:
    """The proven closed-form rule for ``target`` if derive has one, else its first entry."""
    if getattr(d, "net", None) is None:  # a derivation written as NumPy code
        try:
            return str(d.true_form(target))  # type: ignore[attr-defined]
        except Exception:  # the explanation must never hide the failure it explains
            return f"{target} (∂L/∂{target[1:]})"
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
    blocks = getattr(d, "net", None) is None  # a derivation written as NumPy code
    report = Report(d.spec.file, d.spec.name, [] if blocks else d.spec.sizes, 0 if blocks else d.spec.batch,
                    d.spec.parameter_count if blocks else d.net.parameter_count,  # type: ignore[attr-defined]
                    "blocks" if blocks else d.truth.method, rules=[c for c in checks if c.kind == "rule"],
                    claims=[c for c in checks if c.kind == "claim"])
    forms = {c.target: true_form(d, c.target) for c in checks if not c.ok}
    return TextRenderer().render(Document(report, true_forms=forms))


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
