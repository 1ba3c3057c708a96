"""The vLLM backend run for real, on vLLM's CPU build (`make vllm-env`, then `make test-vllm`): end to end
through `prox refine`, the exact prompt ids, agreement with the transformers backend, strict mode's grammar
through structured outputs, several tasks on one machine, and a clear error when the engine cannot start.
Skipped, with the reason, where vLLM is not installed (the default environment)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED

from proxkit.program import ErrorKind, Mode, Stage, parse_program
from proxkit.program.grammar import CHUNK_GRAMMAR
from proxkit.prompts import TokenizationMode, chunk_document, chunk_prompt_ids, doc_prompt_ids, line_cost

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None, reason="vLLM is not installed here: make vllm-env, make test-vllm"
    ),
]

REPO = Path(__file__).resolve().parents[2]
LLAMA2 = SHARED / "tokenizers" / "llama2"
WEB_SAMPLE = SHARED / "data" / "web_text_samples" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def pages(limit: int) -> list[str]:
    import gzip

    texts = []
    with gzip.open(WEB_SAMPLE, "rt", encoding="utf-8") as file:
        for line in file:
            text = json.loads(line)["text"]
            if 200 < len(text) < 6000:
                texts.append(text)
            if len(texts) == limit:
                break
    return texts


@pytest.fixture(scope="module")
def smollm2() -> Path:
    from proxkit.models.backbones import smollm2_135m

    return smollm2_135m()


@pytest.fixture(scope="module")
def released_architecture(tmp_path_factory) -> Path:
    """A random model of the released refiners' architecture with the Llama-2 tokenizer."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import released_architecture

    directory = released_architecture.build(tmp_path_factory.mktemp("released-architecture"), LLAMA2)
    config = json.loads((directory / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_key_value_heads"]) == (1280, 24, 1)
    return directory


@pytest.fixture(scope="module")
def engine(smollm2):
    from proxkit.models.vllm import VLLMWriter

    writer = VLLMWriter(smollm2, dtype="float32", enforce_eager=True)
    yield writer
    writer.close()


def prompt_set(tokenizer, mode: TokenizationMode, count: int = 12) -> list[list[int]]:
    cost = line_cost(tokenizer)
    prompts = []
    for text in pages(count):
        prompts.append(doc_prompt_ids(text, tokenizer, mode).ids)
        first = next(iter(chunk_document(text, cost, 1500)))
        prompts.append(chunk_prompt_ids(first.text, tokenizer, mode, 2048 - 64).ids)
    return prompts


@pytest.mark.parametrize("mode", list(TokenizationMode))
def test_vllm_receives_the_exact_prompt_ids(engine, smollm2, mode):
    from vllm.inputs import TokensPrompt

    from proxkit.models.tokenizers import load_tokenizer

    prompts = prompt_set(load_tokenizer(smollm2), mode, count=4)
    outputs = engine.engine.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], use_tqdm=False)
    assert [list(out.prompt_token_ids) for out in outputs] == prompts
    assert len(engine.generate(prompts, 2)) == len(prompts)  # the writer checks the same on every call


def test_greedy_programs_agree_with_the_transformers_backend(engine, smollm2):
    from proxkit.models.hf import TransformersWriter
    from proxkit.models.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(smollm2)
    prompts = prompt_set(tokenizer, TokenizationMode.CLEAN)
    local = TransformersWriter(smollm2, tokenizer, dtype="float32").generate(prompts, 24)
    served = engine.generate(prompts, 24)
    same = sum(a.text == b.text for a, b in zip(local, served, strict=True))
    report = {"prompts": len(prompts), "identical": same}
    first_differences = [(a.text, b.text) for a, b in zip(local, served, strict=True) if a.text != b.text][:3]
    print(json.dumps(report | {"first_differences": first_differences}))
    assert same >= 0.9 * len(prompts), report


def test_strict_mode_grammar_holds_on_a_random_model_of_the_released_architecture(released_architecture):
    from proxkit.models.tokenizers import load_tokenizer
    from proxkit.models.vllm import VLLMWriter

    tokenizer = load_tokenizer(released_architecture)
    assert tokenizer.encode("[INST]")[:2] == [518, 25580]  # the SentencePiece ids of PROX_SPEC §2
    writer = VLLMWriter(released_architecture, dtype="bfloat16", enforce_eager=True)
    try:
        prompts = [p for p in prompt_set(tokenizer, TokenizationMode.CLEAN, count=6)][1::2]  # chunk prompts
        for generation in writer.generate(prompts, 48, grammar=CHUNK_GRAMMAR):
            program = parse_program(generation.text, Stage.CHUNK, Mode.STRICT)
            # a random model rarely ends a program: the answer runs to the token limit, cut inside a call
            last_line = generation.text.strip().count("\n") + 1
            assert all(e.kind is ErrorKind.TRUNCATED and e.line == last_line for e in program.errors), generation.text
    finally:
        writer.close()


def refine(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "proxkit", "refine", *args, "--backend", "vllm", "--enforce-eager"]
    return subprocess.run(command, capture_output=True, text=True, timeout=1500)


def test_prox_refine_with_vllm_end_to_end_in_two_tasks(smollm2, tmp_path):
    out = tmp_path / "out"
    result = refine(
        str(REPO / "examples" / "pages.jsonl"), "-o", str(out), "--doc-model", str(smollm2),
        "--chunk-model", str(smollm2), "--tasks", "2", "--workers", "2", "--no-progress",
        "--chunk-max-new-tokens", "48",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["documents"]["in"] == 7 and stats["throughput"]["tasks"] == 2
    assert sum(stats["documents"][k] for k in ("kept", "dropped", "failed")) == 7
    assert stats["documents"]["failed"] == 0


def test_prox_refine_with_vllm_on_the_released_architecture(released_architecture, tmp_path):
    out = tmp_path / "out"
    result = refine(
        str(WEB_SAMPLE), "-o", str(out), "--doc-model", str(released_architecture),
        "--chunk-model", str(released_architecture), "--limit", "6", "--no-progress", "--chunk-max-new-tokens", "32",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["documents"]["in"] == 6 and stats["documents"]["failed"] == 0
    from proxkit.run import read_records

    records = read_records(out / "data") + read_records(out / "dropped")
    chunk_errors = {
        e["kind"] for r in records for e in r["metadata"]["prox"].get("errors", []) if e["stage"] == "chunk"
    }
    assert chunk_errors <= {"truncated"}  # strict mode's grammar: chunk answers only ever cut at the limit


def test_an_engine_that_cannot_start_is_a_clear_error(tmp_path):
    from proxkit.models.vllm import VLLMWriter

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"architectures": ["NoSuchModel"], "model_type": "nosuch"}))
    with pytest.raises(RuntimeError, match=r"vLLM could not start .*broken"):
        VLLMWriter(broken, enforce_eager=True)
