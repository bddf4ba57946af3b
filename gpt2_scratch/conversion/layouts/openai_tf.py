"""OpenAI's original TensorFlow release of GPT-2 (model.ckpt.* + hparams.json), import only.

Variables are named model/wte, model/wpe, model/hN/{ln_1,attn/c_attn,attn/c_proj,ln_2,mlp/c_fc,mlp/c_proj}/...,
model/ln_f/{g,b}. The projections were 1x1 convolutions: weights (1, in, out). The LM head is always tied.
"""

from __future__ import annotations

from ..layout import Layout, rule
from ..transforms import TF_CONV

OURS, THEIRS = "transformer.h.{i}.", "model/h{i}/"


def norm(ours: str, theirs: str):
    return [rule(ours + ".weight", theirs + "/g"), rule(ours + ".bias", theirs + "/b")]


def conv(ours: str, theirs: str):
    return [
        rule(OURS + ours + ".weight", THEIRS + theirs + "/w", TF_CONV),
        rule(OURS + ours + ".bias", THEIRS + theirs + "/b"),
    ]


class OpenAITFLayout(Layout):
    def hparams_from_metadata(self, metadata: dict) -> dict:
        hparams = metadata.get("hparams") or {}
        names = {
            "n_vocab": "vocab_size",
            "n_ctx": "n_positions",
            "n_embd": "n_embd",
            "n_head": "n_head",
            "n_layer": "n_layer",
        }
        return {ours: hparams[theirs] for theirs, ours in names.items() if theirs in hparams}


OPENAI_TF = OpenAITFLayout(
    "openai-tf",
    "OpenAI's TensorFlow release: model/wte, model/hN/attn/c_attn/w (1, d, 3d), model/hN/ln_1/g, hparams.json",
    [
        rule("transformer.wte.weight", "model/wte"),
        rule("transformer.wpe.weight", "model/wpe"),
        *norm(OURS + "ln_1", THEIRS + "ln_1"),
        *conv("attn.c_attn", "attn/c_attn"),
        *conv("attn.c_proj", "attn/c_proj"),
        *norm(OURS + "ln_2", THEIRS + "ln_2"),
        *conv("mlp.c_fc", "mlp/c_fc"),
        *conv("mlp.c_proj", "mlp/c_proj"),
        *norm("transformer.ln_f", "model/ln_f"),
    ],
    can_export=False,
    tied_head_only=True,
)
