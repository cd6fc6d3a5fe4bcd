"""pytest plugin: spec files collected as tests, one item per rule and per claim.

Registered through the ``pytest11`` entry point.  Files matching the ini option
``derive_files`` (default ``derivations/*.yaml``, relative to the rootdir) are collected
when pytest visits them (list their folder in ``testpaths`` or name it on the command
line).  A failing item reports like a refutation: claimed form, true form,
counterexample, diagnosis.  Disable with ``-p no:derive``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from derive.check.session import Derivation
from derive.errors import DeriveError
from derive.records import Check
from derive.spec import load_spec
from derive.testing import explain

DEFAULT_GLOBS = ["derivations/*.yaml"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("derive", "derive: backprop derivations as tests")
    group.addoption("--derive-strategy", default="auto", choices=("auto", "global", "local"),
                    help="truth engine for collected derivations (default auto)")
    parser.addini("derive_files", type="args", default=DEFAULT_GLOBS,
                  help="globs (relative to rootdir) of spec files to collect as tests")


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


class DeriveFile(pytest.File):
    _derivation: Derivation | None = None

    def derivation(self) -> Derivation:
        if self._derivation is None:
            strategy = self.config.getoption("--derive-strategy")
            self._derivation = Derivation(load_spec(self.path), strategy)
        return self._derivation

    def collect(self) -> Iterator[pytest.Item]:
        try:
            d = self.derivation()
        except DeriveError as exc:
            raise self.CollectError(str(exc)) from None
        for rule in d.rules():
            name = _item_name(f"rule L{rule.layer} {rule.target} = {rule.formula}")
            yield DeriveItem.from_parent(self, name=name, payload=rule)
        for claim in d.claims:
            name = _item_name(f"claim {claim.latex or f'{claim.target} = {claim.formula}'}")
            yield DeriveItem.from_parent(self, name=name, payload=claim)


def _item_name(statement: str) -> str:
    # pytest turns '.' in node ids into '::'; show transposes as ᵀ and keep other dots
    return statement.replace(".T", "ᵀ")


class DeriveFailure(Exception):
    def __init__(self, check: Check, text: str) -> None:
        super().__init__(text)
        self.check = check
        self.text = text


class DeriveItem(pytest.Item):
    def __init__(self, *, payload: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.payload = payload

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, DeriveFile)
        d = parent.derivation()
        if hasattr(self.payload, "rule"):
            check = d.check_rule(self.payload)
        else:
            check = d.check_spec_claim(self.payload)
        if not check.ok:
            raise DeriveFailure(check, explain(check, d))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, DeriveFailure):
            return excinfo.value.text
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name
