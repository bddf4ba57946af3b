"""Continue a prompt with a trained checkpoint, optionally streaming the text as it is sampled."""

from __future__ import annotations

import os
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from ..conversion.pretrained import load_pretrained
from ..generation import check_sampling, stream_generate
from ..speed import decoding_layout
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
    """The continuation of `prompt` sampled with top-k and temperature (temperature 0: greedy), up to the end of
    text. With `stream=True` the prompt and then the continuation are also printed, piece by piece as they come.

    It decodes with gpt2_scratch.generation's lean loop over the model in the decoding layout."""
    check_sampling(max_new_tokens, temperature, top_k or None)  # before the model is loaded and the prompt printed
    model_dir = resolve_model_dir(model_dir)
    model = decoding_layout(load_pretrained(AutoModelForCausalLM, model_dir).eval())
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompt_length = len(tokenizer(prompt)["input_ids"])
    room = model.config.n_positions - prompt_length
    if room < 1:
        raise ValueError(
            f"The prompt has {prompt_length} tokens, which leaves no room in the model's context of "
            f"{model.config.n_positions} tokens: shorten the prompt to fewer than {model.config.n_positions} tokens."
        )
    if stream:
        print(prompt, end="", flush=True)
    pieces = []
    for piece in stream_generate(
        model, tokenizer, prompt, min(max_new_tokens, room), temperature=temperature, top_k=top_k or None, seed=seed
    ):
        pieces.append(piece)
        if stream:
            print(piece, end="", flush=True)
    if stream:
        print()
    return "".join(pieces)
