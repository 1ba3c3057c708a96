"""The transformers backend: the model in this process, CPU by default, GPU when there is one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from proxkit.models.writer import Generation, ProgramWriter, auto_dtype, begins_option, length_batches
from proxkit.prompts import Tokenizer


class TransformersWriter(ProgramWriter):
    """Greedy, batched, length-sorted generation with a transformers causal LM.

    max_batch: prompts per forward pass; max_batch_tokens: bound on prompts x (prompt + new tokens).
    dtype: "auto" (bfloat16 on a GPU that supports it or a CPU with AMX, float32 otherwise), "float32",
    "bfloat16" or "float16".
    """

    def __init__(
        self,
        model: str | Path,
        tokenizer: Tokenizer,
        *,
        device: str | None = None,
        dtype: str = "auto",
        max_batch: int = 16,
        max_batch_tokens: int = 65536,
        gguf_file: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.max_batch_tokens = max_batch_tokens
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        self.model = AutoModelForCausalLM.from_pretrained(str(model), dtype=self._dtype(dtype), **extra)
        self.model.to(self.device).eval()
        configured = self.model.generation_config.eos_token_id
        configured = configured if isinstance(configured, list) else [configured] if configured is not None else []
        self.eos_ids = sorted({tokenizer.eos_id, *configured})
        self.pad_id = self.model.config.pad_token_id
        if self.pad_id is None:
            self.pad_id = tokenizer.eos_id
        self._starts: dict[tuple[str, ...], list] = {}
        self._grammars: dict[str, object] = {}

    def _dtype(self, name: str):
        torch = self._torch
        if name == "auto":
            return auto_dtype(self.device)
        try:
            return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
        except KeyError:
            raise ValueError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16") from None

    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, grammar: str | None = None
    ) -> list[Generation]:
        from transformers import GenerationConfig

        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=self.eos_ids, pad_token_id=self.pad_id
        )
        results: list[Generation | None] = [None] * len(prompts)
        lengths = [len(prompt) + max_new_tokens for prompt in prompts]
        for batch in length_batches(lengths, self.max_batch, self.max_batch_tokens):
            generations = self._generate_batch([prompts[i] for i in batch], config, grammar)
            for index, generation in zip(batch, generations, strict=True):
                results[index] = generation
        return results  # type: ignore[return-value]

    def choose(self, prompts: Sequence[Sequence[int]], options: Sequence[str], max_new_tokens: int) -> list[Generation]:
        """One forward pass per batch: the option whose first tokens score highest at the end of the prompt —
        the choice greedy decoding makes. When greedy's own first token starts no option, that prompt is
        decoded freely instead, so the decisions stay those of greedy decoding."""
        starts = self._option_starts(tuple(options))
        results: list[Generation | None] = [None] * len(prompts)
        for batch in length_batches([len(prompt) for prompt in prompts], self.max_batch, self.max_batch_tokens):
            logits = self._last_logits([prompts[i] for i in batch])
            best = logits.argmax(-1).tolist()
            for row, index in enumerate(batch):
                scores = [float(logits[row, ids].max()) for ids in starts]
                choice = max(range(len(options)), key=scores.__getitem__)
                if best[row] in starts[choice].tolist():
                    results[index] = Generation(options[choice], new_tokens=0)
        return self.decode_undecided(prompts, results, max_new_tokens)

    def _option_starts(self, options: tuple[str, ...]) -> list:
        """For each option, the ids of the tokens that can begin it (optionally after one space)."""
        if options not in self._starts:
            torch = self._torch
            pieces = [self.tokenizer.decode([token]) for token in range(self.model.config.vocab_size)]
            self._starts[options] = [
                torch.tensor([i for i, piece in enumerate(pieces) if begins_option(option, piece)])
                for option in options
            ]
            if any(len(ids) == 0 for ids in self._starts[options]):
                raise ValueError(f"no token of this vocabulary begins one of {options}")
        return self._starts[options]

    def _padded(self, prompts: list[Sequence[int]]):
        """Left-padded ids and attention mask: every prompt ends where generation starts."""
        torch = self._torch
        width = max(len(prompt) for prompt in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            attention[row, width - len(prompt) :] = 1
        return input_ids.to(self.device), attention.to(self.device)

    def _last_logits(self, prompts: list[Sequence[int]]):
        input_ids, attention = self._padded(prompts)
        with self._torch.inference_mode():
            output = self.model(input_ids=input_ids, attention_mask=attention, logits_to_keep=1)
        return output.logits[:, -1, :].float().cpu()

    def _grammar_processor(self, grammar: str):
        """A fresh xgrammar logits processor (they hold per-generation state) for the compiled grammar."""
        import xgrammar

        if grammar not in self._grammars:
            info = grammar_tokenizer_info(self.tokenizer, self.model.config.vocab_size, self.eos_ids)
            self._grammars[grammar] = xgrammar.GrammarCompiler(info).compile_grammar(grammar)
        return xgrammar.contrib.hf.LogitsProcessor(self._grammars[grammar])

    def _generate_batch(self, prompts: list[Sequence[int]], config, grammar: str | None = None) -> list[Generation]:
        from transformers import LogitsProcessorList

        input_ids, attention = self._padded(prompts)
        processors = LogitsProcessorList([self._grammar_processor(grammar)] if grammar else [])
        width = input_ids.shape[1]
        with self._torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids, attention_mask=attention, generation_config=config, logits_processor=processors
            )
        generations = []
        for row in output[:, width:].tolist():
            end = next((i for i, token in enumerate(row) if token in self.eos_ids), len(row))
            generations.append(Generation(self.tokenizer.decode(row[:end]), new_tokens=end))
        return generations


def grammar_tokenizer_info(tokenizer: Tokenizer, vocab_size: int, stop_ids: Sequence[int]):
    """xgrammar's view of a prompt tokenizer: the transformers tokenizer itself, or the pieces of a
    SentencePiece model (byte fallback, `▁` for spaces)."""
    import xgrammar

    from proxkit.models.tokenizers import HFTokenizer
    from proxkit.prompts import SentencePieceTokenizer

    if isinstance(tokenizer, HFTokenizer):
        return xgrammar.TokenizerInfo.from_huggingface(
            tokenizer.hf_tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_ids)
        )
    if isinstance(tokenizer, SentencePieceTokenizer):
        pieces = [tokenizer.piece(token) for token in range(tokenizer.vocab_size)]
        return xgrammar.TokenizerInfo(
            pieces,
            vocab_type=xgrammar.VocabType.BYTE_FALLBACK,
            vocab_size=vocab_size,
            stop_token_ids=list(stop_ids),
            add_prefix_space=True,
        )
    raise TypeError(f"grammar-constrained decoding does not know tokenizers of type {type(tokenizer).__name__}")
