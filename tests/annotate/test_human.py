"""The human seed-data importer: page text, gold readers, alignment, programs, examples and the command."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from proxkit.annotate.human import (
    align,
    cleaneval_gold,
    decode,
    doc_decision,
    import_dclm,
    import_subset,
    import_webpages,
    l3s_gold,
    matching_blocks,
    page_lines,
    program_for,
    readability_gold,
)
from proxkit.annotate.seed_set import main
from proxkit.program import KeepChunk, Program, RemoveLines, execute_chunk
from proxkit.train.seed import SeedExample, write_seed

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PAGES = SHARED / "data" / "webpages_labelled"

ARTICLE = [
    "India's economy grew faster than expected in the third quarter, officials said on Monday.",
    "Analysts had forecast slower growth because of weak exports and high interest rates.",
    "The central bank is expected to keep rates unchanged at its next meeting in December.",
]

# --------------------------------------------------------------------------------------------- page text


def test_page_lines_one_line_per_block_visible_text_only() -> None:
    html = """<html><head><title>Site title</title><style>p {color: red}</style>
    <script>var secret = "script text";</script></head><body>
    <nav><a href="/">Home</a> | <a href="/news">News</a></nav>
    <div style="display: none">Hidden by CSS</div><div hidden>Hidden attribute</div>
    <h1>Big   Title</h1><p>First&nbsp;paragraph with <b>bold</b> and <a href="#">a link</a>.</p>
    <p>   </p><ul><li>One</li><li>Two</li></ul>
    <table><tr><td>a1</td><td>b1</td></tr><tr><td>a2</td><td>b2</td></tr></table>
    <p>Line one<br>Line two</p><noscript>Enable JavaScript</noscript>
    <img alt="alt text" src="x.png"><div>Footer &copy; 2024</div></body></html>"""
    assert page_lines(html) == [
        "Home | News",
        "Big Title",
        "First paragraph with bold and a link.",
        "One",
        "Two",
        "a1 b1",
        "a2 b2",
        "Line one",
        "Line two",
        "Footer © 2024",
    ]


def test_decode_utf8_meta_charset_and_detection() -> None:
    assert decode("café".encode()) == "café"
    assert decode(b"\xef\xbb\xbfBOM text") == "BOM text"
    latin = '<meta charset="iso-8859-1"><p>caf\xe9 cr\xe8me br\xfbl\xe9e</p>'.encode("latin-1")
    assert "café crème brûlée" in decode(latin)
    assert decode("“quoted” — dash".encode("cp1252")) == "“quoted” — dash"


# --------------------------------------------------------------------------------------------- gold readers


def test_cleaneval_gold_drops_url_line_and_markers_and_unescapes() -> None:
    raw = (
        "\nURL: http://example.com/a\n\n<h>  A Heading\n<p>The BBC&#039;s first\n   paragraph, wrapped.\n"
        "<l>  * item &amp; more\n"
    )
    assert cleaneval_gold(raw.encode("cp1252")) == "A Heading\nThe BBC's first paragraph, wrapped.\n* item & more"
    assert cleaneval_gold(b"<p>No URL line here") == "No URL line here"


def test_cleaneval_gold_empty_pages() -> None:
    assert cleaneval_gold(b"URL: http://example.com/\n\n   \n") == ""
    assert cleaneval_gold(b"\nURL: http://x.org/\n\n<!-- this page contains no article -->\n") == ""
    assert cleaneval_gold(b"") == ""


def test_l3s_gold_keeps_headline_full_and_supplemental_text_only() -> None:
    html = b"""<html><body>
    <span class="x-nc-sel0">Menu Home News</span>
    <h1><span class="x-nc-sel1">The headline</span></h1>
    <p><span class="x-nc-sel2">Body text with <a href="#">a link</a> inside.</span></p>
    <div class="x-nc-sel3">Supplemental <span class="x-nc-sel2">nested once</span></div>
    <span class="x-nc-sel4">A user comment</span><span class="x-nc-sel5">Related story</span>
    </body></html>"""
    assert l3s_gold(html) == "The headline\nBody text with a link inside.\nSupplemental nested once"
    assert l3s_gold(b"  ") == ""


def test_readability_gold_is_the_text_of_the_cleaned_html() -> None:
    html = b'<div id="readability-page-1"><h2>Title</h2><p>One <em>paragraph</em>.</p><p>Two.</p></div>'
    assert readability_gold(html) == "Title\nOne paragraph.\nTwo."


# --------------------------------------------------------------------------------------------- alignment


def test_nav_word_that_the_article_mentions_is_noise() -> None:
    lines = ["Home", "India", "World", *ARTICLE, "India", "Contact us"]
    keep = align(lines, "\n".join(ARTICLE))
    assert keep == [False, False, False, True, True, True, False, False]


def test_empty_gold_makes_every_line_noise() -> None:
    assert align(ARTICLE, "") == [False, False, False]
    assert align(ARTICLE, "  \n ") == [False, False, False]


def test_alignment_preserves_order() -> None:
    shuffled = "\n".join([ARTICLE[2], ARTICLE[0], ARTICLE[1]])
    keep = align(ARTICLE, shuffled)
    assert keep == [True, True, False]  # the longest in-order run wins; the moved sentence cannot align too


def test_gold_sharing_no_long_run_aligns_nothing() -> None:
    assert align(["the cat", "of the day"], "the day of the cat") == [False, False]


def test_short_gold_lines_between_aligned_paragraphs_are_content() -> None:
    lines = [ARTICLE[0], "Astra Zeneca", "Pfizer", "Share this", ARTICLE[1]]
    gold = "\n".join([ARTICLE[0], "o Astra Zeneca", "o Pfizer", ARTICLE[1]])
    assert align(lines, gold) == [True, True, True, False, True]


def test_repeated_headline_aligns_next_to_the_article() -> None:
    headline = "Storm closes schools across the region"
    lines = [f"News - {headline}", "Home", "Weather", headline, "Photo: a flooded street", *ARTICLE]
    gold = "\n".join([headline, *ARTICLE])
    assert align(lines, gold) == [False, False, False, True, False, True, True, True]


def test_line_is_content_when_most_of_its_words_align() -> None:
    lines = [ARTICLE[0] + " Read more", "Posted in Economy, Markets and World News today", ARTICLE[1]]
    gold = "\n".join([ARTICLE[0], "Posted in Economy", ARTICLE[1]])
    assert align(lines, gold) == [True, False, True]


def test_wordless_lines_follow_their_neighbours() -> None:
    lines = ["* * *", ARTICLE[0], "* * *", ARTICLE[1], "|", "Menu", "»"]
    assert align(lines, "\n".join(ARTICLE[:2])) == [False, True, True, True, False, False, False]


def test_matching_blocks_are_ordered_and_equal() -> None:
    a = ["x", "a", "b", "c", "y", "d", "e", "z"]
    b = ["a", "b", "c", "q", "d", "e"]
    blocks = matching_blocks(a, b, 3)
    assert blocks == [(1, 0, 3), (5, 4, 2)]
    assert matching_blocks(a, ["a", "b"], 3) == []


# --------------------------------------------------------------------------------------------- programs


def test_program_removes_each_noise_run() -> None:
    lines = [f"line {i}" for i in range(8)]
    keep = [False, False, True, True, False, True, False, False]
    program = program_for(lines, keep)
    assert program == Program((RemoveLines(0, 1), RemoveLines(4, 4), RemoveLines(6, 7)))
    assert program.render().splitlines()[0] == "remove_lines(line_start=0, line_end=1)"


def test_program_keeps_a_clean_chunk_and_checks_lengths() -> None:
    assert program_for(["a", "b"], [True, True]) == Program((KeepChunk(),))
    with pytest.raises(ValueError, match="2 lines but 1 labels"):
        program_for(["a", "b"], [True])


def test_executing_the_program_leaves_the_gold_lines() -> None:
    lines = ["Home", "India", *ARTICLE, "Contact us", "Privacy"]
    keep = align(lines, "\n".join(ARTICLE))
    result = execute_chunk("\n".join(lines), program_for(lines, keep))
    assert not result.dropped
    assert result.text.split("\n") == ARTICLE


# --------------------------------------------------------------------------------------------- examples


def test_doc_decision_from_content_words() -> None:
    lines = ["Home", "one two three", "four five"]
    assert doc_decision(lines, [0, 0, 0], 100) is False  # nothing of the page is content
    assert doc_decision(lines, [0, 1, 1], 5) is True
    assert doc_decision(lines, [0, 1, 0], 5) is None  # some content, too little for a keep example
    assert doc_decision(lines, [1, 1, 1], None) is None


def test_seed_example_validates_and_drops_unset_fields() -> None:
    example = SeedExample("s/1", "s", "example.com", "chunk", "a\nb", "keep_chunk()", labels=[1, 1], gold="a\nb")
    assert example.to_dict() == {
        "source": "s/1",
        "subset": "s",
        "site": "example.com",
        "stage": "chunk",
        "text": "a\nb",
        "program": "keep_chunk()",
        "labels": [1, 1],
        "gold": "a\nb",
        "collection": "s",  # the subset, unless told
    }
    with pytest.raises(ValueError, match="one label per line"):
        SeedExample("s/1", "s", "x", "chunk", "a\nb", "keep_chunk()", labels=[1])
    with pytest.raises(ValueError, match="label 0 or 1"):
        SeedExample("s/1", "s", "x", "doc", "a", "keep_doc()")
    with pytest.raises(ValueError):
        SeedExample("s/1", "s", "x", "page", "a", "keep_doc()", label=1)


def _page(*paragraphs: str, nav: str = "Home | Sports | India") -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"<html><body><div>{nav}</div>{body}<div>Copyright 2007</div></body></html>"


def _labelled_tree(root: Path) -> Path:
    pages = root / "webpages_labelled"
    files = {
        "cleaneval-final/input/2.html": '<text id="http://www.example.org/a/b.html" title="t">' + _page(*ARTICLE),
        "cleaneval-final/GoldStandard/2.txt": "URL: http://www.example.org/a/b.html\n\n<p>" + "\n<p>".join(ARTICLE),
        "cleaneval-final/input/10.html": _page("Only links here"),
        "cleaneval-final/GoldStandard/10.txt": "URL: http://blog.example.net/\n\n",
        "cleaneval-final/input/11.html": _page(ARTICLE[0]),  # no gold: skipped
        "cleanportaleval/input/bbc.co.uk_news_01.html": _page(*ARTICLE),
        "cleanportaleval/GoldStandard/bbc.co.uk_news_01.txt": "\nURL: http://bbc.co.uk/news/1\n<p>" + ARTICLE[1],
        "readability/input/nytimes-2.html": _page(*ARTICLE),
        "readability/GoldStandard/nytimes-2.txt": "<div>" + "".join(f"<p>{p}</p>" for p in ARTICLE) + "</div>",
    }
    for name, text in files.items():
        (pages / name).parent.mkdir(parents=True, exist_ok=True)
        (pages / name).write_bytes(text.encode("cp1252"))
    return pages


def test_import_webpages_examples_sites_and_labels(tmp_path: Path) -> None:
    examples = list(import_webpages(_labelled_tree(tmp_path), doc_keep_min_words=30))
    found = {(e.source, e.stage): e for e in examples}
    assert sorted(found) == [
        ("cleaneval-final/10", "chunk"),
        ("cleaneval-final/10", "doc"),
        ("cleaneval-final/2", "chunk"),
        ("cleaneval-final/2", "doc"),
        ("cleanportaleval/bbc.co.uk_news_01", "chunk"),
        ("readability/nytimes-2", "chunk"),
        ("readability/nytimes-2", "doc"),
    ]
    article = found[("cleaneval-final/2", "chunk")]
    assert article.site == "example.org"
    assert article.labels == [0, 1, 1, 1, 0]
    assert article.program == "remove_lines(line_start=0, line_end=0)\nremove_lines(line_start=4, line_end=4)"
    assert article.gold == "\n".join(ARTICLE)
    noise = found[("cleaneval-final/10", "chunk")]
    assert noise.site == "blog.example.net"  # no <text id=...> wrapper: the gold's URL line
    assert noise.labels == [0, 0, 0]
    assert found[("cleaneval-final/10", "doc")].program == "drop_doc()"
    assert found[("cleaneval-final/2", "doc")].label == 1
    assert found[("cleanportaleval/bbc.co.uk_news_01", "chunk")].site == "bbc.co.uk"
    assert found[("cleanportaleval/bbc.co.uk_news_01", "chunk")].labels == [0, 0, 1, 0, 0]
    assert found[("readability/nytimes-2", "chunk")].site == "readability/nytimes"


def test_import_dclm_and_write_seed(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes(b'{"text": "A good page.", "label": 1}\n\n{"text": "spam spam", "label": 0}\n')
    examples = list(import_dclm(labels))
    assert [(e.source, e.site, e.stage, e.label, e.program) for e in examples] == [
        ("dclm/0", "dclm/0", "doc", 1, "keep_doc()"),
        ("dclm/2", "dclm/2", "doc", 0, "drop_doc()"),
    ]
    out = tmp_path / "seed" / "seed.jsonl"
    assert write_seed(examples, out) == 2
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert rows[0] == examples[0].to_dict()
    assert "labels" not in rows[0]


@pytest.mark.parametrize("line", [b"{not json", b'{"text": "x"}', b'{"text": 3, "label": 1}', b"[1, 2]"])
def test_import_dclm_names_the_bad_line(tmp_path: Path, line: bytes) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes(b'{"text": "fine", "label": 1}\n' + line + b"\n")
    with pytest.raises(ValueError, match=r"labels.jsonl:2: "):
        list(import_dclm(labels))


def test_main_writes_the_seed_set_and_prints_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _labelled_tree(tmp_path)
    (tmp_path / "dclm_quality_labels").mkdir()
    (tmp_path / "dclm_quality_labels" / "labels.jsonl").write_text('{"text": "x", "label": 0}\n')
    main(["--shared", str(tmp_path), "-o", str(tmp_path / "seed.jsonl"), "--renderings", "resiliparse"])
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in printed.splitlines()[1:-1]}
    # chunks, docs, doc keeps, lines, kept share, chunk examples with normalize calls, calls
    assert rows["cleaneval-final@resiliparse"] == ["2", "1", "0", "4.0", "0.300", "0", "0"]
    assert rows["dclm"] == ["0", "1", "0", "-", "-", "0", "0"]
    assert printed.splitlines()[-1].startswith("6 examples written to")
    assert len((tmp_path / "seed.jsonl").read_bytes().splitlines()) == 6


def test_main_renders_every_page_with_each_tool_and_one_doc_example_per_page(tmp_path: Path) -> None:
    _labelled_tree(tmp_path)
    main(["--shared", str(tmp_path), "-o", str(tmp_path / "seed.jsonl")])
    rows = [orjson.loads(line) for line in (tmp_path / "seed.jsonl").read_bytes().splitlines()]
    chunks = [row for row in rows if row["stage"] == "chunk"]
    assert {row["rendering"] for row in chunks} == {"resiliparse", "html-text", "inscriptis"}
    per_page = {row["source"]: sum(r["source"] == row["source"] for r in chunks) for row in chunks}
    assert set(per_page.values()) == {3}
    docs = [row for row in rows if row["stage"] == "doc"]
    assert len({row["source"] for row in docs}) == len(docs)  # the doc example of a page comes once
    assert all(row["rendering"] == "resiliparse" for row in docs)


def test_main_renders_with_the_extractors_kept_out_of_training_when_asked(tmp_path: Path) -> None:
    _labelled_tree(tmp_path)
    main(["--shared", str(tmp_path), "-o", str(tmp_path / "seed.jsonl"), "--renderings", "markdown,justext"])
    rows = [orjson.loads(line) for line in (tmp_path / "seed.jsonl").read_bytes().splitlines()]
    assert {row["rendering"] for row in rows if row["stage"] == "chunk"} == {"markdown", "justext"}


def test_main_refuses_an_unknown_rendering(tmp_path: Path) -> None:
    _labelled_tree(tmp_path)
    with pytest.raises(SystemExit):
        main(["--shared", str(tmp_path), "-o", str(tmp_path / "seed.jsonl"), "--renderings", "lynx"])


def test_main_needs_some_input(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--shared", str(tmp_path), "-o", str(tmp_path / "seed.jsonl")])


# --------------------------------------------------------------------------------------------- shared data

needs_shared = pytest.mark.skipif(not PAGES.is_dir(), reason=f"the labelled pages are not at {PAGES}")


@needs_shared
def test_shared_cleaneval_empty_golds_and_missing_golds() -> None:
    final = PAGES / "cleaneval-final"
    assert len(list((final / "input").glob("*.html"))) == 740
    assert len(list((final / "GoldStandard").glob("*.txt"))) == 681
    empty = [p.stem for p in (final / "GoldStandard").glob("*.txt") if not cleaneval_gold(p.read_bytes())]
    assert sorted(empty) == ["278", "329", "690", "697", "707", "795"]


@needs_shared
def test_shared_bbc_page_is_labelled_like_its_gold() -> None:
    examples = {e.source: e for e in import_subset(PAGES, "cleanportaleval") if e.stage == "chunk"}
    assert len(examples) == 71
    page = examples["cleanportaleval/bbc.co.uk_news_01"]
    kept = dict(zip(page.text.split("\n"), page.labels, strict=True))
    assert kept["One couple's mission to find a better work/life balance"] == 1
    assert kept["But it's not nearly that simple."] == 1
    assert kept["Skip to content"] == 0
    assert kept["Continue reading the main story"] == 0
    assert kept["More on This Story"] == 0
    assert page.site == "bbc.co.uk"
    assert examples["cleanportaleval/bbc.co.uk_news_04"].labels.count(1) == 0  # "this page contains no article"
