"""Reading a spec file: YAML through a safe loader that also refuses duplicate keys and
alias bombs; nothing in a file is ever executed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from derive.errors import SpecError
from derive.spec.model import Limits


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and counts aliases."""

    aliases_seen = 0
    max_aliases = Limits.max_aliases

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > self.max_aliases:
                mark = self.peek_event().start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"more than {self.max_aliases} YAML aliases (alias bomb?)", mark
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                duplicate = False
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key) if _hashable(key) else None
        return super().construct_mapping(node, deep=deep)


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def read_yaml(path: str | Path, limits: Limits = Limits()) -> Any:
    """Read a YAML file safely; errors become :class:`SpecError` with line numbers."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(file, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(file, "", f"cannot read: {exc}") from None
    loader = _Loader(text)
    loader.max_aliases = limits.max_aliases
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise SpecError(file, where, f"invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise SpecError(file, "", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SpecError(file, "", "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
