"""Parallel work (issue 19): ``--jobs N`` within one file and across files, and pytest-xdist.

Whatever the number of workers, the results are the serial run's: the same verdicts,
methods and counterexamples, in the same order, the same exit code and the same lines
on stderr (a wrong claim is refuted and bad input is exit 2 in both).  Only the measured
seconds may differ.  Timings are measured in ``bench/``, never asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, net, without_seconds

import derive
from derive.check.runner import Runner, longest_first
from derive.records import PROVEN, REFUTED

two_cores = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity")
                               else (os.cpu_count() or 1) < 2, reason="needs two cores (--jobs 2)")

GOOD = """name: good
network: {inputs: 3, layers: [{units: 4, activation: tanh}, {units: 2, activation: sigmoid}], loss: mse, batch: 3}
claims:
  - dW2: dZ2 @ A1.T
  - dW1: ((W2.T @ dZ2) * (1 - A1**2)) @ X.T
"""
WRONG = """name: wrong
network: {inputs: 2, layers: [{units: 3, activation: sigmoid}, {units: 1, activation: sigmoid}],
          loss: binary_cross_entropy, batch: 2}
claims:
  - dZ2: A2 - Y
  - dW1: ((W2.T @ dZ2) * (1 - A1)) @ X.T
  - dW1: ((W2.T @ dZ2) * A1 * (1 - A1)) @ X
"""
BAD = """name: bad
network: {inputs: 2, layers: [{units: 3, activation: nosuch}], loss: mse, batch: 2}
"""




def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "derive.cli", *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


@two_cores
def test_several_files_in_parallel_print_what_a_serial_run_prints(tmp_path: Path) -> None:
    files = []
    for name, text in [("a_good", GOOD), ("b_wrong", WRONG), ("c_bad", BAD), ("d_good", GOOD.replace("batch: 3", "batch: 2"))]:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        files.append(str(path))
    files.append(str(ROOT / "derivations" / "linear_regression.yaml"))
    serial = _run("check", "--json", "--jobs", "1", *files)
    parallel = _run("check", "--json", "--jobs", "2", *files)
    assert serial.returncode == parallel.returncode == 2  # bad input wins over a refutation
    assert parallel.stderr == serial.stderr and "c_bad.yaml" in serial.stderr
    docs = [without_seconds(json.loads(line)) for line in serial.stdout.splitlines()]
    assert [without_seconds(json.loads(line)) for line in parallel.stdout.splitlines()] == docs
    assert [Path(d["file"]).name for d in docs] == ["a_good.yaml", "b_wrong.yaml", "d_good.yaml",
                                                   "linear_regression.yaml"]  # the order given
    wrong = docs[1]["claims"]
    assert [c["verdict"] for c in wrong] == [str(REFUTED)] * 3
    assert all(c["verdict"] == str(PROVEN) for d in docs if d["name"] != "wrong" for c in d["rules"] + d["claims"])
    text1 = _run("check", "--format", "text", "--jobs", "1", *files)
    text2 = _run("check", "--format", "text", "--jobs", "2", *files)
    assert (text2.returncode, text2.stdout, text2.stderr) == (text1.returncode, text1.stdout, text1.stderr)


@two_cores
def test_one_file_with_two_workers_gives_the_serial_results_in_order() -> None:
    claims = [("dW1", "((W2.T @ dZ2) * (1 - A1**2)) @ X.T"), ("dW1", "((W2.T @ dZ2) * (1 - A1**2)) @ X.T * 2"),
              ("db1", "sum((W2.T @ dZ2) * (1 - A1**2), axis=1)"), ("dZ1", "(W2.T @ dZ2) * (1 - A1)**2")]

    def make() -> derive.Derivation:
        d = net([(4, "tanh"), (3, "tanh"), (2, "sigmoid")], inputs=3, batch=3)
        from derive.spec import ClaimSpec

        d.claims.extend(ClaimSpec(t, f, f"claims[{k}]") for k, (t, f) in enumerate(claims))
        return d

    def verdicts(jobs: int) -> list[tuple[str, ...]]:
        report = make().report(jobs=jobs)
        return [(c.target, c.formula, str(c.verdict), str(c.method), str(c.step), str(c.counterexample))
                for c in [*report.rules, *report.claims]]

    one, two = verdicts(1), verdicts(2)
    assert two == one
    assert [v[2] for v in one[-4:]] == [str(PROVEN), str(REFUTED), str(PROVEN), str(REFUTED)]
    assert all(v[2] == str(PROVEN) for v in one[:-4])


def test_workers_take_the_longest_items_first() -> None:
    d = net([(8, "sigmoid"), (8, "sigmoid"), (2, "sigmoid")], inputs=4, batch=4)
    rules = d.rules()
    order = longest_first(d, rules)
    assert sorted(order) == list(range(len(rules)))  # every item, once
    costs = [d.cost(rules[i]) for i in order]
    assert costs == sorted(costs, reverse=True)
    by_target = {r.target: d.cost(r) for r in rules}
    assert by_target["dW2"] > by_target["db2"] and by_target["vec(Z2)"] > by_target["db2"]
    assert by_target["dA1"] > by_target["dZ1"]  # (W2ᵀ dZ2 multiplies out 8·2·4 products; dZ1 is elementwise)
    # an estimate never fails: a formula it cannot size still runs (last)
    from derive.spec import ClaimSpec

    assert d.cost(ClaimSpec("dW1", "this is not a formula (", "claims[0]")) == 0.0
    # a checker without an estimate: the given order
    assert longest_first(object(), rules) == list(range(len(rules)))  # type: ignore[arg-type]


@two_cores
def test_a_worker_that_runs_out_of_time_is_unproven_not_refuted() -> None:
    d = net([(8, "sigmoid"), (8, "sigmoid"), (2, "sigmoid")], inputs=4, batch=4)
    runner = Runner(timeout=1e-6).start()  # (less than MIN_SECONDS: nothing can start)
    checks = runner.run(d, d.rules(), jobs=2)
    assert len(checks) == len(d.rules()) and all(str(c.verdict) == "unproven" for c in checks)


XDIST_WRONG = """
network: {inputs: 2, layers: [{units: 2, activation: tanh}, {units: 1, activation: sigmoid}],
          loss: binary_cross_entropy, batch: 2}
