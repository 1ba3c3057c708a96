"""The doc stage without decoding: do the decisions read off one forward pass (`choose`) equal those of
greedy decoding, and how much faster are they? Runs a generative doc refiner both ways on the doc
examples of a seed file and prints the agreement and the speed-up.

    python benchmarks/bench_doc_choice.py --model DIR --data seed.jsonl [--limit 200]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from proxkit.models.hf import TransformersWriter
from proxkit.models.tokenizers import load_tokenizer
from proxkit.program import Mode, Stage, execute_doc
from proxkit.program.grammar import DOC_PROGRAMS
from proxkit.prompts import TokenizationMode, doc_prompt_ids
from proxkit.train.seed import load_seed
from proxkit.writing import STRICT_DOC_MAX_NEW_TOKENS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a generative doc refiner directory")
    parser.add_argument("--data", type=Path, required=True, help="seed JSONL with doc-stage examples")
    parser.add_argument("--limit", type=int, default=200)
    args = parser.parse_args()
    examples = [e for e in load_seed(args.data) if e.stage == Stage.DOC][-args.limit :]
    texts = ["\n".join(e.lines) for e in examples]
    tokenizer = load_tokenizer(args.model)
    writer = TransformersWriter(args.model, tokenizer)
    prompts = [doc_prompt_ids(text, tokenizer, TokenizationMode.CLEAN).ids for text in texts]
    writer.choose(prompts[:1], DOC_PROGRAMS, STRICT_DOC_MAX_NEW_TOKENS)  # warm-up (vocabulary scan)

    started = time.perf_counter()
    greedy = writer.generate(prompts, STRICT_DOC_MAX_NEW_TOKENS)
    greedy_seconds = time.perf_counter() - started
    started = time.perf_counter()
    chosen = writer.choose(prompts, DOC_PROGRAMS, STRICT_DOC_MAX_NEW_TOKENS)
    choose_seconds = time.perf_counter() - started

    def dropped(text, generation) -> bool:
        return execute_doc(text, generation.text.strip(), mode=Mode.STRICT).dropped

    same = sum(dropped(t, g) == dropped(t, c) for t, g, c in zip(texts, greedy, chosen, strict=True))
    programs = sum(g.text.strip() in DOC_PROGRAMS for g in greedy)
    decoded = sum(c.text not in DOC_PROGRAMS for c in chosen)
    print(f"{len(examples)} doc examples, model {args.model}")
    print(f"greedy wrote a valid doc program for {programs}; choose decoded freely for {decoded}")
    print(f"identical decisions: {same}/{len(examples)} ({same / len(examples):.1%})")
    print(f"greedy {greedy_seconds:.2f} s, choose {choose_seconds:.2f} s: {greedy_seconds / choose_seconds:.2f}x")


if __name__ == "__main__":
    main()
