"""Plain text: what failed, written out as an assertion (the pytest plugin's and
:mod:`derive.testing`'s failure text), then the summary line."""

from __future__ import annotations

from derive.check.document import Document
from derive.render import words
from derive.render.base import Renderer


class TextRenderer(Renderer):
    name = "text"
    extension = ".txt"
    description = "plain text: each check that is not as expected, written out, then the summary"

    def render(self, document: Document) -> str:
        r = document.report
        blocks = [words.assertion(c, document.true_forms.get(c.target)) for c in r.rules + r.claims if not c.ok]
        return "\n\n".join([*blocks, words.summary_line(r)])
