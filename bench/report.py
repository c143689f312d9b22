"""Documents made of headings, paragraphs, tables and figures, rendered as markdown, HTML, CSV or LaTeX.

The leaderboard builds its pages as `Page` objects once; each output format is a renderer over them,
so the numbers in the markdown, the HTML page, the CSV files and the LaTeX tables are the same ones.
Inline text uses a small markdown subset: `code`, [text](target) and **bold**.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import re
from dataclasses import dataclass, field
from typing import Optional, Union

FORMATS = ("md", "html", "csv", "latex")


@dataclass
class Cell:
    """One table cell: its text, and optionally a link target and code styling."""

    text: str
    href: Optional[str] = None
    code: bool = False
    suffix: str = ""  # plain text after the (code) text, outside the link: `model` (profile)

    def markdown(self) -> str:
        text = f"`{self.text}`" if self.code else _md_escape(self.text)
        text = f"[{text}]({self.href})" if self.href else text
        return text + _md_escape(self.suffix)

    def plain(self) -> str:
        return self.text + self.suffix


@dataclass
class Heading:
    text: str
    level: int = 2
    anchor: Optional[str] = None


@dataclass
class Paragraph:
    text: str  # inline markdown subset


@dataclass
class BulletList:
    items: list[str]  # inline markdown subset
    anchors: list[Optional[str]] = field(default_factory=list)  # an anchor placed at the start of each item


@dataclass
class Table:
    """A table with display cells and the raw values behind them (for CSV).

    `notes` are numbered footnotes referenced from the cells as `(note k)`.
    """

    id: str
    caption: str
    headers: list[str]
    rows: list[list[Cell]]
    raw: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    align: Optional[list[str]] = None  # "l" / "r" per column
    print_skip: tuple[str, ...] = ()  # columns left out of the LaTeX table (long text, links)


@dataclass
class Figure:
    """A PNG figure: `name` is its file name under plots/."""

    name: str
    caption: str
    png: bytes
    alt: str = ""  # short text for the image itself; the caption goes below it

    @property
    def alt_text(self) -> str:
        return self.alt or self.caption.split(":")[0]


Block = Union[Heading, Paragraph, BulletList, Table, Figure]


@dataclass
class Page:
    slug: str  # file stem of the markdown page
    title: str
    blocks: list[Block] = field(default_factory=list)

    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]

    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


# --------------------------------------------------------------------------- helpers

_MD_SPECIAL = re.compile(r"([|\\*_\[\]<])")


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def anchor_of(text: str) -> str:
    """A stable anchor id (lower case, letters, digits and dashes)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


_INLINE = re.compile(r"`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)|\*\*([^*]+)\*\*")


def _inline_html(text: str, link: callable) -> str:
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        if m.group(1) is not None:
            out.append(f"<code>{html.escape(m.group(1))}</code>")
        elif m.group(2) is not None:
            target = link(m.group(3))
            inner = _inline_html(m.group(2), link)
            out.append(f'<a href="{html.escape(target)}">{inner}</a>' if target else inner)
        else:
            out.append(f"<strong>{html.escape(m.group(4))}</strong>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


# --------------------------------------------------------------------------- markdown

def table_markdown(t: Table) -> str:
    align = t.align or ["l"] * len(t.headers)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(_md_escape(h) for h in t.headers) + " |", "| " + " | ".join(sep) + " |"]
    for row in t.rows:
        lines.append("| " + " | ".join(c.markdown() for c in row) + " |")
    return "\n".join(lines)


def page_markdown(page: Page, plots_dir: str = "plots") -> str:
    out = [f"# {page.title}", ""]
    for b in page.blocks:
        if isinstance(b, Heading):
            anchor = f'<a id="{b.anchor}"></a>' if b.anchor else ""
            out += [f"{'#' * b.level} {b.text}{(' ' + anchor) if anchor else ''}", ""]
        elif isinstance(b, Paragraph):
            out += [b.text, ""]
        elif isinstance(b, BulletList):
            anchors = b.anchors or [None] * len(b.items)
            out += [f"- {f'<a id={chr(34)}{a}{chr(34)}></a>' if a else ''}{item}" for item, a in zip(b.items, anchors)] + [""]
        elif isinstance(b, Table):
            if b.caption:
                out += [f"**{b.caption}**", ""]
            out += [table_markdown(b), ""]
            if b.notes:
                out += [f"{k}. {n}" for k, n in enumerate(b.notes, 1)] + [""]
        elif isinstance(b, Figure):
            out += [f"![{_md_escape(b.alt_text)}]({plots_dir}/{b.name})", "", f"*{_md_escape(b.caption)}*", ""]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- HTML (one self-contained file)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1em;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3}
