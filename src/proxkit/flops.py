"""Compute accounting as in the ProX paper (PROX_SPEC §6): a forward pass costs 2·N FLOPs per token and a
training step 6·N per token, N being the model's non-embedding parameters.

Refining reads every raw token with the doc refiner and the tokens of the documents it keeps with the chunk
refiner: C_refine ≈ 2·N_doc·D_raw + 2·N_chunk·D_doc (the paper's 2·N·(D_raw + D_doc) when one N serves
both stages). Pure arithmetic, no imports: counts come from stats.json and the model specs.
"""

from __future__ import annotations


def forward_flops(parameters: int, tokens: int) -> float:
    return 2.0 * parameters * tokens


def training_flops(parameters: int, tokens: int) -> float:
    return 6.0 * parameters * tokens


def refining_flops(
    doc_parameters: int | None, chunk_parameters: int | None, raw_tokens: int, doc_tokens: int
) -> float | None:
    """2·N_doc·D_raw + 2·N_chunk·D_doc; a stage that did not run has no parameters and costs nothing.
    None when a stage ran with a model of unknown size (e.g. a remote endpoint)."""
    total = 0.0
    for parameters, tokens in ((doc_parameters, raw_tokens), (chunk_parameters, doc_tokens)):
        if tokens and parameters is None:
            return None
        total += forward_flops(parameters or 0, tokens)
    return total


def count_non_embedding_parameters(model) -> int:
    """Parameters of a transformers model outside its token embeddings and output projection."""
    excluded = {
        id(p)
        for module in (model.get_input_embeddings(), model.get_output_embeddings())
        if module is not None
        for p in module.parameters()
    }
    return sum(p.numel() for p in model.parameters() if id(p) not in excluded)
