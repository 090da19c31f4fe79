"""A static, self-contained HTML page: a summary, a table of contents and sections (which fold) of figures
(PNG, embedded as data URIs), tables and text.

A figure is built by a function; when it raises, its place in the page shows the error and the rest of the
page is still written. The page needs no server and nothing from the network. :meth:`Page.write` also writes
every figure as SVG and PDF and every table as CSV beside the page (``figures/``, ``tables/``), each linked
from its place, for papers.
"""

from __future__ import annotations

import base64
import html
import io
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .._io import atomic_path, write_atomic

__all__ = ["Figure", "Page", "Section", "Table", "render_figure"]

FORMATS = ("png", "svg", "pdf")
"""What every figure is rendered as: PNG in the page, SVG and PDF beside it."""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; display: inline; }
details { border-bottom: 1px solid #ccc; margin-top: 1.6em; padding-bottom: .6em; }
summary { cursor: pointer; padding: .2em 0; } summary::marker { color: #888; }
nav ol { columns: 2; font-size: .9em; margin: .4em 0 1em; } nav a { color: #245; text-decoration: none; }
.summary { background: #f3f7fb; border-left: 4px solid #2b6ca3; padding: .6em 1em; margin: 1em 0; }
.summary ul { margin: .3em 0; padding-left: 1.2em; } .summary .warning { color: #8a3b00; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; } .files { font-size: .8em; color: #777; } .files a { color: #457; }
table { border-collapse: collapse; font-size: .85em; margin: .8em 0; } .wide { overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; } th { background: #f4f4f4; }
td:first-child, th:first-child { text-align: left; }
.error { border: 1px solid #d33; background: #fff3f3; padding: .6em; white-space: pre-wrap; font-size: .8em; }
.note { background: #f6f8fa; padding: .6em .8em; border-left: 3px solid #4a7; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: .8em; }
@media print { details { border: 0; } summary::marker { content: ""; } }
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


def render_figure(build: Callable[[], object], dpi: int = 110, formats=("png",)) -> dict[str, bytes]:
    """The matplotlib figure ``build()`` returns, as bytes of each of ``formats``; the figure is closed
    afterwards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = build()
    try:
        out = {}
        for fmt in formats:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=_metadata(fmt))
            out[fmt] = buffer.getvalue()
        return out
    finally:
        plt.close(fig)


def _metadata(fmt: str) -> dict:
    """No creation date in SVG and PDF files, so a report written twice from the same results is the same."""
    return {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt, {})


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].rstrip("-") or "item"


@dataclass
class Figure:
    """A figure to build, with its caption; ``files`` (format → bytes) or ``error`` is set when it is
    rendered; ``names`` (format → file name beside the page) when the page is written to a folder."""

    build: Callable[[], object]
    caption: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None
    names: dict[str, str] = field(default_factory=dict)

    @property
    def png(self) -> bytes | None:
        return self.files.get("png")

    def render(self, formats=("png",)) -> "Figure":
        if self.files or self.error:
            return self
        try:
            self.files = render_figure(self.build, formats=formats)
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
        return (f'<figure><img alt="{html.escape(self.caption)}" src="data:image/png;base64,{data}">{caption}'
                f"{_links(self.names)}</figure>")


@dataclass
class Table:
    """A table of the page; ``name`` is its CSV file beside the page once the page is written to a folder."""

    frame: pd.DataFrame
    digits: int = 3
    name: str | None = None

    def html(self) -> str:
        table = self.frame.to_html(index=False, float_format=lambda x: f"{x:.{self.digits}g}", border=0,
                                   na_rep="–")
        return f'<div class="wide">{table}</div>' + _links({"csv": self.name} if self.name else {})


def _links(names: dict[str, str]) -> str:
    if not names:
        return ""
    links = " · ".join(f'<a href="{html.escape(name)}">{fmt.upper()}</a>' for fmt, name in names.items())
    return f'<div class="files">{links}</div>'


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
        self.parts.append(Table(frame, digits))
        return self

    def pre(self, value: str) -> "Section":
        self.parts.append(f"<pre>{html.escape(value)}</pre>")
        return self

    def html(self, anchor: str = "") -> str:
        body = "\n".join(part.html() if isinstance(part, (Figure, Table)) else part for part in self.parts)
        where = f' id="{anchor}"' if anchor else ""
        return f"<details open{where}><summary><h2>{html.escape(self.title)}</h2></summary>\n{body}\n</details>"


@dataclass
class Page:
    """The report page: a title, an introduction, its summary lines (findings and warnings) and its sections."""

    title: str
    intro: str = ""
    sections: list[Section] = field(default_factory=list)
    findings: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def section(self, title: str) -> Section:
        self.sections.append(Section(title))
        return self.sections[-1]

    def finding(self, line: str, rank: int = 0) -> None:
        """A line of the summary that opens the page: what the study found, with its interval; lines are shown
        by ``rank`` (then in the order given)."""
        self.findings.append((rank, line))

    def warn(self, line: str) -> None:
        """A line of the summary a reader must see before trusting the rest."""
        if line not in self.warnings:
            self.warnings.append(line)

    def write(self, folder) -> Path:
        """Render every figure as PNG, SVG and PDF, write the SVG and PDF files to ``folder/figures`` and every
        table as CSV to ``folder/tables`` (files left from an earlier report are removed), then the page to
        ``folder/index.html``; returns its path."""
        folder = Path(folder)
        kept = set()
        for s, section in enumerate(self.sections, 1):
            for n, part in enumerate(section.parts, 1):
                stem = f"{s:02d}-{n:02d}-{_slug(getattr(part, 'caption', '') or section.title)}"
                if isinstance(part, Figure) and part.render(FORMATS).png is not None:
                    part.names = {fmt: f"figures/{stem}.{fmt}" for fmt in FORMATS[1:]}
                    for fmt, name in part.names.items():
                        _write_bytes(folder / name, part.files[fmt])
                        kept.add(name)
                elif isinstance(part, Table):
                    part.name = f"tables/{stem}.csv"
                    write_atomic(folder / part.name, part.frame.to_csv(index=False))
                    kept.add(part.name)
        for old in [*folder.glob("figures/*"), *folder.glob("tables/*")]:
            if old.relative_to(folder).as_posix() not in kept:
                old.unlink()
        out = folder / "index.html"
        write_atomic(out, self.html())
        return out

    def html(self) -> str:
        for section in self.sections:
            for part in section.parts:
                if isinstance(part, Figure):
                    part.render()
        intro = f"<p>{html.escape(self.intro)}</p>" if self.intro else ""
        anchors = [f"s{i}-{_slug(section.title, 30)}" for i, section in enumerate(self.sections, 1)]
        toc = "".join(f'<li><a href="#{a}">{html.escape(s.title)}</a></li>' for a, s in zip(anchors, self.sections))
        nav = f'<nav><strong>Contents</strong><ol>{toc}</ol></nav>' if len(self.sections) > 1 else ""
        body = "\n".join(section.html(anchor) for anchor, section in zip(anchors, self.sections))
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}'
                f"</title><style>{_STYLE}</style><script>{_LOADED}</script></head>\n<body>\n"
                f"<h1>{html.escape(self.title)}</h1>\n{intro}\n{self._summary()}\n{nav}\n{body}\n</body></html>\n")

    def _summary(self) -> str:
        if not (self.findings or self.warnings):
            return ""
        ranked = sorted(self.findings, key=lambda finding: finding[0])
        found = "".join(f"<li>{html.escape(line)}</li>" for _, line in ranked)
        warned = "".join(f'<li class="warning">{html.escape(line)}</li>' for line in self.warnings)
        parts = [f"<p><strong>What the study found</strong></p><ul>{found}</ul>" if found else "",
                 f"<p><strong>Before you read on</strong></p><ul>{warned}</ul>" if warned else ""]
        return f'<div class="summary" id="summary">{"".join(parts)}</div>'
