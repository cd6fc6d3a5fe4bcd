"""A derivation written as NumPy code (a :class:`~derive.spec.ProgramSpec`): its backward
block and claims checked, as one :class:`~derive.records.Report`.

It offers what :class:`derive.check.session.Derivation` offers to the command line, the
pytest plugin and the documents (``report``, ``count_checks``, ``check_claim``,
``spec``); there are no built-in layer rules: the user's own block is the derivation.
"""

from __future__ import annotations

import time
from typing import Any

from derive.check.runner import DEFAULT_TIMEOUT, Progress
from derive.code.blocks import Claim, Program, check_program
from derive.errors import FormulaError, SpecError
from derive.lang import formula as F
from derive.lang import program as P
from derive.records import Check, Report, Verdict
from derive.spec import ProgramSpec

#: how the truth of a block spec is made (the report's "truth:" line, JSON "strategy")
TRUTH = "sympy.diff of the loss, entry by entry, through your forward block run exactly"


class BlockDerivation:
    """A loaded NumPy-code spec: ``report()`` checks its backward block and claims."""

    net = None  # no layer network: documents show the blocks instead
    strategy = TRUTH
    last_true_forms: dict[str, str] = {}  # noqa: RUF012 - set per report: refuted target → true form

    def __init__(self, spec: ProgramSpec) -> None:
        self.spec = spec
        self.program = Program(spec.forward, spec.backward, spec.shapes, spec.parameters, spec.upstream, spec.loss,
                               spec.domains, spec.places)
        self.claims: list[Claim] = []
        for c in spec.claims:
            try:
                node = F.parse(c.formula)
                F.check_target(F.parse(c.target), c.target)
            except FormulaError as exc:
                raise SpecError(spec.file, c.place, str(exc)) from None
            self.claims.append(Claim(c.target, node, c.formula, c.place, Verdict(c.expect)))

    def rules(self) -> list[Any]:
        """No built-in rules: the user's own block is the derivation."""
        return []

    def check_claim(self, target: str, formula: str, timeout: float | None = DEFAULT_TIMEOUT) -> Check:
        """Check ``target = formula`` (NumPy dialect; dV on the right is the true ∂L/∂V)."""
        F.check_target(F.parse(target), target)
        claim = Claim(target, F.parse(formula), formula)
        result = check_program(Program(self.spec.forward, (), self.spec.shapes, self.spec.parameters,
                                       self.spec.upstream, self.spec.loss, self.spec.domains), timeout=timeout,
                               claims=(claim,))
        return result.checks[-1]

    def true_form(self, target: str) -> str:
        """The true ∂L/∂V's first entry, written out (SymPy's text), for a failure message."""
        from derive.code.blocks import true_entry

        return true_entry(self.program, target)

    def count_checks(self, rules: bool = True) -> int:
        return len(P.assigned(self.spec.backward)) + len(self.claims)

    def auto_jobs(self) -> int:
        return 1

    @property
    def assumptions(self) -> list[str]:
        out = []
        scalars = [n for n, s in self.spec.shapes.items() if s == () and n not in self.spec.domains]
        if scalars:
            out.append(f"the scalars {', '.join(scalars)} range over all reals (declare domains: "
                       "{eps: positive} where a value must be positive)")
        declared = {n: k for n, k in self.spec.domains.items() if k != "real"}
        if declared:
            words = ", ".join(f"{n}: {k}" for n, k in declared.items())
            out.append(f"the inputs range over their declared domains ({words}); a verdict proven only there "
                       "says so")
        if self.spec.upstream:
            pairs = ", ".join(f"{up} = ∂L/∂{out}" for out, up in self.spec.upstream.items())
            out.append(f"L = Σ out ⊙ upstream, the upstream gradients free inputs ({pairs})")
        return out

    def report(self, rules: bool = True, progress: Progress | None = None, jobs: int | None = None,
               timeout: float | None = DEFAULT_TIMEOUT, timeout_run: float | None = None) -> Report:
        """Run the blocks and judge every gradient and claim (``timeout`` for the whole run;
        ``rules`` and ``jobs`` are accepted for the common interface)."""
        start = time.perf_counter()
        limit = timeout_run if timeout_run is not None else timeout
        try:
            result = check_program(self.program, timeout=limit, claims=tuple(self.claims))
        except FormulaError as exc:
            raise SpecError(self.spec.file, getattr(exc, "place", None) or "network", str(exc)) from None
        self.last_true_forms = dict(result.true_forms)
        checks = []
        for c in result.checks:
            expect = Verdict(self.spec.expect.get(c.target, c.expect))
            checks.append(Check(**{**c.__dict__, "expect": expect}))
            if progress is not None:
                progress(checks[-1])
        conventions: dict[str, Any] = {
            "equations": len(self.spec.forward), "backward_lines": len(self.spec.backward),
            "parameter_names": list(self.spec.parameters), "loss": self.spec.loss or "Σ out ⊙ upstream",
            "upstream": dict(self.spec.upstream), "domains": dict(self.spec.domains),
            "not_gradients": result.unchecked, "notes": result.notes,
            "input_shapes": {n: list(s) for n, s in self.spec.shapes.items() if n not in self.spec.parameters},
        }
        batch = next((s[0] for n, s in self.spec.shapes.items() if s and n not in self.spec.parameters), 1)
        return Report(self.spec.file, self.spec.name, [], batch, self.spec.parameter_count, TRUTH,
                      self.assumptions, [], checks, time.perf_counter() - start, conventions)
