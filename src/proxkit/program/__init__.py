"""The ProX program language: calls, parser and executor. Pure Python with no heavy imports."""

from proxkit.program.execute import (
    Bounds,
    DropReason,
    ExecutionStats,
    Guards,
    Result,
    execute,
    execute_chunk,
    execute_doc,
    removed_lines,
)
from proxkit.program.ops import (
    Call,
    DropDoc,
    ErrorKind,
    KeepChunk,
    KeepDoc,
    Mode,
    Normalize,
    Program,
    ProgramError,
    RemoveAllLines,
    RemoveLines,
    Stage,
)
from proxkit.program.parse import parse_program, split_stages

__all__ = [
    "Bounds",
    "Call",
    "DropDoc",
    "DropReason",
    "ErrorKind",
    "ExecutionStats",
    "Guards",
    "KeepChunk",
    "KeepDoc",
    "Mode",
    "Normalize",
    "Program",
    "ProgramError",
    "RemoveAllLines",
    "RemoveLines",
    "Result",
    "Stage",
    "execute",
    "execute_chunk",
    "execute_doc",
    "parse_program",
    "removed_lines",
    "split_stages",
]
