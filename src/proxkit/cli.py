"""The `prox` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from proxkit import __version__
from proxkit.program import Guards, Mode, execute, split_stages

app = typer.Typer(
    name="prox",
    help="Refine pre-training data by programming every example (ProX).",
    no_args_is_help=True,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"proxkit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Refine pre-training data by programming every example (ProX)."""


def _read_text(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise typer.BadParameter(f"{path} is not UTF-8 text (byte {error.start})", param_hint=option) from None
    except OSError as error:
        raise typer.BadParameter(f"cannot read {path}: {error.strerror}", param_hint=option) from None


@app.command("execute")
def execute_command(
    text: Annotated[Path, typer.Option("--text", help="The document, a UTF-8 text file.")],
    program: Annotated[
        Path, typer.Option("--program", help="The program: doc calls (keep_doc/drop_doc) and/or chunk calls.")
    ],
    mode: Annotated[Mode, typer.Option("--mode", help="strict (fixed parser) or reference (the authors').")] = (
        Mode.STRICT
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON.")] = False,
    min_word_ratio: Annotated[float, typer.Option(help="Drop when this share of the words or less remains.")] = 0.05,
    min_words: Annotated[int, typer.Option(help="Drop when this many words or fewer remain.")] = 10,
    max_errors: Annotated[int, typer.Option(help="Ignore a program with this many errors (0: never).")] = 2,
) -> None:
    """Run one program on one document and print the refined text (or the whole result with --json)."""
    document = _read_text(text, "--text")
    doc_program, chunk_program = split_stages(_read_text(program, "--program"))
    try:
        guards = Guards(min_word_ratio, min_words, max_errors or None)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    result = execute(
        document,
        doc_program if doc_program.strip() else None,
        chunk_program if chunk_program.strip() else None,
        mode=mode,
        guards=guards,
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(result.text, nl=bool(result.text))
    for error in result.errors:
        typer.echo(f"{program}:{error.line}: {error.kind}: {error.message}", err=True)
    if result.dropped:
        typer.echo(f"dropped: {result.reason}", err=True)
