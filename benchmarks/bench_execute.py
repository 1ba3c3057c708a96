"""Parse + execute throughput of ProX programs on real Common Crawl pages, on one core.

The programs are written by a line rule in the shape refining models produce (PROX_SPEC §1): a doc call,
then per chunk of numbered lines `remove_lines` over runs of boilerplate lines, `normalize` of boilerplate
phrases inside content lines, or `keep_chunk()`. Prints documents/s for each mode, medians over repeats.

    python benchmarks/bench_execute.py [--data DIR] [--repeats 7]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
from pathlib import Path

from proxkit.program import Mode, execute
from proxkit.prompts import chunk_document

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "web_text_samples"
TARGET_DOCS_PER_SECOND = 5000
BOILERPLATE_PHRASES = ("Click here", "Read more", "Share this", "All rights reserved", "Posted by", "Tags:", "|")


def load_documents(folder: Path) -> list[str]:
    """The text of every record in the folder's JSONL files (.jsonl and .jsonl.gz)."""
    texts = []
    for path in sorted([*folder.glob("*.jsonl"), *folder.glob("*.jsonl.gz")]):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as lines:
            texts.extend(json.loads(line)["text"] for line in lines if line.strip())
    return [text for text in texts if text.strip()]


def is_boilerplate(line: str) -> bool:
    """Short lines or lines without terminal punctuation: what the chunk refiner usually removes."""
    stripped = line.strip()
    return len(stripped.split()) < 4 or not stripped.endswith((".", "!", "?", '"'))


def write_program(text: str) -> tuple[str, str]:
    """A (doc program, chunk program) pair for one document."""
    if len(text.split()) < 30:
        return "drop_doc()", ""
    lines = text.split("\n")
    calls: list[str] = []
    for chunk in chunk_document(text, cost=lambda numbered: len(numbered) // 4 + 1):
        chunk_calls = []
        run_start = None
        for index in range(chunk.first_line, chunk.last_line + 2):
            noisy = index <= chunk.last_line and is_boilerplate(lines[index])
            if noisy and run_start is None:
                run_start = index
            elif not noisy and run_start is not None:
                chunk_calls.append(f"remove_lines(line_start={run_start}, line_end={index - 1})")
                run_start = None
            if index <= chunk.last_line and not noisy:
                phrase = next((p for p in BOILERPLATE_PHRASES if p in lines[index]), None)
                if phrase:
                    chunk_calls.append(f'normalize(source_str="{phrase}", target_str="")')
        calls.extend(chunk_calls or ["keep_chunk()"])
    return "keep_doc()", "\n".join(calls)


def measure(texts: list[str], programs: list[tuple[str, str]], mode: Mode, repeats: int) -> float:
    """Median documents/s of parsing and executing every program."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for text, (doc_program, chunk_program) in zip(texts, programs, strict=True):
            execute(text, doc_program, chunk_program or None, mode=mode)
        rates.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of JSONL(.gz) files with `text`")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"no data folder at {args.data}; pass --data DIR")
    texts = load_documents(args.data)
    programs = [write_program(text) for text in texts]
    calls = sum(len(chunk.split("\n")) for _, chunk in programs if chunk) + len(programs)
    words = sum(len(text.split()) for text in texts)
    print(f"{len(texts)} documents, {words} words, {calls} calls ({calls / len(texts):.1f} per document)")
    for mode in Mode:
        rate = measure(texts, programs, mode, args.repeats)
        verdict = "ok" if rate >= TARGET_DOCS_PER_SECOND else "BELOW TARGET"
        print(
            f"{mode:>9}: {rate:8.0f} docs/s  {rate * calls / len(texts):9.0f} calls/s  "
            f"(target {TARGET_DOCS_PER_SECOND} docs/s: {verdict})"
        )


if __name__ == "__main__":
    main()
