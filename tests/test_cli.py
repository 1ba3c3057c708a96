"""`prox execute` and the command's entry point."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from proxkit import __version__
from proxkit.cli import app

PAGE = "\n".join(
    [
        "Home | News | Contact",
        "The council approved eleven kilometres of protected cycle lanes through the city centre on Tuesday.",
        "Supporters said the lanes would make short trips safer for children and older residents. Read more",
        "Copyright 2024 City Herald",
    ]
)


@pytest.fixture
def files(tmp_path):
    def write(program: str, text: str = PAGE):
        (tmp_path / "page.txt").write_text(text, encoding="utf-8")
        (tmp_path / "page.prox").write_text(program, encoding="utf-8")
        return ["--text", str(tmp_path / "page.txt"), "--program", str(tmp_path / "page.prox")]

    return write


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "1000", "NO_COLOR": "1"})


def flat(output: str) -> str:
    """The output as one line of words, without the frame typer may draw around errors."""
    return " ".join(output.replace("│", " ").split())


def test_execute_json_prints_the_whole_result(files):
    program = (
        'keep_doc()\nremove_lines(line_start=0, line_end=0)\nremove_lines(3, 3)\nnormalize(source_str=" Read more")'
    )
    result = run("execute", *files(program), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"text", "dropped", "reason", "errors", "stats"}
    assert data["text"] == "\n".join(PAGE.split("\n")[1:3]).replace(" Read more", "")
    assert (data["dropped"], data["reason"], data["errors"]) == (False, None, [])
    assert data["stats"]["lines_removed"] == 2
    assert data["stats"]["normalize_applied"] == 1


def test_execute_prints_the_refined_text_and_reports_errors_with_their_program_line(files):
    args = files("keep_doc()\nremove_lines(0, 0)\nremove_lines(9, 9)")
    result = run("execute", *args)
    assert result.exit_code == 0
    assert result.stdout == "\n".join(PAGE.split("\n")[1:]) + "\n"
    assert f"{args[3]}:3: out_of_range: line 9 is past the last line 3: ignored" in result.stderr


def test_execute_reference_mode_reads_like_the_authors(files):
    args = files("remove_lines(0, 0)")  # positional: an error for the reference, nothing removed
    assert json.loads(run("execute", *args, "--mode", "reference", "--json").stdout)["text"] == PAGE
    assert json.loads(run("execute", *args, "--json").stdout)["text"] == "\n".join(PAGE.split("\n")[1:])


def test_execute_reports_a_dropped_document(files):
    result = run("execute", *files("drop_doc()"))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "dropped: doc_program" in result.stderr


def test_execute_guard_options(files):
    args = files("remove_lines(1, 3)")
    assert json.loads(run("execute", *args, "--json").stdout)["reason"] == "too_few_words"
    kept = json.loads(run("execute", *args, "--json", "--min-words", "2").stdout)
    assert kept["text"] == "Home | News | Contact"
    assert run("execute", *args, "--min-word-ratio", "2").exit_code == 2


def test_execute_names_a_file_that_is_not_utf8(files, tmp_path):
    args = files("keep_chunk()")
    (tmp_path / "page.txt").write_bytes(b"caf\xe9 au lait")
    result = run("execute", *args)
    assert result.exit_code == 2
    assert "page.txt is not UTF-8 text (byte 3)" in flat(result.output)


def test_execute_names_a_missing_file(files, tmp_path):
    result = run("execute", "--text", str(tmp_path / "absent.txt"), "--program", files("keep_chunk()")[3])
    assert result.exit_code == 2
    assert "absent.txt" in flat(result.output)


def test_version():
    assert run("--version").stdout.strip() == f"proxkit {__version__}"


def test_the_prox_command_is_installed():
    completed = subprocess.run(
        [sys.executable, "-m", "proxkit", "--version"], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == f"proxkit {__version__}"


def test_refine_checks_its_thresholds_before_any_work(tmp_path, tiny_refiner):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "a", "text": "Hello."}) + "\n")
    out = str(tmp_path / "out")
    result = run("refine", str(source), "-o", out, "--line-threshold", "1.5")
    assert result.exit_code == 2 and "line_threshold must lie within (0, 1)" in flat(result.output)
    result = run("refine", str(source), "-o", out, "--chunk-model", str(tiny_refiner), "--line-threshold", "0.5")
    assert result.exit_code == 2 and "applies to tagger refiners only" in flat(result.output)
    assert not (tmp_path / "out" / "data").exists()
