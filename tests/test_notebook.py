"""docs/derive-notebook.ipynb runs from top to bottom in a real Jupyter kernel (nbclient and
ipykernel, in the test extra), and what it shows is derive's HTML and LaTeX views."""

from __future__ import annotations

import pytest
from conftest import ROOT

import derive

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = ROOT / "docs" / "derive-notebook.ipynb"


def test_the_notebook_runs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    shown = [o["data"] for o in outputs if o.output_type == "execute_result"]
    assert len(shown) == 5
    derivation, wrong, right, dz1, report = shown
    assert "derive-derivation" in derivation["text/html"] and r"\sigma" in derivation["text/latex"]
    assert "refuted" in wrong["text/html"] and "Diagnosis" in wrong["text/html"]
    assert "proven" in right["text/html"] and right["text/latex"].startswith("$")
    assert r"\odot 2" in dz1["text/html"]
    assert 'class="failures"' in report["text/html"] and "text/markdown" in report


def test_reprs_without_a_kernel() -> None:
    d = derive.load(ROOT / "derivations" / "tanh_scalar_equations.yaml")
    html = d._repr_html_()
    assert "tanh chain" in html and r"\tanh" in html  # a Derivation used to have no display at all
    assert d._repr_latex_().startswith("$$\\begin{aligned}")
    report = d.report()
    assert report._repr_html_().count('class="math display"') >= len(report.rules + report.claims)
    c = report.claims[-1]
    assert c.verdict == "refuted" and "Counterexample" in c._repr_html_()
    assert "$" in c._repr_latex_()
    md = report._repr_markdown_()
    assert "| kind | statement | verdict | why |" in md and "off by a factor" in md  # the diagnoses were dropped
