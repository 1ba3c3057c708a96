"""The newer collections: renderings, Google-Trends-2017 and Big9+Chaos archives, sites read from pages,
and the human line labels of already-cleaned text."""

from __future__ import annotations

import io
import json
import tarfile
from itertools import islice
from pathlib import Path

import pytest

from proxkit.annotate import archives, line_labels, render, sites
from proxkit.annotate.human import rendered_examples
from proxkit.program import Stage, execute_chunk, parse_program, removed_lines

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MORE = SHARED / "webpages_labelled_more"

ARTICLE = [
    "The new library opened its doors on Saturday after three years of building work in the old harbour.",
    "Hundreds of readers queued before nine to see the reading room, which overlooks the water.",
]
PAGE = (
    "<html><head><title>Library</title><link rel='canonical' href='https://www.news.harbour.co.uk/a/1'></head>"
    "<body><ul><li><a href='/'>Home</a></li><li><a href='/news'>News</a></li></ul>"
    + "".join(f"<p>{paragraph}<br>Second line.</p>" for paragraph in ARTICLE)
    + "<table><tr><td>Price</td><td>12</td></tr></table></body></html>"
)


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --------------------------------------------------------------------------------------------- renderings


def test_the_renderings_write_the_same_text_with_different_line_breaks() -> None:
    rendered = {name: render.render(PAGE, name) for name in render.RENDERINGS}
    assert rendered["resiliparse"][0] == "Home" and "" not in rendered["resiliparse"]  # no head, nothing blank
    assert "" in rendered["html-text"] and rendered["html-text"][0] == "Library"  # blank lines, title first
    assert any(line.lstrip().startswith("* Home") for line in rendered["inscriptis"])  # bullets kept
    assert any("Price" in line and "12" in line for line in rendered["inscriptis"])  # a row on one line
    assert "  * [News](/news)" in rendered["markdown"] and "---|---" in rendered["markdown"]  # links, tables
    assert f"{ARTICLE[0]} Second line." in rendered["justext"]  # a <br> inside a paragraph does not end it
    assert rendered["justext"][-2:] == ["Price", "12"]  # each cell its own paragraph
    for lines in rendered.values():
        text = " ".join(lines)
        assert all(paragraph.split()[0] in text and "harbour." in text for paragraph in ARTICLE)
        assert lines[-1].strip() and lines[0].strip() and all(line == line.rstrip() for line in lines)
    assert len({tuple(lines) for lines in rendered.values()}) == len(render.RENDERINGS) == 5


@pytest.mark.parametrize("name", list(render.RENDERINGS))
def test_control_characters_do_not_stop_a_renderer(name: str) -> None:
    lines = render.render("<p>Null\x00 and\x0b bell\x07 <span>bold</span>\x00</p><p>Next</p>", name)
    assert [line.strip() for line in lines if line.strip()] == ["Null and bell bold", "Next"]


@pytest.mark.parametrize("name", list(render.RENDERINGS))
def test_an_xml_declaration_does_not_stop_a_renderer(name: str) -> None:
    page = '<?xml version="1.0" encoding="utf-8"?>\n<html><body><p>Declared text</p></body></html>'
    assert [line.strip() for line in render.render(page, name) if line.strip()] == ["Declared text"]


def test_a_page_a_tool_cannot_read_is_left_out_of_that_rendering_only(monkeypatch) -> None:
    def broken(html: str) -> list[str]:
        raise ValueError("cannot parse")

    monkeypatch.setitem(render.RENDERINGS, "inscriptis", broken)
    examples = rendered_examples("p/1", "p", "site", PAGE, "\n".join(ARTICLE), ["inscriptis", "resiliparse"])
    assert [example.rendering for example in examples] == ["resiliparse"]


def test_unknown_renderings_are_named() -> None:
    with pytest.raises(ValueError, match="lynx"):
        render.render(PAGE, "lynx")
    with pytest.raises(ValueError, match="lynx"):
        render.parse_renderings("resiliparse,lynx")
    assert render.parse_renderings(" inscriptis, resiliparse,inscriptis") == ["inscriptis", "resiliparse"]


# --------------------------------------------------------------------------------------------- sites


@pytest.mark.parametrize(
    ("html", "site"),
    [
        (PAGE, "harbour.co.uk"),
        (
            '<meta content="http://web.archive.org/web/20090101/http://cache.nymag.com/x" property="og:url">',
            "nymag.com",
        ),
        (
            '<a href="https://twitter.com/x">t</a><a href="https://twitter.com/y">t</a>'
            '<a href="http://web-beta.archive.org/web/2013id_/http://edition.cnn.com/a">a</a>',
            "cnn.com",
        ),
        ("<p>no links</p>", "fallback/page"),
    ],
)
def test_a_pages_site_is_its_registered_domain(html: str, site: str) -> None:
    assert sites.page_site(html, "fallback/page") == site


# --------------------------------------------------------------------------------------------- archives


