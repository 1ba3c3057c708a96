"""`prox train doc|chunk`: supervised fine-tuning of a causal LM to write ProX programs, the paper's way.

Each example is the exact prompt of PROX_SPEC §2 (clean tokenization) followed by the target program and
EOS; the loss covers the program tokens only. Full fine-tuning or LoRA (peft). After every epoch the model
is checkpointed (weights, optimizer, schedule, data order), so an interrupted run resumes where it
stopped; it is then scored on held-out examples with the refining metrics, and the best epoch is kept in
`OUTPUT/best`.
"""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from loguru import logger

from proxkit.inline_noise import calls_in, with_normalize
from proxkit.models.backbones import resolve_base
from proxkit.models.tokenizers import load_tokenizer
from proxkit.program import Program, Stage
from proxkit.prompts import Tokenizer, chunk_document, chunk_prompt_ids, doc_prompt_ids, line_cost
from proxkit.train.seed import Example

IGNORE = -100


@dataclass
class SFTConfig:
    """epochs, learning rate (cosine decay to lr/10, as 1e-5 → 1e-6 in the paper), batch size in examples,
    LoRA rank (0: full fine-tuning),
    max_length: longest prompt + program kept (longer examples are skipped)."""

    stage: str
    base: str
    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 8
    lora_rank: int = 0
    max_length: int = 2048
    seed: int = 0

    def __post_init__(self) -> None:
        self.stage = str(Stage(self.stage))
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.lora_rank < 0:
            raise ValueError("epochs and batch_size must be >= 1, lr > 0, lora_rank >= 0")


def program_targets(example: Example, tokenizer: Tokenizer) -> list[tuple[list[int], str]]:
    """(prompt ids, target program) pairs of one seed example: one per chunk (chunk stage: its line removals,
    then the seed's `normalize` calls whose source is in the chunk's kept lines) or one (doc)."""
    text = "\n".join(example.lines)
    if example.stage == "doc":
        return [(doc_prompt_ids(text, tokenizer).ids, "drop_doc()" if example.drop else "keep_doc()")]
    pairs = []
    for chunk in chunk_document(text, line_cost(tokenizer)):
        flags = example.remove[chunk.first_line : chunk.last_line + 1]
        inline = calls_in(example.lines[chunk.first_line : chunk.last_line + 1], flags, example.normalize)
        program = with_normalize(Program.removing(flags, chunk.first_line), inline).render()
        pairs.append((chunk_prompt_ids(chunk.text, tokenizer).ids, program))
    return pairs


