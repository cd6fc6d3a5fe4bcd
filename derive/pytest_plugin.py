"""pytest plugin: spec files collected as tests, one item per rule and per claim.

Registered through the ``pytest11`` entry point, so it is imported by every pytest run
in an environment where derive is installed: this module imports pytest and the standard
library only, and derive's machinery (SymPy, the LaTeX grammar, rich) loads when the first
spec file is collected.  Files matching the ini option ``derive_files`` (default
``derivations/*.yaml``, relative to the rootdir) are collected when pytest visits them
(list their folder in ``testpaths`` or name it on the command line).  Items run through
the CLI's runner (:mod:`derive.check.runner`) with the same time budget: ``derive_timeout``
seconds per item and ``derive_timeout_run`` per file; one that runs out fails as
*unproven (timeout)*.  A failing item reports like a refutation: claimed form, true form,
counterexample, diagnosis.  Disable with ``-p no:derive``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from derive.check.runner import Runner, Task
    from derive.check.session import Derivation
    from derive.records import Check

DEFAULT_GLOBS = ["derivations/*.yaml"]
STRATEGIES = ("auto", "global", "local")  # (derive.check.session.STRATEGIES, not imported: startup)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("derive", "derive: backprop derivations as tests")
    group.addoption("--derive-strategy", default="auto", choices=STRATEGIES,
                    help="truth engine for collected derivations (default auto)")
    group.addoption("--derive-timeout", type=float, default=None, metavar="S",
                    help="seconds per rule or claim (overrides the ini option derive_timeout)")
    parser.addini("derive_files", type="args", default=DEFAULT_GLOBS,
                  help="globs (relative to rootdir) of spec files to collect as tests")
    parser.addini("derive_timeout", default=None,
                  help="seconds per rule or claim before it fails as unproven (timeout); "
                       "default: the derive CLI's --timeout default; 'none': no limit")
    parser.addini("derive_timeout_run", default=None,
                  help="seconds for one spec file's loading, and again for all its items (default: "
                       "the derive CLI's --timeout-run default; 'none': no limit)")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    root = parent.config.rootpath
    try:
        rel = file_path.relative_to(root)
    except ValueError:
        return None
    if any(rel.match(g) for g in parent.config.getini("derive_files")):
        return DeriveFile.from_parent(parent, path=file_path)
    return None


#: the budget read from the ini file and the command line: (per item, per file); "default": the CLI's
Budget = tuple[float | str | None, float | str | None]
BUDGET: pytest.StashKey[Budget] = pytest.StashKey()


@pytest.fixture
def derive_backward() -> Any:
    """``assert_backward``: check a NumPy backward function exactly (see README, "Check
    your backward code"); imported when a test asks for it, not at plugin load."""
    from derive.code import assert_backward

    return assert_backward


def pytest_configure(config: pytest.Config) -> None:
    """Read the budget once, so a bad value is a usage error before anything runs."""
    option = config.getoption("--derive-timeout", None)
    if option is not None and option <= 0:
        raise pytest.UsageError(f"--derive-timeout must be positive, got {option}")
    item = option if option is not None else _seconds(config, "derive_timeout", "default")
    budget: Budget = (item, _seconds(config, "derive_timeout_run", "default"))
    config.stash[BUDGET] = budget


def _seconds(config: pytest.Config, ini: str, default: float | None | str) -> float | None | str:
    raw = config.getini(ini)
    if raw in (None, ""):
        return default
    if str(raw).strip().lower() == "none":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"ini option {ini}: expected a number of seconds or 'none', got {raw!r}") from None
    if value <= 0:
        raise pytest.UsageError(f"ini option {ini}: must be positive, got {raw!r}")
    return value