def test_google_trends_gold_is_the_text_of_nodes_labelled_content(tmp_path: Path) -> None:
    page = (
        "<html class='gr__harbour_example'><body><nav><span __boilernet_label='0'>Home News Sport</span></nav>"
        + "".join(
            f"<p><span __boilernet_label='1'>&lt;span __num=\"{i}\"&gt;{p}&lt;/span&gt;</span></p>"
            for i, p in enumerate(ARTICLE)
        )
        + "<a href='https://harbour.example/x'><span __boilernet_label='0'>Share this story</span></a></body></html>"
    )
    _tar(
        tmp_path / archives.GOOGLE_TRENDS,
        {
            "google-trends-2017/prepared_html/gt_2.html": page.encode(),
            "google-trends-2017/50-30-100-split/dev_set.txt": b"",
        },
    )
    examples = list(archives.import_google_trends(tmp_path, renderings=["resiliparse", "html-text"]))
    chunks = [e for e in examples if e.stage == Stage.CHUNK]
    assert [e.rendering for e in chunks] == ["resiliparse", "html-text"]
    first = chunks[0]
    assert first.text.split("\n") == ["Home News Sport", *ARTICLE, "Share this story"]  # no __num markup
    assert first.labels == [0, 1, 1, 0] and first.gold == "\n".join(ARTICLE)
    assert first.collection == "google-trends-2017" and first.site == "harbour.example"
    assert execute_chunk(first.text, first.program).text == "\n".join(ARTICLE)


def test_big9_pages_pair_with_their_gold_and_skip_pages_without_one(tmp_path: Path) -> None:
    gold = "\n".join(ARTICLE).replace("library", "librar\u00e9").encode("cp1252")  # some golds are cp1252
    html = PAGE.replace("library", "librar&eacute;")
    _tar(
        tmp_path / archives.BIG9_CHAOS,
        {
            "big9-chaos/big5-05/html/room (1).htm": html.encode(),
            "big9-chaos/big5-05/gold/room (1).txt": gold,
            "big9-chaos/chaos-all/html/lonely.html": html.encode(),
        },
    )
    examples = list(archives.import_big9_chaos(tmp_path, renderings=["resiliparse"]))
    assert [(e.stage, e.source) for e in examples] == [("chunk", "big5-05/room (1)")]  # too short for a doc keep
    (chunk,) = examples
    assert chunk.collection == "big9-chaos" and chunk.subset == "big5-05" and chunk.page_type == "article"
    assert chunk.site == "harbour.co.uk" and "libraré" in chunk.gold
    assert sum(chunk.labels) == 2 and chunk.labels[0] == 0


@pytest.mark.skipif(not (MORE / archives.BIG9_CHAOS).is_file(), reason="../shared is absent")
def test_the_real_archives_give_labelled_pages_with_sites() -> None:
    for importer, least_sites in ((archives.import_google_trends, 20), (archives.import_big9_chaos, 5)):
        chunks = [e for e in islice(importer(MORE, renderings=["resiliparse"]), 60) if e.stage == Stage.CHUNK]
        assert len({e.site for e in chunks}) >= least_sites
        shares = [sum(e.labels) / len(e.labels) for e in chunks]
        assert sum(0 < share < 1 for share in shares) >= 0.9 * len(shares)  # content and noise on nearly every page


# --------------------------------------------------------------------------------------------- line labels


def test_line_labels_become_chunk_examples_per_language(tmp_path: Path) -> None:
    (tmp_path / "fi").mkdir()
    document = {"text": ["Kirjasto avattiin lauantaina.", "Jaa  Facebookissa", ""], "labels": ["1", "0", "1"]}
    (tmp_path / "fi" / "dev.json").write_text(json.dumps([document, {"text": [], "labels": []}]))
    (example,) = line_labels.import_line_labels(tmp_path)
    assert example.language == "fi" and example.collection == "line-quality" and example.rendering is None
    assert example.text == "Kirjasto avattiin lauantaina.\nJaa Facebookissa\n" and example.labels == [1, 0, 1]
    assert example.source == example.site == "line-quality/fi/dev/0"
    assert removed_lines(3, parse_program(example.program, Stage.CHUNK)) == [False, True, False]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not JSON"),
        ('{"text": []}', "expected a list of documents"),
        ('[{"text": ["a", "b"], "labels": ["1"]}]', r"document 0: `labels`"),
        ('[{"text": "a", "labels": ["1"]}]', r"document 0: `text`"),
        ('[{"text": ["a"], "labels": ["1"]}, {"text": ["a"], "labels": ["yes"]}]', r"document 1: `labels`"),
    ],
)
def test_malformed_line_label_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "train.json").write_text(content)
    with pytest.raises(ValueError, match=rf"train.json: {message}"):
        list(line_labels.import_line_labels(tmp_path))


@pytest.mark.skipif(not (SHARED / "line_quality_labels").is_dir(), reason="../shared is absent")
def test_the_real_line_labels_cover_six_languages() -> None:
    examples = list(line_labels.import_line_labels(SHARED / "line_quality_labels"))
    assert {e.language for e in examples} == {"de", "en", "es", "fi", "fr", "sv"}
    assert len(examples) > 900 and all(len(e.labels) == len(e.text.split("\n")) for e in examples)