def encode_example(prompt: Sequence[int], program: str, tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """input ids and labels: the prompt, then the program (after one space, as the released models write it)
    and EOS; only the program and EOS are learned."""
    spaced = program if tokenizer.adds_prefix_space else " " + program
    target = [*tokenizer.encode(spaced), tokenizer.eos_id]
    return [*prompt, *target], [IGNORE] * len(prompt) + target


def build_dataset(examples: Sequence[Example], tokenizer: Tokenizer, max_length: int) -> list[tuple]:
    dataset = []
    for example in examples:
        for prompt, program in program_targets(example, tokenizer):
            ids, labels = encode_example(prompt, program, tokenizer)
            if len(ids) <= max_length:
                dataset.append((ids, labels))
    return dataset


def _program_loss(model, item: tuple[list[int], list[int]]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy of one example's program tokens and their number. One unpadded sequence, and
    logits only where program tokens are predicted: a 1,500-token prompt's logits over a 49k vocabulary
    would take more memory than the rest of the step."""
    ids, labels = item
    target = [token for token in labels if token != IGNORE]  # the program and EOS end the sequence
    device = next(model.parameters()).device
    logits = model(input_ids=torch.tensor([ids], device=device), logits_to_keep=len(target) + 1).logits[0, :-1]
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor(target, device=device), reduction="sum")
    return loss, len(target)


def _load_model(config: SFTConfig, resume: Path | None):
    """The base model (wrapped with LoRA adapters when asked), or the state saved in `resume`."""
    from transformers import AutoModelForCausalLM

    if resume is not None and not config.lora_rank:
        return AutoModelForCausalLM.from_pretrained(str(resume), dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(resolve_base(config.base), dtype=torch.float32)
    if not config.lora_rank:
        return model
    try:
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    except ImportError:
        raise ImportError("LoRA needs peft: pip install 'proxkit[train]'") from None
    lora = LoraConfig(r=config.lora_rank, lora_alpha=2 * config.lora_rank, target_modules="all-linear")
    model = get_peft_model(model, lora)
    if resume is not None:
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(resume / "adapter" / "adapter_model.safetensors")))
    return model


def train_sft(
    config: SFTConfig,
    train: Sequence[Example],
    validation: Sequence[Example],
    output: Path,
    score=None,
) -> dict:
    """Fine-tune, checkpoint every epoch into OUTPUT/checkpoints, keep the best-scoring epoch in OUTPUT/best.

    score(model_dir, validation) → float, higher is better (default: mean program-token loss, negated).
    A rerun with the same OUTPUT resumes after the last finished epoch.
    """
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    output.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(resolve_base(config.base))
    train_set = build_dataset(train, tokenizer, config.max_length)
    validation_set = build_dataset(validation, tokenizer, config.max_length)
    if not train_set:
        raise ValueError("no training example fits max_length")
    state_file, checkpoints = output / "state.json", output / "checkpoints"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"epoch": 0, "best": None, "history": []}
    last = checkpoints / f"epoch-{state['epoch']}"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _load_model(config, last if state["epoch"] else None).to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    steps = math.ceil(len(train_set) / config.batch_size) * config.epochs
    schedule = get_cosine_with_min_lr_schedule_with_warmup(optimizer, max(1, steps // 20), steps, min_lr_rate=0.1)
    if state["epoch"]:
        checkpoint = torch.load(last / "trainer.pt")
        optimizer.load_state_dict(checkpoint["optimizer"])
        schedule.load_state_dict(checkpoint["schedule"])
    for epoch in range(state["epoch"], config.epochs):
        order = list(range(len(train_set)))
        random.Random(config.seed + epoch).shuffle(order)
        model.train()
        for start in range(0, len(order), config.batch_size):
            # one example per forward pass, gradients accumulated: the loss is the mean over the batch's
            # program tokens, as one padded batch would give, in the memory of a single sequence
            batch = [train_set[i] for i in order[start : start + config.batch_size]]
            tokens = sum(len(labels) - labels.count(IGNORE) for _, labels in batch)
            for item in batch:
                loss, _ = _program_loss(model, item)
                (loss / tokens).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
        staging = checkpoints / f"epoch-{epoch + 1}.partial"
        _save(model, config, staging)
        torch.save({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()}, staging / "trainer.pt")
        value = score(staging, validation) if score else -_mean_loss(model, validation_set)
        state["history"].append({"epoch": epoch + 1, "score": value})
        if state["best"] is None or value > state["best"]["score"]:
            state["best"] = {"epoch": epoch + 1, "score": value}
            shutil.rmtree(output / "best", ignore_errors=True)
            shutil.copytree(staging, output / "best", ignore=shutil.ignore_patterns("trainer.pt"))
        state["epoch"] = epoch + 1
        # the epoch counts once its checkpoint is complete and the state names it: a kill before redoes it
        shutil.rmtree(checkpoints / f"epoch-{epoch + 1}", ignore_errors=True)
        staging.rename(checkpoints / f"epoch-{epoch + 1}")
        state_file.with_suffix(".partial").write_text(json.dumps(state, indent=2))
        state_file.with_suffix(".partial").rename(state_file)
        shutil.rmtree(checkpoints / f"epoch-{epoch}", ignore_errors=True)
        logger.info(f"epoch {epoch + 1}: validation score {value:.4f}")
    return state


@torch.no_grad()
def _mean_loss(model, dataset: Sequence[tuple]) -> float:
    """Mean over examples of the per-token program loss."""
    model.eval()
    losses = [float(loss) / count for loss, count in (_program_loss(model, item) for item in dataset)]
    return sum(losses) / len(losses) if losses else 0.0


def _save(model, config: SFTConfig, directory: Path) -> None:
    """A plain model directory that `prox refine` loads (LoRA merged into a copy of the weights; the
    adapter itself kept in `adapter/` to resume from)."""
    shutil.rmtree(directory, ignore_errors=True)
    if config.lora_rank:
        model.save_pretrained(directory / "adapter")
        copy.deepcopy(model).merge_and_unload().save_pretrained(directory)
    else:
        model.save_pretrained(directory)
    base = Path(resolve_base(config.base))
    for name in ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (base / name).is_file():
            shutil.copy(base / name, directory / name)
    (directory / "sft.json").write_text(json.dumps(asdict(config), indent=2))


def held_out_score(stage: Stage, warn=logger.warning):
    """The score `train_sft` keeps the best epoch by, through the real refine path: keep-F1 for a doc
    refiner, content-word F1 for a chunk refiner (`warn`ing when it removes no noise line at all)."""
    from proxkit.models import resolve
    from proxkit.train.evaluate import evaluate_chunk, evaluate_doc

    def score(directory: Path, pages: Sequence[Example]) -> float:
        if stage is Stage.DOC:
            return evaluate_doc(resolve(str(directory), stage), pages)["model"]["keep_f1"]
        report = evaluate_chunk(resolve(str(directory), stage), pages)["model"]
        if report["removed_line_f1"] == 0.0:  # its F1 is what keeping every line scores, or worse
            warn(
                f"{directory}: no noise line of the validation pages removed (removed-line F1 0); "
                "train longer or on more examples"
            )
        return report["content_word_f1"]

    return score


def train_generative(
    examples: Sequence[Example],
    config: SFTConfig,
    output: Path,
    max_examples: int = 0,
    max_validation: int = 0,
    warn=logger.warning,
) -> dict:
    """`prox train doc|chunk`: the stage's examples split by site (`held_out_split`), sampled, fine-tuned
    with `train_sft`, each epoch scored on the held-out sites (`held_out_score`, which `warn`s)."""
    from proxkit.train.split import held_out_split, sample_pages

    stage = Stage(config.stage)
    train, validation = held_out_split([e for e in examples if e.stage == stage])
    train, validation = sample_pages(train, max_examples), sample_pages(validation, max_validation)
    return train_sft(config, train, validation, output, score=held_out_score(stage, warn))
