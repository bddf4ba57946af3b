"""The from-scratch course's layouts: the book's model, and the seed's "OpenAI-compatible" re-implementation.

Neither format records hyperparameters: they come from the shapes (the number of heads is guessed as
width / 64, as in every GPT-2 size, unless given). Both LayerNorms are GPT-2's (biased variance); the book's
adds eps=1e-5 inside the square root like ours, the compatible one adds none. The import keeps GPT-2's eps, the
one the weights were trained with: it scales a LayerNorm's output by 1/sqrt(1 + eps/var), a relative 5e-6 or
less wherever the variance is 1 or more.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...modeling.configuration_scratch_gpt2 import dropouts
from ..layout import CAUSAL_MASK, CopyOf, Layout, rule
from ..transforms import SPLIT_QKV, FoldHeadBias

OURS = "transformer.h.{i}."
THEIRS = "trf_blocks.{i}."


def shared_rules(block_rules):
    """Embeddings, blocks and head: the names both course layouts share outside the attention and MLP."""
    norms = [rule(OURS + f"ln_{n}.weight", THEIRS + f"norm{n}.scale") for n in (1, 2)]
    norms += [rule(OURS + f"ln_{n}.bias", THEIRS + f"norm{n}.shift") for n in (1, 2)]
    return [
        rule("transformer.wte.weight", "tok_emb.weight"),
        rule("transformer.wpe.weight", "pos_emb.weight"),
        *block_rules,
        *norms,
        rule("transformer.ln_f.weight", "final_norm.scale"),
        rule("transformer.ln_f.bias", "final_norm.shift"),
        # The course's model always has its own out_head, a copy of tok_emb when the weights came from OpenAI.
        rule("lm_head.weight", "out_head.weight", fallback=CopyOf("transformer.wte.weight")),
    ]


def classifier_head(num_labels: int):
    """The course's classifier replaces out_head by nn.Linear(d, num_labels) with a bias, folded into final_norm."""
    return [
        rule("score.weight", "out_head.weight"),
        rule(
            "transformer.ln_f.bias",
            ("final_norm.shift", "out_head.bias"),
            FoldHeadBias(num_labels),
            reads=["out_head.weight"],
        ),
    ]


def linear(ours: str, theirs: str):
    return [
        rule(OURS + ours + ".weight", THEIRS + theirs + ".weight"),
        rule(OURS + ours + ".bias", THEIRS + theirs + ".bias"),
    ]


# The course's config keys (GPT_CONFIG_124M) and ours; its one drop_rate is all three of our dropouts.
COURSE_CONFIG_NAMES = {
    "vocab_size": "vocab_size",
    "context_length": "n_positions",
    "emb_dim": "n_embd",
    "n_heads": "n_head",
    "n_layers": "n_layer",
    "qkv_bias": "qkv_bias",
}


class CourseLayout(Layout):
    """The course's config (GPT_CONFIG_124M's keys) travels beside an exported model.pth as gpt_config.json."""

    def hparams_from_metadata(self, metadata: dict) -> dict:
        config = metadata.get("gpt_config") or {}
        found = {ours: config[theirs] for theirs, ours in COURSE_CONFIG_NAMES.items() if theirs in config}
        if "drop_rate" in config:
            found.update(dropouts(config["drop_rate"]))
        return found

    def write_side_files(self, folder, hparams, dtype):
        config = {theirs: hparams[ours] for theirs, ours in COURSE_CONFIG_NAMES.items()}
        config["drop_rate"] = hparams["resid_pdrop"]
        (Path(folder) / "gpt_config.json").write_text(json.dumps(config, indent=2) + "\n")


BOOK = CourseLayout(
    "book",
    "the course's GPTModel: tok_emb, pos_emb, trf_blocks.N.att.W_query|W_key|W_value, ff.layers.0|2, norm1|norm2",
    shared_rules(
        [
            rule(
                OURS + "attn.c_attn.weight",
                tuple(THEIRS + f"att.W_{p}.weight" for p in ("query", "key", "value")),
                SPLIT_QKV,
            ),
            rule(
                OURS + "attn.c_attn.bias",
                tuple(THEIRS + f"att.W_{p}.bias" for p in ("query", "key", "value")),
                SPLIT_QKV,
            ),
            *linear("attn.c_proj", "att.out_proj"),
            rule(None, THEIRS + "att.mask", fallback=CAUSAL_MASK),
            *linear("mlp.c_fc", "ff.layers.0"),
            *linear("mlp.c_proj", "ff.layers.2"),
        ]
    ),
    classifier_head=classifier_head,
    container="torch",
    weights_file="model.pth",
)

BOOK_OPENAI_COMPATIBLE = CourseLayout(
    "book-openai-compatible",
    "the seed's OpenAI-compatible GPT: course names outside the blocks, fused trf_blocks.N.attn.c_attn (3d, d)",
    shared_rules(
        [
            *linear("attn.c_attn", "attn.c_attn"),
            *linear("attn.c_proj", "attn.c_proj"),
            rule(None, THEIRS + "attn.mask", fallback=CAUSAL_MASK),
            *linear("mlp.c_fc", "mlp.c_fc"),
            *linear("mlp.c_proj", "mlp.c_proj"),
        ]
    ),
    classifier_head=classifier_head,
    container="torch",
    weights_file="model.pth",
)
