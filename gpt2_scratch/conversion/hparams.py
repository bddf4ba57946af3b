"""Hyperparameters in GPT-2's names, the shapes of our tensors they imply, and the bridge to our config.

The engine works on a plain dict of hyperparameters ("hparams") so that conversion between two foreign
layouts never needs to build a model; `to_config` turns the dict into a ScratchGPT2Config when one is wanted.
Defaults and shapes are not restated here: they are read off ScratchGPT2Config and a model built on the meta device.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from ..modeling import ScratchGPT2Config, ScratchGPT2ForCausalLM, ScratchGPT2ForSequenceClassification
from ..modeling.configuration_scratch_gpt2 import padded_vocab_size
from .transforms import Shape

# The config fields that say what a checkpoint's tensors compute, with our config's defaults, and num_labels:
# None for a language model (lm_head), a number for a sequence classifier (score).
HPARAM_NAMES = (
    "vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner", "activation_function",
    "layer_norm_epsilon", "embd_pdrop", "attn_pdrop", "resid_pdrop", "qkv_bias", "tie_word_embeddings",
    "bos_token_id", "eos_token_id", "pad_token_id", "pad_vocab_size_to_multiple_of",
)  # fmt: skip
DEFAULT_HPARAMS = {name: getattr(ScratchGPT2Config, name) for name in HPARAM_NAMES} | {"num_labels": None}

# Our tensors that exist only under some settings: the fused QKV bias (qkv_bias) and an untied LM head.
LM_HEAD = "lm_head.weight"
SCORE = "score.weight"  # ScratchGPT2ForSequenceClassification's head (num_labels, d), without bias
TOKEN_EMBEDDING = "transformer.wte.weight"
BLOCK_0 = "transformer.h.0."
# What fixes the shapes; every other field (n_head, dropouts, ...) leaves them alone.
SHAPE_NAMES = ("vocab_size", "pad_vocab_size_to_multiple_of", "n_positions", "n_embd", "n_layer", "n_inner")


def vocab_rows(hparams: dict) -> int:
    """Rows of our token embedding and LM head: the vocabulary with its padding, if any."""
    return padded_vocab_size(hparams["vocab_size"], hparams["pad_vocab_size_to_multiple_of"])


def model_class(hparams: dict):
    """The ScratchGPT2 head these hyperparameters describe: a sequence classifier or a language model."""
    return ScratchGPT2ForSequenceClassification if hparams["num_labels"] else ScratchGPT2ForCausalLM


def our_shapes(hparams: dict, *, optional_too: bool = False) -> dict[str, Shape]:
    """Our state-dict keys and their shapes, in the model's order, from a model built on the meta device.

    A tied LM head is not a tensor of its own and a QKV projection without bias has none, so both are left
    out unless `optional_too` asks for every key a model of this size could have.
    """
    qkv_bias = optional_too or hparams["qkv_bias"]
    untied = optional_too or not hparams["tie_word_embeddings"]
    sizes = tuple(hparams[name] for name in SHAPE_NAMES)
    return dict(meta_shapes(sizes, qkv_bias, untied, hparams["num_labels"]))


@lru_cache(maxsize=16)
def meta_shapes(sizes: tuple, qkv_bias: bool, untied: bool, num_labels: int | None) -> tuple:
    """The shapes of a one-block model built on the meta device, its block repeated n_layer times (so that a checkpoint
    with no blocks at all is described, not refused)."""
    fields = dict(zip(SHAPE_NAMES, sizes, strict=True), n_head=1, qkv_bias=qkv_bias, tie_word_embeddings=not untied)
    n_layer, fields["n_layer"] = fields["n_layer"], 1
    with torch.device("meta"):
        model = model_class({"num_labels": num_labels})(to_config({**fields, "num_labels": num_labels}))
    shapes = [(name, tuple(tensor.shape)) for name, tensor in model.state_dict().items() if untied or name != LM_HEAD]
    block = [(name.removeprefix(BLOCK_0), shape) for name, shape in shapes if name.startswith(BLOCK_0)]
    first = next(k for k, (name, _) in enumerate(shapes) if name.startswith(BLOCK_0))
    blocks = [(f"transformer.h.{i}.{name}", shape) for i in range(n_layer) for name, shape in block]
    return (*shapes[:first], *blocks, *shapes[first + len(block) :])  # a tied head (wte again) is left out above


def describe(hparams: dict) -> str:
    """The few numbers that fix the tensors' shapes, for error messages and model cards."""
    names = ("n_layer", "n_embd", "n_head", "vocab_size", "n_positions")
    text = ", ".join(f"{name}={hparams[name]}" for name in names)
    if hparams["n_inner"]:
        text += f", n_inner={hparams['n_inner']}"
    if hparams["pad_vocab_size_to_multiple_of"]:
        text += f", vocabulary padded to {vocab_rows(hparams)} rows"
    text += "" if hparams["qkv_bias"] else ", no QKV bias"
    if hparams["num_labels"]:
        return text + f", a {hparams['num_labels']}-class classifier head"
    return text + ("" if hparams["tie_word_embeddings"] else ", untied LM head")


def to_config(hparams: dict, **extra) -> ScratchGPT2Config:
    fields = {name: value for name, value in {**hparams, **extra}.items() if name != "num_labels" or value}
    return ScratchGPT2Config(**fields)


def gpt2_config(hparams: dict):
    """transformers' GPT2Config for our hyperparameters (GPT-2 always has a QKV bias: none is written as zeros)."""
    from transformers import GPT2Config

    # GPT2Config has no QKV bias switch and no vocabulary padding (the export drops the padding rows).
    dropped = ("qkv_bias", "num_labels", "pad_vocab_size_to_multiple_of")
    fields = {name: value for name, value in hparams.items() if name not in dropped}
    return GPT2Config(**fields, **({"num_labels": hparams["num_labels"]} if hparams["num_labels"] else {}))


def from_config(config) -> dict:
    """Our hyperparameters from a config that uses GPT-2's field names (ours or transformers' GPT2Config), for a
    language model (every config has a num_labels: only the model says whether it is a classifier)."""
    values = {name: getattr(config, name, default) for name, default in DEFAULT_HPARAMS.items()}
    values["tie_word_embeddings"] = bool(getattr(config, "tie_word_embeddings", True))
    values["num_labels"] = None
    return values


def from_model(model) -> dict:
    """Our hyperparameters from a model (ours or transformers' GPT-2), classifier or language model."""
    return {**from_config(model.config), "num_labels": model.config.num_labels if hasattr(model, "score") else None}
