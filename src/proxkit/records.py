"""The schema of what a run records: each document's `metadata.prox` and OUT/stats.json. The steps write
these fields, `stages.Totals` adds them up by the names given here, `run.write_stats` and the report read
them; `conforms` checks a value against a schema (the tests walk a real run's outputs with it)."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import TypedDict

OUTPUT_FORMATS = ("jsonl", "parquet")  # how OUT/data, OUT/dropped and OUT/failed are written


class DocStageRecord(TypedDict, total=False):
    prompt_tokens: int
    raw_tokens: int
    new_tokens: int
    truncated: bool
    fallback: int  # 1: kept unjudged, outside the tagger's languages (records before 2026-12-06 lack it)


class ChunkStageRecord(TypedDict):
    chunks: int
    prompt_tokens: int
    content_tokens: int
    new_tokens: int
    truncated_chunks: int
    unanswered_chunks: int
    fallback_chunks: typing.NotRequired[
        int
    ]  # chunks whose program a rule wrote instead (cache entries of older runs lack it)


class ErrorRecord(TypedDict):
    kind: str
    line: int
    message: str
    stage: str


class ExecutionRecord(TypedDict, total=False):
    words_before: int
    words_after: int
    lines_before: int
    lines_removed: int
    normalize_applied: int
    normalize_missed: int
    calls: dict[str, int]
    program_ignored: bool
    tokens_after: int


class ProxRecord(TypedDict, total=False):
    """`metadata.prox` of one document."""

    status: str  # kept (absent), dropped or failed
    drop_reason: str
    error: str
    mode: str
    doc_model: str
    chunk_model: str
    doc_score: float  # a scoring doc model's P(drop)
    doc_stage: DocStageRecord
    chunk_stage: ChunkStageRecord
    errors: list[ErrorRecord]
    stats: ExecutionRecord


DocumentCounts = TypedDict("DocumentCounts", {"in": int, "kept": int, "dropped": int, "failed": int})  # "in": a keyword


class TokenCounts(TypedDict):
    raw: int
    after_doc_stage: int
    out: int


WordCounts = TypedDict("WordCounts", {"in": int, "out": int})


class Truncations(TypedDict):
    doc_prompts: int
    chunk_prompts: int
    unanswered_chunks: int


class Throughput(TypedDict):
    tasks: int
    task_seconds: float
    wall_seconds_this_run: float
    documents_per_second: float | None
    raw_tokens_per_second: float | None


class Stats(TypedDict):
    """OUT/stats.json."""

    documents: DocumentCounts
    tokens: TokenCounts
    flops: dict[str, object]
    words: WordCounts
    drop_reasons: dict[str, int]
    calls: dict[str, int]
    program_errors: dict[str, int]
    truncations: Truncations
    fallback_chunks: typing.NotRequired[int]  # chunks a rule wrote instead of the model (runs before 2026-12 lack it)
    fallback_docs: typing.NotRequired[int]  # documents kept unjudged, outside a tagger's languages (since 2026-12-06)
    throughput: Throughput
    config: dict[str, object]
    counts: dict[str, int]


SUMMED_EXECUTION_STATS = tuple(name for name, kind in typing.get_type_hints(ExecutionRecord).items() if kind is int)
# the per-document counts of a program's execution that Totals adds up


def conforms(value: object, schema: object, where: str = "") -> list[str]:
    """Where `value` departs from `schema` (a TypedDict, a typing form or a type): missing or unknown keys,
    wrong types. Empty when it conforms."""
    hints = typing.get_type_hints(schema) if isinstance(schema, type) and hasattr(schema, "__required_keys__") else None
    if hints is not None:
        if not isinstance(value, dict):
            return [f"{where or 'value'}: {type(value).__name__}, not an object"]
        optional = {  # NotRequired fields: postponed annotations hide them from __required_keys__ on 3.11
            key for key, hint in typing.get_type_hints(schema, include_extras=True).items()
            if typing.get_origin(hint) is typing.NotRequired
        }  # fmt: skip
        required = [key for key in schema.__required_keys__ if key not in optional]
        problems = [f"{where}.{key}: missing" for key in sorted(required) if key not in value]
        problems += [f"{where}.{key}: not in the schema" for key in value if key not in hints]
        for key, item in value.items():
            if key in hints:
                problems += conforms(item, hints[key], f"{where}.{key}")
        return problems
    origin, arguments = typing.get_origin(schema), typing.get_args(schema)
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        return [p for key, item in value.items() for p in conforms(item, arguments[1], f"{where}.{key}")]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [p for index, item in enumerate(value) for p in conforms(item, arguments[0], f"{where}[{index}]")]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return [] if any(not conforms(value, option, where) for option in arguments) else [f"{where}: {value!r}"]
    if schema is object:
        return []
    if schema is type(None):
        return [] if value is None else [f"{where}: {value!r} is not null"]
    if schema is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif schema is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, schema)
    return [] if ok else [f"{where}: {value!r} is not {getattr(schema, '__name__', schema)}"]


def read_stats(path: str | Path) -> Stats:
    """OUT/stats.json, checked against `Stats`: an InputError names the file and what departs from the schema."""
    import json

    from proxkit.errors import InputError

    try:
        stats = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read the run's stats ({error})") from None
    problems = conforms(stats, Stats, "stats")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(f"{path}: not the stats.json of a proxkit run ({shown})")
    return stats
