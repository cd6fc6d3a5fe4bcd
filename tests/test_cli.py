"""The ``derive`` console script, run as a user runs it: exit codes, JSON shape, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from derive.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(str(p) for p in (ROOT / "derivations").glob("*.yaml"))


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("derive")
    cmd = [exe] if exe else [sys.executable, "-m", "derive.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_shipped_derivations_pass() -> None:
    r = run("check", *EXAMPLES)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rules proven." in r.stdout
    assert "Traceback" not in r.stderr


def test_json_shape() -> None:
    r = run("check", "--json", "derivations/two_layer_classifier.yaml")
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.strip().splitlines()
    doc = json.loads(line)
    assert doc["file"] == "derivations/two_layer_classifier.yaml"
    assert doc["network"]["sizes"] == [2, 4, 1]
    assert doc["network"]["batch"] == 3 and doc["network"]["parameters"] == 17
    rules = doc["rules"]
    assert {r["rule"] for r in rules} == {"dA", "dZ", "dW", "db", "vec(Z)", "vec(dW)", "vec(ABC)"}
    for rule in rules:
        assert set(rule) >= {"layer", "rule", "statement", "entries", "verdict", "seconds"}
        assert rule["verdict"] == "proven"
    wrong = [c for c in doc["claims"] if c["verdict"] == "refuted"]
    assert len(wrong) == 1
    c = wrong[0]
    assert set(c) >= {"target", "formula", "verdict", "diagnosis", "counterexample"}
    assert set(c["counterexample"]) >= {"values", "entry", "claimed", "true"}
    assert isinstance(c["counterexample"]["entry"], list)
    assert doc["summary"] == {"proven": len(rules) + len(doc["claims"]) - 1, "refuted": 1, "unproven": 0}


def test_refuted_claim_exits_1(tmp_path: Path) -> None:
    spec = tmp_path / "wrong.yaml"
    spec.write_text(
        "network: {inputs: 2, layers: [{units: 2, activation: tanh}, {units: 1, activation: sigmoid}],"
        " loss: binary_cross_entropy, batch: 2}\n"
        "claims: {dZ2: A2 - Y}\n"
    )
    r = run("check", str(spec))
    assert r.returncode == 1
    assert "refuted" in r.stdout and "off by a factor 1/m" in r.stdout
    assert "1 claim: 1 refuted." in r.stdout


def test_bad_input_exits_2_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("network: {inputs: 2, layers: [{units: 1, activation: relu7}], loss: mse}\n")
    r = run("check", str(spec))
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith(f"derive: error: {spec}: network.layers[0].activation: unknown activation 'relu7'")


def test_usage_error_exits_2() -> None:
    r = run("check")
    assert r.returncode == 2 and "derive: error:" in r.stderr
    r = run("frobnicate")
    assert r.returncode == 2


def test_bad_file_does_not_stop_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(tmp_path / "missing.yaml"), "derivations/linear_regression.yaml"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "no such file" in err and "linear regression" in out


def test_plain_text_when_not_a_terminal() -> None:
    r = run("check", "derivations/linear_regression.yaml")
    assert "\x1b[" not in r.stdout  # no colour codes in a pipe
    assert "dW1 = dZ1 @ X.T" in r.stdout


def test_strategies_agree() -> None:
    a = run("check", "--json", "--global", "derivations/two_two_one_sigmoid.yaml")
    b = run("check", "--json", "--local", "derivations/two_two_one_sigmoid.yaml")
    va = [(c["statement"], c["verdict"]) for c in json.loads(a.stdout)["rules"] + json.loads(a.stdout)["claims"]]
    vb = [(c["statement"], c["verdict"]) for c in json.loads(b.stdout)["rules"] + json.loads(b.stdout)["claims"]]
    assert va == vb
    assert json.loads(a.stdout)["strategy"] != json.loads(b.stdout)["strategy"]


@pytest.mark.parametrize("fmt, start", [
    ("markdown", "**linear regression**: "),
    ("text", "7 rules proven. 3 claims proven."),
    ("json", '{"file": "derivations/linear_regression.yaml"'),
])
def test_format_option_picks_a_renderer(fmt: str, start: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--format", fmt, "derivations/linear_regression.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(start) or start in out, out[:200]


def test_json_flag_is_format_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", "derivations/linear_regression.yaml"]) == 0
    flag = json.loads(capsys.readouterr().out)
    assert main(["check", "--format", "json", "derivations/linear_regression.yaml"]) == 0
    option = json.loads(capsys.readouterr().out)
    assert [c["statement"] for c in flag["rules"]] == [c["statement"] for c in option["rules"]]


def test_output_file_for_any_format_but_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.md"
    assert main(["check", "--format", "markdown", "-o", str(out), "derivations/linear_regression.yaml"]) == 0
    assert capsys.readouterr().out == "" and "| rule | `dW1 = dZ1 @ X.T` | proven |" in out.read_text()
    assert main(["check", "-o", str(out), "derivations/linear_regression.yaml"]) == 2
    assert "-o/--output goes with --json or --format" in capsys.readouterr().err
    # (checked after parsing, against the renderer registry: --help imports no renderer)
    assert main(["check", "--format", "yaml", "derivations/linear_regression.yaml"]) == 2
    assert "invalid choice: 'yaml'" in capsys.readouterr().err
