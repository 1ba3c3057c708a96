"""The transformers backend on tiny random models."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from proxkit.models.hf import TransformersWriter
from proxkit.models.tokenizers import HFTokenizer, load_tokenizer
from proxkit.prompts import SentencePieceTokenizer, TokenizationMode, chunk_prompt_ids, doc_prompt_ids

PAGES = [
    "A page about trains.",
    "Home | About\nThe council approved the lanes on Tuesday.\nCopyright 2024",
    "Short.",
    "A much longer page " * 30,
]


@pytest.fixture(scope="module")
def writer(tiny_refiner):
    return TransformersWriter(tiny_refiner, load_tokenizer(tiny_refiner))


def prompts(tokenizer):
    return [doc_prompt_ids(page, tokenizer, TokenizationMode.CLEAN).ids for page in PAGES] + [
        chunk_prompt_ids("[000]Home\n[001]Text.", tokenizer).ids
    ]


def test_a_batch_gives_what_each_prompt_gives_alone(writer):
    batch = prompts(writer.tokenizer)
    together = writer.generate(batch, max_new_tokens=6)
    alone = [writer.generate([prompt], max_new_tokens=6)[0] for prompt in batch]
    assert [g.text for g in together] == [g.text for g in alone]
    assert all(g.new_tokens == 6 and g.error is None for g in together)
    assert writer.generate(batch, max_new_tokens=6) == together  # greedy: deterministic


def test_generation_stops_at_the_end_of_the_program(tiny_refiner, tmp_path):
    """A model whose every next token is EOS writes an empty program; one that never ends stops at the limit."""
    tokenizer = load_tokenizer(tiny_refiner)
    for forced, expected_tokens in ((tokenizer.eos_id, 0), (tokenizer.encode("keep")[0], 5)):
        model = AutoModelForCausalLM.from_pretrained(tiny_refiner)
        with torch.no_grad():
            model.lm_head.weight.zero_()
            model.lm_head.weight[forced] = 1.0
            model.model.norm.weight.fill_(1.0)
        directory = tmp_path / f"forced-{forced}"
        model.save_pretrained(directory)
        (directory / "tokenizer.model").write_bytes((tiny_refiner / "tokenizer.model").read_bytes())
        generations = TransformersWriter(directory, tokenizer).generate(prompts(tokenizer), max_new_tokens=5)
        assert {g.new_tokens for g in generations} == {expected_tokens}


def test_max_batch_tokens_splits_batches_without_changing_results(writer, tiny_refiner):
    small = TransformersWriter(tiny_refiner, writer.tokenizer, max_batch=2, max_batch_tokens=200)
    batch = prompts(writer.tokenizer)
    assert [g.text for g in small.generate(batch, 4)] == [g.text for g in writer.generate(batch, 4)]


def test_unknown_dtype_is_rejected(tiny_refiner):
    with pytest.raises(ValueError, match="unknown dtype"):
        TransformersWriter(tiny_refiner, load_tokenizer(tiny_refiner), dtype="int3")


def test_load_tokenizer_prefers_sentencepiece_and_falls_back_to_transformers(tiny_refiner, tmp_path):
    assert isinstance(load_tokenizer(tiny_refiner), SentencePieceTokenizer)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"])
    bpe.train_from_iterator(["keep_chunk() drop_doc() remove_lines(line_start=1, line_end=2)"] * 5, trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    wrapped.save_pretrained(tmp_path / "hf")
    hf = load_tokenizer(tmp_path / "hf")
    assert isinstance(hf, HFTokenizer)
    assert (hf.bos_id, hf.eos_id) == (1, 2)
    assert 1 not in hf.encode("keep_chunk()")  # no special tokens added
    assert hf.decode(hf.encode("keep_chunk()")) == "keep_chunk()"


def forcing(writer: TransformersWriter, token: int) -> TransformersWriter:
    """Make greedy decoding write `token` after any prompt (an output layer that is only a bias)."""
    hidden, vocab = writer.model.config.hidden_size, writer.model.config.vocab_size
    head = torch.nn.Linear(hidden, vocab, bias=True, dtype=writer.model.dtype)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[token] = 10.0
    writer.model.lm_head = head
    return writer


@pytest.mark.parametrize("word, expected", [("keep", "keep_doc()"), ("drop", "drop_doc()")])
def test_choose_reads_greedys_doc_decision_off_one_forward_pass(tiny_refiner, word, expected, monkeypatch):
    from proxkit.program.grammar import DOC_PROGRAMS

    tokenizer = load_tokenizer(tiny_refiner)
    token = next(t for t in tokenizer.encode(word) if tokenizer.decode([t]))
    piece = tokenizer.decode([token])
    assert piece and expected.startswith(piece)
    writer = forcing(TransformersWriter(tiny_refiner, tokenizer), token)
    greedy = writer.generate(prompts(tokenizer), max_new_tokens=3)
    assert all(g.text.startswith(piece) for g in greedy)  # free decoding begins the expected program
    monkeypatch.setattr(writer, "generate", lambda *args, **kwargs: pytest.fail("choose decoded"))
    chosen = writer.choose(prompts(tokenizer), DOC_PROGRAMS, max_new_tokens=3)
    assert [g.text for g in chosen] == [expected] * len(greedy)


def test_choose_decodes_freely_when_greedy_would_begin_neither_option(tiny_refiner):
    from proxkit.program.grammar import DOC_PROGRAMS

    tokenizer = load_tokenizer(tiny_refiner)
    writer = forcing(TransformersWriter(tiny_refiner, tokenizer), tokenizer.encode("train")[0])
    chosen = writer.choose(prompts(tokenizer), DOC_PROGRAMS, max_new_tokens=3)
    assert [g.text for g in chosen] == [g.text for g in writer.generate(prompts(tokenizer), max_new_tokens=3)]
    assert all(g.text not in DOC_PROGRAMS for g in chosen)


@pytest.mark.parametrize("backbone", [False, True], ids=["sentencepiece", "byte-level-bpe"])
def test_grammar_constrained_decoding_writes_only_programs(tiny_refiner, tiny_backbone, backbone):
    """A random model decoding freely writes noise; under the grammar every answer is a program (cut only
    where the token limit cuts it)."""
    from proxkit.program import Mode, Stage
    from proxkit.program import parse_program as parse
    from proxkit.program.grammar import CHUNK_GRAMMAR

    directory = tiny_backbone if backbone else tiny_refiner
    writer = TransformersWriter(directory, load_tokenizer(directory))
    batch = prompts(writer.tokenizer)
    free = writer.generate(batch, max_new_tokens=24)
    constrained = writer.generate(batch, max_new_tokens=24, grammar=CHUNK_GRAMMAR)
    assert sum(not parse(g.text, Stage.CHUNK, Mode.STRICT).calls for g in free) >= len(batch) - 1
    for generation in constrained:
        program = parse(generation.text.strip(" "), Stage.CHUNK, Mode.STRICT)
        complete = generation.new_tokens < 24  # stopped by the grammar's end, not by the limit
        assert program.calls or not complete
        assert not program.errors or not complete, (generation, program.errors)
