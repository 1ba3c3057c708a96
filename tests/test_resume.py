"""Reruns into an output folder: refused when the inputs or deciding options changed (or started over with
--restart), one run at a time, and no file of a killed attempt left behind."""

import json
from pathlib import Path

import pytest
from test_refine import accounted, invoke, outputs, prox, write_jsonl

from proxkit.resume import output_lock


def corpus(folder: Path, files: int, per_file: int = 5) -> Path:
    folder.mkdir(exist_ok=True)
    for f in range(files):
        records = [
            {"id": f"f{f}d{i}", "text": f"Document {i} of file {f} has several words in it."} for i in range(per_file)
        ]
        write_jsonl(folder / f"part{f}.jsonl", records)
    return folder


def baseline(inputs: Path, out: Path, *extra: str):
    return invoke("baseline", "c4", str(inputs), "-o", str(out), "--tasks", "2", "--no-progress", *extra)


def test_a_rerun_after_an_input_file_was_added_is_refused_then_restarted(tmp_path):
    inputs, out = corpus(tmp_path / "in", 3), tmp_path / "out"
    assert baseline(inputs, out).exit_code == 0
    corpus(inputs, 4)  # one more file: by position, tasks would now read other files
    refused = baseline(inputs, out)
    assert refused.exit_code == 2 and "new input files" in refused.output and "part3.jsonl" in refused.output
    assert accounted(out) == 15  # nothing was touched
    assert baseline(inputs, out, "--restart").exit_code == 0
    ids = [record["id"] for records in outputs(out).values() for record in records]
    assert len(ids) == len(set(ids)) == 20
    assert json.loads((out / "stats.json").read_text())["documents"]["in"] == 20


def test_a_changed_input_file_is_refused(tmp_path):
    inputs, out = corpus(tmp_path / "in", 2), tmp_path / "out"
    assert baseline(inputs, out).exit_code == 0
    corpus(inputs, 2, per_file=6)
    refused = baseline(inputs, out)
    assert refused.exit_code == 2 and "changed size" in refused.output


def test_a_rerun_with_other_deciding_options_is_refused(tmp_path):
    page = "\n".join(f"Line {i} of the article has seven words." for i in range(4))
    record = {"id": "p", "text": page, "metadata": {"doc_program": "keep_doc()", "chunk_program": "keep_chunk()"}}
    path = write_jsonl(tmp_path / "in.jsonl", [record])
    out = tmp_path / "out"
    common = ["refine", str(path), "-o", str(out), "--stages", "none", "--no-progress"]
    prox(*common, "--min-words", "10")
    refused = invoke(*common, "--min-words", "40")
    assert refused.exit_code == 2 and "guards" in refused.output and "--restart" in refused.output
    prox(*common, "--min-words", "40", "--restart")
    assert json.loads((out / "stats.json").read_text())["drop_reasons"] == {"too_few_words": 1}
    assert accounted(out) == 1


def test_the_same_rerun_resumes_and_changes_nothing(tmp_path):
    inputs, out = corpus(tmp_path / "in", 2), tmp_path / "out"
    assert baseline(inputs, out).exit_code == 0
    first = outputs(out)
    assert baseline(inputs, out).exit_code == 0
    assert outputs(out) == first


def test_two_runs_never_share_an_output_folder(tmp_path):
    inputs, out = corpus(tmp_path / "in", 1), tmp_path / "out"
    with output_lock(str(out)):
        busy = baseline(inputs, out)
    assert busy.exit_code == 2 and "being written by another run" in busy.output
    assert baseline(inputs, out).exit_code == 0


def test_a_redone_task_removes_the_files_its_killed_attempt_left(tmp_path):
    inputs, out = corpus(tmp_path / "in", 2), tmp_path / "out"
    assert baseline(inputs, out).exit_code == 0
    before = outputs(out)
    (out / "logs" / "completions" / "00001").unlink()  # task 1 was killed before it completed...
    assert [len(records) for records in before.values()] == [0, 10, 0]  # C4 drops these short pages
    (out / "failed").mkdir(exist_ok=True)
    (out / "failed" / "00001.jsonl.gz").write_bytes(b"")  # ... leaving a 0-byte file
    (out / "dropped" / "00001.jsonl.gz").write_bytes(b"\x1f\x8b")  # and a cut-off one
    assert baseline(inputs, out).exit_code == 0
    assert not (out / "failed" / "00001.jsonl.gz").exists()
    assert outputs(out) == before


@pytest.mark.parametrize("restart", [False, True])
def test_restart_keeps_the_program_cache(tmp_path, restart):
    inputs, out = corpus(tmp_path / "in", 1), tmp_path / "out"
    (out / "cache" / "doc").mkdir(parents=True)
    (out / "cache" / "doc" / "kept").write_text("{}")
    assert baseline(inputs, out, *(["--restart"] if restart else [])).exit_code == 0
    assert (out / "cache" / "doc" / "kept").exists()


def test_an_internal_bug_keeps_its_traceback_and_a_user_error_is_a_usage_error(tmp_path, monkeypatch):
    import proxkit.baselines

    inputs, out = corpus(tmp_path / "in", 1), tmp_path / "out"

    def broken(config):
        raise ValueError("an internal bug")

    monkeypatch.setattr(proxkit.baselines, "run_baseline", broken)
    result = baseline(inputs, out)
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)  # not "Invalid value"
    monkeypatch.undo()
    with output_lock(str(out)):
        busy = baseline(inputs, out)
    assert busy.exit_code == 2 and "Invalid value" in busy.output
