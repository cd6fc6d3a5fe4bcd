"""The Python face: load a spec, check its rules and claims, get a report.

>>> import derive
>>> d = derive.load("derivations/two_layer_classifier.yaml")   # doctest: +SKIP
>>> d.check_claim("dW2", "dZ2 @ A1.T").verdict                   # doctest: +SKIP
'proven'
"""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import Callable

from derive import claims
from derive import formula as F
from derive.errors import FormulaError, SpecError
from derive.equality import Judge
from derive.evaluate import Evaluator
from derive.network import Network, build
from derive.proof import Check, Report
from derive.rules import Rule, rules_for
from derive.spec import ClaimSpec, Limits, Spec, load_spec, parse_spec
from derive.truth import Truth, make_truth

STRATEGIES = ("auto", "global", "local")
Progress = Callable[[Check], None]


class Derivation:
    """A loaded network with its truth engine; checks rules and claims."""

    def __init__(self, spec: Spec, strategy: str = "auto") -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        self.spec = spec
        self.strategy = strategy
        self.net: Network = build(spec)
        self._validate_claims()

    def _validate_claims(self) -> None:
        """Unknown names, functions or targets in the spec's claims are bad input (exit 2)."""
        names = Evaluator(self.net, None)
        for c in self.spec.claims:
            try:
                target = F.parse(c.target)
                claims.check_target(target, c.target)
                names.validate(target, c.target)
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

    def rules(self) -> list[Rule]:
        """The closed-form rules of this network (not yet checked)."""
        return rules_for(self.net)

    def check_rule(self, rule: Rule) -> Check:
        return claims.check(self.evaluator, self.judge, rule.target, rule.formula, kind="rule",
                            layer=rule.layer, rule=rule.rule)

    def check_spec_claim(self, claim: ClaimSpec) -> Check:
        try:
            return claims.check(self.evaluator, self.judge, claim.target, claim.formula,
                                place=claim.place, expect=claim.expect)
        except FormulaError as exc:
            raise SpecError(self.spec.file, claim.place, str(exc)) from None

    def check_claim(self, target: str, formula: str) -> Check:
        """Check ``target = formula``; the result's ``verdict`` is proven/refuted/unproven."""
        return claims.check(self.evaluator, self.judge, target, formula)

    def check_rules(self, progress: Progress | None = None) -> list[Check]:
        out = []
        for r in rules_for(self.net):
            out.append(self.check_rule(r))
            if progress:
                progress(out[-1])
        return out

    def check_claims(self, progress: Progress | None = None) -> list[Check]:
        out = []
        for c in self.spec.claims:
            out.append(self.check_spec_claim(c))
            if progress:
                progress(out[-1])
        return out

    def count_checks(self, rules: bool = True) -> int:
        return (len(rules_for(self.net)) if rules else 0) + len(self.spec.claims)

    def report(self, rules: bool = True, progress: Progress | None = None) -> Report:
        """Check every rule (unless ``rules=False``) and every claim of the spec."""
        start = time.perf_counter()
        checked_rules = self.check_rules(progress) if rules else []
        checked_claims = self.check_claims(progress)
        spec = self.spec
        conventions = {
            "activations": [layer.activation for layer in spec.layers],  # type: ignore[dict-item]
            "loss": spec.loss.kind, "scale": str(spec.loss.scale),
            "average": spec.average, "batch_layout": spec.batch_layout,  # type: ignore[dict-item]
        }
        return Report(
            spec.file, spec.name, spec.sizes, spec.batch, spec.parameters, self.truth.method,
            list(self.net.assumptions), checked_rules, checked_claims,
            time.perf_counter() - start, conventions,  # type: ignore[arg-type]
        )


def load(path: str | Path, strategy: str = "auto", limits: Limits = Limits()) -> Derivation:
    """Load and validate a spec file; raises :class:`~derive.errors.SpecError` on bad input."""
    return Derivation(load_spec(path, limits), strategy)


def from_dict(data: dict, name: str = "<dict>", strategy: str = "auto") -> Derivation:  # type: ignore[type-arg]
    """Build a derivation from an already-parsed mapping (same schema as the YAML)."""
    return Derivation(parse_spec(data, name), strategy)
