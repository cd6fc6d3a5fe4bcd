"""The README's examples run: its YAML loads and checks, its Python runs, its sample
output matches what the command prints, and its sample error is the real message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import derive

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("text", blocks("yaml"))
def test_yaml_examples_check(text: str, tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(text)
    report = derive.load(path).report()
    assert report.ok, [c.statement for c in report.rules + report.claims if not c.ok]
    assert report.claims


@pytest.mark.parametrize("code", blocks("python"))
def test_python_examples_run(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md", "exec"), {})  # our own README, not user input


def test_sample_output_matches() -> None:
    sample = blocks("console")[0]
    command, *expected = sample.strip().splitlines()
    assert command.startswith("$ derive check ")
    r = subprocess.run([sys.executable, "-m", "derive.cli", *command[2:].split()[1:]],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0
    out = r.stdout
    for line in expected:
        if " proven " in line and ("dA" in line or "dZ" in line or "dW" in line or "db" in line):
            statement = re.split(r"\s{2,}", line.strip())[2 if line.strip()[0].isdigit() else 0]
            assert statement in out, statement
    assert expected[-1] in out  # the summary line


def test_sample_error_is_real(tmp_path: Path) -> None:
    sample = re.search(r"`(net\.yaml: network\.layers\[1\]\.activation: [^`]*)`", README)
    assert sample
    path = tmp_path / "net.yaml"
    path.write_text("network: {inputs: 2, layers: [{units: 2, activation: tanh}, "
                    "{units: 1, activation: relu7}], loss: mse}\n")
    with pytest.raises(derive.SpecError) as info:
        derive.load(path)
    assert str(info.value).replace(str(path), "net.yaml") == sample.group(1)


def test_watch_example_runs(tmp_path: Path) -> None:
    """The watch section's command, run for one check (--once) instead of until Ctrl-C."""
    section = README[README.index("## Watching a file"):]
    command = re.search(r"\$ (derive watch \S+)", section)
    assert command
    r = subprocess.run([sys.executable, "-m", "derive.cli", *command.group(1).split()[1:], "--once"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "claims proven" in r.stdout and "watching" in r.stderr
