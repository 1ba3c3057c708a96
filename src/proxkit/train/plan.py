"""How `prox train tagger` trains (`TrainingPlan`), in a module without torch so the CLI reads its defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingPlan:
    """How `train_and_validate` trains: chunk pages sampled (`max_pages`, 0: all, fair across collections),
    cross-validation folds (0: none; by site, or one per collection with `leave_collection_out`), epochs,
    processes side by side, whether only the line states are computed, where the backbone computes them
    (None: the GPU when there is one; the heads train on the CPU) and in what dtype ("auto": bfloat16 on a GPU
    or a CPU that runs it faster, as `prox refine` does); with `clean_copies` the line head also trains on
    each sampled page's gold read alone, every line content (text already cleaned once), never tested on;
    with `only_collections`, only those collections' leave-one-collection-out folds run (no final heads);
    with a `shard` (index, count), only every count-th example's line states from the index-th are computed
    (with `extract_only`: one of count processes or machines filling one states cache); `also_renderings`
    join the pages drawn in those renderings too (`split.sample_with_renderings`)."""

    max_pages: int = 0
    folds: int = 5
    epochs: int = 30
    jobs: int = 1
    leave_collection_out: bool = False
    extract_only: bool = False
    device: str | None = None
    dtype: str = "auto"
    clean_copies: bool = False
    only_collections: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None
    also_renderings: tuple[str, ...] = ()


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` as (K, N): the K-th of N shares, counted from 0; a ValueError saying what is wrong."""
    index, slash, count = text.partition("/")
    if not (slash and index.strip().isdigit() and count.strip().isdigit()):
        raise ValueError(f"{text!r} is not K/N (the K-th of N shares, from 0)")
    if not int(index) < int(count):
        raise ValueError(f"share {int(index)} of {int(count)}: K must lie within 0..N-1")
    return int(index), int(count)
