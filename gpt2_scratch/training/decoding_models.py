"""Continue a prompt with a trained checkpoint, optionally streaming the text as it is sampled."""

from __future__ import annotations

import os
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from ..conversion.pretrained import load_pretrained
from ..generation import check_sampling, stream_generate
from ..hub_cards.records import model_folder
from ..precision import check_precision, decoding_model


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A model folder: `path` itself when it holds config.json, else a run folder's final model (see
    hub_cards.records.model_folder: instruct's model/, else the newest checkpoint)."""
    folder = model_folder(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{path} is neither a model folder (no config.json) nor a run folder with checkpoints.")
    return folder


def load_for_decoding(checkpoint: str | os.PathLike, precision: str = "float32"):
    """The model of a model folder or run folder (its latest checkpoint), ready to decode in `precision`
    ("float32", "bfloat16", "float16" or "int8": see gpt2_scratch.precision), and its tokenizer."""
    check_precision(precision)  # before anything is read
    model_dir = resolve_model_dir(checkpoint)
    model = decoding_model(load_pretrained(AutoModelForCausalLM, model_dir), precision)
    return model, AutoTokenizer.from_pretrained(model_dir)


def generate_text(model_dir: str | os.PathLike, prompt: str, max_new_tokens: int = 50, top_k: int | None = 25,
                  temperature: float = 1.0, seed: int | None = None, stream: bool = False,
                  precision: str = "float32") -> str:
    """The continuation of `prompt` sampled with top-k and temperature (temperature 0: greedy), up to the end of
    text or of the model's context. With `stream=True` the prompt and then the continuation are also printed,
    piece by piece as they come.

    It decodes with gpt2_scratch.generation's lean loop, in `precision` (see load_for_decoding)."""
    check_sampling(max_new_tokens, temperature, top_k or None)  # before the model is loaded and the prompt printed
    model, tokenizer = load_for_decoding(model_dir, precision)
    pieces = stream_generate(
        model, tokenizer, prompt, max_new_tokens, temperature=temperature, top_k=top_k or None, seed=seed
    )
    first = next(pieces, "")  # the prompt is checked against the context before it is printed
    if stream:
        print(prompt + first, end="", flush=True)
    text = [first]
    for piece in pieces:
        text.append(piece)
        if stream:
            print(piece, end="", flush=True)
    if stream:
        print()
    return "".join(text)
