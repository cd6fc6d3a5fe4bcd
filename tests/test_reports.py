"""Issue 18: LaTeX that always compiles and reads like the mathematics it shows; derive's own
rules printed readably (and still what was proven); a LaTeX failure is derive's bug (exit 3,
the log kept).  Each test here failed before the fix it names."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import derive
from derive import cli
from derive.check.document import build
from derive.errors import DeriveError
from derive.render import latex as latex_mod
from derive.render.latex import document, write
from derive.render.latex_printer import FormulaPrinter, name, scalar_test, statement_latex
from derive.render.readable import readable_text, to_sympy
from derive.render.terminal import TerminalRenderer

EXAMPLES = sorted((ROOT / "derivations").glob("*.yaml"))
HAVE_TEX = shutil.which("pdflatex") is not None


def need_tex() -> None:
    if not HAVE_TEX:
        import os

        if os.environ.get("CI"):
            pytest.fail("CI must have pdflatex (.ci/run installs it)")
        pytest.skip("pdflatex not installed")


def compiles(tex: str, tmp: Path) -> tuple[bool, str]:
    path = tmp / "doc.tex"
    path.write_text(tex)
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                        f"-output-directory={tmp}", str(path)], capture_output=True, text=True, timeout=120)
    return r.returncode == 0, r.stdout[-2000:]


@pytest.fixture(scope="module")
def classifier() -> tuple[derive.Derivation, derive.Report]:
    d = derive.load(ROOT / "derivations" / "two_layer_classifier.yaml")
    return d, d.report()


@pytest.fixture(scope="module")
def scalar() -> tuple[derive.Derivation, derive.Report]:
    d = derive.load(ROOT / "derivations" / "two_two_one_equations.yaml")
    return d, d.report()


# ------------------------------------------------------------------ printing

def test_elementwise_power_of_a_course_name_is_one_superscript() -> None:
    # was A^{[1]}^{2}: pdflatex "Double superscript" on two_layer_classifier.yaml --notation course
    shapes = {"A1": (4, 3), "W2": (1, 4), "Z2": (1, 3)}
    text = statement_latex("dZ1", "(W2.T @ dZ2) * (1 - A1**2)", "course", scalar_test(shapes))
    assert "}^{2}" not in text and "]}^" not in text
    assert r"{A^{[1]}}^{\odot 2}" in text
    assert r"{A_{1}}^{\odot 2}" in statement_latex("dZ1", "1 - A1**2", "default", scalar_test(shapes))


def test_a_scalar_power_stays_a_power() -> None:
    assert FormulaPrinter("default", scalar_test({"h": (1, 1)}))(derive_parse("1 - h**2")) == "1 - h^{2}"


def derive_parse(text: str):  # type: ignore[no-untyped-def]
    from derive.lang import formula as F

    return F.parse(text)


def test_course_notation_writes_every_layer_name_with_its_bracket() -> None:
    assert name("db2", "course") == r"\frac{\partial J}{\partial b^{[2]}}"  # was ∂J/∂b_2
    assert name("b2", "course") == "b^{[2]}"


def test_course_captions_use_the_notation(classifier: tuple[derive.Derivation, derive.Report]) -> None:
    d, report = classifier
    tex = document(d, report, "course")
    assert "W2[0,0] enters Z2" not in tex  # the caption used to name W2[0,0] in code spelling
    assert r"$W^{[2]}[0,0]$ enters $Z^{[2]}$" in tex


def test_index_calculus_is_typeset(classifier: tuple[derive.Derivation, derive.Report]) -> None:
    d, report = classifier
    tex = document(d, report)
    assert r"\Sigma$\_\{" not in tex and r"\_\{ic\}" not in tex  # raw text: Σ_{b<r}, δ_{ic} with braces
    assert r"\sum_{b<r} \sum_{a<q} C^{\top}[j,b]" in tex
    assert r"\delta _{ic}" in tex


def test_scalar_networks_read_as_scalar_mathematics(scalar: tuple[derive.Derivation, derive.Report]) -> None:
    d, report = scalar
    tex = document(d, report)
    assert r"\partial J" not in tex and r"\frac{\partial L}{\partial w_{4}}" in tex  # the user's loss L
    assert r"\odot" not in tex  # products of scalars are plain products
    assert r"\frac{\partial L}{\partial a_{2}} = \frac{2}{\alpha} \, \left(a_{2} - y\right)" in tex
    assert "at entry" not in tex  # a scalar has no entry [0, 0]
    md = report._repr_markdown_()
    assert "at entry" not in md and "[0,0]" not in md


def test_a_greek_claim_name_is_a_greek_letter() -> None:
    assert name("lambda_") == r"\lambda"  # was \mathit{lambda_}: pdflatex fails on the bare _
    assert name("dlambda_") == r"\frac{\partial J}{\partial \lambda}"
    for hostile in ("a_b_", "x\\input", "q}{", "é"):
        assert "\\input" not in name(hostile) and name(hostile).count("{") == name(hostile).count("}")


def test_one_example_is_not_a_batch() -> None:
    d = derive.load(ROOT / "derivations" / "linear_regression.yaml")
    data = yaml.safe_load((ROOT / "derivations" / "two_two_one_sigmoid.yaml").read_text())
    data["network"]["batch"] = 1
    d = derive.from_dict(data)
    tex = document(d, d.report(rules=False))
    assert "batch of m = 1 examples" not in tex and "one example (m = 1)" in tex


# ------------------------------------------------------------------ readable rules

def shown_rules(path: Path) -> list[tuple[str, str, str]]:
    d = derive.load(path)
    if d.net is None:  # a spec written as NumPy code: its gradients are the user's lines, shown as written
        return []
    shapes = {k: (int(v.shape[0]), int(v.shape[1])) for k, v in d.net.matrices.items()}
    consts = {str(c) for c in d.net.free_constants}
    return [(r.target, r.formula, readable_text(r.formula, shapes, consts, scalar_test(shapes)))
            for r in d.rules() if r.formula]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_readable_rules_are_what_was_proven(path: Path) -> None:
    """Printing only: each rule as displayed is itself proven equal to the truth."""
    d = derive.load(path)
    for target, formula, shown in shown_rules(path):
        if shown != formula:
            assert d.check_claim(target, shown).verdict == "proven", (formula, shown)


def test_readable_rules_in_the_terminal() -> None:
    d = derive.load(ROOT / "derivations" / "logistic_regression_equations.yaml")
    report = d.report()
    from rich.console import Console

    console = Console(width=160, record=True, color_system=None)
    console.print(TerminalRenderer().render(build(d, report)))
    out = console.export_text()
    assert "da = -(y / a) + (1 - y) / (1 - a)" in out
    assert "(-1) * y" not in out
    assert report.rules[0].formula == "(-1) * y / a + (-((-1) * (1 - y) / (1 - a)))"  # proven as built


@pytest.mark.parametrize("formula, shown", [
    ("1 / alpha * 2 * (o - y)", "2 / alpha * (o - y)"),
    ("-(1 / alpha * 2 * (y - a2))", "2 / alpha * (a2 - y)"),
    ("1 / (2 * m) * ones(3, 2) * 2 * (A2 - Y)", "1 / m * (A2 - Y)"),
    ("(1/2) * beta * 2 * (o - y)", "beta * (o - y)"),  # numbers that cancel are collected too
    ("dZ1 @ X.T", "dZ1 @ X.T"),
    ("dh * tanh_prime(u * x + c) * x", "dh * tanh_prime(u * x + c) * x"),  # nothing to collect: kept as built
])
def test_readable_forms(formula: str, shown: str) -> None:
    shapes = {"o": (1, 1), "y": (1, 1), "a2": (1, 1), "alpha": (1, 1), "beta": (1, 1), "A2": (3, 2), "Y": (3, 2),
              "dh": (1, 1), "u": (1, 1), "x": (1, 1), "c": (1, 1),
              "Z1": (4, 3), "X": (2, 3)}
    assert readable_text(formula, shapes, {"alpha"}, scalar_test(shapes)) == shown


_SCALAR_ATOMS = st.sampled_from(["a", "b", "c", "alpha", "m", "2", "3", "(1 / 2)"])


@st.composite
def scalar_formulas(draw: st.DrawFn, depth: int = 3) -> str:
    if depth == 0 or draw(st.booleans()):
        return draw(_SCALAR_ATOMS)
    op = draw(st.sampled_from(["+", "-", "*", "/", "neg", "f"]))
    a = draw(scalar_formulas(depth - 1))
    if op == "neg":
        return f"-({a})"
    if op == "f":
        return f"tanh({a})"
    return f"({a}) {op} ({draw(scalar_formulas(depth - 1))})"


@settings(max_examples=150, deadline=None)
@given(scalar_formulas())
def test_readable_is_an_identity_on_scalars(formula: str) -> None:
    from derive.lang import formula as F
    from derive.render.readable import Readable

    shapes = {"a": (1, 1), "b": (1, 1), "c": (1, 1)}
    node = F.parse(formula)
    shown = Readable(shapes, {"alpha"})(node)
    import sympy

    before = to_sympy(node)
    assume(not before.has(sympy.zoo, sympy.nan))  # a / (a - a): SymPy folds it before we compare
    assert sympy.simplify(before - to_sympy(shown)) == 0


# ------------------------------------------------------------------ compiling

@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_derivation_compiles_in_course_notation(path: Path, tmp_path: Path) -> None:
    need_tex()
    d = derive.load(path)
    ok, log = compiles(document(d, d.report(), "course"), tmp_path)
    assert ok, log


def test_a_latex_failure_is_a_bug_with_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    need_tex()
    real = latex_mod._source
    monkeypatch.setattr(latex_mod, "_source", lambda doc: real(doc).replace(r"\maketitle", r"\maketitle $A^{1}^{2}$"))
    out = tmp_path / "proof.tex"
    code = cli.main(["latex", str(ROOT / "derivations" / "linear_regression.yaml"), "-o", str(out), "--pdf"])
    err = capsys.readouterr().err
    assert code == cli.INTERNAL  # was 2, as if the input were bad
    assert (tmp_path / "proof.log").exists()  # was deleted with the temporary folder
    assert "Double superscript" in err and "l." in err and "proof.log" in err


SCALAR_SPEC = yaml.safe_load((ROOT / "derivations" / "two_two_one_equations.yaml").read_text())
MATRIX_SPEC = yaml.safe_load((ROOT / "derivations" / "two_layer_classifier.yaml").read_text())
_ATOMS = {
    "scalar": ["w_4", "a_0", "a_{1}", "x_1", "y", "z_2", r"\alpha", "2", r"\frac{\partial L}{\partial z_2}",
               r"\frac{dL}{da_2}", r"\tfrac12"],
    "matrix": ["W_2", "W^{[2]}", "A^{[1]}", "A^{[1]T}", "X^T", "Y", "A_2", "m", "2", r"\frac{\partial L}{\partial Z_2}",
               r"\frac{\partial L}{\partial Z^{[1]}}", "Z_1"],
}
_TARGETS = {
    "scalar": [r"\frac{\partial L}{\partial w_4}", r"\frac{dL}{db_0}", r"\frac{\partial L}{\partial z_2}"],
    "matrix": [r"\frac{\partial L}{\partial W^{[2]}}", r"\frac{\partial L}{\partial Z_1}", r"\frac{\partial L}{\partial b_2}"],
}


@st.composite
def latex_claims(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.sampled_from(["scalar", "matrix"]))

    def expr(depth: int) -> str:
        if depth == 0 or draw(st.integers(0, 2)) == 0:
            return draw(st.sampled_from(_ATOMS[kind]))
        shape = draw(st.sampled_from(["{} + {}", "{} - {}", r"{} \cdot {}", r"{} \times {}", "{} {}", r"{} \odot {}",
                                      r"\frac{{{}}}{{{}}}", "({})^2", r"\sigma({})", r"\sigma'({})", r"\tanh({})",
                                      r"\exp({})", r"\left({}\right)", "-{}", r"\log({})"]))
        return shape.format(*(expr(depth - 1) for _ in range(shape.count("{}"))))

    return kind, f"{draw(st.sampled_from(_TARGETS[kind]))} = {expr(3)}"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(latex_claims(), st.sampled_from(["default", "course"]))
def test_any_accepted_latex_claim_compiles(tmp_path_factory: pytest.TempPathFactory, claim: tuple[str, str],
                                           notation: str) -> None:
    """Property: whatever claim the LaTeX reader accepts, the document compiles."""
    need_tex()
    kind, latex = claim
    spec = copy.deepcopy(SCALAR_SPEC if kind == "scalar" else MATRIX_SPEC)
    spec["claims"], spec["claims_latex"] = [], [latex]
    try:
        d = derive.from_dict(spec)
    except DeriveError:
        assume(False)
        return
    report = d.report(rules=False, timeout=10)
    ok, log = compiles(document(d, report, notation), tmp_path_factory.mktemp("claim"))
    assert ok, (latex, log)


def test_check_latex_option_writes_both(tmp_path: Path) -> None:
    out = tmp_path / "c.tex"
    r = subprocess.run([sys.executable, "-m", "derive.cli", "check", "derivations/tanh_scalar_equations.yaml",
                        "--latex", str(out), "--notation", "course"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r"\frac{\partial L}{\partial o} = \frac{2}{\alpha} \, \left(o - y\right)" in out.read_text()
    need_tex()
    pdf = write(derive.load(ROOT / "derivations" / "tanh_scalar_equations.yaml"),
                derive.load(ROOT / "derivations" / "tanh_scalar_equations.yaml").report(), out, pdf=True)
    assert pdf is not None and pdf.exists()


def test_unicode_names_are_safe_and_greek_where_they_can_be() -> None:
    assert name("α") == r"\alpha" and name("λ") == r"\lambda"
    for odd in ("xé", "ж", "a\u202eb"):
        printed = name(odd)
        assert printed.isascii() and "\\" not in printed.replace(r"\mathit", "")
