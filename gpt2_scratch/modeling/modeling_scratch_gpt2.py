"""GPT-2 written from scratch, as a transformers model.

Read it top to bottom: the layers (LayerNorm, GELU, attention, MLP, block) come first, each a short class with its
math in plain sight; then the models that stack them (the base model, the causal-LM head, the classification head).

This file imports only torch, transformers and its sibling configuration file, because it is what a Hub repository
ships as remote code (`trust_remote_code=True`) for users who do not have the gpt2_scratch package installed.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutputWithPast,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .configuration_scratch_gpt2 import ScratchGPT2Config

# transformers 5.24 renamed the KV cache from `past_key_values` to `cache`, in forward arguments and in model outputs.
# A checkpoint on the Hub keeps this file forever, so it speaks both: forwards take either name, and outputs carry
# the cache under whichever name the installed transformers declares.
CACHE_FIELD = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"

# ---------------------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------------------


class LayerNorm(nn.Module):
    """Normalise each vector to zero mean and unit variance, then scale and shift it with learned weights:

        y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias      (var is the biased variance)
    """

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch's fused kernel computes exactly the formula above, in one pass instead of five.
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class GELU(nn.Module):
    """Gaussian error linear unit. GPT-2 uses the tanh approximation:

        gelu(x) = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))

    `approximate="none"` gives the exact form, 0.5 * x * (1 + erf(x / sqrt(2))).
    """

    def __init__(self, approximate: str = "tanh"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch's fused kernel evaluates the same formula without materialising its five intermediate tensors.
        return F.gelu(x, approximate=self.approximate)


def eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention spelt out, returning the attention weights too (for attention maps).

    query, key, value: (batch, heads, time, head_dim). attention_mask: additive, 0 where a query may look and the
    dtype's minimum where it may not (causal and padding masking combined), shape (batch, 1, q_time, kv_time).
    """
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value)
    return output.transpose(1, 2), weights  # output as (batch, time, heads, head_dim)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with ONE fused projection producing queries, keys and values (Q, K, V order,
    like OpenAI's c_attn), followed by an output projection back into the residual stream."""

    def __init__(self, config: ScratchGPT2Config, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx  # which slot of the KV cache is ours
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.scaling = self.head_dim**-0.5
        self.is_causal = True  # read by transformers' SDPA / flash attention functions
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.qkv_bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.c_proj.is_residual_projection = True  # initialised smaller: see _init_weights
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, time, width = hidden_states.shape
        # (batch, time, 3 * width) -> three (batch, heads, time, head_dim) tensors
        qkv = self.c_attn(hidden_states).view(batch, time, 3, self.n_head, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)

        if cache is not None:
            # The cache appends this step's keys and values and hands back all of them so far.
            key, value = cache.update(key, value, self.layer_idx)

        # "eager" is ours (above); "sdpa", "flash_attention_2", "flex_attention"... come from transformers.
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention)
        output, weights = attention(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.config.attn_pdrop if self.training else 0.0,
            **kwargs,
        )
        output = output.reshape(batch, time, width)
        return self.resid_dropout(self.c_proj(output)), weights


class MLP(nn.Module):
    """Position-wise feed-forward network: widen (usually 4x), GELU, project back, dropout."""

    def __init__(self, config: ScratchGPT2Config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.intermediate_size)
        self.act = GELU(approximate="none" if config.activation_function == "gelu" else "tanh")
        self.c_proj = nn.Linear(config.intermediate_size, config.n_embd)
        self.c_proj.is_residual_projection = True  # initialised smaller: see _init_weights
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(GradientCheckpointingLayer):
    """One transformer block, pre-LayerNorm: x + attention(ln_1(x)), then x + mlp(ln_2(x)).

    GradientCheckpointingLayer recomputes the block's activations in the backward pass when gradient
    checkpointing is on, trading compute for memory.
    """

    def __init__(self, config: ScratchGPT2Config, layer_idx: int):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attn_output, attn_weights = self.attn(self.ln_1(hidden_states), attention_mask, cache, **kwargs)
        hidden_states = hidden_states + attn_output
        hidden_states = hidden_states + self.mlp(self.ln_2(hidden_states))
        return hidden_states, attn_weights


# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------


class ScratchGPT2PreTrainedModel(PreTrainedModel):
    """What every ScratchGPT2 model shares: its config class, weight initialisation and capabilities."""

    config_class = ScratchGPT2Config
    base_model_prefix = "transformer"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Block"]
    _skip_keys_device_placement = ["cache", "past_key_values"]
    _supports_sdpa = True  # without it transformers silently falls back to eager attention
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    # Buffers of transformers' GPT-2 that older checkpoints still carry; the causal mask is built on the fly here.
    _keys_to_ignore_on_load_unexpected = [r"attn\.bias", r"attn\.masked_bias"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module):
        """GPT-2's initialisation: normal(0, 0.02) weights, zero biases, unit LayerNorm scales, and residual output
        projections scaled down by 1/sqrt(2 * n_layer), because each block adds two branches to the residual stream."""
        std = self.config.initializer_range
        if getattr(module, "is_residual_projection", False):
            std = std / math.sqrt(2 * self.config.n_layer)
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)

    def wants_dict(self, return_dict: bool | None) -> bool:
        """Whether forward returns its ModelOutput (the default) or, with return_dict=False, a plain tuple."""
        return return_dict if return_dict is not None else self.config.return_dict


