"""Labelled page collections shipped as one `.tar.xz` each in `webpages_labelled_more/`, read without
unpacking: Google-Trends-2017 (BoilerNet's node labels) and Big9+Chaos (news pages of 2005-2017 with gold
text files). Every page gives a chunk example per rendering and the doc example its labels support
(`proxkit.annotate.human.labelled_page_examples`); its site is read from the page (`proxkit.annotate.sites`)."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import lxml.html

from proxkit.annotate.human import DOC_KEEP_MIN_WORDS, decode, labelled_page_examples
from proxkit.annotate.render import DEFAULT_RENDERING
from proxkit.annotate.sites import page_site
from proxkit.layout import canonical_line
from proxkit.train.seed import SeedExample

GOOGLE_TRENDS = "google-trends-2017.tar.xz"
BIG9_CHAOS = "big9-chaos.tar.xz"

_ESCAPED_NUM_TAGS = re.compile(r"&lt;span __num=&quot;\d+&quot;&gt;|&lt;span __num=\"\d+\"&gt;|&lt;/span&gt;")


def archive_files(archive: Path) -> dict[str, bytes]:
    """Every regular file of the archive by its path below the archive's top folder."""
    with tarfile.open(archive, "r:xz") as tar:
        members = [member for member in tar.getmembers() if member.isfile()]
        return {member.name.split("/", 1)[-1]: tar.extractfile(member).read() for member in members}


def boilernet_page(data: bytes) -> tuple[str, str]:
    """A BoilerNet page (every text node wrapped in `<span __boilernet_label="0|1">`) → (its HTML, its gold:
    the text of the nodes labelled 1, one per line). Some pages carry their node numbers as escaped text
    (`&lt;span __num="3"&gt;`): that is markup of the labelling tool, not text, and is removed."""
    html = _ESCAPED_NUM_TAGS.sub("", decode(data))
    root = lxml.html.document_fromstring(html.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    texts = (canonical_line(node.text_content()) for node in root.xpath('//span[@__boilernet_label="1"]'))
    return html, "\n".join(text for text in texts if text)


def import_google_trends(
    folder: Path, doc_keep_min_words: int = DOC_KEEP_MIN_WORDS, renderings: Sequence[str] = (DEFAULT_RENDERING,)
) -> Iterator[SeedExample]:
    """Seed examples of `folder/google-trends-2017.tar.xz` (collection `google-trends-2017`)."""
    files = archive_files(folder / GOOGLE_TRENDS)
    for path in sorted((p for p in files if p.startswith("prepared_html/")), key=_page_number):
        source = f"google-trends-2017/{PurePosixPath(path).stem}"
        html, gold = boilernet_page(files[path])
        site = page_site(html, source)
        yield from labelled_page_examples(
            source,
            "google-trends-2017",
            site,
            html,
            gold,
            renderings,
            doc_keep_min_words,
            collection="google-trends-2017",
        )


def import_big9_chaos(
    folder: Path, doc_keep_min_words: int = DOC_KEEP_MIN_WORDS, renderings: Sequence[str] = (DEFAULT_RENDERING,)
) -> Iterator[SeedExample]:
    """Seed examples of `folder/big9-chaos.tar.xz` (collection `big9-chaos`, subsets `big5-05` … `chaos-all`):
    each `SUBSET/html/NAME.htm[l]` with its gold `SUBSET/gold/NAME.txt` (pages without a gold are skipped)."""
    files = archive_files(folder / BIG9_CHAOS)
    for path in sorted(files):
        parts = PurePosixPath(path)
        if parts.parent.name != "html" or parts.suffix not in (".htm", ".html"):
            continue
        subset = parts.parent.parent.name
        gold = files.get(f"{subset}/gold/{parts.stem}.txt")
        if gold is None:
            continue
        html = decode(files[path])
        source = f"{subset}/{parts.stem}"
        about = {"collection": "big9-chaos", "page_type": "article" if subset.startswith("big5") else None}
        site = page_site(html, source)
        yield from labelled_page_examples(
            source, subset, site, html, decode(gold), renderings, doc_keep_min_words, **about
        )


def _page_number(path: str) -> tuple[int, str]:
    """`prepared_html/gt_12.html` sorts before `gt_101.html`."""
    digits = re.findall(r"\d+", PurePosixPath(path).stem)
    return (int(digits[-1]) if digits else 1 << 30, path)
