"""The human seed set: every labelled collection found under `shared/data`, one JSONL.

`python -m proxkit.annotate.seed_set --shared shared/data -o seed.jsonl` imports `webpages_labelled/`
(`proxkit.annotate.human`), the three archives of `webpages_labelled_more/` (`proxkit.annotate.wcxb`,
`proxkit.annotate.archives`), `line_quality_labels/` (`proxkit.annotate.line_labels`) and the DCLM quality
labels; every HTML page in each of `--renderings` (`proxkit.annotate.render`). It prints counts per subset
and rendering, and where WCXB's snippets land under the alignment of each rendering.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from proxkit.annotate import wcxb
from proxkit.annotate.archives import BIG9_CHAOS, GOOGLE_TRENDS, import_big9_chaos, import_google_trends
from proxkit.annotate.human import DOC_KEEP_MIN_WORDS, import_dclm, import_webpages
from proxkit.annotate.line_labels import import_line_labels
from proxkit.annotate.render import RENDERINGS, TRAINING_RENDERINGS, parse_renderings
from proxkit.inline_noise import apply_normalize
from proxkit.train.seed import SeedExample, write_seed


@dataclass
class Summary:
    """Counts of a seed set, per subset and stage."""

    examples: Counter[tuple[str, str]] = field(default_factory=Counter)
    lines: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    kept_share: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    doc_keeps: Counter[str] = field(default_factory=Counter)
    normalized: Counter[str] = field(default_factory=Counter)  # chunk examples with normalize calls
    normalize_calls: Counter[str] = field(default_factory=Counter)

    def add(self, example: SeedExample) -> SeedExample:
        """Count `example` (under its subset and rendering) and hand it on."""
        key = f"{example.subset}@{example.rendering}" if example.rendering else example.subset
        self.examples[(key, example.stage)] += 1
        if example.labels is not None:
            calls = len(example.normalizes())
            self.normalized[key] += bool(calls)
            self.normalize_calls[key] += calls
            self.lines[key].append(len(example.labels))
            self.kept_share[key].append(sum(example.labels) / len(example.labels))
        if example.label is not None:
            self.doc_keeps[key] += example.label
        return example

    def render(self) -> str:
        """A table: examples per subset and stage, doc keeps, mean lines per page, mean share of lines kept,
        chunk examples with `normalize` calls and how many calls."""
        head = f"{'subset@rendering':<34} {'chunk':>6} {'doc':>6} {'doc keep':>8}"
        rows = [f"{head} {'lines/page':>10} {'kept share':>10} {'normalized':>10} {'calls':>6}"]
        for subset in sorted({subset for subset, _ in self.examples}):
            lines, shares = self.lines[subset], self.kept_share[subset]
            mean_lines = f"{sum(lines) / len(lines):.1f}" if lines else "-"
            mean_share = f"{sum(shares) / len(shares):.3f}" if shares else "-"
            rows.append(
                f"{subset:<34} {self.examples[(subset, 'chunk')]:>6} {self.examples[(subset, 'doc')]:>6} "
                f"{self.doc_keeps[subset]:>8} {mean_lines:>10} {mean_share:>10} "
                f"{self.normalized[subset]:>10} {self.normalize_calls[subset]:>6}"
            )
        return "\n".join(rows)


def checked_wcxb(folder: Path, snippets: Counter[str], renderings: list[str]) -> Iterator[SeedExample]:
    """`wcxb.import_wcxb`, adding where each page's snippets land under its chunk examples' labels to
    `snippets` (keys `RENDERING:KIND_PLACE`, and `RENDERING:KIND_PLACE_normalized` once the examples'
    `normalize` calls have run)."""
    for page in wcxb.read_pages(folder / wcxb.ARCHIVE):
        examples = wcxb.page_examples(page, DOC_KEEP_MIN_WORDS, renderings)
        for example in examples:
            if example.labels is not None:
                lines = example.text.split("\n")
                landed = wcxb.snippet_check(lines, example.labels, page)
                snippets.update({f"{example.rendering}:{key}": n for key, n in landed.items()})
                normalized = apply_normalize(lines, example.normalizes())
                landed = wcxb.snippet_check(normalized, example.labels, page)
                snippets.update({f"{example.rendering}:{key}_normalized": n for key, n in landed.items()})
        yield from examples


def render_snippets(snippets: Counter[str]) -> str:
    """One line per rendering and snippet kind: how many land in content, in noise, or not on the page."""
    rows = []
    for rendering in dict.fromkeys(key.split(":")[0] for key in snippets):
        for kind in ("with", "without"):
            places = ("in_content", "in_noise", "absent")
            counts = {place: snippets[f"{rendering}:{kind}_{place}"] for place in places}
            landed = ", ".join(f"{n} {place.replace('_', ' ')}" for place, n in counts.items())
            after = snippets[f"{rendering}:{kind}_in_content_normalized"]
            rows.append(f"wcxb `{kind}` snippets ({rendering}): {landed}; in content after normalize: {after}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """Build the seed set from `--shared` (the folder holding `webpages_labelled`, `webpages_labelled_more`
    and `dclm_quality_labels`)."""
    parser = argparse.ArgumentParser(prog="python -m proxkit.annotate.seed_set", description=main.__doc__)
    parser.add_argument("--shared", type=Path, required=True, help="folder with webpages_labelled*/ and dclm_*")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSONL file to write")
    parser.add_argument(
        "--renderings",
        default=",".join(TRAINING_RENDERINGS),
        help=f"HTML-to-text tools to render each page with, comma-separated, of {', '.join(RENDERINGS)} "
        f"(default: {', '.join(TRAINING_RENDERINGS)})",
    )
    args = parser.parse_args(argv)
    try:
        renderings = parse_renderings(args.renderings)
    except ValueError as error:
        parser.error(str(error))
    pages, more = args.shared / "webpages_labelled", args.shared / "webpages_labelled_more"
    line_labels = args.shared / "line_quality_labels"
    dclm = args.shared / "dclm_quality_labels" / "labels.jsonl"
    snippets: Counter[str] = Counter()
    sources = [import_webpages(pages, renderings=renderings)] if pages.is_dir() else []
    sources += [checked_wcxb(more, snippets, renderings)] if (more / wcxb.ARCHIVE).is_file() else []
    sources += [import_google_trends(more, renderings=renderings)] if (more / GOOGLE_TRENDS).is_file() else []
    sources += [import_big9_chaos(more, renderings=renderings)] if (more / BIG9_CHAOS).is_file() else []
    sources += [import_line_labels(line_labels)] if line_labels.is_dir() else []
    sources += [import_dclm(dclm)] if dclm.is_file() else []
    if not sources:
        parser.error(f"none of {pages}, {more}, {line_labels} or {dclm} exists")
    summary = Summary()
    examples = tqdm((summary.add(example) for source in sources for example in source), desc="seed", unit=" ex")
    count = write_seed(examples, args.output)
    print(summary.render())
    if snippets:
        print(render_snippets(snippets))
    print(f"{count} examples written to {args.output}")


if __name__ == "__main__":
    main()
