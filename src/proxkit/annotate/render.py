"""HTML → plain text the way different extractors write it, so refiners learn (and are scored) on more
than one tool's line breaks.

Each renderer keeps the whole visible page (no main-content filtering) and returns its lines as the tool
writes them: `resiliparse` one line per block element, nothing blank (Common Crawl WET-like);
`html-text` paragraphs separated by blank lines, a `<br>` a line end, the page title first; `inscriptis`
a layout-preserving rendering: list bullets and indentation, table cells side by side in columns;
`markdown` (html2text) Markdown as LLM-era corpora hold it; `justext` jusText's paragraphs with its filtering
off. The seed set is rendered with `TRAINING_RENDERINGS` by default; the other two are extractors the
bundled refiners never saw, to judge them on line-break styles they were not trained on.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import html2text
import html_text
import inscriptis
import justext
from resiliparse.extract.html2text import extract_plain_text

from proxkit.layout import canonical_line

HIDDEN = [  # CSS selectors of elements a browser does not show
    "[hidden]",
    '[style*="display:none" i]',
    '[style*="display: none" i]',
    '[style*="visibility:hidden" i]',
    '[style*="visibility: hidden" i]',
]


def clean_lines(text: str) -> list[str]:
    """Lines of `text` with inner whitespace collapsed, stripped, empty ones dropped."""
    return [line for line in map(canonical_line, text.splitlines()) if line]


def page_lines(html: str) -> list[str]:
    """The visible text of a page as a crawl gives it: one stripped line per block element (paragraph, heading,
    list item, table row, div, br, ...), no head (title included), script, style, noscript, form or hidden
    (`HIDDEN`) content, no alt texts or list bullets, whitespace inside a line collapsed, empty lines dropped.
    Extraction by resiliparse."""
    text = extract_plain_text(
        html,
        preserve_formatting=True,
        main_content=False,
        list_bullets=False,
        alt_texts=False,
        links=False,
        form_fields=False,
        noscript=False,
        skip_elements=HIDDEN,
    )
    return clean_lines(text)


def tool_lines(text: str) -> list[str]:
    """A tool's text as lines: its line ends and blank lines kept, trailing whitespace and leading and
    trailing blank lines dropped."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    first = next((i for i, line in enumerate(lines) if line), len(lines))
    return lines[first:]


def html_text_lines(html: str) -> list[str]:
    """html-text (lxml) with its layout guess: blank lines between paragraphs and headings."""
    return tool_lines(html_text.extract_text(html, guess_layout=True))


def inscriptis_lines(html: str) -> list[str]:
    """inscriptis: indentation, list bullets and tables laid out as the browser shows them."""
    return tool_lines(inscriptis.get_text(html))


def markdown_lines(html: str) -> list[str]:
    """html2text: Markdown with `#` headings, `*` bullets, `**` emphasis, links and images as `[text](url)`,
    tables with `|`, blank lines between blocks, no hard wrapping."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    return tool_lines(converter.handle(html))


def justext_lines(html: str) -> list[str]:
    """jusText with its filtering off: every paragraph of its segmentation, boilerplate included, one per
    line (a `<br>` inside a paragraph does not end its line; table cells are paragraphs of their own)."""
    return clean_lines("\n".join(paragraph.text for paragraph in justext.justext(html, frozenset())))


RENDERINGS: dict[str, Callable[[str], list[str]]] = {
    "resiliparse": page_lines,
    "html-text": html_text_lines,
    "inscriptis": inscriptis_lines,
    "markdown": markdown_lines,
    "justext": justext_lines,
}
TRAINING_RENDERINGS = ("resiliparse", "html-text", "inscriptis")
DEFAULT_RENDERING = "resiliparse"


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not text; lxml refuses them
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*>")  # lxml refuses one in a str (the text is decoded already)


def render(html: str, rendering: str) -> list[str]:
    """The page's lines as `rendering` (a key of `RENDERINGS`) writes them (control characters, which no
    browser shows, and an XML declaration removed first)."""
    try:
        renderer = RENDERINGS[rendering]
    except KeyError:
        raise ValueError(f"unknown rendering {rendering!r}; known: {', '.join(RENDERINGS)}") from None
    return renderer(_CONTROL.sub("", _XML_DECLARATION.sub("", html)))


def parse_renderings(names: str) -> list[str]:
    """`resiliparse,html-text` → the names, each checked against `RENDERINGS` (order kept, no repeats)."""
    chosen = list(dict.fromkeys(name.strip() for name in names.split(",") if name.strip()))
    unknown = [name for name in chosen if name not in RENDERINGS]
    if unknown or not chosen:
        raise ValueError(f"unknown rendering(s) {unknown or names!r}; known: {', '.join(RENDERINGS)}")
    return chosen
