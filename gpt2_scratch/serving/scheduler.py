"""Continuous batching: one thread owns the model and decodes every running sequence together, one token each per
step; a new sequence joins the batch at the next token boundary, a finished one leaves it at once.

- `BatchDecoder` keeps one row of a preallocated KV cache per running sequence, each at its own length. New
  sequences' prompts go through the model's forward (their prefill: those that arrived together share forwards,
  right-padded) and their keys and values are copied into free rows; every later step feeds one token per row at
  that row's own position, and each row's query attends to its own filled positions only (a mask hides the rest
  of the row), so a sequence's tokens do not depend on which others share the batch. Running rows are kept in
  rows 0..b-1: when one finishes, the last row moves into its place, so that attention reads the cache through
  views, never gathering rows.
- `Scheduler` runs the loop in a thread: admit waiting sequences while rows are free, step the batch, pick each
  row's next token with its own sampling settings and random generator, hand tokens to their consumers, drop
  finished and cancelled sequences. An error fails the sequences it touched, never the thread.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..generation import NATIVE_ROWS, PreallocatedCache, check_sampling, native_decoder, pick_next_token
from ..precision import forwards_share_weight_reads

# Most padded positions one prefill forward takes: sequences that arrive together share a forward up to this many
# (their count times the longest prompt), which bounds the forward's temporary cache and activations.
PREFILL_TOKENS = 4096
PADDING_ALLOWED = 0.25  # padding in one prefill forward: at most this share of its prompts' own positions


@dataclass(eq=False)
class Sequence:
    """One stream of new tokens: its prompt, how its tokens are picked, and `deliver`, which the scheduler thread
    calls with (token, None) for every new token and then once with (None, finish_reason): "stop" (the end-of-text
    token, not delivered), "length" (max_new_tokens reached) or "error: ..."; a cancelled sequence just stops."""

    prompt_ids: list[int]
    max_new_tokens: int
    deliver: Callable[[int | None, str | None], None]
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    generator: torch.Generator | None = None
    eos_token_id: int | None = None
    cancelled: bool = False  # set by the consumer (another thread): the scheduler drops the sequence at its next step
    generated: int = field(default=0, init=False)
    last_token: int = field(default=0, init=False)

    @property
    def length(self) -> int:
        """Positions cached: the prompt and every generated token but the last, which the next step feeds in."""
        return len(self.prompt_ids) + self.generated - 1


class BatchDecoder:
    """Decoding steps of a ScratchGPT2ForCausalLM in evaluation mode for up to `rows` sequences of up to
    `max_length` positions, each row of the cache at its own length. A step runs the model's own blocks
    (Block.forward is the only statement of the maths) with a RowCache and a mask that keep the rows apart; for a
    decoding copy on our kernels, a step of up to NATIVE_ROWS rows is one call into C++ instead
    (gpt2_scratch.generation.native_decoder), over the same cache."""

    def __init__(self, model, rows: int, max_length: int):
        self.model, self.trunk = model, model.transformer
        self.native = native_decoder(model)
        config = model.config
        self.vocab_size, self.rows, self.max_length = config.vocab_size, rows, max_length
        self.shape = (rows, 2, config.n_head, max_length, config.n_embd // config.n_head)
        self.key_values: list[torch.Tensor | None] = [None] * config.n_layer  # made with the first keys' dtype

    def buffer(self, layer: int, like: torch.Tensor) -> torch.Tensor:
        # Zeros, not empty memory: a masked position still takes part in attention's products with weight 0, and
        # 0 * NaN (whatever an uninitialised buffer holds) would be NaN.
        if self.key_values[layer] is None:
            self.key_values[layer] = like.new_zeros(self.shape)
        return self.key_values[layer]

    def prefill(self, first_row: int, prompts: list[list[int]]) -> torch.Tensor:
        """Run `prompts` through the model's forward together into rows first_row, first_row + 1, ... of the cache;
        the (len(prompts), vocab) logits of each one's last position. Shorter prompts are padded on the right:
        under causal attention no position sees the ones after it, so each prompt computes what it would alone."""
        lengths = [len(prompt) for prompt in prompts]
        longest = max(lengths)
        device = self.trunk.wte.weight.device
        input_ids = torch.tensor([prompt + prompt[-1:] * (longest - len(prompt)) for prompt in prompts], device=device)
        cache = PreallocatedCache(len(self.key_values), longest)
        hidden = self.trunk(input_ids, cache, use_cache=True).last_hidden_state  # after the final LayerNorm
        for layer, cached in enumerate(cache.layers):
            key_values = self.buffer(layer, cached.key_value_buffer)
            for index, length in enumerate(lengths):
                key_values[first_row + index, :, :, :length] = cached.key_value_buffer[index, :, :, :length]
        return self.logits(hidden[torch.arange(len(prompts), device=device), torch.tensor(lengths, device=device) - 1])

    def move(self, source: int, target: int, length: int) -> None:
        """Copy the first `length` cached positions of row `source` into row `target`."""
        for key_values in self.key_values:
            if key_values is not None:
                key_values[target, :, :, :length] = key_values[source, :, :, :length]

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Rows 0..b-1 each take one token (b,) at its own position (b,); their (b, vocab) next-token logits. A
        row's query sees its own positions 0..p only: an additive mask over the longest row hides the rest."""
        if self.native is not None and tokens.shape[0] <= NATIVE_ROWS:
            return self.native.step(tokens, positions, self.key_values)
        x = (self.trunk.wte(tokens) + self.trunk.wpe(positions))[:, None]  # (b, 1, width)
        span = int(positions.max()) + 1
        hidden = torch.arange(span, device=tokens.device) > positions[:, None]
        mask = torch.zeros(hidden.shape, dtype=x.dtype, device=x.device).masked_fill_(hidden, torch.finfo(x.dtype).min)
        cache = RowCache(self, positions, span)
        for block in self.trunk.h:
            x = block(x, mask[:, None, None, :], cache)[0]
        return self.logits(self.trunk.ln_f(x[:, -1]))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(rows, vocab) next-token logits of final hidden states (rows, width), a padded vocabulary's extra
        columns dropped."""
        return self.model.lm_head(hidden)[:, : self.vocab_size]


def prefill_groups(sequences: list[Sequence]) -> list[list[Sequence]]:
    """`sequences` in groups to prefill together, shortest prompts first: a group's forward runs its count times
    its longest prompt positions, which may not pass PREFILL_TOKENS, nor its prompts' own length by more than
    PADDING_ALLOWED (a padded position costs as much as any other, and every prompt of a group waits for it)."""
    groups: list[list[Sequence]] = []
    for sequence in sorted(sequences, key=lambda s: len(s.prompt_ids)):
        group = groups[-1] + [sequence] if groups else [sequence]
        padded, prompts = len(group) * len(sequence.prompt_ids), sum(len(s.prompt_ids) for s in group)
        if len(group) > 1 and padded <= PREFILL_TOKENS and padded <= prompts * (1 + PADDING_ALLOWED):
            groups[-1] = group
        else:
            groups.append([sequence])
    return groups


class RowCache:
    """The part of transformers' Cache that attention calls, over a BatchDecoder's rows: `update` writes each row's
    new key and value at the row's own position and returns rows 0..b-1 up to the longest one's length."""

    def __init__(self, decoder: BatchDecoder, positions: torch.Tensor, span: int):
        self.decoder, self.positions, self.span = decoder, positions, span
        self.rows = torch.arange(positions.shape[0], device=positions.device)

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        key_values = self.decoder.buffer(layer_idx, key)  # key, value: (b, heads, 1, head_dim)
        key_values[self.rows, 0, :, self.positions] = key[:, :, 0]
        key_values[self.rows, 1, :, self.positions] = value[:, :, 0]
        batch = key.shape[0]
        return key_values[:batch, 0, :, : self.span], key_values[:batch, 1, :, : self.span]


class Scheduler:
    """Decodes submitted Sequences with continuous batching, at most `max_batch_size` at a time, in a thread of
    its own (`start`, `stop`). `submit` may be called from any thread."""

    def __init__(self, model, max_batch_size: int = 16):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}.")
        self.model = model
        self.context = model.config.n_positions
        self.decoder = BatchDecoder(model, max_batch_size, self.context)
        self.max_batch_size = max_batch_size
        # Prompts that arrive together share prefill forwards only where that saves work; otherwise each first
        # token comes as soon as its own prompt is through.
        self.prefill_together = forwards_share_weight_reads(model)
        self.waiting: queue.SimpleQueue[Sequence | None] = queue.SimpleQueue()
        self.running: list[Sequence] = []  # running[i] lives in row i of the cache
        self.finished = collections.Counter()  # finish reasons so far ("stop", "length", "cancelled", "error")
        self.steps = 0  # batched decoding steps so far
        self.thread: threading.Thread | None = None
        self.stopping = False

    def submit(self, sequence: Sequence) -> None:
        """Queue `sequence`; it joins the running batch at the next token boundary with a free row."""
        self.check(sequence)
        self.waiting.put(sequence)

    def check(self, sequence: Sequence) -> None:
        """Refuse (ValueError) a sequence that cannot run: bad sampling settings, or too long for the context."""
        check_sampling(sequence.max_new_tokens, sequence.temperature, sequence.top_k, sequence.top_p)
        total = len(sequence.prompt_ids) + sequence.max_new_tokens
        if not sequence.prompt_ids or total > self.context:
            raise ValueError(
                f"The prompt ({len(sequence.prompt_ids)} tokens) plus max_new_tokens ({sequence.max_new_tokens}) is "
                f"{total} positions, more than the model's {self.context}: shorten the prompt or ask for fewer tokens."
                if sequence.prompt_ids else "The prompt is empty: give at least one token to continue from."
            )

    def start(self) -> None:
        self.stopping = False
        self.thread = threading.Thread(target=self.run, name="gpt2-scratch-scheduler", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping = True
        self.waiting.put(None)  # wakes the thread if it waits for work
        if self.thread is not None:
            self.thread.join()

    @torch.inference_mode()
    def run(self) -> None:
        while not self.stopping:
            self.admit(block=not self.running)
            if self.running:
                self.guarded(self.running, self.step)

    def admit(self, block: bool) -> None:
        """Move waiting sequences into free rows (waiting for one to come when `block`) and prefill them: those that
        arrived together in as few forwards as prefill_groups allows."""
        arrived: list[Sequence] = []
        while len(self.running) + len(arrived) < self.max_batch_size:
            try:
                sequence = self.waiting.get(block=block)
            except queue.Empty:
                break
            if sequence is None:  # stop() woke us
                break
            block = False
            if sequence.cancelled:
                self.finished["cancelled"] += 1
                continue
            arrived.append(sequence)
        for group in prefill_groups(arrived) if self.prefill_together else [[sequence] for sequence in arrived]:
            self.running.extend(group)
            self.prefill(group)

    def prefill(self, group: list[Sequence]) -> None:
        """Fill the newest rows with `group`'s prompts and pick each one's first token."""
        first_row = len(self.running) - len(group)
        self.guarded(group, lambda: self.emit(group, self.decoder.prefill(first_row, [s.prompt_ids for s in group])))

    def step(self) -> None:
        tokens = torch.tensor([sequence.last_token for sequence in self.running])
        positions = torch.tensor([sequence.length for sequence in self.running])
        self.emit(list(self.running), self.decoder.step(tokens, positions))
        self.steps += 1

    def emit(self, sequences: list[Sequence], logits: torch.Tensor) -> None:
        """Pick each sequence's next token from its row of `logits`, deliver it, and retire finished sequences."""
        greedy = logits.argmax(dim=-1).tolist()  # one call for every greedy row
        for sequence, row_logits, greedy_token in zip(sequences, logits, greedy):
            if sequence.cancelled:
                self.retire(sequence, "cancelled")
                continue
            token = greedy_token if sequence.temperature == 0 else int(pick_next_token(
                row_logits[None], sequence.temperature, sequence.top_k, sequence.generator, sequence.top_p
            ))
            sequence.generated += 1
            sequence.last_token = token
            if token == sequence.eos_token_id:
                self.retire(sequence, "stop")
                continue
            sequence.deliver(token, None)
            if sequence.generated == sequence.max_new_tokens:
                self.retire(sequence, "length")

    def retire(self, sequence: Sequence, reason: str) -> None:
        """Take `sequence` out of the batch (the last row moves into its row) and tell its consumer why."""
        row = self.running.index(sequence)
        last = self.running.pop()
        if last is not sequence:
            self.running[row] = last
            # +1: in the middle of a step, `last` may have its new position cached but not yet counted
            self.decoder.move(len(self.running), row, min(last.length + 1, self.context))
        self.finished[reason.split(":")[0]] += 1
        if reason != "cancelled":
            sequence.deliver(None, reason)

    def guarded(self, sequences: list[Sequence], work: Callable[[], None]) -> None:
        """Run `work`; if it fails, fail `sequences` with the error and carry on with the others."""
        try:
            work()
        except Exception as error:  # noqa: BLE001 - the thread serves every other request: it must survive
            for sequence in list(sequences):
                if sequence in self.running:
                    self.retire(sequence, f"error: {type(error).__name__}: {error}")

    @property
    def load(self) -> dict[str, int]:
        return {"running": len(self.running), "waiting": self.waiting.qsize()}


__all__ = ["BatchDecoder", "Scheduler", "Sequence"]
