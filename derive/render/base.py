"""The renderer protocol: an output format is one :class:`Renderer` subclass.

A renderer turns the report document (:class:`~derive.check.document.Document`, plain
data) into text or a terminal renderable; it decides nothing about the mathematics and
takes its words from :mod:`derive.render.words`.  Subclasses register themselves by
``name`` when their module is imported; :mod:`derive.render.formats` imports them all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from derive.check.document import Document

#: every output format by name (filled as renderer modules are imported)
REGISTRY: dict[str, type[Renderer]] = {}


class Renderer(ABC):
    """One output format: ``render(document)`` gives a string (or, for the terminal, a
    rich renderable); ``extension`` is the file suffix its output is written to."""

    name: ClassVar[str]
    extension: ClassVar[str]
    description: ClassVar[str] = ""
    #: whether the format needs the derivation written out (Document.sections)
    needs_sections: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
                raise ValueError(f"two output formats named {cls.name!r}: "
                                 f"{REGISTRY[cls.name].__qualname__} and {cls.__qualname__}")
            REGISTRY[cls.name] = cls

    @abstractmethod
    def render(self, document: Document) -> Any:
        """The document in this format (str, or a rich renderable for the terminal)."""


def get(name: str) -> Renderer:
    """A renderer by format name; KeyError names the formats there are."""
    try:
        return REGISTRY[name]()
    except KeyError:
        raise KeyError(f"unknown output format {name!r} (expected one of: {', '.join(sorted(REGISTRY))})") from None