td.r{text-align:right;white-space:nowrap}
code{background:#f4f4f4;padding:0 3px}
img{max-width:100%;border:1px solid #eee}
nav{background:#fafafa;border:1px solid #ddd;padding:0.5em 1em}
section{border-top:2px solid #888;margin-top:2em}
figcaption{font-style:italic;font-size:0.9em}
"""


def page_html(page: Page, link: callable, ident: callable = lambda anchor: anchor) -> str:
    """One page as an HTML <section>; figures are embedded as base64 data URIs.

    `link` maps a link target to an in-file one (None: no link); `ident` maps an anchor to its element id.
    """
    out = [f'<section id="{page.slug}">', f"<h1>{html.escape(page.title)}</h1>"]
    for b in page.blocks:
        if isinstance(b, Heading):
            out.append(f'<h{b.level} id="{ident(b.anchor or anchor_of(b.text))}">{html.escape(b.text)}</h{b.level}>')
        elif isinstance(b, Paragraph):
            out.append(f"<p>{_inline_html(b.text, link)}</p>")
        elif isinstance(b, BulletList):
            anchors = b.anchors or [None] * len(b.items)
            items = "".join(f"<li{f' id={chr(34)}{ident(a)}{chr(34)}' if a else ''}>{_inline_html(i, link)}</li>"
                            for i, a in zip(b.items, anchors))
            out.append(f"<ul>{items}</ul>")
        elif isinstance(b, Table):
            align = b.align or ["l"] * len(b.headers)
            cap = f"<caption><strong>{html.escape(b.caption)}</strong></caption>" if b.caption else ""
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.headers)
            body = []
            for row in b.rows:
                cells = []
                for c, a in zip(row, align):
                    text = f"<code>{html.escape(c.text)}</code>" if c.code else html.escape(c.text)
                    if c.href and link(c.href):
                        text = f'<a href="{html.escape(link(c.href))}">{text}</a>'
                    text += html.escape(c.suffix)
                    cells.append(f'<td class="r">{text}</td>' if a == "r" else f"<td>{text}</td>")
                body.append("<tr>" + "".join(cells) + "</tr>")
            out.append(f'<table id="{b.id}">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
            if b.notes:
                out.append("<ol>" + "".join(f"<li>{_inline_html(n, link)}</li>" for n in b.notes) + "</ol>")
        elif isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(b.alt_text)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    out.append("</section>")
    return "\n".join(out)


def site_html(title: str, pages: list[Page]) -> str:
    """Every page in one HTML file. Each page's anchors are prefixed with its slug (a run listed on two pages
    keeps two distinct ids); links between pages become in-file anchors; nothing external is referenced."""
    slugs = {p.slug for p in pages}

    def linker(slug: str):
        def link(target: str):
            if target.startswith("#"):
                return f"#{slug}--{target[1:]}"
            stem, _, frag = target.partition("#")
            stem = stem[:-3] if stem.endswith(".md") else stem
            if stem in slugs:
                return f"#{stem}--{frag}" if frag else f"#{stem}"
            return None  # never an external reference: the link text stays, without a link
        return link

    sections = [page_html(p, linker(p.slug), lambda a, s=p.slug: f"{s}--{a}") for p in pages]
    nav = "".join(f'<li><a href="#{p.slug}">{html.escape(p.title)}</a></li>' for p in pages)
    body = "\n".join(sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{_CSS}</style>\n</head>\n<body>\n<nav><ul>{nav}</ul></nav>\n{body}\n</body>\n</html>\n")


# --------------------------------------------------------------------------- CSV

def table_csv(t: Table) -> str:
    """The raw values behind a table (one row per table row), or its display text when it has none."""
    buf = io.StringIO()
    if t.raw:
        keys: list[str] = []
        for r in t.raw:
            keys += [k for k in r if k not in keys]
        w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        for r in t.raw:
            w.writerow({k: _csv_value(r.get(k)) for k in keys})
    else:
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(t.headers)
        for row in t.rows:
            w.writerow([c.plain() for c in row])
    return buf.getvalue()


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if v != v else repr(v)
    return str(v)


# --------------------------------------------------------------------------- LaTeX (booktabs)

_TEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
        "ε": r"$\varepsilon$", "×": r"$\times$", "≤": r"$\leq$", "≥": r"$\geq$", "–": "--", "—": "---",
        "→": r"$\rightarrow$", "±": r"$\pm$", "⚠": "(!)", "<": r"\textless{}", ">": r"\textgreater{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch if ord(ch) < 128 else "?") for ch in text)


def table_latex(t: Table) -> str:
    keep = [i for i, h in enumerate(t.headers) if h not in t.print_skip]
    aligns = t.align or ["l"] * len(t.headers)
    align = "".join(aligns[i] for i in keep)
    lines = [
        "% generated by `facebench leaderboard`; needs \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{tex_escape(t.caption)}}}",
        f"\\label{{tab:{t.id}}}",
        f"\\begin{{tabular}}{{{align}}}",
        "\\toprule",
        " & ".join(tex_escape(t.headers[i]) for i in keep) + " \\\\",
        "\\midrule",
    ]
    for row in t.rows:
        lines.append(" & ".join(tex_escape(row[i].plain()) for i in keep) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if t.notes:
        lines.append("\\par\\smallskip\\footnotesize " + " ".join(f"({k}) {tex_escape(_plain(n))}" for k, n in enumerate(t.notes, 1)))
    lines += ["\\end{table}", ""]
    return "\n".join(lines)


def _plain(text: str) -> str:
    """Inline markdown reduced to its text."""
    return _INLINE.sub(lambda m: m.group(1) or m.group(2) or m.group(4) or "", text)
