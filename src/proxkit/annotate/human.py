"""Human-labelled pages and quality labels as ProX seed examples.

A labelled page becomes the text a crawl would give (`page_lines`: one line per block element) and its gold
(the content people kept). `align` decides which lines are content by an order-preserving word alignment,
and `program_for` writes the chunk program that removes the rest. Sources, under `shared/data`:

- `webpages_labelled/<subset>/input/X.html` with gold `GoldStandard/X.txt`, for the subsets of `SUBSETS`
  → chunk-stage examples, plus doc-stage ones (`drop_doc()` for all-noise pages, `keep_doc()` for pages
  with at least `DOC_KEEP_MIN_WORDS` words of content);
- `dclm_quality_labels/labels.jsonl` (`text`, `label` 1 = keep) → doc-stage examples.

`python -m proxkit.annotate.seed_set --shared shared/data -o seed.jsonl` writes the whole set (with the newer
collections of `proxkit.annotate.wcxb`) and prints counts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from urllib.parse import urlsplit

import lxml.etree
import lxml.html
import orjson
from loguru import logger
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

from proxkit.annotate.render import DEFAULT_RENDERING, page_lines, render
from proxkit.inline_noise import normalize_calls, with_normalize, words
from proxkit.program import DropDoc, KeepDoc, Program, Stage
from proxkit.train.seed import DOC_KEEP_MIN_WORDS, SeedExample

MIN_RUN = 3  # words: the alignment needs a common run this long to anchor shorter matches
MIN_SHARE = 0.5  # a line is content when more than this share of its words is aligned

# --------------------------------------------------------------------------------------------- page text


def decode(data: bytes) -> str:
    """Bytes of unknown encoding → str: UTF-8 when the bytes are valid UTF-8, else the encoding declared by
    an HTML meta charset or detected by uchardet (with UTF-8 and cp1252 fallbacks; undecodable bytes dropped)."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return bytes_to_str(data, detect_encoding(data, from_html_meta=True))


# --------------------------------------------------------------------------------------------- gold readers

_CLEANEVAL_MARKER = re.compile(r"<[phl]>", re.IGNORECASE)
_ONLY_COMMENT = re.compile(r"<!--.*-->", re.DOTALL)  # an annotator's note such as "this page contains no article"
_L3S_CONTENT = " or ".join(
    f"contains(concat(' ', normalize-space(@class), ' '), ' x-nc-sel{i} ')" for i in (1, 2, 3)
)  # headline, full text, supplemental text; 4 (comments), 5 (related) and 0 are not content
_L3S_XPATH = f"//*[{_L3S_CONTENT}][not(ancestor::*[{_L3S_CONTENT}])]"


def cleaneval_gold(data: bytes) -> str:
    """CleanEval-style gold: an optional first `URL:` line, then text with `<p>`, `<h>`, `<l>` markers before
    each paragraph, heading or list item. → one paragraph per line, markers dropped, entities unescaped; a gold
    that is only an HTML comment (`<!-- this page contains no article -->`) is empty."""
    lines = decode(data).splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    if first < len(lines) and lines[first].lstrip().startswith("URL:"):
        lines = lines[first + 1 :]
    paragraphs = _CLEANEVAL_MARKER.split("\n".join(lines))
    gold = "\n".join(p for p in (" ".join(html.unescape(p).split()) for p in paragraphs) if p)
    return "" if _ONLY_COMMENT.fullmatch(gold) else gold


def l3s_gold(data: bytes) -> str:
    """L3S-GN1 gold: the page as annotated HTML; content is the text of the elements of class `x-nc-sel1`
    (headline), `x-nc-sel2` (full text) or `x-nc-sel3` (supplemental), one line per outermost element."""
    if not data.strip():
        return ""
    parser = lxml.html.HTMLParser(encoding="utf-8")
    root = lxml.html.document_fromstring(decode(data).encode("utf-8"), parser=parser)
    texts = (" ".join(element.text_content().split()) for element in root.xpath(_L3S_XPATH))
    return "\n".join(text for text in texts if text)


def readability_gold(data: bytes) -> str:
    """Readability gold: the cleaned article as HTML; its visible text is the content."""
    return "\n".join(page_lines(decode(data)))


# --------------------------------------------------------------------------------------------- alignment


