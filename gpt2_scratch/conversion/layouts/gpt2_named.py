"""Layouts that use GPT-2's own names: ours, transformers' (Conv1D, stored (in, out)) and nanoGPT's."""

from __future__ import annotations

import torch

from ...modeling.configuration_scratch_gpt2 import dropouts
from ..hparams import gpt2_config, model_class, to_config
from ..layout import ANY_GELU, EXACT_GELU, ZEROS, CopyOf, Layout, rule
from ..transforms import IDENTITY, TRANSPOSE

LINEARS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


def gpt2_named_rules(linear_transform, qkv_bias_fallback=None, head_fallback=None):
    """Rules for layouts that name every tensor as GPT-2 does; they differ only in how linear weights are stored."""
    block = "transformer.h.{i}."
    rules = [
        rule("transformer.wte.weight", "transformer.wte.weight"),
        rule("transformer.wpe.weight", "transformer.wpe.weight"),
    ]
    rules += [rule(block + "ln_1." + p, block + "ln_1." + p) for p in ("weight", "bias")]
    for linear in LINEARS:
        rules.append(rule(block + linear + ".weight", block + linear + ".weight", linear_transform))
        fallback = qkv_bias_fallback if linear == "attn.c_attn" else None
        rules.append(rule(block + linear + ".bias", block + linear + ".bias", IDENTITY, fallback))
        if linear == "attn.c_proj":
            rules += [rule(block + "ln_2." + p, block + "ln_2." + p) for p in ("weight", "bias")]
    rules += [rule("transformer.ln_f." + p, "transformer.ln_f." + p) for p in ("weight", "bias")]
    rules.append(rule("lm_head.weight", "lm_head.weight", IDENTITY, head_fallback))
    return rules


def with_transformer_prefix(name: str) -> str:
    """transformers' GPT2Model saves keys without `transformer.`; GPT2LMHeadModel saves them with it."""
    if name.startswith(("transformer.", "lm_head.", "score.")):
        return name
    return "transformer." + name


class TransformersLayout(Layout):
    """transformers' GPT-2 (and our own model, which uses the same config names): config.json holds everything."""

    def hparams_from_metadata(self, metadata: dict) -> dict:
        config = metadata.get("config") or {}
        if not config:
            return {}
        refuse_features_we_lack(config)
        names = (
            "vocab_size",
            "n_positions",
            "n_embd",
            "n_layer",
            "n_head",
            "n_inner",
            "activation_function",
            "layer_norm_epsilon",
            "embd_pdrop",
            "attn_pdrop",
            "resid_pdrop",
            "bos_token_id",
            "eos_token_id",
            "pad_token_id",
            "qkv_bias",
            "tie_word_embeddings",
            "pad_vocab_size_to_multiple_of",
        )
        return {name: config[name] for name in names if name in config}

    def write_side_files(self, folder, hparams, dtype):
        from transformers import GenerationConfig

        config = gpt2_config(hparams)
        head = "GPT2ForSequenceClassification" if hparams["num_labels"] else "GPT2LMHeadModel"
        config.architectures, config.dtype = [head], str(dtype).removeprefix("torch.")
        config.save_pretrained(folder)
        GenerationConfig.from_model_config(config).save_pretrained(folder)


class ScratchLayout(TransformersLayout):
    def write_side_files(self, folder, hparams, dtype):
        """config.json, generation_config.json and the model's code, as ScratchGPT2's save_pretrained writes them."""
        from transformers import GenerationConfig
        from transformers.dynamic_module_utils import custom_object_save

        head = model_class(hparams)
        config = to_config(hparams, architectures=[head.__name__], dtype=str(dtype).removeprefix("torch."))
        with torch.device("meta"):
            model = head(config)
        custom_object_save(model, folder)  # copies the model's code, so that trust_remote_code users can load it
        config.save_pretrained(folder)
        GenerationConfig.from_model_config(config).save_pretrained(folder)


