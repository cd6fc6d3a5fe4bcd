"""Issue 19, third session: what the speed-ups must not change.

- The truth writes an activation's derivative through the network's atoms in one rebuild
  (``_derivative_canon``) instead of two: the adjoint definitions are the same SymPy
  expressions (``srepr``) as the two-step rebuild's, on every activation, and a right and
  a wrong claim get the same verdicts, methods and counterexamples.
- The pytest plugin collects a spec file without building its network (the derivation is
  built when the first item runs): the items are the same, named the same, and pass or
  fail as before; a claim naming an unknown matrix fails every item of its file with the
  one-line message (it was a collection error).
- ``--jobs 1`` and ``--jobs 2`` print the same report.

Timings are measured in ``bench/perf.py``, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sympy
from conftest import ROOT, net, without_seconds

import derive
import derive.lang.latex_reader  # noqa: F401 (see tests/test_plugin.py: loaded before any in-process pytester run)
import derive.testing  # noqa: F401
from derive.check import session
from derive.model import truth as truth_module
from derive.model.truth import LocalTruth, _derivative_canon, _derivative_of
from derive.records import PROVEN, REFUTED
from derive.render import formats  # noqa: F401
from derive.spec import ClaimSpec

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "gelu", "gelu_erf", "silu", "elu",
               "relu6", "hardtanh", "identity"]


def _two_step(f: sympy.Expr, v: sympy.Symbol, canon: dict[sympy.Expr, sympy.Symbol]) -> sympy.Expr:
    """The truth's former way: the class's derivative written at v, then through canon."""
    return _derivative_of(f, v).xreplace(canon)


def _adjoints(t: LocalTruth) -> list[tuple[str, str]]:
    return sorted((sympy.srepr(k), sympy.srepr(v)) for k, v in t.adjoint_definitions.items())


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_one_rebuild_is_the_two_step_rebuild(activation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    d = net([(3, activation), (2, activation)], inputs=2, batch=2)
    canon = d.net.canon
    for applied in canon:  # each activation of an atom: its partial, both ways
        if len(applied.args) == 1 and applied.args[0].is_Symbol:
            v = applied.args[0]
            assert sympy.srepr(_derivative_canon(applied, v, canon)) == sympy.srepr(_two_step(applied, v, canon))
    new = LocalTruth(d.net)
    monkeypatch.setattr(truth_module, "_derivative_canon", _two_step)
    old = LocalTruth(d.net)
    assert _adjoints(new) == _adjoints(old)
    assert {sympy.srepr(a) for a in new.applications} == {sympy.srepr(a) for a in old.applications}
    assert {sympy.srepr(k): sympy.srepr(v) for k, v in new.adjoint.items()} == \
        {sympy.srepr(k): sympy.srepr(v) for k, v in old.adjoint.items()}


def _verdicts(d: derive.Derivation) -> list[tuple[str, ...]]:
    report = d.report(jobs=1)
    return [(c.target, c.formula, str(c.verdict), str(c.method), str(c.step), str(c.counterexample))
            for c in [*report.rules, *report.claims]]


@pytest.mark.parametrize("activation, prime", [("sigmoid", "A1 * (1 - A1)"), ("tanh", "(1 - A1**2)")])
def test_same_verdicts_and_counterexamples(activation: str, prime: str, monkeypatch: pytest.MonkeyPatch) -> None:
    claims = [("dW1", f"((W2.T @ dZ2) * {prime}) @ X.T"),  # right
              ("dW1", f"((W2.T @ dZ2) * {prime}) @ X.T * 2"),  # wrong: twice the truth
              ("dZ1", "W2.T @ dZ2")]  # wrong: the activation's derivative forgotten

    def make() -> derive.Derivation:
        d = net([(3, activation), (2, "sigmoid")], inputs=2, batch=2)
        d.claims.extend(ClaimSpec(t, f, f"claims[{k}]") for k, (t, f) in enumerate(claims))
        return d

    new = _verdicts(make())
    monkeypatch.setattr(truth_module, "_derivative_canon", _two_step)
    old = _verdicts(make())
    assert new == old
    assert [v[2] for v in new[-3:]] == [str(PROVEN), str(REFUTED), str(REFUTED)]
    assert all(v[2] == str(PROVEN) for v in new[:-3])  # derive's own rules
    assert "None" not in new[-1][5]  # a refutation comes with its counterexample


# ---------------------------------------------------------------- pytest plugin, lazy collection

GOOD = """
network: {inputs: 2, layers: [{units: 2, activation: tanh}, {units: 1, activation: sigmoid}],
          loss: binary_cross_entropy, batch: 2}
