"""``axis=`` means what NumPy means: a negative axis counts from the end (for derive's 2-D
values -1 is 1 and -2 is 0), and an axis that does not exist is bad input, in sum, mean
and softmax alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import net
from test_cli import run

import derive
from derive.errors import FormulaError
from derive.lang import formula as F
from derive.records import PROVEN, REFUTED


def verdict(d: derive.Derivation, target: str, formula: str) -> str:
    c = d.check_claim(target, formula)
    if c.verdict == REFUTED:
        assert c.counterexample is not None, c.detail  # refuted on values, not on shapes
    return c.verdict


def test_softmax_last_axis_in_rows_layout_is_the_default() -> None:
    """Rows: examples are rows, softmax runs along each row: axis=-1 is axis=1 (was axis 0)."""
    d = net([(3, "tanh"), (3, "softmax")], batch=2, loss="cross_entropy", batch_layout="rows")
    for formula in ("(softmax(Z2) - Y) / m", "(softmax(Z2, axis=-1) - Y) / m", "(softmax(Z2, axis=1) - Y) / m"):
        assert verdict(d, "dZ2", formula) == PROVEN, formula
    for formula in ("(softmax(Z2, axis=-2) - Y) / m", "(softmax(Z2, axis=0) - Y) / m"):
        assert verdict(d, "dZ2", formula) == REFUTED, formula


def test_softmax_last_axis_in_columns_layout_is_wrong() -> None:
    """Columns: softmax runs down each column; axis=-1 (rows) is a mistake (was "proven")."""
    d = net([(3, "tanh"), (3, "softmax")], batch=2, loss="cross_entropy")
    assert verdict(d, "dZ2", "(softmax(Z2, axis=-1) - Y) / m") == REFUTED
    assert verdict(d, "dZ2", "(softmax(Z2, axis=-2) - Y) / m") == PROVEN
    assert verdict(d, "dZ2", "(softmax(Z2, axis=0) - Y) / m") == PROVEN


def test_sum_and_mean_with_negative_axes() -> None:
    d = net([(3, "tanh"), (3, "sigmoid")], batch=3)  # dZ2 is 3×3: a wrong axis is a wrong value
    assert verdict(d, "db2", "sum(dZ2, axis=-1)") == PROVEN
    assert verdict(d, "db2", "np.sum(dZ2, axis=-1, keepdims=True)") == PROVEN
    assert verdict(d, "db2", "mean(dZ2, axis=-1) * m") == PROVEN
    assert verdict(d, "db2", "sum(dZ2, axis=-2).T") == REFUTED
    assert verdict(d, "db2", "mean(dZ2, axis=-2).T * m") == REFUTED
    assert verdict(d, "db2", "mean(dZ2, axis=-1)") == REFUTED  # the mean divides by m once more
    rows = net([(3, "tanh"), (2, "sigmoid")], batch=2, batch_layout="rows")
    assert verdict(rows, "db2", "sum(dZ2, axis=-2).T") == PROVEN
    assert verdict(rows, "db2", "sum(dZ2, axis=0).T") == PROVEN
    assert verdict(rows, "db2", "sum(dZ2, axis=-1)") == REFUTED


@pytest.mark.parametrize("formula, axis", [
    ("(softmax(Z2, axis=7) - Y) / m", 7),
    ("(softmax(Z2, axis=2) - Y) / m", 2),
    ("(softmax(Z2, axis=-3) - Y) / m", -3),
    ("sum(dZ2, axis=7) @ ones(1, 2)", 7),
    ("sum(dZ2, axis=-3) @ ones(1, 2)", -3),
    ("mean(dZ2, axis=2) @ ones(1, 2)", 2),
    ("mean(dZ2, axis=-3) @ ones(1, 2)", -3),
])
def test_an_axis_that_does_not_exist_is_bad_input(formula: str, axis: int) -> None:
    d = net([(3, "tanh"), (3, "softmax")], batch=2, loss="cross_entropy")
    with pytest.raises(FormulaError, match=f"axis {axis} does not exist: the value is 3×2") as info:
        d.check_claim("dZ2", formula)
    assert info.value.column == formula.index(f"axis={axis}") + len("axis=") + 1  # points at the axis


def test_a_scalar_has_two_axes_too() -> None:
    d = net([(2, "sigmoid")], batch=2)
    assert d.evaluator.evaluate(F.parse("sum(m, axis=-1)"), "sum(m, axis=-1)") == 2
    with pytest.raises(FormulaError, match="axis 5 does not exist: the value is scalar"):
        d.evaluator.evaluate(F.parse("sum(m, axis=5)"), "sum(m, axis=5)")


def test_cli_axis_7_exits_2_naming_the_place(tmp_path: Path) -> None:
    spec = tmp_path / "axis.yaml"
    spec.write_text(
        "network: {inputs: 2, layers: [{units: 3, activation: tanh}, {units: 3, activation: softmax}],"
        " loss: cross_entropy, batch: 2}\n"
        "claims:\n"
        "  - dZ2: (A2 - Y) / m\n"
        "  - dZ2: (softmax(Z2, axis=7) - Y) / m\n"
    )
    r = run("check", str(spec))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith(f"derive: error: {spec}: claims[1]: axis 7 does not exist"), lines[0]
    assert "3×2" in lines[0] and "at column 19 in" in lines[0]  # the 7