claims:
  dZ2: A2 - Y
"""
XDIST_GOOD = """
network: {inputs: 2, layers: [{units: 3, activation: tanh}, {units: 2, activation: identity}], loss: mse, batch: 2}
claims:
  dW1: ((W2.T @ dZ2) * (1 - A1**2)) @ X.T
"""


@two_cores
@pytest.mark.parametrize("dist", ["load", "loadfile"])
def test_pytest_xdist_distributes_the_items(pytester: pytest.Pytester, dist: str) -> None:
    pytest.importorskip("xdist")
    pytester.makefile(".yaml", **{"derivations/wrong": XDIST_WRONG, "derivations/good": XDIST_GOOD})
    serial = pytester.runpytest_subprocess("derivations", "-p", "no:cacheprovider")
    serial.assert_outcomes(passed=30, failed=1)
    parallel = pytester.runpytest_subprocess("derivations", "-p", "no:cacheprovider", "-n", "2", "--dist", dist)
    parallel.assert_outcomes(passed=30, failed=1)
    parallel.stdout.fnmatch_lines(["*FAILED derivations/wrong.yaml::claim dZ2 = A2 - Y*"])


@two_cores
def test_sigterm_ends_the_workers_of_several_files_at_once(tmp_path: Path) -> None:
    """SIGTERM (what ``timeout`` and CI send) ends a parallel run of several files with 143
    at once: its workers are ended too, not waited for (their files take far longer)."""
    import signal
    import time

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from perf import stack_yaml
    finally:
        sys.path.pop(0)
    files = []
    for k in range(4):
        path = tmp_path / f"sigterm_big_{k}.yaml"
        path.write_text(stack_yaml([32, 64, 64, 32], 8, "sigmoid"))
        files.append(str(path))
    proc = subprocess.Popen([sys.executable, "-m", "derive.cli", "check", "--jobs", "2", "--max-parameters",
                             "100000", *files], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    time.sleep(2.5)  # (loaded and checking: a few seconds of each file's tens of seconds of CPU)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert time.monotonic() - start < 15
    assert "Traceback" not in err
    import shutil

    if shutil.which("pgrep"):
        time.sleep(0.5)
        left = subprocess.run(["pgrep", "-f", "sigterm_big_"], capture_output=True, text=True)
        assert left.stdout.strip() == "", "worker processes left running"
