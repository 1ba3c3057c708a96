"""The rule baselines of the ProX paper — Gopher, C4 and FineWeb quality rules — as implemented by
datatrove, with their default thresholds; `prox baseline` runs them over a corpus with the output contract
of `prox refine` (OUT/data, OUT/dropped with the rule that dropped each document, OUT/stats.json)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from datatrove.data import Document

from proxkit.errors import OptionError
from proxkit.outcome import mark_dropped, prox_metadata
from proxkit.run import RunConfig, run_pipeline
from proxkit.stages import OutcomeWriter, PendingStep

RULE_SETS = ("gopher", "c4", "fineweb")


def rule_filters(names: Iterable[str] = RULE_SETS) -> dict[str, list]:
    """datatrove filters by rule-set name; `gopher` includes the repetition rules."""
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    makers = {
        "gopher": lambda: [GopherRepetitionFilter(), GopherQualityFilter()],
        "c4": lambda: [C4QualityFilter()],
        "fineweb": lambda: [FineWebQualityFilter()],
    }
    unknown = set(names) - set(makers)
    if unknown:
        raise OptionError(f"unknown rule sets {sorted(unknown)}; choose from {sorted(makers)} or all")
    return {name: makers[name]() for name in names}


def apply_rules(text: str, filters: dict[str, list]) -> tuple[bool, str | None, str]:
    """(keep, the first rule that drops it, the text the rules leave) for one document, the rules applied
    in order as in a pipeline: the C4 rules also remove lines (no terminal punctuation, javascript,
    policy notices), and later rules read the edited text."""
    document = Document(text, "baseline")
    for name, chain in filters.items():
        for rule in chain:
            verdict = rule.filter(document)
            keep, reason = verdict if isinstance(verdict, tuple) else (verdict, None)
            if not keep:
                return False, f"{name}:{reason or type(rule).__name__}", text
    return True, None, document.text


def rule_decision(text: str, filters: dict[str, list]) -> tuple[bool, str | None]:
    """(keep, the first rule that drops it) for one document under every filter given."""
    keep, reason, _ = apply_rules(text, filters)
    return keep, reason


def parse_rule_sets(names: str | Sequence[str]) -> tuple[str, ...]:
    """`gopher`, `c4,fineweb`, `all` → rule-set names, checked."""
    parts = names.split(",") if isinstance(names, str) else list(names)
    chosen = [part.strip() for part in parts if part.strip()]
    if "all" in chosen:
        return RULE_SETS
    rule_filters(chosen)  # raises on an unknown name
    if not chosen:
        raise OptionError("name at least one rule set: gopher, c4, fineweb or all")
    return tuple(dict.fromkeys(chosen))


class RuleFilter(PendingStep):
    """Drops (with the rule's reason) or keeps each pending document; kept documents carry the text the rules
    leave and their source in `raw_content`, as refined ones do."""

    type = "🔻 - FILTER"
    name = "🔻 RuleFilter"

    def __init__(self, rule_sets: Sequence[str] = RULE_SETS) -> None:
        super().__init__()
        self.rule_sets = tuple(rule_sets)
        self._filters: dict[str, list] = {}

    def prepare(self) -> None:
        self._filters = rule_filters(self.rule_sets)

    def apply_pending(self, document: Document, source: str) -> None:
        keep, reason, text = apply_rules(source, self._filters)
        words = len(source.split())
        prox_metadata(document)["stats"] = {"words_before": words, "words_after": len(text.split()) if keep else 0}
        if keep:
            document.text = text
        else:
            mark_dropped(document, str(reason))
        self.stat_update("kept" if keep else "dropped")


@dataclass
class BaselineConfig(RunConfig):
    """`prox baseline`: which rule sets, over which corpus."""

    rule_sets: tuple[str, ...] = field(default=RULE_SETS)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.rule_sets = parse_rule_sets(self.rule_sets)

    def describe(self) -> dict:
        return {"baseline": list(self.rule_sets)}


def run_baseline(config: BaselineConfig) -> dict | None:
    """Filter the corpus with the rule sets; the same outputs as `prox refine` (see `run.run_pipeline`)."""

    writer = OutcomeWriter(config.output, progress=config.progress, output_format=config.output_format)
    pipeline = [config.reader(), RuleFilter(config.rule_sets), writer]
    return run_pipeline(config, pipeline)
