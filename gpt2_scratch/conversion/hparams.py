"""Hyperparameters in GPT-2's names, the shapes of our tensors they imply, and the bridge to our config.

The engine works on a plain dict of hyperparameters ("hparams") so that conversion between two foreign
layouts never needs to build a model; `to_config` turns the dict into a ScratchGPT2Config when one is wanted.
"""

from __future__ import annotations

from ..modeling.configuration_scratch_gpt2 import padded_vocab_size
from .transforms import Shape

DEFAULT_HPARAMS = dict(
    vocab_size=50257,
    n_positions=1024,
    n_embd=768,
    n_layer=12,
    n_head=12,
    n_inner=None,
    activation_function="gelu_new",
    layer_norm_epsilon=1e-5,
    embd_pdrop=0.1,
    attn_pdrop=0.1,
    resid_pdrop=0.1,
    qkv_bias=True,
    tie_word_embeddings=True,
    bos_token_id=50256,
    eos_token_id=50256,
    pad_token_id=None,
    num_labels=None,  # None: a language model (lm_head); a number: a sequence classifier (score)
    pad_vocab_size_to_multiple_of=None,  # our embedding and LM head rows: vocab_size rounded up to this multiple
)

# Our tensors that exist only under some settings: the fused QKV bias (qkv_bias) and an untied LM head.
QKV_BIAS = "transformer.h.{i}.attn.c_attn.bias"
LM_HEAD = "lm_head.weight"
SCORE = "score.weight"  # ScratchGPT2ForSequenceClassification's head (num_labels, d), without bias
TOKEN_EMBEDDING = "transformer.wte.weight"


def inner_size(hparams: dict) -> int:
    return hparams["n_inner"] or 4 * hparams["n_embd"]


def vocab_rows(hparams: dict) -> int:
    """Rows of our token embedding and LM head: the vocabulary with its padding, if any."""
    return padded_vocab_size(hparams["vocab_size"], hparams["pad_vocab_size_to_multiple_of"])


def our_shapes(hparams: dict, *, optional_too: bool = False) -> dict[str, Shape]:
    """Our state-dict keys (ScratchGPT2ForCausalLM) and their shapes, in the model's order.

    A tied LM head is not a tensor of its own and a QKV projection without bias has none, so both are left
    out unless `optional_too` asks for every key a model of this size could have.
    """
    d, inner = hparams["n_embd"], inner_size(hparams)
    per_layer = {
        "ln_1.weight": (d,),
        "ln_1.bias": (d,),
        "attn.c_attn.weight": (3 * d, d),
        "attn.c_attn.bias": (3 * d,),
        "attn.c_proj.weight": (d, d),
        "attn.c_proj.bias": (d,),
        "ln_2.weight": (d,),
        "ln_2.bias": (d,),
        "mlp.c_fc.weight": (inner, d),
        "mlp.c_fc.bias": (inner,),
        "mlp.c_proj.weight": (d, inner),
        "mlp.c_proj.bias": (d,),
    }
    shapes = {TOKEN_EMBEDDING: (vocab_rows(hparams), d), "transformer.wpe.weight": (hparams["n_positions"], d)}
    for i in range(hparams["n_layer"]):
        for name, shape in per_layer.items():
            if optional_too or name != "attn.c_attn.bias" or hparams["qkv_bias"]:
                shapes[f"transformer.h.{i}.{name}"] = shape
    shapes["transformer.ln_f.weight"] = shapes["transformer.ln_f.bias"] = (d,)
    if hparams["num_labels"]:
        shapes[SCORE] = (hparams["num_labels"], d)
    elif optional_too or not hparams["tie_word_embeddings"]:
        shapes[LM_HEAD] = (vocab_rows(hparams), d)
    return shapes


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


def to_config(hparams: dict, **extra):
    from gpt2_scratch.modeling import ScratchGPT2Config

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
