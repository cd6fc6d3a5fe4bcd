"""The LaTeX document: exact strings from the printer, escaping, and every shipped
derivation compiled with pdflatex (-halt-on-error), its text checked with pdftotext."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

import derive
from derive.render.latex import document, tex_text, write
from derive.render.latex_printer import expr_latex, statement_latex

EXAMPLES = sorted((ROOT / "derivations").glob("*.yaml"))
HAVE_TEX = shutil.which("pdflatex") is not None and shutil.which("pdftotext") is not None


def need_tex() -> None:
    if not HAVE_TEX:
        if os.environ.get("CI"):
            pytest.fail("CI must have pdflatex and pdftotext (.ci/run installs them)")
        pytest.skip("pdflatex/pdftotext not installed")


@pytest.mark.parametrize("target, formula, notation, expected", [
    ("dZ1", "(W2.T @ dZ2) * sigmoid_prime(Z1)", "default",
     r"\frac{\partial J}{\partial Z_{1}} = W_{2}^{\top} \, \frac{\partial J}{\partial Z_{2}} \odot \sigma'\left(Z_{1}\right)"),
    ("dW2", "dZ2 @ A1.T", "course",
     r"\frac{\partial J}{\partial W^{[2]}} = \frac{\partial J}{\partial Z^{[2]}} \, A^{[1]\top}"),
    ("vec(dW1)", "kron(X, eye(n1)) @ vec(dZ1)", "default",
     r"\operatorname{vec}\left(\frac{\partial J}{\partial W_{1}}\right) = \left(X \otimes I_{n_{1}}\right) \, "
     r"\operatorname{vec}\left(\frac{\partial J}{\partial Z_{1}}\right)"),
    ("dW1", "dZ1.T @ X", "default",
     r"\frac{\partial J}{\partial W_{1}} = \left(\frac{\partial J}{\partial Z_{1}}\right)^{\top} \, X"),
    ("db1", "sum(dZ1, axis=1) / m", "default",
     r"\frac{\partial J}{\partial b_{1}} = \frac{\frac{\partial J}{\partial Z_{1}} \, \mathbf{1}}{m}"),
    ("dz", "tanh_prime(z) * (a - y) / alpha", "default",
     r"\frac{\partial J}{\partial z} = \frac{\tanh'\left(z\right) \odot \left(a - y\right)}{\alpha}"),
])
def test_printer_exact(target: str, formula: str, notation: str, expected: str) -> None:
    assert statement_latex(target, formula, notation) == expected


def test_entry_printer_has_no_sympy_artefacts() -> None:
    d = derive.load(ROOT / "derivations" / "two_layer_classifier.yaml", strategy="local")
    dz = d.truth.grad("Z1")[0]
    text = expr_latex(d.truth.adjoint_definitions[dz])
    assert text == r"\frac{\partial J}{\partial A_{1}[0,0]} \left(1 - A_{1}[0,0]^{2}\right)"
    for artefact in ("Subs", "Derivative", r"\frac{d}{d", "xi", "mapsto", "Sigmoid", "Tanh"):
        assert artefact not in text


def test_tex_text_escapes() -> None:
    assert tex_text("50% of a_b & {x} #1 $") == r"50\% of a\_b \& \{x\} \#1 \$"
    assert tex_text("J = (1/m) Σ ℓ, σ′ ⊙ ⊗") == r"J = (1/m) $\Sigma$ $\ell$, $\sigma$' $\odot$ $\otimes$"
    assert tex_text("(Z > 0), not (Z <= 0) | x") == r"(Z \textgreater{} 0), not (Z \textless{}= 0) \textbar{} x"


def test_document_sections() -> None:
    d = derive.load(ROOT / "derivations" / "two_layer_classifier.yaml")
    tex = document(d, d.report())
    for part in ("1. Network and conventions", "2. Forward pass", "3. Backward pass, layer 2",
                 "vec and Kronecker forms", "Your claims", r"\checkmark", "Counterexample"):
        assert part in tex, part
    assert "\\usepackage{amsmath}\n\\usepackage{amssymb}\n" in tex
    assert tex.count("\\usepackage") == 2


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_derivation_compiles(path: Path, tmp_path: Path) -> None:
    need_tex()
    d = derive.load(path)
    report = d.report()
    pdf = write(d, report, tmp_path / "proof.tex", pdf=True)
    assert pdf is not None and pdf.exists()
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "proven" in text
    refuted = [c for c in report.claims if c.counterexample is not None]
    if refuted:
        assert "refuted" in text and "Counterexample" in text
        assert refuted[0].counterexample.claimed[:6] in text.replace("−", "-")  # type: ignore[union-attr]


def test_cli_latex_and_missing_pdflatex(tmp_path: Path) -> None:
    out = tmp_path / "p.tex"
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # no pdflatex here
    r = subprocess.run([sys.executable, "-m", "derive.cli", "latex", "derivations/linear_regression.yaml",
                        "-o", str(out), "--pdf"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.exists()
    if shutil.which("pdflatex", path=env["PATH"]) is None:
        assert r.returncode == 2 and "pdflatex is not on PATH" in r.stderr


def test_check_with_latex_option(tmp_path: Path) -> None:
    out = tmp_path / "c.tex"
    r = subprocess.run([sys.executable, "-m", "derive.cli", "check", "derivations/two_two_one_sigmoid.yaml",
                        "--latex", str(out), "--notation", "course"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "W^{[2]}" in out.read_text()


def test_jupyter_reprs() -> None:
    d = derive.load(ROOT / "derivations" / "two_layer_classifier.yaml")
    c = d.check_claim("dZ2", "A2 - Y")
    md = c._repr_markdown_()
    assert md.startswith("**refuted**: `dZ2 = A2 - Y`") and "off by a factor 1/m" in md
    assert "| rule | `dW2 = dZ2 @ A1.T` | proven |" in d.report()._repr_markdown_()


def test_explain_in_the_terminal() -> None:
    r = subprocess.run([sys.executable, "-m", "derive.cli", "check", "--explain",
                        "derivations/two_two_one_sigmoid.yaml"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0
    assert "3. Backward pass, layer 2" in r.stdout
    assert "dW2[0,0] = A1[0,0]*dZ2[0,0]" in r.stdout
    assert "chain rule: W2[0,0] enters Z2 only through the entries of row 0" in r.stdout
    # a row batch, Z = A Wᵀ + 1bᵀ (dense) or Z = A W + 1b (affine): a weight feeds one column of Z
    for spec in ("regression_rows.yaml", "cs231n_two_layer.yaml"):
        r = subprocess.run([sys.executable, "-m", "derive.cli", "check", "--explain", f"derivations/{spec}"],
                           capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0 and "W1[0,0] enters Z1 only through the entries of column 0" in r.stdout, spec


@pytest.mark.parametrize("formula, printed", [
    ("sum(A, axis=-1)", r"A \, \mathbf{1}"),            # -1 is axis 1: it used to print a bare Σ A
    ("sum(A, axis=-2)", r"\mathbf{1}^{\top} A"),
    ("mean(A, axis=1)", r"\operatorname{mean}_{\text{axis } 1}\left(A\right)"),  # the axis used to be dropped
    ("mean(A)", r"\operatorname{mean}\left(A\right)"),
])
def test_sums_and_means_keep_their_axis(formula: str, printed: str) -> None:
    from derive.lang import formula as F
    from derive.render.latex_printer import FormulaPrinter

    assert FormulaPrinter()(F.parse(formula)) == printed
