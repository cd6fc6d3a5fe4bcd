"""The spec loader: each broken file in tests/bad_inputs/ fails with its pinned message,
on one line, naming the file; good specs load with the documented defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

import derive
from derive.spec import load_spec

BAD = sorted((Path(__file__).parent / "bad_inputs").glob("*.yaml"))


def expected_message(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return first[len("# expect: "):]


def test_corpus_is_large_enough() -> None:
    assert len(BAD) >= 40


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_input_message(path: Path) -> None:
    with pytest.raises(derive.SpecError) as info:
        derive.load(path)
    message = str(info.value)
    assert expected_message(path) in message
    assert message.startswith(str(path))
    assert "\n" not in message


def test_python_tag_does_not_run(tmp_path: Path) -> None:
    canary = Path("/tmp/derive-canary")
    canary.unlink(missing_ok=True)
    with pytest.raises(derive.SpecError):
        derive.load(Path(__file__).parent / "bad_inputs" / "python_tag.yaml")
    assert not canary.exists()


def test_missing_file() -> None:
    with pytest.raises(derive.SpecError, match="nope.yaml: no such file"):
        derive.load("nope.yaml")


def test_defaults(tmp_path: Path) -> None:
    p = tmp_path / "n.yaml"
    p.write_text("network: {inputs: 2, layers: [{units: 3, activation: leaky_relu}], loss: mse}\n")
    spec = load_spec(p)
    assert spec.name == "n" and spec.batch == 1 and spec.average and spec.batch_layout == "columns"
    assert spec.loss.scale == sympy.Rational(1, 2)          # plain mse means ½
    assert spec.layers[0].slope == sympy.Rational(1, 100)   # documented default slope
    assert spec.parameters == 9


def test_claims_forms(tmp_path: Path) -> None:
    p = tmp_path / "n.yaml"
    p.write_text(
        "network: {inputs: 2, layers: [{units: 1}], loss: mse}\n"
        "claims:\n"
        "  - dW1: dZ1 @ X.T\n"
        "  - {target: db1, formula: dZ1, expect: proven}\n"
        "  - {target: dW1, formula: dZ1 @ X.T * 2, expect: refuted}\n"
    )
    spec = load_spec(p)
    assert [(c.target, c.expect) for c in spec.claims] == [
        ("dW1", "proven"), ("db1", "proven"), ("dW1", "refuted")]
    assert derive.load(p).report().ok