class DeriveFile(pytest.File):
    """A spec file.  Collecting it reads and validates the spec and names its items (the
    rules of a layer stack follow from the spec alone); the network is built when the first
    item runs, once per file in each process: with pytest-xdist, a worker that runs none
    of a file's items never builds it (every worker collects every file)."""

    _spec: Any = None  # the loaded spec (Spec or ProgramSpec)
    _derivation: Any = None  # a Derivation, or a BlockDerivation for a spec written as NumPy code
    _failed: str | None = None  # why building the network failed (every item of the file says so)
    _runner: Runner | None = None

    def spec(self) -> Any:
        if self._spec is None:
            from derive.spec import load_spec  # lazy: SymPy loads with the first spec file
            from derive.util.budget import limit

            with limit(self._budget()[1]):  # reading has the file's budget (and building it again)
                self._spec = load_spec(self.path)
        return self._spec

    def derivation(self) -> Derivation:
        if self._derivation is None:
            from derive.check.runner import one_line
            from derive.check.session import from_spec
            from derive.errors import DeriveError
            from derive.util.budget import Timeout, limit

            if self._failed is not None:
                raise BuildError(self._failed)
            strategy = self.config.getoption("--derive-strategy")
            # building has the file's budget, and so do its items (from the first one on:
            # items run long after collection, when the other files' tests have run)
            try:
                with limit(self._budget()[1]):
                    self._derivation = from_spec(self.spec(), strategy)
            except DeriveError as exc:
                self._failed = one_line(exc)
                raise BuildError(self._failed) from None
            except Timeout:
                self._failed = (f"{self.path}: not checked: building the network ran out of the file's "
                                "time budget (ini option derive_timeout_run)")
                raise BuildError(self._failed) from None
        return self._derivation

    def _budget(self) -> tuple[float | None, float | None]:
        """(seconds per item, seconds per file) from the ini options and the command line."""
        from derive.check.runner import DEFAULT_TIMEOUT, DEFAULT_TIMEOUT_RUN

        item, whole = self.config.stash[BUDGET]
        timeout = DEFAULT_TIMEOUT if item == "default" else item
        run = DEFAULT_TIMEOUT_RUN if whole == "default" else whole
        assert not isinstance(timeout, str) and not isinstance(run, str)
        return timeout, run

    def runner(self) -> Runner:
        """The CLI's runner with this session's budget; the file's deadline starts at its first item."""
        if self._runner is None:
            from derive.check.runner import Runner

            timeout, run = self._budget()
            self._runner = Runner(timeout, run, hint="raise it with the ini options derive_timeout / "
                                                     "derive_timeout_run").start()
        return self._runner

    def collect(self) -> Iterator[pytest.Item]:
        from derive.check.runner import one_line
        from derive.check.session import items_of
        from derive.errors import DeriveError
        from derive.util.budget import Timeout

        try:
            spec = self.spec()
            items = items_of(spec)
        except DeriveError as exc:
            raise self.CollectError(one_line(exc)) from None
        except Timeout:
            raise self.CollectError(f"{self.path}: not checked: loading ran out of the file's time budget "
                                    "(ini option derive_timeout_run)") from None
        except (MemoryError, RecursionError) as exc:
            raise self.CollectError(f"{self.path}: not checked (limit): {type(exc).__name__} while loading") from None
        if items is None:  # a spec written as NumPy code: its blocks run together, one item
            yield DeriveBlockItem.from_parent(self, name="backward block and claims")
            return
        rules, claims = items
        for i, rule in enumerate(rules):
            name = _item_name(f"rule L{rule.layer} {rule.target} = {rule.formula}")
            yield DeriveItem.from_parent(self, name=name, payload=("rule", i, name))
        for i, claim in enumerate(claims):
            name = _item_name(f"claim {claim}")
            yield DeriveItem.from_parent(self, name=name, payload=("claim", i, name))


class _Reported(pytest.Item):
    """An item whose failure is derive's own text, reported at its spec file."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, DeriveFailure):
            return excinfo.value.text
        if isinstance(excinfo.value, BuildError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


class DeriveBlockItem(_Reported):
    """Every gradient of a backward block, and every claim, of a spec written as NumPy code."""

    def runtest(self) -> None:
        from derive.render.words import why

        parent = self.parent
        assert isinstance(parent, DeriveFile)
        d = parent.derivation()
        item, run = self.config.stash[BUDGET]
        timeout = None if isinstance(run, str) else run
        report = d.report(timeout_run=timeout) if timeout is not None else d.report()
        failed = [c for c in report.claims if not c.ok]
        if failed:
            lines = [f"{c.target} = {c.formula}: {c.verdict}" + (f" (expected {c.expect})" if c.expect != "proven"
                                                                 else "") + f"; {why(c)}" for c in failed]
            raise DeriveFailure(failed[0], "\n".join(lines))


def _item_name(statement: str) -> str:
    # pytest turns '.' in node ids into '::'; show transposes as ᵀ and keep other dots
    return statement.replace(".T", "ᵀ")


class BuildError(Exception):
    """The spec file's network could not be built (bad input met past reading the spec):
    one line, and every item of the file fails with it."""


class DeriveFailure(Exception):
    def __init__(self, check: Check, text: str) -> None:
        super().__init__(text)
        self.check = check
        self.text = text


class DeriveItem(_Reported):
    """One rule or claim: ``payload`` is (kind, index, name), the task found by its index in
    the built derivation (whose list the name was made from)."""

    def __init__(self, *, payload: tuple[str, int, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.payload = payload

    def task(self, d: Derivation) -> Task:
        kind, index, name = self.payload
        if kind == "rule":
            rule = d.rules()[index]
            text = f"rule L{rule.layer} {rule.target} = {rule.formula}"
            task: Task = rule
        else:
            claim = d.claims[index]
            text = f"claim {claim.latex or f'{claim.target} = {claim.formula}'}"
            task = claim
        if _item_name(text) != name:  # (the spec alone and the built network name the same items)
            raise AssertionError(f"derive: item {name!r} is {text!r} in the built network")
        return task

    def runtest(self) -> None:
        from derive.testing import failure_text

        parent = self.parent
        assert isinstance(parent, DeriveFile)
        d = parent.derivation()
        check = parent.runner().check(d, self.task(d))
        if not check.ok:
            raise DeriveFailure(check, failure_text(d, [check]))
