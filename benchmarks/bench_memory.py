"""Bounded memory: the peak resident memory of `prox refine` on N documents and on 10·N documents (the N
pages repeated ten times under new ids), each run in a fresh process. Streaming in batches means the larger input
should cost no more memory than the smaller one (issue 5 target: within 10%).

    python benchmarks/bench_memory.py [--docs 20] [--factor 10] [--model proxkit/web-chunk-tagger]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2]
    / "shared/data/web_text_samples/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
)
# runs a command and prints the peak resident memory (KiB) of the processes it started
PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def write_corpus(pages: list[str], count: int, path: Path) -> Path:
    """`count` documents cycling over `pages` under new ids: the larger input is the smaller one repeated, so
    a difference in peak memory comes from the input's length, not from a longer page in it."""
    with path.open("w", encoding="utf-8") as file:
        for index in range(count):
            file.write(json.dumps({"id": f"doc-{index}", "text": pages[index % len(pages)]}) + "\n")
    return path


def peak_kib(corpus: Path, output: Path, extra: list[str]) -> int:
    command = [sys.executable, "-m", "proxkit", "refine", str(corpus), "-o", str(output), "--no-progress", *extra]
    result = subprocess.run([sys.executable, "-c", PEAK, *command], check=True, capture_output=True, text=True)
    return int(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8, help="documents per model batch (prox refine)")
    parser.add_argument("--model", default=None, help="a refiner for both stages (default: the bundled ones)")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data} not found: pass --data")
    with gzip.open(args.data, "rt", encoding="utf-8") as file:
        pages = [text for line in file if line.strip() and (text := json.loads(line)["text"]).strip()]
    extra = ["--batch-size", str(args.batch_size)]
    if args.model:
        extra += ["--doc-model", args.model, "--chunk-model", args.model]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        peaks = {}
        for count in (args.docs, args.docs * args.factor):
            corpus = write_corpus(pages[: args.docs], count, root / f"corpus-{count}.jsonl")
            peaks[count] = peak_kib(corpus, root / f"out-{count}", extra)
    small, large = peaks[args.docs], peaks[args.docs * args.factor]
    for count, kib in peaks.items():
        print(f"{count:6d} documents: peak RSS {kib / 1024:8.1f} MiB")
    print(f"{args.factor}x the input: {large / small:.3f}x the peak memory (target <= 1.10)")


if __name__ == "__main__":
    main()
