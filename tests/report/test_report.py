"""`prox report`: the line diff, the page, and the page in a real headless Chromium."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_cli import flat
from test_cli import run as invoke

from proxkit.report.diff import LineFate, line_changes

ARTICLE = [f"Sentence number {i} of the article is long enough to be real prose here." for i in range(8)]
PAGE = "\n".join(["Home | News | Sport", *ARTICLE[:4], "Share on Facebook", *ARTICLE[4:], "Cookies: we use them"])


def fates(changes):
    return [change.fate for change in changes]


def test_removed_lines_and_a_dropped_document():
    changes = line_changes("a\nb\nc\nd", "b\nd")
    assert fates(changes) == [LineFate.REMOVED, LineFate.KEPT, LineFate.REMOVED, LineFate.KEPT]
    assert fates(line_changes("a\nb", None)) == [LineFate.REMOVED, LineFate.REMOVED]


def test_a_normalized_line_pairs_with_its_source_among_removed_neighbours():
    raw = "Menu\nThe price is 10 dollars [edit]\nFooter one\nFooter two"
    changes = line_changes(raw, "The price is 10 dollars")
    assert fates(changes) == [LineFate.REMOVED, LineFate.EDITED, LineFate.REMOVED, LineFate.REMOVED]
    assert ("delete", " [edit]") in changes[1].word_diff()
    assert fates(line_changes("x", "x\ny")) == [LineFate.KEPT, LineFate.ADDED]


def _sides(change):
    spans = change.word_diff()
    return "".join(t for k, t in spans if k != "insert"), "".join(t for k, t in spans if k != "delete")


def test_diffs_stay_within_their_budget_on_heavily_edited_documents(monkeypatch):
    from proxkit.report import diff

    compared = []
    original = diff.difflib.SequenceMatcher

    def counting(*args, a, b, **kwargs):
        compared.append(len(a) * len(b))
        return original(*args, a=a, b=b, **kwargs)

    monkeypatch.setattr(diff.difflib, "SequenceMatcher", counting)
    lines = [f"line {i} has a price of {i} dollars [edit] and more words" for i in range(1000)]
    final = [line.replace(" [edit]", "") for line in lines]
    long_line = " ".join(f"word{i} [edit]" for i in range(6000))  # a 60 kB line edited by one normalize
    changes = line_changes("\n".join([*lines, long_line]), "\n".join([*final, long_line.replace(" [edit]", "")]))
    assert fates(changes) == [LineFate.EDITED] * 1001
    assert all(_sides(change) == (change.before, change.after) for change in changes)
    assert sum(compared) <= diff.DIFF_BUDGET and max(compared) <= diff.LINE_DIFF_LIMIT
    assert [text.strip() for kind, text in changes[0].word_diff() if kind != "equal"] == ["[edit]"]


def test_line_alignment_pairs_edits_removals_and_additions_in_one_pass():
    raw = "A\n\nRemoved one\nKept line here\nX and y\n\nB"
    final = "A\n\nKept line here\nX\nnew\n\nB"
    assert fates(line_changes(raw, final)) == [
        LineFate.KEPT, LineFate.KEPT, LineFate.REMOVED, LineFate.KEPT, LineFate.EDITED, LineFate.ADDED,
        LineFate.KEPT, LineFate.KEPT,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def refined_run(tmp_path_factory):
    """A real run: `prox refine --stages none` executing given programs (a removal and a normalize) on two
    documents, one of which is then dropped by its doc program."""
    root = tmp_path_factory.mktemp("report")
    program = "remove_lines(line_start=0, line_end=0)\nremove_lines(line_start=5, line_end=5)\n"
    program += 'remove_lines(line_start=10, line_end=10)\nnormalize(source_str="long enough", target_str="LONG")'
    records = [
        {"id": "kept-page", "text": PAGE, "metadata": {"doc_program": "keep_doc()", "chunk_program": program}},
        {"id": "spam-page", "text": "Buy now\n" * 20, "metadata": {"doc_program": "drop_doc()", "chunk_program": ""}},
        "{broken",
    ]
    path = root / "in.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    result = invoke("refine", str(path), "-o", str(root / "out"), "--stages", "none", "--no-progress")
    assert result.exit_code == 0, result.output
    result = invoke("report", str(root / "out"))
    assert result.exit_code == 0, result.output
    return root / "out" / "report.html"


def test_the_page_shows_numbers_plots_and_every_document_before_and_after(refined_run):
    page = refined_run.read_text()
    assert re.search(r"documents in<b>3</b>", page) and re.search(r"kept<b>1</b>", page)
    assert page.count("<svg") == 4
    for title in ("Token retention", "Calls by type", "Removed lines per document", "Drop reasons"):
        assert f'aria-label="{title}"' in page
    assert 'data-id="kept-page"' in page and 'data-id="spam-page"' in page and "in.jsonl:3" in page
    assert '<div class="line removed"><span class="n">0</span>Home | News | Sport</div>' in page
    assert '<div class="line removed"><span class="n">5</span>Share on Facebook</div>' in page
    assert "<del>long enough</del><ins>LONG</ins>" in page  # the normalize, highlighted
    assert page.count('class="line removed"') == 3 + 21 + 1  # 3 lines of the kept page, the dropped page, legend


def test_report_names_a_folder_that_is_not_a_run(tmp_path):
    result = invoke("report", str(tmp_path))
    assert result.exit_code != 0 and "stats.json" in flat(result.output)


def test_report_of_a_baseline_run_uses_words(tmp_path):
    corpus = tmp_path / "in.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "\n".join(ARTICLE)}) + "\n")
    assert invoke("baseline", "fineweb", str(corpus), "-o", str(tmp_path / "out"), "--no-progress").exit_code == 0
    output = tmp_path / "page.html"
    assert invoke("report", str(tmp_path / "out"), "-o", str(output)).exit_code == 0
    assert "words kept<b>100.0%</b>" in output.read_text() and "other languages" not in output.read_text()
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    (tmp_path / "out" / "stats.json").write_text(json.dumps(stats | {"fallback_docs": 2, "fallback_chunks": 1234}))
    assert invoke("report", str(tmp_path / "out"), "-o", str(output)).exit_code == 0
    assert "other languages<b>2 docs · 1,234 chunks</b>" in output.read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (make test installs Debian's chromium where apt works)")
def test_the_page_renders_in_headless_chromium_and_its_filter_works(refined_run, tmp_path):
    common = [CHROMIUM, *HEADLESS, f"--user-data-dir={tmp_path / 'profile'}"]
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [*common, f"--screenshot={screenshot}", "--window-size=1200,1600", refined_run.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert screenshot.stat().st_size > 20_000  # a rendered page, not a blank one
    dom = subprocess.run(
        [*common, "--dump-dom", refined_run.as_uri() + "#dropped"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    kept = re.search(r'<details class="doc" data-status="kept"[^>]*>', dom).group(0)
    dropped = re.search(r'<details class="doc" data-status="dropped"[^>]*>', dom).group(0)
    assert "hidden" in kept and "hidden" not in dropped  # the page's script ran and filtered
    shutil.copy(screenshot, Path(refined_run).parent / "report.png")


def test_max_documents_caps_the_views_of_each_status_but_not_the_numbers(refined_run, tmp_path):
    assert "· 3 lines removed · 8 edited</span>" in refined_run.read_text()  # the normalize edits 8 lines
    broken = f"{refined_run.parents[1] / 'in.jsonl'}:3"  # the failed record's id: its file and line
    for most, shown in ((0, set()), (1, {"kept-page", "spam-page", broken})):
        output = tmp_path / f"at-most-{most}.html"
        result = invoke("report", str(refined_run.parent), "-o", str(output), "--max-documents", str(most))
        assert result.exit_code == 0, result.output
        page = output.read_text()
        assert re.search(r"documents in<b>3</b>", page)
        assert set(re.findall(r'data-id="([^"]+)"', page)) == shown
