"""Program text → Program, in two modes.

`strict` reads each program line with Python's `ast` (never `eval`): any spelling of PROX_SPEC §1 is
accepted and each problem becomes a typed ProgramError naming its line. `reference` reads the text the
way the authors' executor did (a split on "(", ",", "=" and ")"), keeping its decisions and its defects.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator

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

_NO_ARGUMENT_CALLS: dict[str, Call] = {
    "keep_doc": KeepDoc(),
    "drop_doc": DropDoc(),
    "keep_chunk": KeepChunk(),
    "skip_chunk": KeepChunk(),
    "untouch_doc": KeepChunk(),
}
_PARAMETERS = {
    "remove_lines": ("line_start", "line_end"),
    "normalize": ("source_str", "target_str"),
}
_ALIASES = {"start": "line_start", "end": "line_end"}
_DOC_CALL_NAMES = ("keep_doc", "drop_doc")

# The canonical spellings, read without building a syntax tree (the common case, and the hot path).
_FAST_NO_ARGUMENT = re.compile(r"(keep_doc|drop_doc|keep_chunk|skip_chunk|untouch_doc)\(\)")
_NUMBER = r"(0|[1-9][0-9]{0,17})"
# A string with no escape, quote, control character or lone surrogate means what it says.
_PLAIN_STRING = r'"([^"\\\x00-\x1f\x7f\ud800-\udfff]*)"'
_FAST_NORMALIZE = re.compile(
    rf"normalize\((?:source_str={_PLAIN_STRING}(?:, ?target_str={_PLAIN_STRING})?"
    rf"|{_PLAIN_STRING}(?:, ?(?:target_str=)?{_PLAIN_STRING})?)\)"
)
_FAST_REMOVE = re.compile(
    rf"remove_lines\((?:{_NUMBER}, ?{_NUMBER}|(?:line_)?start={_NUMBER}, ?(?:line_)?end={_NUMBER})\)"
)


def parse_program(text: str, stage: Stage, mode: Mode = Mode.STRICT) -> Program:
    """Read the program a model wrote for one stage. Never raises, whatever the text."""
    if Mode(mode) is Mode.REFERENCE:
        return _parse_reference_doc(text) if stage is Stage.DOC else _parse_reference_chunk(text)
    return _parse_strict(text, Stage(stage))


def split_stages(text: str) -> tuple[str, str]:
    """Split a whole-document program into its document-stage and chunk-stage programs.

    Each keeps the other's lines as blank lines, so line numbers in errors still point into `text`.
    """
    lines = text.split("\n")
    is_doc = [line.lstrip().startswith(_DOC_CALL_NAMES) for line in lines]
    doc = "\n".join(line if doc else "" for line, doc in zip(lines, is_doc, strict=True))
    chunk = "\n".join("" if doc else line for line, doc in zip(lines, is_doc, strict=True))
    return doc, chunk


# --- strict ---------------------------------------------------------------------------------------------


def _parse_strict(text: str, stage: Stage) -> Program:
    calls: list[Call] = []
    numbers: list[int] = []
    errors: list[ProgramError] = []
    lines = text.split("\n")
    last = _last_code_line(lines)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "```")):
            continue
        for item in _read_line(line, number, is_last=number == last):
            if isinstance(item, ProgramError):
                errors.append(_with_stage(item, stage))
            elif item.stage is not stage:
                message = f"{item.name}() belongs to the {item.stage} stage, not the {stage} stage"
                errors.append(ProgramError(ErrorKind.WRONG_STAGE, number, message, stage))
            else:
                calls.append(item)
                numbers.append(number)
    return Program(tuple(calls), tuple(errors), tuple(numbers))


def _last_code_line(lines: list[str]) -> int:
    for number in range(len(lines), 0, -1):
        line = lines[number - 1].strip()
        if line and not line.startswith(("#", "```")):
            return number
    return 0


def _with_stage(error: ProgramError, stage: Stage) -> ProgramError:
    return ProgramError(error.kind, error.line, error.message, stage)


def _read_line(line: str, number: int, is_last: bool) -> Iterator[Call | ProgramError]:
    """The calls on one program line (usually one), or the errors that stop them."""
    if match := _FAST_NO_ARGUMENT.fullmatch(line):
        yield _NO_ARGUMENT_CALLS[match.group(1)]
        return
    if match := _FAST_REMOVE.fullmatch(line):
        start, end = _first_of_pairs(match)
        yield _remove_lines(int(start), int(end), number)
        return
    if match := _FAST_NORMALIZE.fullmatch(line):
        source, target = _first_of_pairs(match)
        yield _normalize({"source_str": source, "target_str": target or ""}, number)
        return
    try:
        statements, line = _syntax_tree(line)
    except SyntaxError as error:
        yield _syntax_error(error, line, number, is_last)
        return
    except (ValueError, RecursionError, MemoryError) as error:  # null bytes, absurd nesting or numbers
        yield ProgramError(ErrorKind.SYNTAX, number, f"unreadable line {line[:60]!r}: {error}")
        return
    source = _Source(line)
    for statement in statements:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            yield _read_call(statement.value, number, source)
        else:
            yield ProgramError(ErrorKind.SYNTAX, number, f"not a call: {source.segment(statement)[:60]!r}")


class _Source:
    """One program line, and the text of a node of its syntax tree (`ast.get_source_segment` would walk the
    line again for every node: quadratic on a line of thousands of calls)."""

    def __init__(self, line: str) -> None:
        self.line = line
        # ast's column offsets count UTF-8 bytes within a physical line (a CR inside the line starts one)
        self.rows = [row.encode() for row in _PHYSICAL_LINE_END.split(line)]

    def segment(self, node: ast.AST) -> str:
        if node.lineno != node.end_lineno:
            return ast.get_source_segment(self.line, node) or ""
        return self.rows[node.lineno - 1][node.col_offset : node.end_col_offset].decode()


_PHYSICAL_LINE_END = re.compile(r"\r\n?|\n")


def _syntax_tree(line: str) -> tuple[list[ast.stmt], str]:
    """The statements of one program line, and the text they were read from. Line numbers copied
    zero-padded from the prompt (`remove_lines(007, 009)`) are read as numbers: Python would reject the
    leading zeros."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes such as "\d" are read as Python reads them
        try:
            return ast.parse(line, mode="exec").body, line
        except SyntaxError as error:
            if "leading zeros" not in (error.msg or "") or '"' in line or "'" in line:
                raise
            unpadded = _ZERO_PADDED.sub(r"\1", line)
            return ast.parse(unpadded, mode="exec").body, unpadded


