"""Reading a spec file: YAML through a safe loader that also refuses duplicate keys, alias
bombs, huge integers and huge files; nothing in a file is ever executed."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from derive.errors import SpecError
from derive.spec.model import Limits

#: nodes a document may hold once its aliases are expanded (an alias bomb of 81 aliases
#: expands to 9⁹ items: cheap as a graph, but not to print or to walk)
MAX_EXPANDED_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, counts aliases and bounds integers."""

    aliases_seen = 0
    max_aliases = Limits.max_aliases
    max_digits = Limits.max_digits

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
        for key_node, _ in node.value:  # the keys as written: merged ones (<<: *defaults) may be overridden
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                duplicate = False
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_short_key(key)}", key_node.start_mark
                )
            seen.add(key) if _hashable(key) else None
        return super().construct_mapping(node, deep=deep)  # (which flattens the merge keys first)

    def construct_yaml_int(self, node: Any) -> Any:
        text = str(node.value).replace("_", "").lstrip("+-")
        if len(text) > self.max_digits:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {len(text)} digits (limit {self.max_digits}, --max-digits)",
                node.start_mark)
        return super().construct_yaml_int(node)

    def construct_document(self, node: Any) -> Any:
        size = _expanded_size(node, {})
        if size > MAX_EXPANDED_NODES:
            raise yaml.constructor.ConstructorError(
                None, None, f"the document expands to more than {MAX_EXPANDED_NODES} items through its "
                            "aliases (alias bomb?)", node.start_mark)
        return super().construct_document(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """Nodes of the document with every alias expanded, counted over the node graph
    (each distinct node once, so the cost is the file's size, not the expansion's)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = MAX_EXPANDED_NODES + 1  # a cycle (a recursive alias) counts as too large
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[id(node)] = min(size, MAX_EXPANDED_NODES + 1)
    return memo[id(node)]


def _short_key(key: Any) -> str:
    from derive.util.text import shown

    return shown(key)


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def read_text(path: str | Path, limits: Limits = Limits()) -> str:
    """A spec file's text: a regular file (or a pipe) of at most ``limits.max_file_bytes``,
    in UTF-8; the size is checked before reading (``/dev/zero`` is refused, not read)."""
    file = str(path)
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise SpecError(file, "", "is a folder, not a spec file")
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
                raise SpecError(file, "", "is a device, not a spec file")
            if info.st_size > limits.max_file_bytes:
                raise SpecError(file, "", f"the file has {info.st_size} bytes, more than the limit of "
                                          f"{limits.max_file_bytes} (--max-file-size)")
            data = f.read(limits.max_file_bytes + 1)
    except FileNotFoundError:
        raise SpecError(file, "", "no such file") from None
    except IsADirectoryError:
        raise SpecError(file, "", "is a folder, not a spec file") from None
    except PermissionError:
        raise SpecError(file, "", "cannot read: permission denied") from None
    except OSError as exc:
        raise SpecError(file, "", f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limits.max_file_bytes:
        raise SpecError(file, "", f"more than {limits.max_file_bytes} bytes (--max-file-size)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(file, "", f"not UTF-8 text (byte {exc.start + 1})") from None


def read_yaml(path: str | Path, limits: Limits = Limits()) -> Any:
    """Read a YAML file safely; errors become :class:`SpecError` with line numbers."""
    return parse_yaml(read_text(path, limits), str(path), limits)


def parse_yaml(text: str, file: str, limits: Limits = Limits()) -> Any:
    """YAML text to data through the safe loader; errors become :class:`SpecError`."""
    loader = None
    try:
        loader = _Loader(text)  # (the reader checks the characters here: NUL is an error, not a crash)
        loader.max_aliases = limits.max_aliases
        loader.max_digits = limits.max_digits
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise SpecError(file, where, f"invalid YAML: {what}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        where = f"line {line}, column {exc.position - (text.rfind(chr(10), 0, exc.position) + 1) + 1}"
        what = "a NUL character" if exc.character in (0, "\0") else f"the special character #x{_code(exc.character)}"
        raise SpecError(file, where, f"invalid YAML: {what} is not allowed") from None
    except yaml.YAMLError as exc:
        raise SpecError(file, "", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SpecError(file, "", "invalid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def _code(character: Any) -> str:
    return f"{character:04X}" if isinstance(character, int) else f"{ord(character):04X}"
