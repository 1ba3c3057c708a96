"""Training cost of the line tagger's head options: one step (forward, loss, backward, AdamW) of
`TaggerHeads` on one page of random line states, on one CPU thread, for the plain head and each of
`--surface`, `--attention`, `--recurrent`. Prints the median time per step and its ratio to the plain
head's, measured side by side in one run.

    python benchmarks/bench_line_heads.py [--lines 112] [--steps 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from proxkit.models.tagger import SURFACE_FEATURES, TaggerHeads

FEATURES, WIDTH = 576, 256  # SmolLM2-135M's hidden size, the bundled taggers' head width
OPTIONS = {
    "plain": {},
    "surface": {"surface_columns": SURFACE_FEATURES},
    "attention": {"attention": True},
    "recurrent": {"recurrent": True},
}


def step_seconds(heads: TaggerHeads, lines: torch.Tensor, steps: int) -> float:
    """Mean seconds of one training step over `steps` steps on the same page."""
    optimizer = torch.optim.AdamW(heads.parameters(), lr=1e-3)
    target = torch.randint(0, 2, (len(lines),)).float()
    start = time.perf_counter()
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(heads.line_logits(lines), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=112, help="lines per page (the seed pages' mean: 112)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    heads = {name: TaggerHeads(FEATURES, WIDTH, **settings).train() for name, settings in OPTIONS.items()}
    pages = {
        name: torch.randn(args.lines, FEATURES + settings.get("surface_columns", 0))
        for name, settings in OPTIONS.items()
    }
    times: dict[str, list[float]] = {name: [] for name in OPTIONS}
    for _ in range(args.repeats):  # in turns, so a slow moment of the machine hits every option
        for name in OPTIONS:
            times[name].append(step_seconds(heads[name], pages[name], args.steps))
    plain = statistics.median(times["plain"])
    print(f"{args.lines} lines, one thread, medians of {args.repeats}")
    for name in OPTIONS:
        median = statistics.median(times[name])
        print(f"{name:>10}: {median * 1000:7.1f} ms per step, {median / plain:4.1f}x the plain head")


if __name__ == "__main__":
    main()
