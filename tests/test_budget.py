"""Bounded work: timeouts make items unproven (timeout) and the run goes on; limits have
flags; written files are atomic."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import ROOT, net

import derive
from derive.cli import main
from derive.records import Method
from derive.util import budget
from derive.util.files import write_atomic


def test_limit_interrupts() -> None:
    start = time.monotonic()
    with pytest.raises(budget.Timeout):
        with budget.limit(0.2):
            while True:
                pass
    assert time.monotonic() - start < 2


def test_timeout_makes_unproven_and_goes_on() -> None:
    d = net([(3, "tanh"), (2, "sigmoid")], batch=2, strategy="local")
    report = d.report(timeout=1e-4)
    assert report.rules and all(c.verdict in ("proven", "unproven") for c in report.rules)
    timed_out = [c for c in report.rules if c.method == Method.TIMEOUT]
    assert timed_out and all(c.verdict == "unproven" for c in timed_out)
    assert not report.ok
    # nothing stays armed: a later run without limits proves everything
    assert d.report(timeout=None).ok


def test_run_budget(capsys: pytest.CaptureFixture[str]) -> None:
    # the run budget covers loading too: a file not loaded in time is not checked (exit 1, never 2)
    code = main(["check", "--timeout-run", "0.001", "--json", str(ROOT / "derivations/three_layer_softmax.yaml")])
    captured = capsys.readouterr()
    assert code == 1
    if captured.out:  # loaded within the millisecond (a warm process): every item out of time, none refuted
        assert '"refuted"' not in captured.out and '"timeout"' in captured.out
    else:
        assert "not checked: loading ran out of the run's time budget" in captured.err
    # loaded in time, checked out of time: each item left is unproven (timeout), never refuted
    report = derive.load(ROOT / "derivations/three_layer_softmax.yaml").report(timeout_run=0.01)
    assert not report.ok
    assert all(c.verdict in ("proven", "unproven") for c in [*report.rules, *report.claims])
    assert any(c.method == Method.TIMEOUT for c in [*report.rules, *report.claims])


@pytest.mark.parametrize("flag", ["--timeout", "--max-batch", "--max-parameters", "--max-formula-length",
                                  "--max-nesting", "--max-exponent"])
def test_limit_flags_must_be_positive(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", flag, "0", str(ROOT / "derivations/linear_regression.yaml")]) == 2
    assert "must be positive" in capsys.readouterr().err


def test_limit_flags_raise_limits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text("network: {inputs: 1, layers: [{units: 1}], loss: mse, batch: 1200}\n")
    assert main(["check", "--no-rules", str(spec)]) == 2
    assert "expected a batch size from 1 to 1000, got 1200" in capsys.readouterr().err
    long = tmp_path / "long.yaml"
    long.write_text("network: {inputs: 1, layers: [{units: 1}], loss: mse}\n"
                    f"claims: {{dW1: '{' + '.join(['dZ1 @ X.T * 1'] * 200)} - 199 * dZ1 @ X.T'}}\n")
    assert main(["check", "--no-rules", str(long)]) == 2
    assert "limit 2000" in capsys.readouterr().err
    assert main(["check", "--no-rules", "--max-formula-length", "5000", str(long)]) == 0
    main(["check", "--max-formula-length", "2000", str(long)])  # restore the default
    deep = tmp_path / "deep.yaml"
    deep.write_text("network: {inputs: 1, layers: [{units: 1}], loss: mse}\n"
                    f"claims: {{dW1: '{'(' * 70}dZ1 @ X.T{')' * 70}'}}\n")
    assert main(["check", "--no-rules", str(deep)]) == 2
    assert "nesting deeper than 60 levels" in capsys.readouterr().err
    assert main(["check", "--no-rules", "--max-nesting", "100", str(deep)]) == 0


def test_json_output_file_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["check", "--json", "-o", str(out), str(ROOT / "derivations/linear_regression.yaml")]) == 0
    assert json.loads(out.read_text())["name"] == "linear regression"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_write_atomic_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    target.write_text("old")

    class Boom(str):
        def encode(self, *a: object, **k: object) -> bytes:  # type: ignore[override]
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_atomic(target, Boom("new"))
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_an_alarm_that_fires_at_once_leaves_no_deadline_behind() -> None:
    # a 1 µs budget can expire before the block starts; the next limit must be unaffected
    from derive.util import budget as b

    for _ in range(200):
        try:
            with b.limit(1e-6):
                sum(range(1000))
        except b.Timeout:
            pass
    assert b._ends == []
    with b.limit(5):
        sum(range(1000))  # would raise at once if a stale deadline were left


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.parametrize("phase", ["start", "stop"])
def test_an_alarm_inside_a_gc_callback_is_deferred_not_lost(phase: str) -> None:
    """An alarm that lands while the garbage collector runs a callback (hypothesis registers
    some) is not raised there, where Python would swallow it as an unraisable exception and
    cut the callback short: it is raised once the callback has returned."""
    import gc
    import sys

    unraisable: list[object] = []
    finished: list[str] = []

    def slow(seen: str, info: dict[str, int]) -> None:
        if seen == phase:
            _busy(0.3)  # the 0.05 s alarm fires in here
            finished.append(seen)

    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    gc.callbacks.append(slow)
    try:
        with pytest.raises(budget.Timeout):
            with budget.limit(0.05):
                gc.collect()
                _busy(5)  # raised here, soon after the callback
    finally:
        gc.callbacks.remove(slow)
        sys.unraisablehook = hook
    assert finished == [phase] and unraisable == []
    assert not budget.outer_expired()
