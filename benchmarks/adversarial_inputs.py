"""Hostile and careless inputs through `prox refine --stages none` (programs that come with the records, so
no model runs): for each class, records in, where each one ended (kept / dropped / failed) and whether all
are accounted for. Prints a markdown table.

    python benchmarks/adversarial_inputs.py
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import zstandard

from proxkit.run import RefineConfig, read_records, refine

PAGE = "\n".join(f"Line {i} of an ordinary article holds a sentence of several words." for i in range(8))
PROGRAMS = {"doc_program": "keep_doc()", "chunk_program": "remove_lines(line_start=0, line_end=0)"}


def record(index: int, **fields) -> dict:
    return {"id": f"r{index}", "text": PAGE, "metadata": dict(PROGRAMS)} | fields


def jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in records).encode()


def normalize_bomb(folder: Path) -> int:
    bomb = "\n".join(['normalize(source_str="a", target_str="aaaa")'] * 20)
    records = [record(i) for i in range(4)] + [record(4, metadata={"doc_program": "keep_doc()", "chunk_program": bomb})]
    (folder / "in.jsonl").write_bytes(jsonl(records))
    return len(records)


def truncated_zstd(folder: Path) -> int:
    words = random.Random(0).choices(PAGE.split(), k=2000 * 60)
    texts = [" ".join(words[i * 60 : (i + 1) * 60]) for i in range(2000)]
    keep = {"doc_program": "keep_doc()", "chunk_program": "keep_chunk()"}
    records = [record(i, text=text, metadata=keep) for i, text in enumerate(texts)]
    data = zstandard.ZstdCompressor().compress(jsonl(records))
    (folder / "in.jsonl.zst").write_bytes(data[: len(data) // 2])
    return len(texts)


def forged_status(folder: Path) -> int:
    forged = [{"status": "bogus"}, "x", {"status": "dropped", "drop_reason": "forged"}, {"status": "failed"}]
    (folder / "in.jsonl").write_bytes(jsonl([record(i, prox=p) for i, p in enumerate(forged)]))
    return len(forged)


def odd_layouts(folder: Path) -> int:
    lines = [json.dumps(record(i)).encode() for i in range(6)]
    (folder / "bom_crlf.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines[:3]) + b"\r\n")
    (folder / "cr_only.ndjson").write_bytes(b"\r".join(lines[3:]))
    (folder / "array.json").write_text(json.dumps([record(6), record(7, id=18446744073709551617)]))
    (folder / "null.jsonl").write_text(json.dumps({"id": "null-text", "text": None}) + "\n")
    return 9


def folders_named_like_bookkeeping(folder: Path) -> int:
    for name in ("logs", "cache"):
        (folder / name).mkdir()
        (folder / name / "part.jsonl").write_bytes(jsonl([record(0, id=f"{name}-0"), record(1, id=f"{name}-1")]))
    return 4


def over_long_and_empty(folder: Path) -> int:
    long_page = "word " * 300_000
    records = [record(0), record(1, text=long_page), record(2, text=" \n\t"), record(3, text="")]
    (folder / "in.jsonl").write_bytes(jsonl(records))
    return len(records)


def hostile_programs(folder: Path) -> int:
    huge = "0x" + "f" * 4000  # past the 4,300 digits Python turns into text
    programs = [
        f"remove_lines(line_start=0, line_end={huge})",
        'normalize(source_str="Line", target_str="\\ud800")',  # a lone surrogate no UTF-8 writer can write
        "keep_chunk();" * 3000,  # one line of 3,000 calls
        "remove_lines(line_start=0007, line_end=0009); éé",  # zero-padded numbers beside non-ASCII text
    ]
    records = [record(i, metadata={"doc_program": "keep_doc()", "chunk_program": p}) for i, p in enumerate(programs)]
    (folder / "in.jsonl").write_bytes(jsonl(records))
    return len(records)


CLASSES: dict[str, Callable[[Path], int]] = {
    "normalize bomb (20 x 'a'→'aaaa')": normalize_bomb,
    "zstd cut in half": truncated_zstd,
    "record's own `prox` field": forged_status,
    "BOM, CRLF, CR-only, JSON array, 2^64+1 id, null text": odd_layouts,
    "subfolders named logs/ and cache/": folders_named_like_bookkeeping,
    "1.5 MB and empty texts": over_long_and_empty,
    "programs: 4,000-digit number, lone surrogate, 3,000 calls on a line": hostile_programs,
}


def run_class(make: Callable[[Path], int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        inputs, output = Path(tmp) / "in", Path(tmp) / "out"
        inputs.mkdir()
        written = make(inputs)
        stats = refine(RefineConfig(inputs=[str(inputs)], output=str(output), stages=(), progress=False))
        outcomes = {place: len(read_records(output / place)) for place in ("data", "dropped", "failed")}
        return {"written": written, **stats["documents"], "out": sum(outcomes.values())} | {
            "errors": stats["program_errors"],
            "drops": stats["drop_reasons"],
        }


def main() -> None:
    print("| class | records written | read (in) | kept | dropped | failed | records out | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for name, make in CLASSES.items():
        row = run_class(make)
        notes = ", ".join(f"{k}: {v}" for k, v in {**row["drops"], **row["errors"]}.items()) or "-"
        cells = [row[key] for key in ("written", "in", "kept", "dropped", "failed", "out")]
        print(f"| {name} | " + " | ".join(map(str, cells)) + f" | {notes} |")


if __name__ == "__main__":
    main()
