"""How seed examples are sampled and split for training and validation: by site, so a page's site never
lies on both sides, and the same way in every command (`prox train tagger|doc|chunk`, `prox evaluate
--held-out`), so their held-out pages are the same pages."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from proxkit.train.seed import Example

HELD_OUT_FOLDS = 5  # the held-out side is site fold 0 of this many


def collection_of(example: Example) -> str:
    """The collection an example is drawn from: its `collection`, else the first part of its `source`."""
    return example.collection or example.source.split("/")[0]


def sample_pages(examples: Sequence[Example], limit: int, seed: int = 0) -> list[Example]:
    """At most `limit` examples (0: all), drawn at random but fairly across collections (default: the first
    part of `source`)."""
    if not limit or len(examples) <= limit:
        return list(examples)
    groups: dict[str, list[Example]] = {}
    for example in examples:
        groups.setdefault(collection_of(example), []).append(example)
    rng = random.Random(seed)
    for group in groups.values():
        rng.shuffle(group)
    chosen: list[Example] = []
    while len(chosen) < limit:  # round robin over collections, so small ones are kept whole
        for group in groups.values():
            if group and len(chosen) < limit:
                chosen.append(group.pop())
    return chosen


def sample_with_renderings(
    examples: Sequence[Example], limit: int, renderings: Sequence[str] = (), seed: int = 0
) -> list[Example]:
    """`sample_pages` of the examples in other renderings than `renderings`, then every example in one of
    `renderings` of a page drawn: those renderings join the pages drawn without changing the draw (no
    `limit`: every example)."""
    if not limit:
        return list(examples)
    extra = set(renderings)
    drawn = sample_pages([example for example in examples if example.rendering not in extra], limit, seed)
    sources = {example.source for example in drawn}
    return drawn + [example for example in examples if example.rendering in extra and example.source in sources]


def sample_sources(examples: Sequence[Example], per_collection: int, seed: int = 0) -> list[Example]:
    """Every example of at most `per_collection` pages (`source`) of each collection, drawn at random (one
    generator over the collections present, in name order): a page's renderings all come, so extractors are
    compared on the same pages."""
    by_collection: dict[str, set[str]] = {}
    for example in examples:
        by_collection.setdefault(collection_of(example), set()).add(example.source)
    rng, chosen = random.Random(seed), set()
    for _, sources in sorted(by_collection.items()):
        drawn = sorted(sources)
        rng.shuffle(drawn)
        chosen.update(drawn[:per_collection])
    return [example for example in examples if example.source in chosen]


def site_folds(examples: Sequence[Example], folds: int, seed: int = 0) -> list[int]:
    """A fold number per example such that all pages of one site share a fold. A site's fold is a hash of
    its name alone, so a sample of the examples splits as the whole does: the held-out sites of a
    `--max-pages` run are held out by every other command too."""
    return [int(hashlib.sha1(f"{seed}\0{example.site}".encode()).hexdigest(), 16) % folds for example in examples]


def held_out_split(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(training side, held-out side) of these examples: the held-out side is site fold 0 of
    `HELD_OUT_FOLDS`, the pages every trainer keeps out of training."""
    folds = site_folds(examples, HELD_OUT_FOLDS)
    train = [example for example, fold in zip(examples, folds, strict=True) if fold]
    return train, [example for example, fold in zip(examples, folds, strict=True) if not fold]
