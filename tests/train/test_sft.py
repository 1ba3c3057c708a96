"""Supervised fine-tuning of a generative refiner on a tiny random model."""

import json

import pytest

from proxkit.models.tokenizers import load_tokenizer
from proxkit.train import sft
from proxkit.train.seed import Example

PAGES = [
    Example("a", "a", "chunk", ["Home | About", "The council met on Tuesday.", "Copyright 2024"], [True, False, True]),
    Example("b", "b", "chunk", ["Login", "Lanes will be built this summer.", "More news"], [True, False, True]),
]
DOCS = [Example("c", "c", "doc", ["BUY NOW"], drop=True), Example("d", "d", "doc", ["A calm essay."], drop=False)]


def test_program_targets_follow_the_chunks_and_labels(tiny_refiner):
    tokenizer = load_tokenizer(tiny_refiner)
    [(prompt, program)] = sft.program_targets(PAGES[0], tokenizer)
    assert program == "remove_lines(line_start=0, line_end=0)\nremove_lines(line_start=2, line_end=2)"
    assert tokenizer.decode(prompt).endswith("[002]Copyright 2024\n[/doc] [/INST]")
    assert sft.program_targets(DOCS[0], tokenizer)[0][1] == "drop_doc()"


def test_chunk_targets_carry_the_seeds_normalize_calls_in_the_chunks_that_hold_their_source(tiny_refiner):
    tokenizer = load_tokenizer(tiny_refiner)
    share = " Share this: Facebook"
    lines = ["Home | About", f"The council met on Tuesday.{share}", "Copyright 2024"]
    page = Example("a", "a", "chunk", lines, [True, False, True], normalize=(share, " Read more »"))
    [(_, program)] = sft.program_targets(page, tokenizer)
    assert program.splitlines()[-1] == 'normalize(source_str=" Share this: Facebook", target_str="")'
    assert "Read more" not in program  # its source is not in this chunk's kept lines
    long_page = Example(
        "b",
        "b",
        "chunk",
        [f"Paragraph {i} of a long article about the council.{share}" for i in range(400)],
        [False] * 400,
        normalize=(share,),
    )
    targets = sft.program_targets(long_page, tokenizer)
    assert len(targets) > 1
    assert all(program == f'normalize(source_str="{share}", target_str="")' for _, program in targets)


def test_only_the_program_and_eos_are_learned(tiny_refiner):
    tokenizer = load_tokenizer(tiny_refiner)
    ids, labels = sft.encode_example([1, 5, 6], "keep_doc()", tokenizer)
    assert labels[:3] == [sft.IGNORE] * 3
    assert ids[3:] == labels[3:] and labels[-1] == tokenizer.eos_id
    assert tokenizer.decode(labels[3:-1]) == "keep_doc()"


def test_training_checkpoints_keeps_the_best_and_resumes(tiny_refiner, tmp_path):
    config = sft.SFTConfig("chunk", str(tiny_refiner), epochs=2, lr=1e-3, batch_size=2)
    state = sft.train_sft(config, PAGES, PAGES, tmp_path / "run")
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    assert state["history"][1]["score"] > state["history"][0]["score"]  # the loss goes down
    assert (tmp_path / "run" / "best" / "config.json").is_file()
    assert json.loads((tmp_path / "run" / "state.json").read_text())["best"]["epoch"] == 2
    longer = sft.SFTConfig("chunk", str(tiny_refiner), epochs=3, lr=1e-3, batch_size=2)
    resumed = sft.train_sft(longer, PAGES, PAGES, tmp_path / "run")
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]  # epochs 1-2 were not redone
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["epoch-3"]


def test_lora_training_saves_a_plain_model_and_resumes(tiny_refiner, tmp_path):
    pytest.importorskip("peft")
    config = sft.SFTConfig("doc", str(tiny_refiner), epochs=1, lr=1e-3, batch_size=2, lora_rank=4)
    sft.train_sft(config, DOCS, DOCS, tmp_path / "lora")
    assert (tmp_path / "lora" / "checkpoints" / "epoch-1" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "lora" / "best" / "model.safetensors").is_file()
    config.epochs = 2
    assert len(sft.train_sft(config, DOCS, DOCS, tmp_path / "lora")["history"]) == 2


