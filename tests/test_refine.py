"""`prox refine` end to end: the output contract, bad input, failing endpoints, resume after kill -9,
Ray and Slurm."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHARED
from servers import FlakyServer
from typer.testing import CliRunner

from proxkit.cli import app
from proxkit.run import read_records

WEB_SAMPLE = SHARED / "data" / "web_text_samples" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
needs_web_sample = pytest.mark.skipif(not WEB_SAMPLE.is_file(), reason=f"{WEB_SAMPLE} absent (../shared)")
FAST = ["--doc-max-new-tokens", "4", "--chunk-max-new-tokens", "6", "--batch-size", "4", "--no-progress"]


def models(directory: Path) -> list[str]:
    return ["--doc-model", str(directory), "--chunk-model", str(directory)]


def invoke(*args: str):
    environment = {"COLUMNS": "1000", "NO_COLOR": "1", "OPENAI_API_KEY": None}  # never a developer's own key
    return CliRunner().invoke(app, list(args), env=environment)


def prox(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def outputs(folder: Path) -> dict[str, list[dict]]:
    return {place: read_records(folder / place) for place in ("data", "dropped", "failed")}


def accounted(folder: Path) -> int:
    return sum(len(records) for records in outputs(folder).values())


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@needs_web_sample
def test_refine_real_web_pages_end_to_end(tiny_refiner, tmp_path):
    out = tmp_path / "out"
    result = prox("refine", str(WEB_SAMPLE), "-o", str(out), *models(tiny_refiner), "--limit", "12", *FAST)
    assert "12 documents:" in result.stdout and "refining compute: " in result.stdout
    stats = json.loads((out / "stats.json").read_text())
    documents = stats["documents"]
    assert documents["in"] == 12 == documents["kept"] + documents["dropped"] + documents["failed"]
    assert accounted(out) == 12
    assert stats["tokens"]["raw"] > 0 and stats["throughput"]["documents_per_second"] > 0
    assert 0 < stats["tokens"]["out"] <= stats["tokens"]["after_doc_stage"] <= stats["tokens"]["raw"]
    layer = 2 * 32 * 32 + 2 * 32 * 8 + 3 * 32 * 64 + 2 * 32  # attention (4 heads, 1 kv head), MLP, norms
    parameters = 2 * layer + 32  # the tiny Llama without its embeddings and output projection
    flops = stats["flops"]
    assert flops["doc_model_parameters"] == flops["chunk_model_parameters"] == parameters
    assert flops["refining"] == 2 * parameters * (stats["tokens"]["raw"] + stats["tokens"]["after_doc_stage"])
    for record in outputs(out)["data"]:
        assert set(record) == {"id", "text", "raw_content", "doc_content", "metadata"}
        assert {"doc_program", "chunk_program", "prox"} <= set(record["metadata"])
        assert record["metadata"]["prox"]["mode"] == "strict"
        assert record["metadata"]["prox"]["doc_model"] == str(tiny_refiner)
    with gzip.open(WEB_SAMPLE, "rt") as file:
        first_ids = [json.loads(line)["id"] for line, _ in zip(file, range(12), strict=False)]
    assert sorted(r["id"] for records in outputs(out).values() for r in records) == sorted(first_ids)


def test_bad_input_ends_in_documented_outcomes(tiny_refiner, tmp_path):
    path = tmp_path / "bad.jsonl"
    long_line = "word " * 4000  # one line far over the 1500-token chunk budget
    lines = [
        json.dumps({"id": "good", "text": "A fine page about trains.\nIt has two lines and enough words to keep it."}),
        '{"id": "broken", "text": ',
        json.dumps({"id": "nokey", "body": "text under another key"}),
        json.dumps({"id": "empty", "text": ""}),
        json.dumps({"id": "blank", "text": "  \n\t "}),
        json.dumps({"id": "huge", "text": "All work and no play. " * 480_000}),  # about 10 MB
        json.dumps({"id": "longline", "text": "Title of the page\n" + long_line}),
    ]
    path.write_bytes("\n".join(lines).encode() + b'\n{"id": "latin1", "text": "caf\xe9"}\n')
    out = tmp_path / "out"
    prox("refine", str(path), "-o", str(out), *models(tiny_refiner), *FAST)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["documents"] == {"in": 8, "kept": 2, "dropped": 3, "failed": 3}
    assert stats["drop_reasons"] == {"empty": 2, "too_long": 1}
    assert stats["truncations"]["chunk_prompts"] == 1  # the long line was cut to fit, not lost
    results = outputs(out)
    failed = {r["id"]: r["metadata"]["prox"]["error"] for r in results["failed"]}
    assert failed[f"{path}:2"].startswith(f"{path}:2: invalid JSON")
    assert failed["nokey"] == f"{path}:3: no 'text' field (fields: body); see --text-key"
    assert failed[f"{path}:8"] == f"{path}:8: invalid UTF-8 at byte 29"
    dropped = {r["id"]: r["metadata"]["prox"]["drop_reason"] for r in results["dropped"]}
    assert dropped == {"empty": "empty", "blank": "empty", "huge": "too_long"}
    assert {r["id"] for r in results["data"]} == {"good", "longline"}


@pytest.mark.parametrize(
    ("server", "options", "error"),
    [
        (dict(failures=10**6, status=500), ("--retries", "1", "--request-timeout", "5"), "gave up after 2 attempts"),
        (dict(failures=0, body=b'{"choices": [{"text": null}]}'), (), "unreadable completion: choices[0].text"),
        (dict(failures=0, body=b'{"choices": [{"text": 5}], "usage": null}'), (), "unreadable completion"),
    ],
)
def test_a_failing_endpoint_fails_documents_and_the_run_goes_on(server, options, error, tiny_refiner, tmp_path):
    server = FlakyServer(**server)
    try:
        path = write_jsonl(
            tmp_path / "in.jsonl", [{"id": f"d{i}", "text": f"Page {i} has some words."} for i in range(3)]
        )
        out = tmp_path / "out"
        prox(
            "refine", str(path), "-o", str(out), "--backend", "openai", "--base-url", server.url, *options,
            "--tokenizer", str(tiny_refiner), "--doc-model", "served-doc", "--chunk-model", "served-chunk", *FAST,
        )  # fmt: skip
    finally:
        server.close()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["documents"] == {"in": 3, "kept": 0, "dropped": 0, "failed": 3}
    for record in outputs(out)["failed"]:
        assert record["metadata"]["prox"]["error"].startswith(f"doc stage: {server.url}: {error}")


def test_retry_failed_redoes_what_a_model_stage_failed_on(tiny_refiner, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": f"d{i}", "text": f"Page {i} has some words."} for i in range(3)])
    out = tmp_path / "out"
    down, up = FlakyServer(failures=10**6, status=503), FlakyServer(failures=0)
    try:
        for server, extra in ((down, ()), (up, ()), (up, ("--retry-failed",))):
            prox(
                "refine", str(path), "-o", str(out), "--backend", "openai", "--base-url", server.url, "--retries", "0",
                "--tokenizer", str(tiny_refiner), "--doc-model", "served", "--stages", "doc", *FAST, *extra,
            )  # fmt: skip
            if not extra:
                assert json.loads((out / "stats.json").read_text())["documents"]["failed"] == 3  # a rerun skips them
    finally:
        down.close()
        up.close()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["documents"] == {"in": 3, "kept": 3, "dropped": 0, "failed": 0}
    assert up.requests == 3


def test_stages_none_re_executes_earlier_output_with_other_guards(tmp_path):
    page = "\n".join(["Home | About", *(f"Line {i} of the article has seven words." for i in range(6)), "(c) 2024"])
    earlier = {
        "id": "p",
        "text": "already refined",
        "raw_content": page,
        "metadata": {
            "url": "u",
            "doc_program": "keep_doc()",
            "chunk_program": "remove_lines(line_start=0, line_end=0)\nremove_lines(line_start=7, line_end=7)",
            "prox": {"status": "dropped", "drop_reason": "too_few_words"},
        },
    }
    path = write_jsonl(tmp_path / "earlier.jsonl", [earlier])
    prox("refine", str(path), "-o", str(tmp_path / "again"), "--stages", "none", "--min-words", "5")
    [record] = outputs(tmp_path / "again")["data"]
    assert record["text"] == "\n".join(page.split("\n")[1:7])
    assert record["raw_content"] == page and record["metadata"]["url"] == "u"
    prox("refine", str(path), "-o", str(tmp_path / "strict"), "--stages", "none", "--min-words", "60")
    [dropped] = outputs(tmp_path / "strict")["dropped"]
    assert dropped["metadata"]["prox"]["drop_reason"] == "too_few_words"


def test_unknown_model_and_bad_options_are_clear_errors(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": "x"}])
    result = invoke("refine", str(path), "-o", str(tmp_path / "o"), "--doc-model", "nope/x/y")
    assert result.exit_code == 2 and "unknown model 'nope/x/y'" in result.output
    result = invoke("refine", str(tmp_path / "absent"), "-o", str(tmp_path / "o"))
    assert result.exit_code == 2 and "no such file or folder" in result.output
    result = invoke("refine", str(path), "-o", str(tmp_path / "o"), "--stages", "doc,page")
    assert result.exit_code == 2 and "--stages" in result.output and "unknown stage 'page'" in result.output


def _run_refine(args: list[str]) -> subprocess.Popen:
    """`prox refine` in its own process group, so a kill reaches every process of the run."""
    command = [sys.executable, "-m", "proxkit", "refine", *args]
    return subprocess.Popen(command, stderr=subprocess.DEVNULL, start_new_session=True)


def test_a_rerun_after_kill_9_completes_with_no_loss_and_no_duplicate(tiny_refiner, tmp_path):
    records = [
        {"id": f"doc{i}", "text": f"Page {i}\nA line of text about item {i} for the test.\nFooter"} for i in range(40)
    ]
    path = write_jsonl(tmp_path / "in.jsonl", records)
    args = [str(path), *models(tiny_refiner), "--batch-size", "2", "--chunk-max-new-tokens", "24", "--no-progress"]
    complete, interrupted = tmp_path / "complete", tmp_path / "interrupted"
    assert _run_refine([*args, "-o", str(complete)]).wait(timeout=600) == 0

    process = _run_refine([*args, "-o", str(interrupted)])

    def cached_programs() -> int:
        return sum(path.read_text().count("\n") for path in (interrupted / "cache" / "chunk").glob("*/00000.jsonl"))

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not (interrupted / "cache").exists() or cached_programs() < 6):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the whole run, as a crashed node would lose it
    process.wait()
    assert not (interrupted / "stats.json").exists()  # it really was cut off
    assert _run_refine([*args, "-o", str(interrupted)]).wait(timeout=600) == 0

    def contents(folder):
        return sorted((r["id"], r["text"], r["metadata"]["chunk_program"]) for r in outputs(folder)["data"])

    assert accounted(interrupted) == accounted(complete) == 40
    assert contents(interrupted) == contents(complete)
    assert len({record_id for record_id, _, _ in contents(interrupted)}) == len(contents(interrupted))
    first, second = (json.loads((folder / "stats.json").read_text()) for folder in (complete, interrupted))
    assert first["documents"] == second["documents"] and first["calls"] == second["calls"]


@pytest.mark.slow
def test_ray_executor_on_a_local_cluster_matches_the_local_run(tiny_refiner, tmp_path):
    pytest.importorskip("ray")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for part in range(2):
        records = [{"id": f"p{part}-{i}", "text": f"Part {part}, page {i}.\nSome words in a line."} for i in range(3)]
        write_jsonl(inputs / f"part{part}.jsonl", records)
    common = [str(inputs), *models(tiny_refiner), *FAST, "--tasks", "2", "--workers", "2"]
    environment = dict(os.environ, RAY_ADDRESS="", RAY_DISABLE_USAGE_STATS="1")
    completed = subprocess.run(
        [sys.executable, "-m", "proxkit", "refine", *common, "-o", str(tmp_path / "ray"), "--executor", "ray"],
        env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    prox("refine", *common, "-o", str(tmp_path / "local"))
    ray_stats, local_stats = (json.loads((tmp_path / name / "stats.json").read_text()) for name in ("ray", "local"))
    assert ray_stats["documents"] == local_stats["documents"] and ray_stats["documents"]["in"] == 6
    assert ray_stats["throughput"]["tasks"] == 2

    def contents(folder):
        return sorted((r["id"], r["text"]) for r in read_records(folder / "data") + read_records(folder / "dropped"))

    assert contents(tmp_path / "ray") == contents(tmp_path / "local")


def test_slurm_executor_writes_a_launch_script_and_submits_it(tiny_refiner, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    script_argument = 'for last; do :; done; cat "$last"'  # sbatch [options] SCRIPT
    sbatch.write_text(f'#!/bin/sh\n{script_argument} >> {tmp_path}/submitted.txt\necho "Submitted batch job 4242"\n')
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "A page."}])
    out = tmp_path / "out"
    result = prox(
        "refine", str(path), "-o", str(out), *models(tiny_refiner), "--executor", "slurm", "--tasks", "4",
        "--partition", "gpu", "--gpus-per-task", "1", "--time", "02:00:00",
    )  # fmt: skip
    assert "submitted to Slurm" in result.stdout
    script = (out / "logs" / "launch_script.slurm").read_text()
    assert "#SBATCH --partition=gpu" in script
    assert "#SBATCH --gpus=1" in script
    assert "#SBATCH --time=02:00:00" in script
    assert "#SBATCH --array=0-3\n" in script  # all four tasks at once
    assert "launch_pickled_pipeline" in script and str(out / "logs" / "executor.pik") in script
    assert (out / "logs" / "executor.pik").exists()
    assert "launch_pickled_pipeline" in (tmp_path / "submitted.txt").read_text()


def test_local_workers_make_a_pool_of_that_size_with_the_same_outputs(tiny_refiner, tmp_path, monkeypatch):
    from datatrove import executor

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for part in range(2):
        records = [{"id": f"p{part}-{i}", "text": f"Part {part}, page {i}.\nSome words in a line."} for i in range(2)]
        write_jsonl(inputs / f"part{part}.jsonl", records)
    built = []

    class Recorded(executor.LocalPipelineExecutor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self.workers)

    monkeypatch.setattr(executor, "LocalPipelineExecutor", Recorded)
    common = [str(inputs), *models(tiny_refiner), *FAST, "--tasks", "2"]
    prox("refine", *common, "-o", str(tmp_path / "one"))
    prox("refine", *common, "--workers", "2", "-o", str(tmp_path / "two"))
    assert built == [1, 2]
    one, two = (outputs(tmp_path / name) for name in ("one", "two"))
    assert one == two and len(one["data"]) + len(one["dropped"]) == 4


def test_local_workers_share_the_cores_and_threads_can_be_set(tmp_path, monkeypatch):
    import os

    from proxkit.run import RefineConfig

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": "x"}])
    config = dict(inputs=[str(path)], output=str(tmp_path / "o"), stages=())
    assert RefineConfig(**config).threads_per_task() == 8
    assert RefineConfig(**config, tasks=4, workers=2).threads_per_task() == 4
    assert RefineConfig(**config, tasks=2, workers=4).threads_per_task() == 4  # only 2 tasks run at once
    assert RefineConfig(**config, tasks=4, workers=2, threads=1).threads_per_task() == 1
    assert RefineConfig(**config, executor="ray", tasks=4).threads_per_task() is None
    with pytest.raises(ValueError, match="threads"):
        RefineConfig(**config, threads=0)


@pytest.mark.slow
def test_the_steps_run_in_a_users_own_datatrove_pipeline_and_from_python(tmp_path):
    import pyarrow.parquet as pq

    import proxkit

    example = Path(__file__).resolve().parents[1] / "examples" / "datatrove_pipeline.py"
    result = subprocess.run(
        [sys.executable, str(example), str(example.parent), str(tmp_path / "dt")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table = pq.read_table(next((tmp_path / "dt" / "data").glob("*.parquet")))
    stats = proxkit.refine(str(example.parent / "pages.jsonl"), str(tmp_path / "py"), progress=False)
    assert table.num_rows == stats["documents"]["kept"] > 0  # the same documents kept either way
    kept_texts = sorted(r["text"] for r in read_records(tmp_path / "py" / "data"))
    assert sorted(table.column("text").to_pylist()) == kept_texts


def test_parquet_output_holds_the_same_records_and_tools_read_it(tiny_refiner, tmp_path):
    examples = Path(__file__).resolve().parents[1] / "examples" / "pages.jsonl"
    lines = examples.read_text().splitlines()
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([*lines, '{"id": "bad", "body": "no text"}']) + "\n")
    runs = {}
    for output_format in ("jsonl", "parquet"):
        out = tmp_path / output_format
        prox("refine", str(path), "-o", str(out), *models(tiny_refiner), *FAST, "--output-format", output_format)
        runs[output_format] = outputs(out)
    assert list((tmp_path / "parquet" / "data").glob("*.parquet")) and runs["parquet"] == runs["jsonl"]
    assert len(runs["parquet"]["failed"]) == 1
    prox("report", str(tmp_path / "parquet"))
    assert "bad" in (tmp_path / "parquet" / "report.html").read_text()
    refused = invoke("refine", str(path), "-o", str(tmp_path / "parquet"), *models(tiny_refiner), *FAST)
    assert refused.exit_code == 2 and "output_format" in refused.output  # a rerun may not switch formats
