"""A static, self-contained HTML page: sections of figures (PNG, embedded as data URIs), tables and text.

A figure is built by a function; when it raises, its place in the page shows the error and the rest of the
page is still written. The page needs no server and nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Figure", "Page", "Section", "render_figure"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
table { border-collapse: collapse; font-size: .85em; margin: .8em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; } th { background: #f4f4f4; }
td:first-child, th:first-child { text-align: left; }
.error { border: 1px solid #d33; background: #fff3f3; padding: .6em; white-space: pre-wrap; font-size: .8em; }
.note { background: #f6f8fa; padding: .6em .8em; border-left: 3px solid #4a7; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: .8em; }
"""

_LOADED = """
window.addEventListener("load", function () {
  var images = document.querySelectorAll("figure img");
  var ok = Array.prototype.filter.call(images, function (img) { return img.complete && img.naturalWidth > 0; });
  document.body.setAttribute("data-figures", images.length);
  document.body.setAttribute("data-figures-loaded", ok.length);
});
"""
"""Marks on <body> how many figures the browser decoded, so a headless browser can check the page."""


def render_figure(build: Callable[[], object], dpi: int = 110) -> bytes:
    """PNG bytes of the matplotlib figure ``build()`` returns; the figure is closed afterwards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = build()
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)


@dataclass
class Figure:
    """A figure to build, with its caption; ``png`` or ``error`` is set when it is rendered."""

    build: Callable[[], object]
    caption: str = ""
    png: bytes | None = None
    error: str | None = None

    def render(self) -> "Figure":
        try:
            self.png = render_figure(self.build)
        except Exception as err:  # a figure that fails is shown as its error; the page goes on
            self.error = f"{type(err).__name__}: {err}\n\n{traceback.format_exc(limit=4)}"
        return self

    def html(self) -> str:
        caption = f"<figcaption>{html.escape(self.caption)}</figcaption>" if self.caption else ""
        if self.png is None:
            message = html.escape(self.error or "not rendered")
            return f'<figure class="failed"><div class="error">This figure could not be drawn: {message}</div>' \
                   f"{caption}</figure>"
        data = base64.b64encode(self.png).decode("ascii")
        return f'<figure><img alt="{html.escape(self.caption)}" src="data:image/png;base64,{data}">{caption}</figure>'


@dataclass
class Section:
    """A titled part of the page: paragraphs, notes, figures, tables and preformatted text, in order."""

    title: str
    parts: list = field(default_factory=list)

    def text(self, value: str) -> "Section":
        self.parts.append(f"<p>{html.escape(value)}</p>")
        return self

    def note(self, value: str) -> "Section":
        self.parts.append(f'<p class="note">{html.escape(value)}</p>')
        return self

    def figure(self, build: Callable[[], object], caption: str = "") -> "Section":
        self.parts.append(Figure(build, caption))
        return self

    def table(self, frame: pd.DataFrame, digits: int = 3) -> "Section":
        self.parts.append(frame.to_html(index=False, float_format=lambda x: f"{x:.{digits}g}", border=0,
                                        na_rep="–"))
        return self

    def pre(self, value: str) -> "Section":
        self.parts.append(f"<pre>{html.escape(value)}</pre>")
        return self

    def html(self) -> str:
        body = "\n".join(part.render().html() if isinstance(part, Figure) else part for part in self.parts)
        return f"<section><h2>{html.escape(self.title)}</h2>\n{body}\n</section>"


@dataclass
class Page:
    """The report page: a title, an introduction and its sections."""

    title: str
    intro: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        self.sections.append(Section(title))
        return self.sections[-1]

    def html(self) -> str:
        intro = f"<p>{html.escape(self.intro)}</p>" if self.intro else ""
        body = "\n".join(section.html() for section in self.sections)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}'
                f"</title><style>{_STYLE}</style><script>{_LOADED}</script></head>\n<body>\n"
                f"<h1>{html.escape(self.title)}</h1>\n{intro}\n{body}\n</body></html>\n")
