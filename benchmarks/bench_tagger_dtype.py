"""The bundled taggers in float32 and in bfloat16, side by side on the same held-out seed pages: decision
agreement (overall and per collection), chunk content-word F1 and doc accuracy of each, doc decisions on
the pages' clean gold text rendered with blank lines and CRLF, and the speed of each (medians over
repeats, the two dtypes interleaved). Whether bfloat16 pays depends on the CPU (`cpu_bfloat16_pays`).

    python -m proxkit.annotate.seed_set --shared ../shared/data -o seed.jsonl
    python benchmarks/bench_tagger_dtype.py --seed seed.jsonl [--pages 120] [--docs 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from proxkit.models import resolve
from proxkit.models.writer import cpu_bfloat16_pays, cpu_flags
from proxkit.program import Mode, Stage, parse_program, removed_lines
from proxkit.train.evaluate import doc_scores, write_chunk_programs
from proxkit.train.metrics import chunk_report
from proxkit.train.seed import load_seed
from proxkit.train.split import held_out_split, sample_pages
from proxkit.writing import decode, default_max_new_tokens, doc_prompt

DTYPES = ("float32", "bfloat16")


def chunk_run(pages, dtype: str) -> tuple[list[str], float]:
    spec = resolve("proxkit/web-chunk-tagger", Stage.CHUNK, dtype=dtype)
    started = time.perf_counter()
    programs = write_chunk_programs(spec, pages)
    return programs, time.perf_counter() - started


def doc_run(texts: list[str], dtype: str) -> tuple[list, float]:
    """The doc generations (program and P(drop)) of the texts, through `prox refine`'s own writing path."""
    spec = resolve("proxkit/web-doc-tagger", Stage.DOC, dtype=dtype)
    tokenizer = spec.load_tokenizer()
    writer = spec.load_writer(tokenizer)
    prompts = [doc_prompt(text, spec, tokenizer, Mode.STRICT).ids for text in texts]
    started = time.perf_counter()
    generations = decode(writer, Stage.DOC, Mode.STRICT, prompts, default_max_new_tokens(Stage.DOC, Mode.STRICT))
    return generations, time.perf_counter() - started


def clean_rendering(page) -> str:
    """A page's gold main text as a cleaned corpus may hold it: a blank line between lines, CRLF ends."""
    return "\r\n\r\n".join(line for line in (page.gold or "").split("\n") if line.strip())


def agreement(first: list, second: list) -> float:
    return round(sum(a == b for a, b in zip(first, second, strict=True)) / max(len(first), 1), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", required=True, help="seed examples (python -m proxkit.annotate.seed_set)")
    parser.add_argument("--pages", type=int, default=120, help="held-out chunk pages")
    parser.add_argument("--docs", type=int, default=200, help="held-out doc examples")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    held_out = held_out_split(load_seed(args.seed))[1]
    pages = sample_pages([e for e in held_out if e.stage == Stage.CHUNK], args.pages)
    documents = sample_pages([e for e in held_out if e.stage == Stage.DOC], args.docs)

    texts = ["\n".join(d.lines) for d in documents]
    clean = [clean_rendering(page) for page in pages if page.gold]  # gold text, blank lines, CRLF

    chunk_programs, doc_generations, clean_generations = {}, {}, {}
    seconds = {dtype: {"chunk": [], "doc": []} for dtype in DTYPES}
    for _ in range(args.repeats):
        for dtype in DTYPES:
            chunk_programs[dtype], elapsed = chunk_run(pages, dtype)
            seconds[dtype]["chunk"].append(elapsed)
            doc_generations[dtype], elapsed = doc_run(texts, dtype)
            seconds[dtype]["doc"].append(elapsed)
    for dtype in DTYPES:
        clean_generations[dtype], _ = doc_run(clean, dtype)

    masks = {
        dtype: [
            removed_lines(len(p.lines), parse_program(text, Stage.CHUNK, Mode.STRICT))
            for p, text in zip(pages, programs, strict=True)
        ]
        for dtype, programs in chunk_programs.items()
    }
    collections: dict[str, tuple[list, list]] = {}
    for page, first, second in zip(pages, masks["float32"], masks["bfloat16"], strict=True):
        lines = collections.setdefault(page.source.split("/")[0], ([], []))
        lines[0].extend(first)
        lines[1].extend(second)
    drops = {dtype: [g.text.strip() == "drop_doc()" for g in gens] for dtype, gens in doc_generations.items()}
    scores = {dtype: [g.score for g in gens] for dtype, gens in doc_generations.items()}
    clean_drops = {dtype: [g.text.strip() == "drop_doc()" for g in gens] for dtype, gens in clean_generations.items()}
    report = {
        "cpu_bf16_flags": sorted(cpu_flags() & {"amx_bf16", "avx512_bf16"}),
        "auto_picks_bf16": cpu_bfloat16_pays(),
        "pages": len(pages),
        "documents": len(documents),
        "chunk_programs_identical": agreement(chunk_programs["float32"], chunk_programs["bfloat16"]),
        "line_decisions_identical": agreement(
            [flag for mask in masks["float32"] for flag in mask], [flag for mask in masks["bfloat16"] for flag in mask]
        ),
        "line_decisions_identical_by_collection": {
            name: agreement(*lines) for name, lines in sorted(collections.items())
        },
        "doc_decisions_identical": agreement(drops["float32"], drops["bfloat16"]),
        "doc_score_max_difference": round(
            max(abs(a - b) for a, b in zip(scores["float32"], scores["bfloat16"], strict=True)), 4
        ),
        "clean_text_documents": len(clean),
        "clean_text_doc_decisions_identical": agreement(clean_drops["float32"], clean_drops["bfloat16"]),
        "clean_text_kept": {dtype: round(1 - sum(d) / max(len(d), 1), 4) for dtype, d in clean_drops.items()},
    }
    for dtype in DTYPES:
        chunk = chunk_report(pages, masks[dtype])
        report[dtype] = {
            "chunk": {key: chunk[key] for key in chunk if "f1" in key},
            "doc": doc_scores(drops[dtype], documents),
            "chunk_seconds_median": round(statistics.median(seconds[dtype]["chunk"]), 3),
            "doc_seconds_median": round(statistics.median(seconds[dtype]["doc"]), 3),
        }
    for stage in ("chunk", "doc"):
        key = f"{stage}_seconds_median"
        report[f"{stage}_speedup_bf16"] = round(report["float32"][key] / report["bfloat16"][key], 2)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