_ZERO_PADDED = re.compile(r"\b0+(\d)")


def _first_of_pairs(match: re.Match[str]) -> tuple[str | None, str | None]:
    """The two arguments matched by a fast pattern made of two alternatives of two groups each."""
    return (match[1], match[2]) if match[1] is not None else (match[3], match[4])


def _syntax_error(error: SyntaxError, line: str, number: int, is_last: bool) -> ProgramError:
    message = error.msg or "invalid syntax"
    if is_last and ("never closed" in message or "unterminated" in message or "unexpected EOF" in message):
        return ProgramError(ErrorKind.TRUNCATED, number, f"the program ends inside a call: {line[:60]!r}")
    return ProgramError(ErrorKind.SYNTAX, number, f"{message}: {line[:60]!r}")


def _read_call(node: ast.Call, number: int, source: _Source) -> Call | ProgramError:
    if not isinstance(node.func, ast.Name):
        return ProgramError(ErrorKind.UNKNOWN_CALL, number, f"unknown call {source.segment(node.func)[:60]!r}")
    name = node.func.id
    written = source.segment(node.func)
    if not written.isascii():  # Python folds look-alikes (fullwidth, mathematical bold) to ASCII names (NFKC)
        return ProgramError(ErrorKind.UNKNOWN_CALL, number, f"unknown call {written!r}: call names are ASCII")
    if name in _NO_ARGUMENT_CALLS:
        if node.args or node.keywords:
            return ProgramError(ErrorKind.BAD_ARGUMENTS, number, f"{name}() takes no arguments")
        return _NO_ARGUMENT_CALLS[name]
    if name not in _PARAMETERS:
        known = ", ".join(sorted([*_NO_ARGUMENT_CALLS, *_PARAMETERS]))
        return ProgramError(ErrorKind.UNKNOWN_CALL, number, f"unknown call {name}(); known calls: {known}")
    for keyword in node.keywords:
        written = source.segment(keyword).split("=")[0]
        if not written.isascii():
            return ProgramError(ErrorKind.BAD_ARGUMENTS, number, f"{name}() argument {written!r}: names are ASCII")
    arguments = _bind(name, node, number)
    if isinstance(arguments, ProgramError):
        return arguments
    if name == "normalize":
        return _normalize(arguments, number)
    if "all" in arguments:
        if arguments != {"all": True} or arguments["all"] is not True:
            return ProgramError(ErrorKind.BAD_ARGUMENTS, number, "remove_lines(all=True) takes no other argument")
        return RemoveAllLines()
    return _remove_from_arguments(arguments, number)


def _bind(name: str, node: ast.Call, number: int) -> dict[str, object] | ProgramError:
    """Match positional and keyword arguments to the call's parameters; values must be literals."""
    parameters = _PARAMETERS[name]
    if len(node.args) > len(parameters):
        return ProgramError(ErrorKind.BAD_ARGUMENTS, number, f"{name}() takes at most {len(parameters)} arguments")
    values: dict[str, ast.expr] = dict(zip(parameters, node.args, strict=False))
    for keyword in node.keywords:
        key = _ALIASES.get(keyword.arg, keyword.arg) if keyword.arg else None
        allowed = (*parameters, "all") if name == "remove_lines" else parameters
        if key not in allowed:
            shown = keyword.arg or "**"
            return ProgramError(ErrorKind.BAD_ARGUMENTS, number, f"{name}() has no argument {shown!r}")
        if key in values:
            return ProgramError(ErrorKind.BAD_ARGUMENTS, number, f"{name}() got {key!r} twice")
        values[key] = keyword.value
    try:
        return {key: ast.literal_eval(value) for key, value in values.items()}
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return ProgramError(ErrorKind.BAD_ARGUMENTS, number, f"{name}() arguments must be literal values")