def position_ids_from_attention_mask(attention_mask: torch.Tensor, query_length: int) -> torch.Tensor:
    """Positions that count only attended tokens, so a left-padded sequence starts at position 0 like an unpadded one.

    attention_mask covers the cached tokens and the new ones: (batch, past + query_length). Padding gets position 0
    (any valid index: it is masked out anyway).
    """
    positions = attention_mask.long().cumsum(-1) - 1
    positions = positions.masked_fill(attention_mask == 0, 0)
    return positions[:, -query_length:]


def check_positions(position_ids: torch.Tensor, n_positions: int):
    """Refuse positions past the learned position embeddings, with a message that says how to fix it.

    The positions are checked rather than the row's length, so that packed rows whose positions restart at every
    document (padding-free training) may be longer than n_positions, as in transformers' GPT-2."""
    last = int(position_ids.max())
    if last >= n_positions:
        raise ValueError(
            f"The input reaches position {last} but this model has position embeddings for {n_positions} positions "
            f"(config.n_positions): each sequence, cached tokens included, can be at most {n_positions} tokens long. "
            "Truncate the input, for example with the tokenizer's truncation=True and max_length, or keep only the "
            "last tokens."
        )


class ScratchGPT2Model(ScratchGPT2PreTrainedModel):
    """The GPT-2 trunk: token + position embeddings, n_layer blocks, a final LayerNorm. Returns hidden states."""

    def __init__(self, config: ScratchGPT2Config):
        super().__init__(config)
        self.wte = nn.Embedding(config.padded_vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([Block(config, layer_idx=i) for i in range(config.n_layer)])
        self.ln_f = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def set_input_embeddings(self, new_embeddings: nn.Embedding):
        self.wte = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast | tuple:
        r"""token_type_ids: optional segment ids, embedded with the token embedding itself (as GPT-2 does: it has no
        table of its own) and added to the input.
        past_key_values: the cache's name before transformers 5.24; same as `cache`."""
        cache = cache if cache is not None else past_key_values
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        if self.gradient_checkpointing and self.training:
            use_cache = False  # recomputed blocks would write the cache twice
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        if output_attentions and self.config._attn_implementation != "eager":
            raise ValueError(
                f"output_attentions=True needs the eager attention, which returns the weights; this model uses "
                f"{self.config._attn_implementation!r}. Load it with attn_implementation='eager' or call "
                "model.set_attn_implementation('eager')."
            )

        if inputs_embeds is None:
            inputs_embeds = self.wte(input_ids)
        time = inputs_embeds.shape[1]

        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        if position_ids is None:
            if attention_mask is not None and attention_mask.ndim == 2:
                position_ids = position_ids_from_attention_mask(attention_mask, time)
            else:
                past_length = cache.get_seq_length() if cache is not None else 0
                position_ids = torch.arange(past_length, past_length + time, device=inputs_embeds.device)[None]
        if not torch.compiler.is_compiling():  # a data-dependent check would break a full-graph compile
            check_positions(position_ids, self.config.n_positions)

        hidden_states = inputs_embeds + self.wpe(position_ids)
        if token_type_ids is not None:
            hidden_states = hidden_states + self.wte(token_type_ids)
        hidden_states = self.drop(hidden_states)

        # One mask for all blocks, in the format the attention implementation wants (additive floats for eager,
        # booleans or None for SDPA, which then uses its built-in causal mask), combining causality and padding.
        # Position ids that restart inside a row (packed documents) keep each document to itself.
        # The cache goes by position: its keyword is `past_key_values` before transformers 5.24, `cache` from it.
        causal_mask = create_causal_mask(self.config, inputs_embeds, attention_mask, cache, position_ids)

        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for block in self.h:
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            hidden_states, attn_weights = block(hidden_states, causal_mask, cache, **kwargs)
            if output_attentions:
                all_attentions += (attn_weights,)
        hidden_states = self.ln_f(hidden_states)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)

        output = BaseModelOutputWithPast(
            last_hidden_state=hidden_states,
            hidden_states=all_hidden_states,
            attentions=all_attentions,
            **{CACHE_FIELD: cache if use_cache else None},
        )
        return output if self.wants_dict(return_dict) else output.to_tuple()