claims:
  - dZ2: (A2 - Y) / m
  - dW1: ((W2.T @ dZ2) * (1 - A1**2)) @ X.T
claims_latex:
  - '\\frac{\\partial L}{\\partial W_2} = \\frac{\\partial L}{\\partial Z_2} A_1^T'
"""
WRONG = """
network: {inputs: 2, layers: [{units: 2, activation: tanh}, {units: 1, activation: sigmoid}],
          loss: binary_cross_entropy, batch: 2}
claims:
  - dZ2: A2 - Y
  - dW1: ((W2.T @ dZ2) * (1 - A1)) @ X.T
"""
EQUATIONS = """
network:
  equations: |
    z = w*x + b
    a = sigmoid(z)
    L = (a - y)**2 / 2
  parameters: [w, b]
  loss: L
claims:
  - dz: (a - y) * a * (1 - a)
  - dw: (a - y) * x
"""  # (dw: the sigmoid's derivative forgotten)
UNKNOWN = """
network: {inputs: 2, layers: [{units: 1, activation: sigmoid}], loss: mse, batch: 2}
claims:
  - dW1: dZ1 @ Q.T
"""


def test_collection_does_not_build_the_network(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makefile(".yaml", **{"derivations/good": GOOD, "derivations/eqs": EQUATIONS})
    built: list[str] = []
    real = session.Derivation.__init__

    def counted(self: Any, spec: Any, strategy: str = "auto") -> None:
        built.append(spec.file)
        real(self, spec, strategy)

    monkeypatch.setattr(session.Derivation, "__init__", counted)
    listed = pytester.runpytest("derivations", "--collect-only", "-q", "-p", "no:cacheprovider")
    assert built == []
    listed.stdout.fnmatch_lines([  # (in order: eqs.yaml first)
        "*eqs.yaml::claim dw = (a - y) * x",
        "*good.yaml::rule L1 dW1 = dZ1 @ Xᵀ",
        "*good.yaml::claim dZ2 = (A2 - Y) / m",
        "*good.yaml::claim \\frac{\\partial L}{\\partial W_2}*",
    ])
    ran = pytester.runpytest("derivations", "-p", "no:cacheprovider")
    ran.assert_outcomes(passed=15 + 3 + 4 + 1, failed=1)  # eqs.yaml: 4 rules, a right and a wrong claim
    ran.stdout.fnmatch_lines(["*FAILED derivations/eqs.yaml::claim dw = (a - y) * x*"])
    assert sorted(set(built)) == sorted(str(p) for p in (pytester.path / "derivations").glob("*.yaml"))
    assert len(built) == 2  # one build per file, for all of its items


def test_lazy_items_pass_and_fail_as_before(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"derivations/good": GOOD, "derivations/wrong": WRONG})
    result = pytester.runpytest("derivations", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=15 + 3 + 15, failed=2)
    result.stdout.fnmatch_lines([
        "*good.yaml::claim dW1 = ((W2ᵀ @ dZ2) * (1 - A1**2)) @ Xᵀ PASSED*",
        "*wrong.yaml::claim dZ2 = A2 - Y FAILED*",
        "*wrong.yaml::claim dW1 = ((W2ᵀ @ dZ2) * (1 - A1)) @ Xᵀ FAILED*",
        "*diagnosis: off by a factor 1/m*",
    ])


def test_a_claim_naming_an_unknown_matrix_fails_every_item(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"derivations/unknown": UNKNOWN, "derivations/good": GOOD})
    result = pytester.runpytest("derivations", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=15 + 3, failed=7 + 1)  # unknown.yaml: its 7 rules and its claim
    result.stdout.fnmatch_lines(["*unknown.yaml*Q*"])


# ---------------------------------------------------------------- --jobs 1 against --jobs 2



def test_jobs_one_and_two_print_the_same_report(tmp_path: Path) -> None:
    spec = tmp_path / "wrong.yaml"
    spec.write_text(WRONG)
    runs = [subprocess.run([sys.executable, "-m", "derive.cli", "check", "--json", "--jobs", jobs, str(spec)],
                           capture_output=True, text=True, cwd=ROOT, timeout=600) for jobs in ("1", "2")]
    assert [r.returncode for r in runs] == [1, 1]  # refuted claims
    one, two = (without_seconds(json.loads(r.stdout)) for r in runs)
    assert one == two
    assert runs[0].stderr == runs[1].stderr
    verdicts = [c["verdict"] for c in one["claims"]] if "claims" in one else None
    assert verdicts == ["refuted", "refuted"]