def _normalize(arguments: dict[str, object], number: int) -> Normalize | ProgramError:
    source, target = arguments.get("source_str"), arguments.get("target_str", "")
    if not isinstance(source, str) or not isinstance(target, str):
        return ProgramError(ErrorKind.BAD_ARGUMENTS, number, "normalize() needs string source_str and target_str")
    if not source.strip():
        message = f"normalize() source_str {source!r} is only whitespace: it would rewrite all text"
        return ProgramError(ErrorKind.BAD_ARGUMENTS, number, message)
    if not _is_text(source) or not _is_text(target):
        return ProgramError(ErrorKind.BAD_ARGUMENTS, number, "normalize() strings hold a lone surrogate: not text")
    return Normalize(source, target)


def _is_text(string: str) -> bool:
    """Whether the string is Unicode text a UTF-8 writer can write (no lone surrogate)."""
    try:
        string.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _remove_from_arguments(arguments: dict[str, object], number: int) -> RemoveLines | ProgramError:
    start, end = arguments.get("line_start"), arguments.get("line_end")
    if not _is_line_number(start) or not _is_line_number(end):
        shown = f"{_shown(start)}, {_shown(end)}"
        message = f"remove_lines() needs line_start and line_end as integers 0..10**18, got {shown}"
        return ProgramError(ErrorKind.BAD_ARGUMENTS, number, message)
    return _remove_lines(start, end, number)


MAX_LINE_NUMBER = 10**18  # no document has more lines


def _is_line_number(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_LINE_NUMBER


def _shown(value: object) -> str:
    """A short repr of an argument (a literal may be a number of thousands of digits)."""
    if type(value) is int and not -MAX_LINE_NUMBER <= value <= MAX_LINE_NUMBER:
        return "a number past 10**18" if value > 0 else "a number below -10**18"
    return repr(value)[:60]


def _remove_lines(start: int, end: int, number: int) -> RemoveLines | ProgramError:
    if start > end:
        return ProgramError(ErrorKind.EMPTY_RANGE, number, f"remove_lines() range {start}..{end} is empty")
    return RemoveLines(start, end)


# --- reference ------------------------------------------------------------------------------------------


def _parse_reference_doc(text: str) -> Program:
    """The authors' document stage: any output containing "drop" drops the document."""
    return Program((DropDoc(),) if "drop" in text else (KeepDoc(),))


def _parse_reference_chunk(text: str) -> Program:
    """The authors' chunk-program reader, call by call, with its error counting and its silent skips."""
    calls: list[Call] = []
    numbers: list[int] = []
    errors: list[ProgramError] = []
    for number, line in enumerate(text.strip(" ").split("\n"), start=1):
        call = None
        if line.startswith("remove_lines") and "all=True" in line:
            call = RemoveAllLines()
        elif line.startswith(("remove_lines", "normalize")):
            call = _reference_call(line, number, errors)
        # any other line (keep_chunk(), comments, prose, indented calls) is skipped without an error
        if call is not None:
            calls.append(call)
            numbers.append(number)
    return Program(tuple(calls), tuple(errors), tuple(numbers))


def _reference_call(line: str, number: int, errors: list[ProgramError]) -> Call | None:
    opening = line.find("(")
    if opening < 0:
        errors.append(ProgramError(ErrorKind.SYNTAX, number, f"no '(' in {line[:60]!r}"))
        return None
    closing = line.find(")")
    if closing < 0:  # the authors count this and go on without the line's last character
        errors.append(ProgramError(ErrorKind.TRUNCATED, number, f"no ')' in {line[:60]!r}"))
        closing = -1
    parameters = line[opening + 1 : closing].split(",")
    try:
        if line.startswith("remove_lines"):
            return RemoveLines(int(parameters[0].split("=")[1]), int(parameters[1].split("=")[1]))
        if len(parameters) == 1:  # the target is "": a source of "" replaces nothing
            source = parameters[0].split("=")[1].strip('"')
            return Normalize(source, "") if source else None
        if len(parameters) == 2:
            source, target = (parameter.split("=")[1].strip('"') for parameter in parameters)
            # a two-argument normalize of "" or " " is skipped; the one-argument form is not
            return None if source in ("", " ") else Normalize(source, target)
        return None  # a comma inside a string: the call is silently ignored
    except (IndexError, ValueError):
        errors.append(ProgramError(ErrorKind.BAD_ARGUMENTS, number, f"cannot read the arguments of {line[:60]!r}"))
        return None