def align(lines: list[str], gold: str) -> list[bool]:
    """Which lines are content (True), by an order-preserving alignment of the page's words with the gold's.

    Rule: the page's word sequence (all lines, in order) is aligned with the gold's word sequence by
    `matching_blocks`: difflib's longest-match-first recursion (no junk heuristic), which matches each gold
    word at most once and never crosses two matches. The longest runs, of `MIN_RUN` (3) words or more, anchor
    the alignment; a shorter match can only be made later, between the same two anchors (or an anchor and an
    end) in both texts, so a word counts only where the gold has it at that place: a nav line "India" before
    an article that mentions India aligns nothing, as the gold has no words before the article's first words,
    while a one-word list item of the gold between two aligned paragraphs is aligned. A gold that shares no
    run of `MIN_RUN` words with the page aligns nothing. A line is content when more than `MIN_SHARE` (half)
    of its words are aligned. A line without words (such as "|" or "* * *") is content when the nearest lines
    with words before and after it are both content. Empty gold: every line is noise.
    """
    return line_labels(aligned_words(lines, gold))


def aligned_words(lines: list[str], gold: str) -> list[list[bool]]:
    """Per line, which of its `words` the alignment of `align` matched with the gold's."""
    line_words = [words(line) for line in lines]
    page_words = [word for tokens in line_words for word in tokens]
    aligned = [False] * len(page_words)
    gold_words = words(gold)
    if gold_words:
        for start, _, size in matching_blocks(page_words, gold_words, MIN_RUN):
            aligned[start : start + size] = [True] * size
    per_line, start = [], 0
    for tokens in line_words:
        per_line.append(aligned[start : start + len(tokens)])
        start += len(tokens)
    return per_line


def line_labels(aligned: list[list[bool]]) -> list[bool]:
    """Content lines from their aligned words: more than `MIN_SHARE` of a line's words aligned; a line without
    words as its neighbours (`_fill_wordless`)."""
    return _fill_wordless([None if not flags else sum(flags) / len(flags) > MIN_SHARE for flags in aligned])


def matching_blocks(a: list[str], b: list[str], min_anchor: int) -> list[tuple[int, int, int]]:
    """Order-preserving matching blocks (i, j, size), a[i:i+size] == b[j:j+size], sorted; none at all when the
    longest common run is shorter than `min_anchor`.

    As difflib's `get_matching_blocks`, the longest match of a region is taken first and the parts left and
    right of it are matched recursively. Where the longest match occurs more than once on the page (a headline
    repeated by the page title), the earliest and the latest occurrence are compared and the one closer to an
    already matched neighbour block is taken, rather than always the earliest."""
    forward = SequenceMatcher(None, a, b, autojunk=False)
    backward = SequenceMatcher(None, a[::-1], b[::-1], autojunk=False)
    n, m = len(a), len(b)
    blocks: list[tuple[int, int, int]] = []
    regions = [(0, n, 0, m)]
    while regions:
        alo, ahi, blo, bhi = regions.pop()
        i, j, size = forward.find_longest_match(alo, ahi, blo, bhi)
        if size == 0 or (not blocks and size < min_anchor):
            continue
        ri, rj, _ = backward.find_longest_match(n - ahi, n - alo, m - bhi, m - blo)
        late_i, late_j = n - ri - size, m - rj - size
        if _gap_to_neighbour(late_i, size, alo, ahi, n) < _gap_to_neighbour(i, size, alo, ahi, n):
            i, j = late_i, late_j
        blocks.append((i, j, size))
        regions += [(alo, i, blo, j), (i + size, ahi, j + size, bhi)]
    return sorted(blocks)


def _gap_to_neighbour(i: int, size: int, alo: int, ahi: int, n: int) -> float:
    """Words between a[i:i+size] and the matched block bounding its region (none at the ends of the page)."""
    left = i - alo if alo > 0 else float("inf")
    right = ahi - (i + size) if ahi < n else float("inf")
    return min(left, right)


def _fill_wordless(keep: list[bool | None]) -> list[bool]:
    """Label each None (a line without words) True when the nearest labels before and after it are both True."""
    before: list[bool] = []
    last = False
    for label in keep:
        before.append(last)
        last = last if label is None else label
    filled: list[bool] = [False] * len(keep)
    last = False
    for i in range(len(keep) - 1, -1, -1):
        label = keep[i]
        filled[i] = (before[i] and last) if label is None else label
        last = last if label is None else label
    return filled


# --------------------------------------------------------------------------------------------- programs