def test_config_is_validated():
    with pytest.raises(ValueError):
        sft.SFTConfig("chunk", "base", epochs=0)
    with pytest.raises(ValueError):
        sft.SFTConfig("page", "base")


def test_prox_train_chunk_holds_out_sites_and_keeps_the_best_epoch(tiny_refiner, tmp_path):
    from train.test_tagger_training import write_seed
    from typer.testing import CliRunner

    from proxkit.cli import app

    seed = write_seed(tmp_path / "seed.jsonl", pages=10)
    args = ["train", "chunk", "--seed", str(seed), "-o", str(tmp_path / "run"), "--base", str(tiny_refiner)]
    result = CliRunner().invoke(app, [*args, "--epochs", "1", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert state["epoch"] == 1 and 0.0 <= state["history"][0]["score"] <= 1.0  # content-word F1 on held-out sites
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()


@pytest.mark.parametrize("removed_line_f1", [0.0, 0.4])
def test_prox_train_chunk_warns_when_the_model_removes_no_noise(tiny_refiner, tmp_path, monkeypatch, removed_line_f1):
    from train.test_tagger_training import write_seed
    from typer.testing import CliRunner

    from proxkit.cli import app
    from proxkit.train import evaluate

    report = {"removed_line_f1": removed_line_f1, "kept_line_f1": 0.5, "content_word_f1": 0.7, "pages": 2}
    monkeypatch.setattr(evaluate, "evaluate_chunk", lambda spec, pages: {"model": report})
    seed = write_seed(tmp_path / "seed.jsonl", pages=10)
    args = ["train", "chunk", "--seed", str(seed), "-o", str(tmp_path / "run"), "--base", str(tiny_refiner)]
    result = CliRunner().invoke(app, [*args, "--epochs", "1", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["best"]["score"] == 0.7
    assert ("no noise line of the validation pages removed" in result.stderr) == (removed_line_f1 == 0.0)


def test_the_program_loss_is_the_models_own_loss_on_the_program_tokens(tiny_refiner):
    """Logits only at the program positions give the loss the model computes over the whole sequence."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(tiny_refiner)
    model = AutoModelForCausalLM.from_pretrained(tiny_refiner).eval()
    [(prompt, program)] = sft.program_targets(PAGES[0], tokenizer)
    ids, labels = sft.encode_example(prompt, program, tokenizer)
    with torch.no_grad():
        summed, count = sft._program_loss(model, (ids, labels))
        reference = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
    assert count == len(labels) - labels.count(sft.IGNORE)
    assert torch.allclose(summed / count, reference, atol=1e-5)


@pytest.mark.parametrize("stage", ["doc", "chunk"])
def test_prox_train_samples_at_most_max_examples_and_max_validation(stage, tiny_refiner, tmp_path, monkeypatch):
    from train.test_tagger_training import write_seed
    from typer.testing import CliRunner

    from proxkit.cli import app
    from proxkit.train import sft

    seen = {}
    monkeypatch.setattr(
        sft,
        "train_sft",
        lambda config, train, validation, *rest, **options: (
            seen.update(stage=config.stage, train=train, validation=validation) or {"epoch": 0}
        ),
    )
    seed = write_seed(tmp_path / "seed.jsonl", pages=12)
    more_docs = [{"source": f"d{i}", "site": f"s{i}", "stage": "doc", "text": "Words.", "label": 1} for i in range(16)]
    seed.write_text(seed.read_text() + "".join(json.dumps(record) + "\n" for record in more_docs))
    args = ["train", stage, "--seed", str(seed), "-o", str(tmp_path / stage), "--base", str(tiny_refiner)]
    assert CliRunner().invoke(app, args).exit_code == 0
    everything = len(seen["train"]), len(seen["validation"])
    assert everything[0] > 2 and everything[1] > 1 and {e.stage for e in seen["train"]} == {stage}
    result = CliRunner().invoke(app, [*args, "--max-examples", "2", "--max-validation", "1"])
    assert result.exit_code == 0, result.output
    assert (len(seen["train"]), len(seen["validation"])) == (2, 1) and seen["stage"] == stage
