"""Continue a prompt with a trained checkpoint, optionally streaming the text as it is sampled."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TextStreamer

from .checkpoint import latest_checkpoint


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A model folder: `path` itself when it holds config.json, else the latest checkpoint of a run folder."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise FileNotFoundError(f"{path} is neither a model folder (no config.json) nor a run folder with checkpoints.")
    return latest


def generate_text(model_dir: str | os.PathLike, prompt: str, max_new_tokens: int = 50, top_k: int | None = 25,
                  temperature: float = 1.0, seed: int | None = None, stream: bool = False) -> str:
    """The continuation of `prompt` sampled with top-k and temperature (temperature 0: greedy). With
    `stream=True` the prompt and then the continuation are also printed, token by token as they come."""
    model_dir = resolve_model_dir(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    if seed is not None:
        torch.manual_seed(seed)
    inputs = tokenizer(prompt, return_tensors="pt")
    room = model.config.n_positions - inputs.input_ids.shape[1]
    if room < 1:
        raise ValueError(f"the prompt has {inputs.input_ids.shape[1]} tokens: no room left in the model's context of {model.config.n_positions}.")
    sampling = dict(do_sample=True, top_k=top_k or 0, temperature=temperature) if temperature > 0 else dict(do_sample=False)
    output = model.generate(
        **inputs,
        max_new_tokens=min(max_new_tokens, room),
        pad_token_id=tokenizer.eos_token_id,
        streamer=TextStreamer(tokenizer) if stream else None,
        **sampling,
    )
    return tokenizer.decode(output[0, inputs.input_ids.shape[1] :])