def program_for(lines: list[str], keep: list[bool]) -> Program:
    """The chunk program that keeps exactly the content lines: one `remove_lines` per maximal run of noise
    lines (document-global, 0-based, inclusive), or `keep_chunk()` when nothing is removed."""
    if len(lines) != len(keep):
        raise ValueError(f"{len(lines)} lines but {len(keep)} labels")
    return Program.removing([not kept for kept in keep])


# --------------------------------------------------------------------------------------------- examples


def doc_example(source: str, subset: str, site: str, text: str, keep: bool, **about: str | None) -> SeedExample:
    """A doc-stage example: `keep_doc()` or `drop_doc()`. `about`: `collection`, `page_type`."""
    program = Program((KeepDoc() if keep else DropDoc(),)).render()
    return SeedExample(source, subset, site, str(Stage.DOC), text, program, label=int(keep), **about)


def chunk_example(
    source: str,
    subset: str,
    site: str,
    lines: list[str],
    gold: str,
    aligned: list[list[bool]] | None = None,
    **about: str | None,
) -> SeedExample:
    """A chunk-stage example: the page's lines, aligned with the gold (`aligned_words`, unless the caller
    has it already), and the program that cleans them. `about`: `collection`, `page_type`, `rendering`,
    `language`."""
    aligned = aligned_words(lines, gold) if aligned is None else aligned
    keep = line_labels(aligned)
    noise = [[not flag for flag in flags] for flags in aligned]
    inline = normalize_calls(lines, [not kept for kept in keep], noise, protected=gold)
    program = with_normalize(program_for(lines, keep), inline).render()
    labels = [int(kept) for kept in keep]
    text = "\n".join(lines)
    return SeedExample(source, subset, site, str(Stage.CHUNK), text, program, labels=labels, gold=gold, **about)


def rendered_examples(
    source: str, subset: str, site: str, html: str, gold: str, renderings: Sequence[str], **about: str | None
) -> list[SeedExample]:
    """One chunk example per rendering of the page that has any text (`proxkit.annotate.render`); a page a
    tool cannot read is logged and left out of that rendering."""
    examples = []
    for rendering in renderings:
        try:
            lines = render(html, rendering)
        except (ValueError, lxml.etree.LxmlError) as error:
            logger.warning(f"{source}: {rendering} cannot render the page ({error}); left out of that rendering")
            continue
        if any(line.strip() for line in lines):
            examples.append(chunk_example(source, subset, site, lines, gold, rendering=rendering, **about))
    return examples


# --------------------------------------------------------------------------------------------- subsets

_TEXT_ID = re.compile(rb'\A\s*<text\s+id="([^"]+)"')  # the wrapper CleanEval put around each page
_URL_LINE = re.compile(rb"\A\s*URL:\s*(\S+)")


def _host(url: bytes | None) -> str | None:
    host = urlsplit(url.decode("ascii", "ignore")).hostname if url else None
    return host.removeprefix("www.") if host else None


def cleaneval_site(subset: str, stem: str, page: bytes, gold: bytes) -> str:
    """The host of the page's URL (the `<text id=...>` wrapper, else the gold's `URL:` line)."""
    match = _TEXT_ID.match(page) or _URL_LINE.match(gold)
    return _host(match.group(1) if match else None) or f"{subset}/{stem}"


def portal_site(subset: str, stem: str, page: bytes, gold: bytes) -> str:
    """CleanPortalEval names its files `<host>_<section>_<n>`."""
    return stem.split("_")[0]


_NUMBERED = re.compile(r"-\d+$")


def readability_site(subset: str, stem: str, page: bytes, gold: bytes) -> str:
    """Readability's test pages are named after their site, numbered: `nytimes-3` → `readability/nytimes`."""
    return f"{subset}/{_NUMBERED.sub('', stem)}"


def file_site(subset: str, stem: str, page: bytes, gold: bytes) -> str:
    """No site known: each page is its own site."""
    return f"{subset}/{stem}"


@dataclass(frozen=True)
class Subset:
    """How to read one labelled subset: its gold reader, where its pages' sites come from, and the collection
    it belongs to (None: its own name)."""

    gold: Callable[[bytes], str]
    site: Callable[[str, str, bytes, bytes], str]
    collection: str | None = None


SUBSETS: dict[str, Subset] = {
    "cleaneval-dev": Subset(cleaneval_gold, cleaneval_site, "cleaneval"),
    "cleaneval-final": Subset(cleaneval_gold, cleaneval_site, "cleaneval"),
    "cleanportaleval": Subset(cleaneval_gold, portal_site),
    "l3s-gn1": Subset(l3s_gold, file_site),
    "readability": Subset(readability_gold, readability_site),
}


