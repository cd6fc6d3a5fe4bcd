"""Every output format derive ships, registered by importing its module.

A new format is one module with one :class:`~derive.render.base.Renderer` subclass, and
its name in the import below.
"""

from __future__ import annotations

from derive.render import html, json, latex, markdown, terminal, text  # noqa: F401  (each registers its format)
from derive.render.base import REGISTRY, Renderer, get

__all__ = ["REGISTRY", "Renderer", "get", "names"]


def names() -> list[str]:
    return sorted(REGISTRY)
