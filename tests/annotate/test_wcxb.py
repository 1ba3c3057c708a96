"""The WCXB importer: pages read from the archive, seed examples with collection, site and page type,
the gold-text doc examples, the snippet check and the seed-set command."""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from itertools import islice
from pathlib import Path

import orjson
import pytest

from proxkit.annotate import wcxb
from proxkit.annotate.seed_set import main

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REAL_ARCHIVE = SHARED / "data" / "webpages_labelled_more" / wcxb.ARCHIVE

ARTICLE = [
    "The new library opened its doors on Saturday after three years of building work in the old harbour.",
    "Hundreds of readers queued before nine to see the reading room, which overlooks the water.",
    "The architects kept the brick walls of the warehouse and added a glass roof over the main hall.",
]
HTML = (
    "<html><head><title>Library</title></head><body><nav><a>Home</a> | <a>News</a> | <a>Sport</a></nav>"
    + "".join(f"<p>{paragraph}</p>" for paragraph in ARTICLE)
    + "<footer>Share this story on social media today</footer></body></html>"
)


def _archive(folder: Path, rows: list[dict], pages: dict[str, str]) -> Path:
    """A wcxb-dev.tar.xz laid out as the real one: ground-truth.jsonl and html/ID.html under wcxb-dev/."""
    path = folder / wcxb.ARCHIVE
    with tarfile.open(path, "w:xz") as tar:
        files = {"wcxb-dev/ground-truth.jsonl": b"".join(orjson.dumps(row) + b"\n" for row in rows)}
        files |= {f"wcxb-dev/html/{name}.html": html.encode() for name, html in pages.items()}
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _row(file_id: str, gold: str, page_type: str = "article", **fields) -> dict:
    row = {"file_id": file_id, "domain": "www.harbour-news.example", "page_type": page_type, "main_content": gold}
    return row | fields


def test_a_page_gives_a_chunk_example_a_full_page_doc_example_and_a_gold_text_doc_example(tmp_path: Path) -> None:
    gold = "\n\n".join(ARTICLE)
    rows = [
        _row("0001", gold, **{"with": ["reading room, which overlooks"], "without": ["Share this story"]}),
        _row("0002", None, page_type="listing"),  # empty gold: the whole page is noise
    ]
    archive = _archive(tmp_path, rows, {"0001": HTML, "0002": HTML})
    pages = list(wcxb.read_pages(archive))
    assert [(p.file_id, p.domain, p.page_type, p.gold) for p in pages] == [
        ("0001", "harbour-news.example", "article", gold),
        ("0002", "harbour-news.example", "listing", ""),
    ]
    examples = {(e.source, e.stage): e for e in wcxb.import_wcxb(tmp_path, doc_keep_min_words=30)}
    assert sorted(examples) == [
        ("wcxb-dev/0001", "chunk"),
        ("wcxb-dev/0001", "doc"),
        ("wcxb-dev/0001/gold", "doc"),
        ("wcxb-dev/0002", "chunk"),
        ("wcxb-dev/0002", "doc"),
    ]
    chunk = examples[("wcxb-dev/0001", "chunk")]
    assert chunk.text.split("\n")[0] == "Home | News | Sport"
    assert chunk.labels == [0, 1, 1, 1, 0]
    for example in examples.values():
        assert (example.collection, example.site) == ("wcxb", "harbour-news.example")
    assert examples[("wcxb-dev/0002", "doc")].page_type == "listing"
    assert examples[("wcxb-dev/0001", "doc")].label == 1 and examples[("wcxb-dev/0002", "doc")].label == 0
    gold_doc = examples[("wcxb-dev/0001/gold", "doc")]
    assert (gold_doc.subset, gold_doc.label, gold_doc.text) == ("wcxb-dev-gold", 1, "\n".join(ARTICLE))
    checked = wcxb.snippet_check(chunk.text.split("\n"), chunk.labels, pages[0])
    assert checked == Counter({"with_in_content": 1, "without_in_noise": 1})