def import_subset(
    root: Path,
    name: str,
    doc_keep_min_words: int | None = DOC_KEEP_MIN_WORDS,
    renderings: Sequence[str] = (DEFAULT_RENDERING,),
) -> Iterator[SeedExample]:
    """Examples of one subset of `webpages_labelled` (pages without a gold file or without text are skipped).

    Each page gives a chunk example per rendering, and a doc example of its first rendering when
    `doc_decision` makes one."""
    subset = SUBSETS[name]
    for page_path in sorted((root / name / "input").glob("*.html"), key=_natural):
        gold_path = root / name / "GoldStandard" / f"{page_path.stem}.txt"
        if not gold_path.exists():
            continue
        page, gold_bytes = page_path.read_bytes(), gold_path.read_bytes()
        source, site = f"{name}/{page_path.stem}", subset.site(name, page_path.stem, page, gold_bytes)
        gold, collection = subset.gold(gold_bytes), subset.collection or name
        yield from labelled_page_examples(
            source, name, site, decode(page), gold, renderings, doc_keep_min_words, collection=collection
        )


def doc_examples_of(chunk: SeedExample, keep_min_words: int | None) -> list[SeedExample]:
    """The doc example a chunk example's page supports (`doc_decision`), as a list of none or one."""
    keep = doc_decision(chunk.text.split("\n"), chunk.labels or [], keep_min_words)
    if keep is None:
        return []
    about = {field: getattr(chunk, field) for field in ("collection", "page_type", "rendering", "language")}
    return [doc_example(chunk.source, chunk.subset, chunk.site, chunk.text, keep, **about)]


def labelled_page_examples(
    source: str,
    subset: str,
    site: str,
    html: str,
    gold: str,
    renderings: Sequence[str],
    doc_keep_min_words: int | None,
    **about: str | None,
) -> list[SeedExample]:
    """A labelled page's chunk examples, one per rendering (`rendered_examples`), and the doc example its
    first rendering supports (`doc_examples_of`)."""
    chunks = rendered_examples(source, subset, site, html, gold, renderings, **about)
    return chunks + doc_examples_of(chunks[0], doc_keep_min_words) if chunks else []


def doc_decision(lines: list[str], labels: list[int], keep_min_words: int | None) -> bool | None:
    """The doc-stage label a labelled page supports: drop when none of its lines is content (empty gold, or a
    gold that is not on the page), keep when its content lines hold at least `keep_min_words` words (None:
    never), else no doc example."""
    content_words = sum(len(words(line)) for line, label in zip(lines, labels, strict=True) if label)
    if content_words == 0:
        return False
    return True if keep_min_words is not None and content_words >= keep_min_words else None


def _natural(path: Path) -> tuple[int, str]:
    """Sort `2.html` before `10.html`."""
    return (int(path.stem), "") if path.stem.isdigit() else (1 << 30, path.stem)


def import_webpages(
    root: Path, doc_keep_min_words: int | None = DOC_KEEP_MIN_WORDS, renderings: Sequence[str] = (DEFAULT_RENDERING,)
) -> Iterator[SeedExample]:
    """Examples of every subset of `webpages_labelled` found under `root`, subset by subset."""
    for name in SUBSETS:
        if (root / name).is_dir():
            yield from import_subset(root, name, doc_keep_min_words, renderings)


def import_dclm(path: Path) -> Iterator[SeedExample]:
    """Doc-stage examples from DCLM quality labels (JSONL of `text` and `label`, 1 = keep). The file has no
    ids or URLs: the source is `dclm/<line number>` and each document is its own site."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines):
            if not raw.strip():
                continue
            text, label = _dclm_record(raw, f"{path}:{number + 1}")
            source = f"dclm/{number}"
            yield doc_example(source, "dclm", source, text, keep=label == 1)


def _dclm_record(raw: bytes, where: str) -> tuple[str, int]:
    """The `text` and `label` of one JSONL line, or a ValueError naming the file and line."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"{where}: not a JSON line ({error})") from None
    text, label = (record.get("text"), record.get("label")) if isinstance(record, dict) else (None, None)
    if not isinstance(text, str) or label not in (0, 1):
        raise ValueError(f"{where}: needs a string `text` and a `label` of 0 or 1")
    return text, int(label)
