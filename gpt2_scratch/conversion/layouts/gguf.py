"""GGUF, the format of llama.cpp, with the `gguf` package: architecture "gpt2", llama.cpp's tensor names.

Weights are stored as nn.Linear's (out, in) (llama.cpp's converter transposes transformers' Conv1D), F32, or
F16 for the 2-D tensors with LayerNorms, biases and the position embedding kept in F32, as llama.cpp's converter
does. A tied LM head has no `output.weight`. GPT-2's BPE tokenizer, when the source has one (tokenizer.json, or
vocab.json + merges.txt), goes into the tokenizer.ggml.* metadata as llama.cpp's convert_hf_to_gguf.py writes it.
"""

from __future__ import annotations

from ..containers.gguf import ARCH
from ..layout import ZEROS, Layout, rule

OURS, THEIRS = "transformer.h.{i}.", "blk.{i}."


def pair(ours: str, theirs: str, fallback=None):
    return [rule(ours + ".weight", theirs + ".weight"), rule(ours + ".bias", theirs + ".bias", fallback=fallback)]


class GGUFLayout(Layout):
    def hparams_from_metadata(self, metadata):
        fields = metadata.get("gguf") or {}
        if fields.get("general.architecture", ARCH) != ARCH:
            raise ValueError(f"this GGUF file holds a {fields['general.architecture']!r} model, not GPT-2.")
        names = {
            "context_length": "n_positions",
            "embedding_length": "n_embd",
            "block_count": "n_layer",
            "attention.head_count": "n_head",
            "feed_forward_length": "n_inner",
            "attention.layer_norm_epsilon": "layer_norm_epsilon",
        }
        found = {ours: fields[f"{ARCH}.{key}"] for key, ours in names.items() if f"{ARCH}.{key}" in fields}
        if found.get("n_inner") == 4 * found.get("n_embd", -1):
            found["n_inner"] = None
        for key, ours in (("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id")):
            if f"tokenizer.ggml.{key}" in fields:
                found[ours] = fields[f"tokenizer.ggml.{key}"]
        return found


GGUF = GGUFLayout(
    "gguf",
    "GGUF for llama.cpp: token_embd, position_embd, blk.N.attn_qkv|attn_output|ffn_up|ffn_down, F32 or F16",
    [
        rule("transformer.wte.weight", "token_embd.weight"),
        rule("transformer.wpe.weight", "position_embd.weight"),
        *pair(OURS + "ln_1", THEIRS + "attn_norm"),
        *pair(OURS + "attn.c_attn", THEIRS + "attn_qkv", fallback=ZEROS),
        *pair(OURS + "attn.c_proj", THEIRS + "attn_output"),
        *pair(OURS + "ln_2", THEIRS + "ffn_norm"),
        *pair(OURS + "mlp.c_fc", THEIRS + "ffn_up"),
        *pair(OURS + "mlp.c_proj", THEIRS + "ffn_down"),
        *pair("transformer.ln_f", "output_norm"),
        rule("lm_head.weight", "output.weight"),
    ],
    container="gguf",
    weights_file="model.gguf",
)
