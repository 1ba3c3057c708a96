"""Model names → specs: released hub ids, local directories, stage checks, clear errors."""

import pytest

from proxkit.models import RELEASED, Backend, UnknownModelError, resolve
from proxkit.program import Stage


def test_released_refiners_resolve_to_their_hub_ids():
    for name, stage in RELEASED.items():
        spec = resolve(name, stage)
        assert (spec.source, spec.stage, spec.backend) == (name, stage, Backend.TRANSFORMERS)


def test_a_released_refiner_cannot_serve_the_other_stage():
    with pytest.raises(UnknownModelError, match="doc-stage refiner"):
        resolve("gair-prox/web-doc-refining-lm", Stage.CHUNK)


def test_an_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownModelError) as error:
        resolve("gair-prox/web-refiner-xl", Stage.DOC)
    assert "gair-prox/web-doc-refining-lm" in str(error.value)
    with pytest.raises(UnknownModelError):
        resolve("./no/such/dir", Stage.DOC)


def test_a_local_directory_resolves_to_its_absolute_path(tiny_refiner):
    spec = resolve(str(tiny_refiner), Stage.CHUNK, "transformers", device="cpu")
    assert spec.source == str(tiny_refiner.resolve())
    assert spec.options == {"device": "cpu"}
    assert spec.load_tokenizer().bos_id == 1


def test_the_stages_of_a_run_share_one_loaded_tokenizer(tiny_refiner):
    doc, chunk = resolve(str(tiny_refiner), Stage.DOC), resolve(str(tiny_refiner), Stage.CHUNK)
    assert doc.load_tokenizer() is chunk.load_tokenizer()


def test_an_unreachable_hub_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = resolve("gair-prox/web-chunk-refining-lm", Stage.CHUNK)
    with pytest.raises(UnknownModelError, match="cannot fetch 'gair-prox/web-chunk-refining-lm'"):
        spec.load_tokenizer()


def test_the_openai_backend_needs_a_base_url(tiny_refiner):
    spec = resolve(str(tiny_refiner), Stage.DOC, "openai")
    with pytest.raises(ValueError, match="--base-url"):
        spec.load_writer(spec.load_tokenizer())


def test_the_vllm_backend_explains_what_it_needs(tiny_refiner):
    spec = resolve(str(tiny_refiner), Stage.DOC, "vllm")
    with pytest.raises((ImportError, RuntimeError), match=r"vllm|vLLM|CUDA"):
        spec.load_writer(spec.load_tokenizer())
