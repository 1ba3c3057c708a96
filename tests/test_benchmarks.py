"""The benchmark scripts run and their program writer writes programs that parse cleanly."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

from proxkit.program import Stage, parse_program

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import bench_execute  # noqa: E402

PAGE = "\n".join(
    [
        "Home | Blog | Shop",
        "How to repot a fern without hurting its roots, step by step, in a small flat.",
        "Water the fern the day before so the root ball holds together. Read more",
        "Tags: ferns, houseplants",
        "Choose a pot one size larger and keep the crown at the same depth as before.",
    ]
)


def test_the_program_writer_removes_boilerplate_runs_and_normalizes_phrases():
    doc, chunk = bench_execute.write_program(PAGE)
    assert doc == "keep_doc()"
    assert chunk.split("\n") == [
        "remove_lines(line_start=0, line_end=0)",
        "remove_lines(line_start=2, line_end=3)",
    ]
    program = parse_program(chunk, Stage.CHUNK)
    assert program.errors == ()
    assert bench_execute.write_program("too short") == ("drop_doc()", "")


def test_the_benchmark_prints_docs_per_second_for_each_mode(tmp_path):
    with gzip.open(tmp_path / "pages.jsonl.gz", "wt", encoding="utf-8") as file:
        for i in range(5):
            file.write(json.dumps({"text": PAGE.replace("fern", f"fern{i}")}) + "\n")
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_execute.py"), "--data", str(tmp_path), "--repeats", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.startswith("5 documents")
    assert "strict:" in completed.stdout and "reference:" in completed.stdout
    assert "docs/s" in completed.stdout


def _pages(path: Path, count: int) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as file:
        for i in range(count):
            file.write(json.dumps({"id": str(i), "text": PAGE.replace("fern", f"fern{i}")}) + "\n")
    return path


def test_bench_refine_measures_refine_the_bound_and_the_naive_loop(tiny_refiner, tmp_path):
    data = _pages(tmp_path / "pages.jsonl.gz", 3)
    command = [sys.executable, str(BENCHMARKS / "bench_refine.py"), "--data", str(data), "--docs", "3"]
    command += ["--repeats", "1", "--model", str(tiny_refiner), "--batch-sizes", "1,2"]
    stdout = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert stdout.startswith("3 documents")
    for line in ("a_refine", "b_prefill_bound", "c_naive_generate", "a/b = ", "a/c = ", "program failure ratio"):
        assert line in stdout


def test_bench_memory_compares_the_peaks_of_a_small_and_a_larger_input(tiny_refiner, tmp_path):
    data = _pages(tmp_path / "pages.jsonl.gz", 2)
    command = [sys.executable, str(BENCHMARKS / "bench_memory.py"), "--data", str(data), "--docs", "2"]
    command += ["--factor", "3", "--model", str(tiny_refiner)]
    stdout = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "     2 documents: peak RSS" in stdout and "     6 documents: peak RSS" in stdout
    assert "3x the input:" in stdout


def test_bench_doc_choice_compares_choose_with_greedy_decisions(tiny_refiner, tmp_path):
    seed = tmp_path / "seed.jsonl"
    records = [{"source": "test", "site": "s", "stage": "doc", "text": PAGE, "label": i % 2} for i in range(3)]
    seed.write_text("".join(json.dumps(record) + "\n" for record in records))
    command = [sys.executable, str(BENCHMARKS / "bench_doc_choice.py"), "--model", str(tiny_refiner)]
    stdout = subprocess.run([*command, "--data", str(seed)], capture_output=True, text=True, check=True).stdout
    assert stdout.startswith("3 doc examples")
    assert "identical decisions: 3/3 (100.0%)" in stdout  # free decoding where greedy begins neither option


def _tiny_tagger(directory, base, depth, layers):
    from models.test_tagger import write_tagger

    from proxkit.models.tagger import TaggerConfig

    config = TaggerConfig(base=str(base), depth=depth, layers=layers, hidden_size=32)
    return str(write_tagger(directory, config, line_bias=-5.0, doc_bias=-5.0))  # keeps every document


def test_bench_refine_records_each_networks_own_forward_passes(tiny_backbone, tmp_path):
    import bench_refine

    from proxkit.models.tagger import TaggerWriter
    from proxkit.models.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_backbone))
    shallow = TaggerWriter(_tiny_tagger(tmp_path / "doc", tiny_backbone, 2, (1, 2)), tokenizer)
    deep = TaggerWriter(_tiny_tagger(tmp_path / "chunk", tiny_backbone, 4, (2, 4)), tokenizer)
    recorder = bench_refine.Recorder()
    for writer in (shallow, deep):
        recorder._watch(writer)
    shallow.backbone.line_states(["One line.", "Another line."])
    deep.backbone.line_states(["A third line."])
    recorded = {key: len(passes) for key, passes in recorder.forward_inputs.items()}
    assert recorded == {id(shallow.backbone.decoder): 1, id(deep.backbone.decoder): 1}


def test_bench_refine_bounds_each_network_of_a_doc_and_chunk_tagger_pair(tiny_backbone, tmp_path):
    def tagger(name, depth, layers):
        return _tiny_tagger(tmp_path / name, tiny_backbone, depth, layers)

    data = _pages(tmp_path / "pages.jsonl.gz", 2)
    command = [sys.executable, str(BENCHMARKS / "bench_refine.py"), "--data", str(data), "--docs", "2"]
    command += ["--repeats", "1", "--batch-sizes", "1", "--skip-naive"]
    command += ["--doc-model", tagger("doc", 2, (1, 2)), "--chunk-model", tagger("chunk", 4, (2, 4))]
    stdout = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "(b) network 1:" in stdout and "(b) network 2:" in stdout  # the 2-layer and the 4-layer decoder
    assert "a/b = " in stdout and "c_naive_generate" not in stdout


def test_bench_line_heads_times_every_head_option_against_the_plain_head():
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_line_heads.py"), "--lines", "6", "--steps", "1", "--repeats", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = completed.stdout.splitlines()
    assert lines[0] == "6 lines, one thread, medians of 1"
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["plain", "surface", "attention", "recurrent"]
    assert lines[1].endswith("1.0x the plain head")


def test_every_adversarial_input_class_is_accounted_for():
    import adversarial_inputs

    for name, make in adversarial_inputs.CLASSES.items():
        row = adversarial_inputs.run_class(make)
        assert row["out"] == row["in"] == row["kept"] + row["dropped"] + row["failed"], name
    bomb = adversarial_inputs.run_class(adversarial_inputs.normalize_bomb)
    assert bomb["kept"] == 5 and bomb["errors"] == {"over_limit": 1}
    cut = adversarial_inputs.run_class(adversarial_inputs.truncated_zstd)
    assert cut["failed"] == 1 and 0 < cut["kept"] < cut["written"]
    assert adversarial_inputs.run_class(adversarial_inputs.forged_status)["kept"] == 4
    hostile = adversarial_inputs.run_class(adversarial_inputs.hostile_programs)  # each an error, none a crash
    assert hostile["kept"] == 4 and hostile["errors"] == {"bad_arguments": 2, "syntax": 1, "out_of_range": 1}


def test_the_released_architecture_has_the_released_size():
    import released_architecture
    import torch
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(released_architecture.released_config())
    assert round(sum(p.numel() for p in model.parameters()) / 1e6) == 354  # PROX_SPEC §4: 354M