class ScratchGPT2ForCausalLM(ScratchGPT2PreTrainedModel, GenerationMixin):
    """GPT-2 with its language-modelling head: a linear map from hidden states to vocabulary logits, sharing its
    weight with the token embedding."""

    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: ScratchGPT2Config):
        super().__init__(config)
        self.transformer = ScratchGPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.padded_vocab_size, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast | tuple:
        r"""labels: token ids to predict, shifted inside (so labels = input_ids works); -100 marks positions to ignore.
        logits_to_keep: compute logits for the last N positions only (0 = all), or for the given position indices;
        generation needs just the last one, which saves a (time x vocab) matmul.
        Extra keyword arguments reach the loss: Trainer passes `num_items_in_batch` so that the loss is summed over
        the tokens of all accumulated micro-batches and divided once, making gradient accumulation exact."""
        outputs = self.transformer(
            input_ids,
            cache=cache if cache is not None else past_key_values,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        # With a padded vocabulary (config.pad_vocab_size_to_multiple_of) the extra columns are dropped.
        logits = self.lm_head(hidden_states[:, keep, :])[..., : self.config.vocab_size]

        loss = None
        if labels is not None:
            loss = self.loss_function(logits, labels, vocab_size=self.config.vocab_size, **kwargs)

        output = CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **{CACHE_FIELD: getattr(outputs, CACHE_FIELD)},
        )
        return output if self.wants_dict(return_dict) else output.to_tuple()


class ScratchGPT2ForSequenceClassification(ScratchGPT2PreTrainedModel):
    """GPT-2 with a classification head on the last real token of each sequence (the only token that has seen the
    whole text, because attention is causal)."""

    def __init__(self, config: ScratchGPT2Config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = ScratchGPT2Model(config)
        self.score = nn.Linear(config.n_embd, config.num_labels, bias=False)
        self.post_init()

    def last_token_index(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, batch: int):
        """Index of the last real token of each row, under left or right padding.

        With an attention mask it is the rightmost attended position. Without one, it is the rightmost token that
        is not the pad token (as transformers' GPT-2 does); a single unpadded row needs neither.
        """
        if attention_mask is not None and attention_mask.ndim == 2:
            positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
            return (positions * attention_mask.bool()).argmax(-1)
        if self.config.pad_token_id is None:
            if batch > 1:
                raise ValueError(
                    "Cannot find the last token of each row of a batch without an attention_mask or a pad token: "
                    "pass the tokenizer's attention_mask, or set model.config.pad_token_id (e.g. to the tokenizer's "
                    "pad_token_id; GPT-2 commonly pads with <|endoftext|>, id 50256)."
                )
            return torch.full((batch,), -1, dtype=torch.long)
        if input_ids is None:
            raise ValueError("With inputs_embeds, pass an attention_mask so that the last real token can be found.")
        positions = torch.arange(input_ids.shape[-1], device=input_ids.device)
        return (positions * (input_ids != self.config.pad_token_id)).argmax(-1)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> SequenceClassifierOutputWithPast | tuple:
        r"""labels: class ids (single-label), floats (regression when num_labels == 1) or multi-hot floats
        (multi-label); config.problem_type fixes the choice, otherwise it is inferred as transformers does.

        Rows longer than config.classification_max_length keep their first tokens (the classifier was trained on
        those)."""
        input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds = self.keep_trained_length(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds
        )
        outputs = self.transformer(
            input_ids,
            cache=cache if cache is not None else past_key_values,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        batch = hidden_states.shape[0]
        last = self.last_token_index(input_ids, attention_mask, batch).to(hidden_states.device)
        logits = self.score(hidden_states[torch.arange(batch, device=hidden_states.device), last])

        loss = None
        if labels is not None:
            # transformers' loss for the task (regression, single- or multi-label, by config.problem_type)
            loss = self.loss_function(logits=logits, labels=labels, pooled_logits=logits, config=self.config)

        output = SequenceClassifierOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            **{CACHE_FIELD: getattr(outputs, CACHE_FIELD)},
        )
        return output if self.wants_dict(return_dict) else output.to_tuple()

    def keep_trained_length(self, input_ids, attention_mask, *per_position):
        """The inputs cut to their first config.classification_max_length positions. That is each text's beginning
        when rows are padded on the right (as our tokenizers pad); left-padded rows would lose text, so they are
        refused."""
        limit = self.config.classification_max_length
        length = (input_ids if input_ids is not None else per_position[-1]).shape[1]
        if limit is None or length <= limit:
            return input_ids, attention_mask, *per_position
        if attention_mask is not None and attention_mask.ndim == 2 and not attention_mask[:, 0].all():
            raise ValueError(
                f"Inputs of {length} tokens are longer than the {limit} this classifier was trained on, and some rows "
                "are padded on the left, so cutting them to their first tokens would drop text: pad on the right "
                f"(tokenizer.padding_side = 'right') or truncate to {limit} tokens before calling the model."
            )
        inputs = (input_ids, attention_mask, *per_position)
        return tuple(None if tensor is None else tensor[:, :limit] for tensor in inputs)



__all__ = [
    "ScratchGPT2PreTrainedModel",
    "ScratchGPT2Model",
    "ScratchGPT2ForCausalLM",
    "ScratchGPT2ForSequenceClassification",
]


# save_pretrained copies this file and the configuration file next to the weights, and config.json carries the
# config's `auto_map`, so that the checkpoint loads with trust_remote_code=True where gpt2_scratch is not installed.
ScratchGPT2Config.register_for_auto_class()
ScratchGPT2Model.register_for_auto_class("AutoModel")
ScratchGPT2ForCausalLM.register_for_auto_class("AutoModelForCausalLM")
ScratchGPT2ForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
