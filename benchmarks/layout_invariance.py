"""Whether a refiner's answer depends on how a text is wrapped: real pages of WCXB dev (each page's gold main
content and its full page's lines) in eight layouts (`LAYOUTS`: lines, blank lines between paragraphs, CRLF,
trailing spaces, tabs, runs of blank lines, lone CR line ends, U+2028 line separators) through `prox refine`,
each compared with the plain-lines layout of the same text: the same doc decision, the same kept words.

Prints, per layout and overall, the share of documents with the same decision and with the same kept words,
and the largest spread of a document's doc score over its layouts. Target (issue 18): >= 99% identical.

    python benchmarks/layout_invariance.py [--pages 40] [--layouts "lone cr,line separators"] [--shared ../shared]
                                           [-o DIR] [prox refine options...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from itertools import islice
from pathlib import Path

LAYOUTS: dict[str, Callable[[list[str]], str]] = {
    "lines": lambda blocks: "\n".join(blocks),
    "blank lines": lambda blocks: "\n\n".join(blocks),
    "crlf": lambda blocks: "\r\n\r\n".join(blocks) + "\r\n",
    "trailing spaces": lambda blocks: "".join(f"{block}  \n" for block in blocks),
    "tabs": lambda blocks: "\n".join("\t" + block.replace(" ", "\t", 1) for block in blocks),
    "blank runs": lambda blocks: "\n \n\n\t\n".join(blocks) + "\n\n\n",
    "lone cr": lambda blocks: "\r".join(blocks) + "\r",  # one line to a program: pieces go by `normalize`
    "line separators": lambda blocks: "\u2028\n".join(blocks[:3]) + "\n" + "\u2028".join(blocks[3:]),
}
REFERENCE = "lines"


def wcxb_documents(shared: Path, pages: int) -> dict[str, list[str]]:
    """Paragraph lists of the first `pages` pages of WCXB dev: `ID-gold` (the gold main content) and `ID-page`
    (the full page's lines as the importer renders them)."""
    from proxkit.annotate import wcxb
    from proxkit.annotate.human import page_lines

    documents = {}
    for page in islice(wcxb.read_pages(shared / "data" / "webpages_labelled_more" / wcxb.ARCHIVE), pages):
        documents[f"{page.file_id}-gold"] = [line.strip() for line in page.gold.splitlines() if line.strip()]
        documents[f"{page.file_id}-page"] = page_lines(page.html)
    return documents


def write_layouts(
    documents: dict[str, list[str]], path: Path, layouts: dict[str, Callable[[list[str]], str]] = LAYOUTS
) -> None:
    """Every document in every layout (default: all `LAYOUTS`), as JSON lines with the id `NAME|LAYOUT`."""
    with path.open("w", encoding="utf-8") as file:
        for name, blocks in documents.items():
            for layout, render in layouts.items():
                file.write(json.dumps({"id": f"{name}|{layout}", "text": render(blocks)}) + "\n")


def outcomes(output: Path) -> dict[str, dict[str, tuple[str, list[str], float | None]]]:
    """Per document and layout, from `prox refine`'s output folder: (data or dropped, kept words, doc score)."""
    from proxkit.run import read_records

    found: dict[str, dict[str, tuple[str, list[str], float | None]]] = {}
    for place in ("data", "dropped", "failed"):
        if not (output / place).is_dir():
            continue
        for record in read_records(output / place):
            name, layout = record["id"].split("|")
            words = record["text"].split() if place == "data" else []
            score = record.get("metadata", {}).get("prox", {}).get("doc_score")
            found.setdefault(name, {})[layout] = (place, words, score)
    return found


def compare(found: dict[str, dict[str, tuple[str, list[str], float | None]]]) -> dict:
    """Per layout (and `all`): documents compared with their `REFERENCE` layout, the share with the same
    decision and with the same kept words; `score_spread`: the largest spread of one document's doc scores;
    `different`: the documents and layouts that differ."""
    report: dict = {}
    different = []
    for name, by_layout in sorted(found.items()):
        reference = by_layout.get(REFERENCE)
        for layout, (place, words, _) in by_layout.items():
            if layout == REFERENCE or reference is None:
                continue
            row = report.setdefault(layout, {"documents": 0, "same_decision": 0, "same_words": 0})
            row["documents"] += 1
            row["same_decision"] += place == reference[0]
            row["same_words"] += (place, words) == reference[:2]
            if (place, words) != reference[:2]:
                different.append(f"{name}|{layout}")
    total = {key: sum(row[key] for row in report.values()) for key in ("documents", "same_decision", "same_words")}
    report["all"] = total
    for row in report.values():
        for key in ("same_decision", "same_words"):
            row[key] = round(row[key] / row["documents"], 4) if row["documents"] else None
    spreads = [
        max(scores) - min(scores)
        for by_layout in found.values()
        if (scores := [score for _, _, score in by_layout.values() if score is not None])
    ]
    report["score_spread"] = round(max(spreads), 4) if spreads else None
    report["different"] = different
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=40, help="WCXB dev pages (each gives two documents)")
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("-o", "--output", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument(
        "--layouts", help=f"comma-separated, besides {REFERENCE!r} (default: all): {', '.join(LAYOUTS)}"
    )
    args, refine_options = parser.parse_known_args()
    layouts = LAYOUTS
    if args.layouts:
        chosen = {REFERENCE, *(name.strip() for name in args.layouts.split(","))}
        if unknown := chosen - set(LAYOUTS):
            parser.error(f"no layout {', '.join(sorted(unknown))}; there are {', '.join(LAYOUTS)}")
        layouts = {name: render for name, render in LAYOUTS.items() if name in chosen}
    work = args.output or Path(tempfile.mkdtemp(prefix="layout-invariance-"))
    work.mkdir(parents=True, exist_ok=True)
    documents = wcxb_documents(args.shared, args.pages)
    write_layouts(documents, work / "layouts.jsonl", layouts)
    command = [sys.executable, "-m", "proxkit", "refine", str(work / "layouts.jsonl"), "-o", str(work / "out")]
    subprocess.run([*command, "--no-progress", *refine_options], check=True)
    report = compare(outcomes(work / "out"))
    print(json.dumps({"documents": len(documents), **report}, indent=1))


if __name__ == "__main__":
    main()
