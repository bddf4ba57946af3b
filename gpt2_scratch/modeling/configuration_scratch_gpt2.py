"""Configuration of ScratchGPT2: every size and switch of the model, in GPT-2's own field names."""

from transformers import PreTrainedConfig

# The four sizes OpenAI released, plus a tiny one for tests and demos.
PRESETS = {
    "tiny": dict(n_layer=2, n_embd=64, n_head=4, n_positions=128),
    "small": dict(n_layer=12, n_embd=768, n_head=12),  # 124M
    "medium": dict(n_layer=24, n_embd=1024, n_head=16),  # 355M
    "large": dict(n_layer=36, n_embd=1280, n_head=20),  # 774M
    "xl": dict(n_layer=48, n_embd=1600, n_head=25),  # 1.5B
}

# GPT-2 uses the tanh approximation of GELU; "gelu" is the exact (erf) form.
ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu")


# The three dropout probabilities; one number for all of them is how most recipes (and the course) set dropout.
DROPOUTS = ("embd_pdrop", "attn_pdrop", "resid_pdrop")


def dropouts(probability: float) -> dict[str, float]:
    """Every dropout of the config set to `probability`, as keyword arguments."""
    return dict.fromkeys(DROPOUTS, probability)


def auto_map() -> dict[str, str]:
    """config.json's `auto_map`: the code file and class behind each Auto class, so that any of them (AutoModel,
    AutoModelForCausalLM, AutoModelForSequenceClassification) loads any of our checkpoints as remote code; the
    model file sits beside this one."""
    config_module = __name__.rsplit(".", 1)[-1]
    model_module = config_module.replace("configuration_", "modeling_")
    return {
        "AutoConfig": f"{config_module}.ScratchGPT2Config",
        "AutoModel": f"{model_module}.ScratchGPT2Model",
        "AutoModelForCausalLM": f"{model_module}.ScratchGPT2ForCausalLM",
        "AutoModelForSequenceClassification": f"{model_module}.ScratchGPT2ForSequenceClassification",
    }


def padded_vocab_size(vocab_size: int, multiple: int | None) -> int:
    """`vocab_size` rounded up to a multiple of `multiple` (None: unpadded)."""
    multiple = multiple or 1
    return -(-vocab_size // multiple) * multiple


class ScratchGPT2Config(PreTrainedConfig):
    r"""Sizes and switches of a ScratchGPT2 model.

    Args:
        vocab_size: number of token ids (50257 for GPT-2's tokenizer).
        n_positions: longest sequence the learned position embeddings cover.
        n_embd: width of the residual stream.
        n_layer: number of transformer blocks.
        n_head: attention heads per block; must divide n_embd.
        n_inner: width of the MLP's hidden layer; None means 4 * n_embd.
        activation_function: "gelu_new" (GPT-2's tanh approximation), "gelu_pytorch_tanh" (same) or "gelu".
        layer_norm_epsilon: added to the variance inside every LayerNorm.
        embd_pdrop / attn_pdrop / resid_pdrop: dropout after the embeddings, on attention weights, on residual branches.
        qkv_bias: whether the fused query/key/value projection has a bias (GPT-2's does).
        tie_word_embeddings: share the token embedding with the LM head (GPT-2 does).
        initializer_range: standard deviation of the normal initialisation.
        pad_vocab_size_to_multiple_of: give the token embedding and the LM head this many rows rounded up (64 or 128
            make matmuls faster: 50257 -> 50304); the extra rows are never used and logits keep vocab_size columns.
        classification_max_length: tokens a sequence classifier reads of each text (the length it was fine-tuned
            with); longer inputs keep their first tokens, so that pipeline("text-classification") and plain calls
            score a text as training saw it. None: no limit below n_positions.
    """

    model_type = "scratch-gpt2"
    keys_to_ignore_at_inference = ["cache", "past_key_values"]  # the cache's names from and before transformers 5.24
    attribute_map = {
        "hidden_size": "n_embd",
        "max_position_embeddings": "n_positions",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
    }

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    embd_pdrop: float | int = 0.1
    attn_pdrop: float | int = 0.1
    resid_pdrop: float | int = 0.1
    qkv_bias: bool = True
    tie_word_embeddings: bool = True
    initializer_range: float = 0.02
    pad_vocab_size_to_multiple_of: int | None = None
    classification_max_length: int | None = None
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.validate_architecture()
        if getattr(self, "auto_map", None) is None:  # saved into config.json: every head loads as remote code
            self.auto_map = auto_map()

    def validate_architecture(self):
        """An impossible model fails here, when the config is made, with an error naming the field."""
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"ScratchGPT2Config.{name} must be a positive integer, got {value!r}.")
        if self.n_inner is not None and (not isinstance(self.n_inner, int) or self.n_inner <= 0):
            raise ValueError(f"ScratchGPT2Config.n_inner must be a positive integer or None, got {self.n_inner!r}.")
        multiple = self.pad_vocab_size_to_multiple_of
        if multiple is not None and (not isinstance(multiple, int) or multiple <= 0):
            raise ValueError(
                f"ScratchGPT2Config.pad_vocab_size_to_multiple_of must be a positive integer or None, got {multiple!r}."
            )
        length = self.classification_max_length
        if length is not None and (not isinstance(length, int) or not 0 < length <= self.n_positions):
            raise ValueError(
                f"ScratchGPT2Config.classification_max_length must be None or between 1 and n_positions "
                f"({self.n_positions}), got {length!r}."
            )
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"ScratchGPT2Config.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                "each head gets n_embd / n_head channels."
            )
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(
                f"ScratchGPT2Config.activation_function {self.activation_function!r} is unknown; "
                f"choose one of {', '.join(ACTIVATIONS)}."
            )
        for name in DROPOUTS:
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"ScratchGPT2Config.{name} must be in [0, 1), got {getattr(self, name)!r}.")
        if self.layer_norm_epsilon <= 0:
            raise ValueError(f"ScratchGPT2Config.layer_norm_epsilon must be positive, got {self.layer_norm_epsilon!r}.")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def padded_vocab_size(self) -> int:
        """Rows of the token embedding and the LM head: vocab_size rounded up to pad_vocab_size_to_multiple_of."""
        return padded_vocab_size(self.vocab_size, self.pad_vocab_size_to_multiple_of)

    @property
    def intermediate_size(self) -> int:
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ScratchGPT2Config":
        """A config for one of GPT-2's sizes ("small", "medium", "large", "xl") or "tiny", with any field overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})


__all__ = ["ScratchGPT2Config", "PRESETS", "DROPOUTS", "auto_map", "dropouts", "padded_vocab_size"]
