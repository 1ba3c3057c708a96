"""The rule baselines of the ProX paper — Gopher, C4 and FineWeb quality rules — as implemented by
datatrove, with their default thresholds."""

from __future__ import annotations

from collections.abc import Iterable


def rule_filters(names: Iterable[str] = ("gopher", "c4", "fineweb")) -> dict[str, list]:
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
        raise ValueError(f"unknown rule sets {sorted(unknown)}; choose from {sorted(makers)}")
    return {name: makers[name]() for name in names}


def rule_decision(text: str, filters: dict[str, list]) -> tuple[bool, str | None]:
    """(keep, the first rule that drops it) for one document under every filter given."""
    from datatrove.data import Document

    for name, chain in filters.items():
        for rule in chain:
            verdict = rule.filter(Document(text, "baseline"))
            keep, reason = verdict if isinstance(verdict, tuple) else (verdict, None)
            if not keep:
                return False, f"{name}:{reason or type(rule).__name__}"
    return True, None
