"""The true form, always (issue 17): every refuted claim shows the right statement — the
proven rule when derive has one, else the true gradient's first entry — in the terminal,
JSON (``true_form``), Markdown and the LaTeX document's first-page summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = """
name: mistakes
network:
  inputs: 2
  layers: [{units: 3, activation: tanh}, {units: 1, activation: sigmoid}]
  loss: bce
  batch: 2
claims:
  - target: dZ1
    formula: dA1 / tanh_prime(Z1)
    expect: refuted
  - dW2: dZ2 @ A1.T
"""


def run(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "derive.cli", *args], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    return out.stdout


def test_json_terminal_markdown_show_the_true_form(tmp_path: Path) -> None:
    spec = tmp_path / "m.yaml"
    spec.write_text(SPEC)
    data = json.loads(run("check", str(spec), "--json", "--no-rules"))
    wrong = [c for c in data["claims"] if c["verdict"] == "refuted"]
    assert wrong and wrong[0]["true_form"] == "dZ1 = dA1 * tanh_prime(Z1)   (proven rule)"
    assert all("true_form" not in c for c in data["claims"] if c["verdict"] == "proven")
    assert "true: dZ1 = dA1 * tanh_prime(Z1)" in run("check", str(spec), "--no-rules")
    assert "true: `dZ1 = dA1 * tanh_prime(Z1)" in run("check", str(spec), "--format", "markdown", "--no-rules")


def test_latex_first_page_lists_the_refuted_with_true_forms(tmp_path: Path) -> None:
    spec = tmp_path / "m.yaml"
    spec.write_text(SPEC)
    tex = tmp_path / "m.tex"
    run("check", str(spec), "--latex", str(tex), "--no-rules")
    source = tex.read_text()
    summary = source[source.index("\\subsection*{Refuted}"):source.index("\\section*")]
    assert "divides by" in summary and "True:" in summary and "tanh" in summary


def test_block_spec_true_form_is_the_true_entry() -> None:
    data = json.loads(run("check", "derivations/dropout_inverted.yaml", "--json"))
    wrong = [c for c in data["claims"] if c["verdict"] == "refuted"]
    assert wrong[0]["true_form"] == "dx[0,0] = dout[0,0]*keep[0,0]/p"
