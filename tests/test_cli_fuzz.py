"""The command line under arbitrary options: whatever the values, ``derive`` ends with one
of its exit codes and one-line messages — never a traceback, never exit 3 (a bug)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.cli import main
from derive.lang import formula as F

SPECS = [str(ROOT / "derivations" / "linear_regression.yaml"), "missing.yaml", "/dev/null",
         str(ROOT / "tests" / "bad_inputs" / "nul_byte.yaml"), str(ROOT / "tests" / "bad_inputs" / "invalid_yaml.yaml")]
NUMBERS = st.sampled_from(["0", "-3", "1", "2", "3.5", "nan", "inf", "-inf", "1e308", "1e-9", "9" * 30, "x", "",
                           "0x10", "1_000", "\x1b[8m", "²"])
FLAGS = ["--timeout", "--timeout-run", "--jobs", "--max-parameters", "--max-batch", "--max-symbols",
         "--max-formula-length", "--max-exponent", "--max-nesting", "--max-file-size", "--max-digits", "--max-memory"]
SWITCHES = ["--json", "--no-rules", "--explain", "--global", "--local", "--pdf", "--notation", "--format",
            "--strategy", "-o", "--latex"]
VALUES = {"--notation": st.sampled_from(["default", "course", "fancy"]),
          "--format": st.sampled_from(["json", "text", "markdown", "terminal", "latex", "yaml", ""]),
          "--strategy": st.sampled_from(["auto", "global", "local", "best"])}


@st.composite
def argv(draw: st.DrawFn, out: Path) -> list[str]:
    args: list[str] = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            args += [draw(st.sampled_from(FLAGS)), draw(NUMBERS)]
        else:
            switch = draw(st.sampled_from(SWITCHES))
            args.append(switch)
            if switch in VALUES:
                args.append(draw(VALUES[switch]))
            elif switch in ("-o", "--latex"):
                args.append(str(out / draw(st.sampled_from(["a.json", "b.tex", "missing/c.json", "."]))))
    files = draw(st.lists(st.sampled_from(SPECS), min_size=0, max_size=2))
    command = draw(st.sampled_from(["check", "check", "check", "latex", "identities", "bogus"]))
    return [command, *args, *files]


def test_cli_options_fuzz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = dict(F.LIMITS)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.data())
    def one(data: st.DataObject) -> None:
        args = data.draw(argv(tmp_path))
        if args[0] == "identities":  # its own options only, or a usage error: keep it fast
            args = ["identities", *[a for a in args[1:] if a in ("--json",)]]
        if "--pdf" in args and "--latex" in args:
            args.remove("--pdf")  # (pdflatex is slow and optional)
        code = main(args)
        captured = capsys.readouterr()
        assert code in (0, 1, 2), (args, code, captured.err)
        assert "Traceback" not in captured.err
        for line in captured.err.splitlines():
            assert line.startswith(("derive:", "usage:", "wrote ", " ", "Verify", "positional", "options",
                                    "Run ", "  ")) or not line.strip(), (args, line)
        assert "\x1b" not in captured.err
        assert dict(F.LIMITS) == saved  # nothing of one run leaks into the next

    one()