def test_snippets_that_the_labels_contradict_are_counted_as_such() -> None:
    page = wcxb.Page("1", "d", "article", "", "", ["Hundreds of readers"], ["Share this story", "Not there"])
    lines = ["Hundreds of readers queued.", "Share this story"]
    assert wcxb.snippet_check(lines, [0, 1], page) == Counter(
        {"with_in_noise": 1, "without_in_content": 1, "without_absent": 1}
    )


def test_a_ground_truth_row_without_its_html_names_the_archive_and_the_line(tmp_path: Path) -> None:
    archive = _archive(tmp_path, [_row("0001", "x"), _row("0009", "y")], {"0001": HTML})
    with pytest.raises(ValueError, match=r"wcxb-dev.tar.xz: ground-truth.jsonl:2: no html/0009.html"):
        list(wcxb.read_pages(archive))


def test_the_seed_set_command_imports_wcxb_and_reports_the_snippets(tmp_path, capsys) -> None:
    more = tmp_path / "webpages_labelled_more"
    more.mkdir()
    _archive(more, [_row("0001", "\n\n".join(ARTICLE), **{"without": ["Share this story"]})], {"0001": HTML})
    main(["--shared", str(tmp_path), "-o", str(tmp_path / "seed.jsonl")])
    printed = capsys.readouterr().out
    for rendering in ("resiliparse", "html-text", "inscriptis"):
        assert f"wcxb `without` snippets ({rendering}): 0 in content, 1 in noise, 0 absent" in printed
    rows = [orjson.loads(line) for line in (tmp_path / "seed.jsonl").read_bytes().splitlines()]
    assert {row["collection"] for row in rows} == {"wcxb"}
    assert {row["page_type"] for row in rows} == {"article"}


def test_a_without_snippet_inside_a_content_line_leaves_the_content_once_normalize_runs(tmp_path, capsys) -> None:
    more = tmp_path / "webpages_labelled_more"
    more.mkdir()
    glued = HTML.replace(f"{ARTICLE[1]}</p>", f"{ARTICLE[1]} <a>Share this story: Facebook</a></p>")
    _archive(more, [_row("0001", "\n\n".join(ARTICLE), without=["Share this story"])], {"0001": glued})
    main(["--shared", str(tmp_path), "-o", str(tmp_path / "seed.jsonl"), "--renderings", "resiliparse"])
    printed = capsys.readouterr().out
    assert (
        "wcxb `without` snippets (resiliparse): 1 in content, 0 in noise, 0 absent; in content after normalize: 0"
        in printed
    )
    rows = [orjson.loads(line) for line in (tmp_path / "seed.jsonl").read_bytes().splitlines()]
    chunk = next(row for row in rows if row["stage"] == "chunk")
    assert 'normalize(source_str=" Share this story: Facebook", target_str="")' in chunk["program"]


@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason=f"{REAL_ARCHIVE} absent (../shared)")
def test_the_real_archive_reads_with_sites_page_types_and_aligned_snippets() -> None:
    pages = list(islice(wcxb.read_pages(REAL_ARCHIVE), 40))
    assert len(pages) == 40 and all(page.domain and page.html for page in pages)
    assert {page.page_type for page in pages} <= {
        "article",
        "service",
        "forum",
        "listing",
        "product",
        "collection",
        "documentation",
    }
    snippets: Counter[str] = Counter()
    for page in pages:
        for example in wcxb.page_examples(page):
            if example.labels is not None:
                snippets.update(wcxb.snippet_check(example.text.split("\n"), example.labels, page))
    # the alignment puts most snippets where the gold says they belong
    assert snippets["with_in_content"] > 4 * snippets["with_in_noise"]
    assert snippets["without_in_noise"] + snippets["without_absent"] > 4 * snippets["without_in_content"]
