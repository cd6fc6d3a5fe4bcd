"""derive watch: the table is redrawn when the file changes; a broken save shows its error
and the loop goes on; --once exits as derive check does."""

from __future__ import annotations

import io
import shutil
import threading
import time
from pathlib import Path

from conftest import ROOT
from rich.console import Console

from derive import cli, watch


def wait_for(predicate, seconds: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_watch_rechecks_when_the_file_changes(tmp_path: Path) -> None:
    spec = tmp_path / "net.yaml"
    shutil.copy(ROOT / "derivations" / "linear_regression.yaml", spec)
    out_buf, err_buf = io.StringIO(), io.StringIO()
    out = Console(file=out_buf, width=160, color_system=None)
    err = Console(file=err_buf, width=160, color_system=None)
    done = threading.Event()
    runner = threading.Thread(target=watch.run, args=(str(spec), out, err),
                              kwargs={"interval": 0.05, "rules": False, "stop": done.is_set})
    runner.start()
    try:
        assert wait_for(lambda: "claims proven" in out_buf.getvalue())
        spec.write_text(spec.read_text() + "  - target: dW1\n    formula: X @ X.T\n")
        assert wait_for(lambda: "dW1 = X @ X.T" in out_buf.getvalue())
        assert "refuted" in out_buf.getvalue().split("dW1 = X @ X.T")[-1]
        spec.write_text("network: [not, a, network\n")  # a broken save: the error, and the loop goes on
        assert wait_for(lambda: "derive: error" in err_buf.getvalue())
        shutil.copy(ROOT / "derivations" / "linear_regression.yaml", spec)
        assert wait_for(lambda: err_buf.getvalue().count("checked in") >= 2)
    finally:
        done.set()
        runner.join(timeout=30)
    assert not runner.is_alive()


def test_watch_once_exit_codes(tmp_path: Path) -> None:
    assert cli.main(["watch", str(ROOT / "derivations" / "linear_regression.yaml"), "--once"]) == cli.OK
    assert cli.main(["watch", str(tmp_path / "missing.yaml"), "--once"]) == cli.BAD_INPUT
