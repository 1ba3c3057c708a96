"""FLOPs accounting of PROX_SPEC §6."""

import pytest

from proxkit.flops import forward_flops, refining_flops, training_flops


def test_forward_and_training_cost_two_and_six_flops_per_parameter_and_token():
    assert forward_flops(100, 7) == 1_400
    assert training_flops(100, 7) == 4_200


def test_refining_reads_raw_tokens_with_the_doc_model_and_kept_tokens_with_the_chunk_model():
    assert refining_flops(10, 10, raw_tokens=1_000, doc_tokens=600) == 2 * 10 * (1_000 + 600)  # the paper's form
    assert refining_flops(10, 30, raw_tokens=1_000, doc_tokens=600) == 2 * 10 * 1_000 + 2 * 30 * 600
    assert refining_flops(None, 30, raw_tokens=0, doc_tokens=600) == 2 * 30 * 600  # chunk stage only


def test_an_unknown_model_size_gives_no_number_rather_than_a_wrong_one():
    assert refining_flops(None, 30, raw_tokens=1_000, doc_tokens=600) is None


@pytest.mark.parametrize("tied", [True, False])
def test_non_embedding_parameters_leave_out_embeddings_and_the_output_projection(tied):
    from transformers import LlamaConfig, LlamaForCausalLM

    from proxkit.flops import count_non_embedding_parameters

    config = LlamaConfig(
        vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, tie_word_embeddings=tied,
    )  # fmt: skip
    layer = 4 * 16 * 16 + 3 * 16 * 32 + 2 * 16
    assert count_non_embedding_parameters(LlamaForCausalLM(config)) == 2 * layer + 16
