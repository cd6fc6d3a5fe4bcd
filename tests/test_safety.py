"""The Safety section's promises (README, issue 20) and a polite command line (issue 18):
every error is one line with exit 2 or 3, outputs never replace an input, untrusted text
is printed as text, and the budgets reach the Python API and the pytest plugin."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT

import derive
from derive import cli
from derive.cli import main
from derive.records import Method
from derive.util import files
from derive.util.text import printable, shown

SMALL = str(ROOT / "derivations" / "linear_regression.yaml")
TWO_LAYER = "network: {inputs: 2, layers: [{units: 2, activation: tanh}, {units: 1}], loss: mse, batch: 2}\n"


def run(*args: str, cwd: Path = ROOT, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "derive.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, **kw)  # type: ignore[call-overload]


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- the command line: fast, polite ---------------------------------------------------------------------------

def test_help_and_version_import_neither_sympy_nor_rich() -> None:
    code = ("import sys\nfrom derive.cli import main\n"
            "for argv in (['--help'], ['--version'], ['check', '--help']):\n"
            "    assert main(argv) == 0\n"
            "heavy = sorted(m for m in ('sympy', 'rich', 'lark', 'yaml') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_cli_defaults_equal_their_owners() -> None:
    from derive.check.runner import DEFAULT_TIMEOUT, DEFAULT_TIMEOUT_RUN
    from derive.check.session import STRATEGIES
    from derive.lang import formula as F
    from derive.render import formats
    from derive.spec import Limits

    assert cli.DEFAULT_TIMEOUT == DEFAULT_TIMEOUT and cli.DEFAULT_TIMEOUT_RUN == DEFAULT_TIMEOUT_RUN
    assert cli.LIMITS == {k: getattr(Limits(), k) for k in cli.LIMITS}
    assert cli.FORMULA_LIMITS == {"max_formula_length": F.MAX_LENGTH, "max_exponent": F.MAX_EXPONENT,
                                  "max_nesting": F.MAX_DEPTH}
    from derive.prove.zero import CORES

    assert cli.STRATEGIES == STRATEGIES
    assert set(cli.FORMATS) == set(formats.names())
    assert cli.CORES == CORES


def test_bare_derive_prints_usage_and_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: derive") and all(c in err for c in ("check", "latex", "identities"))


def test_a_file_without_a_command_gets_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([SMALL]) == 2
    assert one_line_error(capsys.readouterr().err) == (
        f"derive: error: '{SMALL}' is not a command; to check it: derive check {SMALL}")
    assert main(["chek", SMALL]) == 2
    assert "unknown command 'chek'" in capsys.readouterr().err


def test_pdf_without_latex_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--pdf", SMALL]) == 2
    assert one_line_error(capsys.readouterr().err) == "derive: error: --pdf goes with --latex FILE.tex"


def test_closed_pipe_ends_quietly() -> None:
    # 30 reports of about 5 KB: more than a pipe holds (64 KB), so derive is still writing when
    # the reader goes away, whether the files are checked one by one or in parallel
    proc = subprocess.Popen([sys.executable, "-m", "derive.cli", "check", "--json", *[SMALL] * 30],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1)
    proc.stdout.close()  # the reader goes away, as `| head -c 1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == cli.BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipe" not in err and err == ""


@pytest.mark.parametrize("argv, message", [
    (["--timeout", "nan"], "argument --timeout: expected a finite number of seconds, got nan"),
    (["--timeout", "inf"], "argument --timeout: expected a finite number of seconds, got inf"),
    (["--timeout", "1e308"], "argument --timeout: must be at most 1000000 seconds, got 1e308"),
    (["--timeout-run", "-1"], "argument --timeout-run: must be positive, got -1"),
    (["--jobs", "0"], "argument --jobs: must be positive, got 0"),
    (["--jobs", "-3"], "argument --jobs: must be positive, got -3"),
    (["--jobs", "1000"], "argument --jobs: at most"),
    (["--max-digits", "x"], "argument --max-digits: expected a whole number, got 'x'"),
    (["--format", "yaml"], "argument --format: invalid choice: 'yaml'"),
])
def test_bad_option_values_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", *argv, SMALL]) == 2
    assert one_line_error(capsys.readouterr().err).startswith(f"derive: error: {message}")


@pytest.mark.parametrize("n, code", [("-3", 2), ("6", 2), ("1", 0)])
def test_identities_check_sizes_is_bounded(n: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["identities", "--check-sizes", n, "--json"]) == code
    if code == 2:
        one_line_error(capsys.readouterr().err)


# --- outputs ---------------------------------------------------------------------------------------------------

def test_an_output_never_replaces_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(TWO_LAYER)
    before = spec.read_text()
    for argv in (["check", "--json", "-o", str(spec), str(spec)], ["check", "--latex", str(spec), str(spec)],
                 ["latex", str(spec), "-o", str(spec)],
                 ["check", "--json", "-o", str(tmp_path / "." / "spec.yaml"), str(spec)]):
        assert main(argv) == 2, argv
        assert "derive never overwrites an input" in one_line_error(capsys.readouterr().err)
    assert spec.read_text() == before


def test_one_document_per_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tex = tmp_path / "out.tex"
    assert main(["check", "--latex", str(tex), SMALL, str(ROOT / "derivations/regression_rows.yaml")]) == 2
    assert "--latex writes one document" in one_line_error(capsys.readouterr().err)
    assert main(["check", "--format", "latex", "-o", str(tex), SMALL, SMALL]) == 2
    capsys.readouterr()
    assert not tex.exists()


def test_missing_output_folder_is_found_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / "out.json"
    assert main(["check", "--json", "-o", str(target), SMALL]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing was checked
    assert one_line_error(captured.err) == f"derive: error: -o {target}: the folder {target.parent} does not exist"


def test_outputs_follow_the_umask_and_keep_a_replaced_files_mode(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    r = run("check", "--json", "-o", str(out), SMALL, preexec_fn=lambda: os.umask(0o027))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    out.chmod(0o604)
    files.write_atomic(out, "x")
    assert stat.S_IMODE(out.stat().st_mode) == 0o604 and out.read_text() == "x"


def test_no_temporary_file_stays_when_a_write_is_interrupted(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.json"

    def killed(fd: int, payload: bytes) -> None:
        raise SystemExit(cli.TERMINATED)  # what the CLI's SIGTERM handler raises

    monkeypatch.setattr(files, "_write_all", killed)
    with pytest.raises(SystemExit):
        files.write_atomic(target, "data")
    assert list(tmp_path.iterdir()) == []


def test_temporary_files_of_killed_runs_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.json.{dead.stdout.strip()}.abcdef12.tmp"  # left by a SIGKILL
    stale.write_text("half")
    other = tmp_path / ".out.json.notours.tmp"
    other.write_text("someone else's")
    files.write_atomic(tmp_path / "out.json", "whole")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert stale.name not in names and other.name in names and "out.json" in names


def test_sigterm_ends_a_run_cleanly(tmp_path: Path) -> None:
    spec = tmp_path / "slow.yaml"
    spec.write_text("network: {inputs: 1, layers: [{units: 300, activation: softmax}], loss: cross_entropy}\n")
    out = tmp_path / "out.json"
    proc = subprocess.Popen([sys.executable, "-m", "derive.cli", "check", "--json", "-o", str(out), str(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == cli.TERMINATED and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.yaml"]


def test_write_errors_name_the_users_path(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "out.json").mkdir()  # a folder where the file should go
    with pytest.raises(OSError) as info:
        files.write_atomic(folder / "out.json", "x")
    assert str(folder / "out.json") in str(info.value) and ".tmp" not in str(info.value)


# --- untrusted text --------------------------------------------------------------------------------------------

def test_control_characters_never_reach_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "evil.yaml"
    spec.write_text('name: "evil\\e[8m hidden \\u202e"\n' + TWO_LAYER + "claims:\n  dW2: dZ2 @ A1.T\n")
    for fmt in ("terminal", "text", "markdown", "json", "latex"):
        main(["check", "--format", fmt, str(spec)])
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\u202e" not in out, fmt
        if fmt not in ("text", "latex"):  # (text names nothing when all is proven; LaTeX shows a mark)
            assert ("\\u001b[8m" if fmt == "json" else "\\x1b[8m") in out, fmt
    main(["check", "--json", str(spec)])
    assert json.loads(capsys.readouterr().out)["name"] == "evil\x1b[8m hidden \u202e"  # the JSON value is intact


def test_latex_claims_are_not_rich_markup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "markup.yaml"
    spec.write_text(textwrap.dedent("""\
        network:
          equations: |
            z = w*x
            L = (z - y)**2
          parameters: [w]
        claims_latex:
          - '\\frac{\\partial L}{\\partial w} = 2 [z - y] x'
        """))
    main(["check", str(spec)])
    out = capsys.readouterr().out
    assert "2 [z - y] x" in out


def test_printable_and_shown() -> None:
    assert printable("a\x1bb\x9bc\u202ed\te") == "a\\x1bb\\x9bc\\u202ed\\x09e"
    assert printable("a\nb", keep_newlines=True) == "a\nb"
    big = [[list(range(100))] * 100] * 100
    assert len(shown(big)) <= 200
    assert shown(10 ** 5000) == "<an integer of about 5001 digits>"
    import sympy

    assert shown(sympy.Matrix(30, 30, lambda i, j: i + j)) == "<MutableDenseMatrix of 900 items>"


# --- errors: one line, exit 2 or 3; the other results kept -----------------------------------------------------

def test_yaml_merge_keys_are_yaml(tmp_path: Path) -> None:
    spec = tmp_path / "merge.yaml"
    spec.write_text("network:\n  inputs: 2\n  layers:\n    - &d {units: 2, activation: tanh}\n"
                    "    - {<<: *d, units: 1}\n  loss: mse\n")
    assert derive.load(spec).spec.sizes == [2, 2, 1]


def test_device_and_folder_are_refused_before_reading(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "/dev/zero"]) == 2
    assert one_line_error(capsys.readouterr().err) == "derive: error: /dev/zero: is a device, not a spec file"
    assert main(["check", str(ROOT / "derivations")]) == 2
    assert "is a folder" in one_line_error(capsys.readouterr().err)


def test_file_size_is_checked_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text("# " + "x" * 2000 + "\n" + TWO_LAYER)
    assert main(["check", "--max-file-size", "1000", str(spec)]) == 2
    assert "bytes, more than the limit of 1000 (--max-file-size)" in one_line_error(capsys.readouterr().err)


def test_an_item_that_fails_keeps_the_other_results(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from derive.check import session

    real = session.Derivation.check_spec_claim

    def broken(self: session.Derivation, claim: session.ClaimSpec) -> derive.Check:
        if claim.target == "db2":
            raise KeyError("a bug")
        return real(self, claim)

    monkeypatch.setattr(session.Derivation, "check_spec_claim", broken)
    code = main(["check", "--no-rules", "--format", "text", str(ROOT / "derivations/two_layer_classifier.yaml")])
    captured = capsys.readouterr()
    assert code == 3
    assert "7 claims: 5 proven, 1 refuted as expected, 1 unproven." in captured.out  # the others' results
    line = one_line_error(captured.err)
    assert line.startswith("derive: internal error on ") and "KeyError" in line and line.endswith("(please report this)")


def test_derives_own_long_statements_are_not_the_users(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from derive.lang import formula as F

    saved = dict(F.LIMITS)
    try:
        # a limit below the length of derive's own rules: the user's formulas fit, its own do not
        assert main(["check", "--format", "latex", "--max-formula-length", "40",
                     str(ROOT / "derivations/two_layer_classifier.yaml")]) in (0, 1)
        captured = capsys.readouterr()
        assert "characters long" not in captured.err and "\\begin{document}" in captured.out
    finally:
        F.LIMITS.update(saved)


# --- budgets in the Python API and the plugin ---------------------------------------------------------------------

def test_python_api_claims_have_a_budget() -> None:
    d = derive.load(ROOT / "derivations/three_layer_softmax.yaml")
    c = d.check_claim("dW1", "dZ1 @ X.T", timeout=1e-4)
    assert c.verdict == "unproven" and c.method == Method.TIMEOUT and "timeout=S" in (c.detail or "")
    from derive.testing import assert_claim

    with pytest.raises(AssertionError, match="timeout"):
        assert_claim(d, "dW1", "dZ1 @ X.T", timeout=1e-4)
    assert d.check_claim("dW1", "dZ1 @ X.T", timeout=None).verdict == "proven"


def test_report_does_not_rebuild_a_truth_that_ran_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from derive.check import session

    d = derive.load(SMALL)
    built = []

    def slow(net: object, strategy: str) -> object:
        built.append(1)
        time.sleep(5)
        raise AssertionError("not reached")

    monkeypatch.setattr(session, "make_truth", slow)
    start = time.monotonic()
    report = d.report(timeout=1, timeout_run=0.5)
    assert time.monotonic() - start < 3
    assert built == [1] and report.strategy.startswith("not built")
    assert all(c.method == Method.TIMEOUT for c in [*report.rules, *report.claims])


def test_plugin_budget_covers_loading(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nderive_files = *.yaml\nderive_timeout_run = 0.001\n")
    pytester.makefile(".yaml", slow=Path(SMALL).read_text())
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["*not checked: loading ran out of the file's time budget*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("error, detail", [(MemoryError, "out of memory"), (RecursionError, "nested too deeply"),
                                           (ValueError("Exceeds the limit (4300 digits) for integer string "
                                                       "conversion"), "more than 4,300 digits")])
def test_a_resource_limit_in_an_item_is_unproven_never_refuted(error: BaseException, detail: str,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from derive.check import session

    def out_of(self: session.Derivation, claim: session.ClaimSpec) -> derive.Check:
        raise error

    monkeypatch.setattr(session.Derivation, "check_spec_claim", out_of)
    assert main(["check", "--no-rules", "--json", str(ROOT / "derivations/two_layer_classifier.yaml")]) == 1
    captured = capsys.readouterr()
    claims = json.loads(captured.out)["claims"]
    assert all(c["verdict"] == "unproven" and detail in c["detail"] for c in claims)
    assert captured.err == ""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # (the lost Timeout, on purpose)
def test_a_timeout_lost_in_a_callback_fires_again() -> None:
    """A Timeout raised inside a gc callback or __del__ is ignored by Python: the budget must
    still end the block."""
    import gc

    from derive.util import budget

    def swallow(phase: str, info: dict[str, int]) -> None:
        time.sleep(0.3)  # the alarm fires in here, and Python ignores the exception it raises

    start = time.monotonic()
    gc.callbacks.append(swallow)
    try:
        with pytest.raises(budget.Timeout):
            with budget.limit(0.1):
                gc.collect()
                while True:
                    pass
    finally:
        gc.callbacks.remove(swallow)
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("name", ["nul_byte", "integer_digits", "alias_expansion", "fullwidth_name"])
def test_latex_command_errors_are_one_line(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.tex"
    assert main(["latex", str(ROOT / "tests" / "bad_inputs" / f"{name}.yaml"), "-o", str(out)]) == 2
    assert one_line_error(capsys.readouterr().err).startswith("derive: error: ")
    assert not out.exists()


def test_a_matrix_in_a_message_is_named_by_its_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "axis.yaml"
    spec.write_text("network: {inputs: 30, layers: [{units: 30}], loss: mse, batch: 2}\n"
                    "claims:\n  - db1: sum(dZ1, axis=W1)\n  - dW1: dZ1 @ X.T\n")
    assert main(["check", "--no-rules", "--format", "text", str(spec)]) == 2
    captured = capsys.readouterr()
    line = one_line_error(captured.err)
    assert "expected a whole number, got a 30×30 matrix" in line and "Matrix(" not in line
    assert "2 claims: 1 proven, 1 unproven." in captured.out  # the other claim is still reported


def test_plugin_file_budget_starts_at_its_first_item(pytester: pytest.Pytester) -> None:
    """Items run long after collection (other tests run first): that time is not theirs."""
    pytester.makeini("[pytest]\nderive_files = *.yaml\nderive_timeout_run = 3\n")
    pytester.makepyfile(test_a="import time\n\ndef test_slow():\n    time.sleep(4)\n")
    pytester.makefile(".yaml", z_spec=Path(SMALL).read_text())
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1 + 10)
