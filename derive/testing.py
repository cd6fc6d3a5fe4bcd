"""Assertions for tests of hand derivations (the pytest face, usable anywhere).

>>> import derive
>>> from derive.testing import assert_claim
>>> d = derive.load("derivations/two_layer_classifier.yaml")
>>> assert_claim(d, "dW2", "dZ2 @ A1.T").verdict
<Verdict.PROVEN: 'proven'>
"""

from __future__ import annotations

from derive.check.document import Document, true_form
from derive.check.runner import DEFAULT_TIMEOUT
from derive.check.session import Derivation
from derive.code import assert_backward, gradcheck  # noqa: F401 (re-exported: check your backward code)
from derive.records import PROVEN, REFUTED, Check, Report
from derive.render import words
from derive.render.text import TextRenderer


def explain(check: Check, d: Derivation | None = None) -> str:
    """A refutation written out: claimed form, true form, counterexample, diagnosis."""
    return words.assertion(check, None if d is None else true_form(d, check.target))


def failure_text(d: Derivation, checks: list[Check]) -> str:
    """The plain-text renderer's view of ``checks`` (made on ``d``): each one that is not
    as expected written out with its true form, then the summary line."""
    blocks = getattr(d, "net", None) is None  # a derivation written as NumPy code
    report = Report(d.spec.file, d.spec.name, [] if blocks else d.spec.sizes, 0 if blocks else d.spec.batch,
                    d.spec.parameter_count if blocks else d.net.parameter_count,  # type: ignore[attr-defined]
                    d.strategy if blocks else d.truth.method, rules=[c for c in checks if c.kind == "rule"],
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
