"""Fast, streaming text generation: a lean decoding loop over a preallocated KV cache.

transformers' `generate()` is general (beam search, dozens of logits processors, stopping criteria, cache
bookkeeping) and pays for that generality on every token: a few milliseconds per step on a CPU, a large share
of a small model's decoding time. This module decodes with the least per-step work:

- `PreallocatedCache` allocates each layer's keys and values once, for the whole generation, and writes every
  new step into place; attention reads a view of the filled part, so no step copies or reallocates the cache
  and no attention mask is needed (a single new query may look at everything before it).
- `OneTokenDecoder` runs the prompt through the model into that cache, then every later step, one token per
  row, through the model's blocks, skipping what the trunk's forward does on every call (masks and position ids,
  output objects). `NativeDecoder` runs those steps in one call into C++ each (gpt2_scratch.kernels' Decoder),
  for a decoding copy of gpt2_scratch.precision whose every matmul is on our kernels.
- `generate_tokens` runs the loop and yields each new token as it comes; greedy decoding gives the same tokens
  as `model.generate(do_sample=False)`. It drives any transformers causal LM that takes a KV cache
  (ours through `OneTokenDecoder`, others, such as transformers' own GPT-2, through their forward).
- `stream_generate` wraps it for people: a prompt in, text pieces out as soon as they are whole characters
  (`stream_text` does that last part for any stream of token ids).

Batch-1 decoding on a CPU reads every weight once per token, so it is bound by memory bandwidth; the other
levers are the bytes per weight and the kernel that reads them, see `gpt2_scratch.precision.decoding_model`.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Iterator

import torch
from transformers.cache_utils import Cache, DynamicLayer

from . import kernels
from .modeling.modeling_scratch_gpt2 import ScratchGPT2ForCausalLM


class PreallocatedLayer(DynamicLayer):
    """One layer's keys and values in a buffer sized for the whole generation, filled in place.

    It behaves like transformers' DynamicLayer (what the model and the mask builder see is the filled prefix,
    `self.keys` / `self.values`), but appending writes into the buffer instead of concatenating a new tensor.
    Keys and values share one buffer, (batch, 2, heads, max_length, head_dim), so that a one-token step stores
    both with a single copy.
    """

    def __init__(self, max_length: int):
        super().__init__()
        self.max_length = max_length

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        batch, heads, _, head_dim = key_states.shape
        self.dtype, self.device = key_states.dtype, key_states.device
        self.key_value_buffer = key_states.new_empty(batch, 2, heads, self.max_length, head_dim)
        self.key_buffer, self.value_buffer = self.key_value_buffer[:, 0], self.key_value_buffer[:, 1]
        self.keys, self.values = self.key_buffer[:, :, :0], self.value_buffer[:, :, :0]
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start = self.keys.shape[-2]
        end = start + key_states.shape[-2]
        self.check_room(end)
        self.key_buffer[:, :, start:end] = key_states
        self.value_buffer[:, :, start:end] = value_states
        self.filled_to(end)
        return self.keys, self.values

    def filled_to(self, end: int) -> None:
        """Take positions up to `end` as filled (written into the buffer in place)."""
        self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]

    def get_max_length(self) -> int:
        return self.max_length

    def check_room(self, end: int) -> None:
        """Fail clearly when positions up to `end` would not fit."""
        if end > self.max_length:
            raise ValueError(
                f"The preallocated KV cache holds {self.max_length} positions but step {end} was asked for; "
                "make the cache longer (prompt length + max_new_tokens)."
            )


class PreallocatedCache(Cache):
    """A KV cache of `num_layers` PreallocatedLayers, each holding up to `max_length` positions."""

    def __init__(self, num_layers: int, max_length: int):
        super().__init__(layers=[PreallocatedLayer(max_length) for _ in range(num_layers)])


def pick_next_token(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
    top_p: float | None = None,
) -> torch.Tensor:
    """The next token of each row from its last-position logits (batch, vocab): the most likely one when
    temperature is 0 (greedy), otherwise a sample from softmax(logits / temperature) over the top_k most likely,
    and of those (renormalised) over the fewest whose probabilities add up to top_p (nucleus sampling), in
    transformers' order: temperature, top-k, top-p."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth_largest = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if top_p is not None and top_p < 1:
        probabilities, order = torch.softmax(logits, dim=-1).sort(dim=-1, descending=True)
        # a token is dropped when the likelier tokens before it already reach top_p (the likeliest always stays)
        dropped = probabilities.cumsum(dim=-1) - probabilities >= top_p
        logits = logits.masked_fill(dropped.scatter(-1, order, dropped), float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(-1)


def check_sampling(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None = None) -> None:
    """Refuse settings that cannot sample: no new token, a temperature that is negative, NaN or infinite (NaN would
    reach torch.multinomial as NaN probabilities), a top_k that is not a positive integer, a top_p outside (0, 1]."""
    if not isinstance(max_new_tokens, numbers.Integral) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
    if not (isinstance(temperature, numbers.Real) and math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be 0 (greedy) or a positive finite number, got {temperature}.")
    if top_k is not None and (not isinstance(top_k, numbers.Integral) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer (or none: all tokens), got {top_k}.")
    if top_p is not None and not (isinstance(top_p, numbers.Real) and 0 < top_p <= 1):
        raise ValueError(f"top_p must lie in (0, 1] (1: all tokens), got {top_p}.")


def check_generation_arguments(model, input_ids: torch.Tensor, max_new_tokens: int, temperature: float, top_k):
    if input_ids.ndim != 2 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must be a (batch, time) tensor with at least one token, got shape {tuple(input_ids.shape)}.")
    check_sampling(max_new_tokens, temperature, top_k)
    limit, prompt_length = getattr(model.config, "n_positions", None), input_ids.shape[1]
    if limit is not None and prompt_length >= limit:
        raise ValueError(
            f"The prompt has {prompt_length} tokens, which leaves no room in the model's context of {limit} tokens: "
            f"shorten the prompt to fewer than {limit} tokens."
        )
    if limit is not None and prompt_length + max_new_tokens > limit:
        raise ValueError(
            f"The prompt ({prompt_length} tokens) plus max_new_tokens ({max_new_tokens}) is "
            f"{prompt_length + max_new_tokens} positions, more than the model's {limit} (config.n_positions): "
            "shorten the prompt or ask for fewer tokens."
        )


class ForwardStep:
    """One decoding step of any transformers causal LM: its forward over the cache, last position's logits."""

    def __init__(self, model, cache: PreallocatedCache):
        self.model, self.cache = model, cache

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(batch, time) new tokens -> (batch, vocab) logits of the last one; the cache grows by `time`."""
        # The cache goes by position: transformers 5.24 renamed its keyword from past_key_values to cache.
        output = self.model(input_ids, self.cache, use_cache=True, logits_to_keep=1)
        return output.logits[:, -1]


class OneTokenDecoder(ForwardStep):
    """Decoding steps of a ScratchGPT2ForCausalLM in evaluation mode: the prompt goes through the model's forward
    like any other, and every later step, one token per row, through the model's own blocks, called one after the
    other: Block.forward is the only statement of the maths.

    What a step skips is the trunk's per-call work, which a batch-1 step on a CPU (bound by reading the weights)
    still pays on every token: masks and position ids (a single new query may look at every cached position, and
    its position is the cache's length), hidden-state and attention bookkeeping, output objects. The new key and
    value are written into the preallocated cache in place.
    """

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        p = self.cache.get_seq_length()  # positions cached so far: the new token's position
        if p == 0 or input_ids.shape[1] > 1:
            return super().__call__(input_ids)
        self.cache.layers[0].check_room(p + 1)
        trunk = self.model.transformer
        x = trunk.wte(input_ids) + trunk.wpe.weight[p]  # (batch, 1, width)
        for block in trunk.h:
            x = block(x, None, self.cache)[0]
        return self.model.lm_head(trunk.ln_f(x[:, -1]))[:, : self.model.config.vocab_size]


# One-token steps of up to this many rows go through NativeDecoder; over more, our kernels are bound by their
# arithmetic and the per-operator costs it saves no longer show (float32 leaves our kernel beyond 8 rows).
NATIVE_ROWS = 8


class NativeDecoder(OneTokenDecoder):
    """OneTokenDecoder whose one-token steps of up to NATIVE_ROWS rows are each one call into C++:
    gpt2_scratch.kernels' Decoder does the blocks' sums over the same weights and KV cache, for a decoding copy
    (gpt2_scratch.precision) whose every matmul runs one of our kernels.

    A step is then the matmuls and little else: between matmuls that stream tens of megabytes of weights, each of
    torch's small operators runs cold (its code and data evicted), which cost about 2 ms a token of GPT-2 small,
    next to 7.4 ms of float16 matmuls (docs/performance.md). The prompt, and steps of more rows (compute-bound,
    where per-operator costs no longer show), go through the model's blocks.
    """

    def __init__(self, model, cache: PreallocatedCache, decoder):
        super().__init__(model, cache)
        self.decoder = decoder

    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        p = self.cache.get_seq_length()
        if p == 0 or input_ids.shape[1] > 1 or input_ids.shape[0] > NATIVE_ROWS:
            return super().__call__(input_ids)
        self.cache.layers[0].check_room(p + 1)
        buffers = [layer.key_value_buffer for layer in self.cache.layers]
        positions = torch.full((input_ids.shape[0],), p, dtype=torch.long, device=input_ids.device)
        logits = self.decoder.step(input_ids[:, 0].contiguous(), positions, buffers)
        for layer in self.cache.layers:
            layer.filled_to(p + 1)
        return logits


def native_decoder(model):
    """`model`'s weights as a gpt2_scratch.kernels Decoder, or None where one is not to be had: a matmul off our
    kernels (anything but a decoding copy's FloatLinear or Int8Linear on them), the exact GELU (the Decoder has
    the tanh form), a model off the CPU."""
    trunk = model.transformer
    blocks_linears = [(b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc, b.mlp.c_proj) for b in trunk.h]
    linears = [model.lm_head, *itertools.chain.from_iterable(blocks_linears)]
    if not all(getattr(linear, "native_weights", lambda: None)() for linear in linears):
        return None
    if model.config.activation_function == "gelu" or model.device.type != "cpu" or kernels.decoder() is None:
        return None
    native = kernels.compiled()

    def weights(linear):
        return native.Weights(*linear.native_weights())

    def norm(layer_norm):
        return native.Norm(layer_norm.weight, layer_norm.bias, layer_norm.eps)

    blocks = [
        native.Block(norm(b.ln_1), weights(b.attn.c_attn), weights(b.attn.c_proj), norm(b.ln_2), weights(b.mlp.c_fc), weights(b.mlp.c_proj))
        for b in trunk.h
    ]
    config = model.config
    return native.Decoder(trunk.wte.weight, trunk.wpe.weight, blocks, norm(trunk.ln_f), weights(model.lm_head), config.n_head, config.vocab_size)


def decoding_steps(model, cache: PreallocatedCache) -> ForwardStep:
    """The fastest way to step `model` over `cache`: for our causal LM in evaluation mode (its steps skip dropout),
    NativeDecoder where its weights are on our kernels, else OneTokenDecoder; the model's own forward for anything
    else."""
    if isinstance(model, ScratchGPT2ForCausalLM) and not model.training:
        decoder = native_decoder(model)
        return OneTokenDecoder(model, cache) if decoder is None else NativeDecoder(model, cache, decoder)
    return ForwardStep(model, cache)


@torch.inference_mode()
def generate_tokens(
    model,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    eos_token_id: int | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the next token of every row, (batch,) tensors, one step at a time, up to max_new_tokens steps.

    input_ids: (batch, time) prompts of equal length (no padding). Greedy when temperature is 0. Rows that
    produced `eos_token_id` keep producing it; generation stops early once every row has.
    """
    check_generation_arguments(model, input_ids, max_new_tokens, temperature, top_k)
    cache = PreallocatedCache(model.config.num_hidden_layers, input_ids.shape[1] + max_new_tokens)
    step = decoding_steps(model, cache)
    logits = step(input_ids)
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    for new_token in range(max_new_tokens):
        next_tokens = pick_next_token(logits, temperature, top_k, generator)
        if eos_token_id is not None:
            next_tokens = next_tokens.masked_fill(finished, eos_token_id)
            finished |= next_tokens == eos_token_id
        yield next_tokens
        if new_token == max_new_tokens - 1 or (eos_token_id is not None and bool(finished.all())):
            return
        logits = step(next_tokens[:, None])


class TextPieces:
    """Token ids added one by one, turned into text pieces as soon as they decode to whole characters (a token may
    hold part of a multi-byte character, whose text waits for the tokens that complete it)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.tokens, self.text = tokenizer, [], ""

    def add(self, token: int) -> str:
        """The text `token` completes ("" while a character is still incomplete)."""
        self.tokens.append(token)
        text = self.tokenizer.decode(self.tokens, clean_up_tokenization_spaces=False)
        if text.endswith("\ufffd") or len(text) == len(self.text):
            return ""
        piece, self.text = text[len(self.text) :], text
        return piece

    def rest(self) -> str:
        """What is left once no token will follow: a character left incomplete at the very end, if any."""
        text = self.tokenizer.decode(self.tokens, clean_up_tokenization_spaces=False)
        piece, self.text = text[len(self.text) :], text
        return piece


def stream_text(tokens: Iterable[int], tokenizer) -> Iterator[str]:
    """Turn token ids arriving one by one into text pieces, each yielded as soon as it decodes to whole characters."""
    pieces = TextPieces(tokenizer)
    for token in tokens:
        if piece := pieces.add(token):
            yield piece
    if piece := pieces.rest():
        yield piece


def stream_generate(
    model,
    tokenizer,
    prompt: str,
    max_new_tokens: int = 50,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int | None = None,
    stop_at_eos: bool = True,
) -> Iterator[str]:
    """Continue `prompt` with `model`, yielding the new text piece by piece as it is generated.

    Greedy when temperature is 0, else sampling from the top_k likeliest tokens (all when None); `seed` makes
    sampling repeatable. Stops after max_new_tokens, at the end of the model's context, or, with stop_at_eos, at
    the end-of-text token (not yielded).
    """
    if not prompt:
        raise ValueError("The prompt is empty: give at least one character to continue from.")
    device = next(model.parameters()).device
    input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"].to(device)
    room = model.config.n_positions - input_ids.shape[1]
    if isinstance(max_new_tokens, numbers.Integral) and room >= 1:  # what fits; generate_tokens refuses the rest
        max_new_tokens = min(max_new_tokens, room)
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    eos_token_id = tokenizer.eos_token_id if stop_at_eos else None
    tokens = generate_tokens(
        model,
        input_ids,
        max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        eos_token_id=eos_token_id,
        generator=generator,
    )
    new_tokens = (int(token) for token in tokens)
    yield from stream_text(itertools.takewhile(lambda token: token != eos_token_id, new_tokens), tokenizer)


__all__ = [
    "ForwardStep",
    "NativeDecoder",
    "OneTokenDecoder",
    "PreallocatedCache",
    "PreallocatedLayer",
    "TextPieces",
    "decoding_steps",
    "generate_tokens",
    "pick_next_token",
    "stream_generate",
    "stream_text",
]
