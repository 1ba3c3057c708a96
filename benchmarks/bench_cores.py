"""How to split this machine's cores for `prox refine` with the bundled taggers: W worker processes (one
task each, the documents split over W files) of T torch threads, W x T = the cores. Prints raw tokens/s of
each split, medians over repeats, splits interleaved.

    python benchmarks/bench_cores.py [--docs 48] [--repeats 3] [--dtype auto]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2]
    / "shared/data/web_text_samples/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
)


def splits(cores: int) -> list[tuple[int, int]]:
    """(workers, threads) with workers x threads = cores, every divisor of the core count."""
    return [(workers, cores // workers) for workers in range(1, cores + 1) if cores % workers == 0]


def run(documents: list[dict], workers: int, threads: int, dtype: str) -> tuple[float, int]:
    """Seconds of one run and its raw tokens."""
    from proxkit.run import RefineConfig, refine

    with tempfile.TemporaryDirectory() as folder:
        inputs = Path(folder) / "in"
        inputs.mkdir()
        for task in range(workers):
            part = documents[task::workers]
            (inputs / f"{task:03d}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in part))
        config = RefineConfig(
            inputs=[str(inputs)], output=f"{folder}/out", tasks=workers, workers=workers, threads=threads,
            progress=False, backend_options={"dtype": dtype},
        )  # fmt: skip
        started = time.perf_counter()
        stats = refine(config)
        return time.perf_counter() - started, stats["tokens"]["raw"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    with gzip.open(args.data, "rt", encoding="utf-8") as file:
        records = [json.loads(line) for line in file if line.strip()]
    documents = [{"id": str(r["id"]), "text": r["text"]} for r in records if r["text"].strip()][: args.docs]
    cores = len(os.sched_getaffinity(0))
    seconds: dict[tuple[int, int], list[float]] = {split: [] for split in splits(cores)}
    raw = 0
    for _ in range(args.repeats):
        for split in seconds:
            elapsed, raw = run(documents, *split, args.dtype)
            seconds[split].append(elapsed)
    print(
        f"{len(documents)} documents, {raw:,} raw tokens, {cores} cores, dtype {args.dtype}, medians of {args.repeats}"
    )
    medians = {split: statistics.median(times) for split, times in seconds.items()}
    for (workers, threads), median in medians.items():
        print(f"workers {workers} x threads {threads}: {raw / median:9.0f} raw tokens/s ({median:.1f} s)")
    best = min(medians, key=medians.get)
    print(f"best split: {best[0]} workers x {best[1]} threads")


if __name__ == "__main__":
    main()