def refuse_features_we_lack(config: dict) -> None:
    """GPT2Config switches that change the computation in ways our model does not implement."""
    unsupported = {
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "add_cross_attention": False,
    }
    different = [f"{name}={config[name]!r}" for name, ours in unsupported.items() if config.get(name, ours) != ours]
    if different:
        raise ValueError(
            f"this GPT-2 config uses {', '.join(different)}, which ScratchGPT2 does not implement; "
            "converting it would silently change the model's outputs."
        )


def score_head(num_labels: int):
    """GPT2ForSequenceClassification's and ours: score, nn.Linear(d, num_labels) without bias."""
    return [rule("score.weight", "score.weight")]


TRANSFORMERS = TransformersLayout(
    "transformers",
    "transformers / OpenAI GPT-2: Conv1D weights stored (in, out), fused c_attn with Q, K, V side by side",
    gpt2_named_rules(TRANSPOSE, qkv_bias_fallback=ZEROS),
    ignored=(r"transformer\.h\.\d+\.attn\.(bias|masked_bias)",),  # causal-mask buffers of older versions
    normalize_name=with_transformer_prefix,
    classifier_head=score_head,
    activations=ANY_GELU,  # config.json's activation_function
)

SCRATCH = ScratchLayout(
    "scratch",
    "this package's ScratchGPT2: nn.Linear weights stored (out, in), fused c_attn with Q, K, V stacked",
    gpt2_named_rules(IDENTITY),
    classifier_head=score_head,
    keeps_vocab_padding=True,
    activations=ANY_GELU,
)


class NanoGPTLayout(Layout):
    """nanoGPT's ckpt.pt: {"model": state dict, "model_args": {...}, "optimizer": ..., "iter_num": ...}."""

    def hparams_from_metadata(self, metadata: dict) -> dict:
        args = metadata.get("model_args") or {}
        if not args:
            return {}
        if args.get("bias") is False:
            raise ValueError(
                "this nanoGPT checkpoint was trained with bias=False (no biases in its LayerNorms and linear "
                "layers); ScratchGPT2 always has them, so it cannot be converted."
            )
        found = {
            "n_layer": args.get("n_layer"),
            "n_head": args.get("n_head"),
            "n_embd": args.get("n_embd"),
            "n_positions": args.get("block_size"),
            "vocab_size": args.get("vocab_size"),
        }
        if "dropout" in args:
            found.update(dropouts(args["dropout"]))
        return {name: value for name, value in found.items() if value is not None}

    def wrap_state_dict(self, state_dict, hparams):
        """nanoGPT's ckpt.pt, as its train.py saves it (with no optimizer state: there was no training)."""
        return {
            "model": state_dict,
            "model_args": self.model_args(hparams),
            "iter_num": 0,
            "best_val_loss": 1e9,
            "config": {},
        }

    def model_args(self, hparams: dict) -> dict:
        """The `model_args` nanoGPT's GPTConfig is built from."""
        return dict(
            n_layer=hparams["n_layer"],
            n_head=hparams["n_head"],
            n_embd=hparams["n_embd"],
            block_size=hparams["n_positions"],
            bias=True,
            vocab_size=hparams["vocab_size"],
            dropout=hparams["resid_pdrop"],
        )


def without_compile_prefix(name: str) -> str:
    """torch.compile wraps the model, so a compiled model's keys start with `_orig_mod.`."""
    return name.removeprefix("_orig_mod.")


NANOGPT = NanoGPTLayout(
    "nanogpt",
    "nanoGPT ckpt.pt: GPT-2 names, nn.Linear weights (out, in), lm_head stored beside the tied wte",
    gpt2_named_rules(IDENTITY, qkv_bias_fallback=ZEROS, head_fallback=CopyOf("transformer.wte.weight")),
    ignored=(r"transformer\.h\.\d+\.attn\.bias",),  # the causal mask nanoGPT keeps when flash attention is off
    normalize_name=without_compile_prefix,
    tied_head_only=True,  # model.py: self.transformer.wte.weight = self.lm_head.weight
    activations=EXACT_GELU,  # model.py's MLP: self.gelu = nn.GELU()
    container="torch",
    weights_file="ckpt.pt",
)
