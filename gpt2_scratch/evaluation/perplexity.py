"""Validation loss and perplexity of a causal LM over a loader of {input_ids, labels[, attention_mask]} batches."""

from __future__ import annotations

from pathlib import Path

from ..training.measurements import evaluate_loss, perplexity


def loss_and_perplexity(model, loader, max_batches: int | None = None, accelerator=None) -> dict[str, float]:
    """Mean loss per predicted token (every token weighs the same, however the batches are padded) and its
    exponential, the perplexity."""
    loss = evaluate_loss(model, loader, max_batches=max_batches, accelerator=accelerator)
    return {"loss": loss, "perplexity": perplexity(loss)}


DEFAULT_TEXT_WINDOW = 256  # tokens per window of `text_loss`, unless the model has fewer positions


def text_loss(model, tokenizer, text_file, context_length: int | None = None, batch_size: int = 8) -> dict:
    """Loss per token and perplexity of `model` on a plain-text file, cut into windows of `context_length` tokens
    (default: DEFAULT_TEXT_WINDOW, or the model's n_positions when shorter; a longer one is refused)."""
    import numpy as np

    from ..data.order import make_loader
    from ..data.windows import TokenWindows

    positions = model.config.n_positions
    if context_length is not None and context_length > positions:
        raise ValueError(
            f"--context-length {context_length} is longer than the {positions} positions of the model "
            f"(n_positions in its config.json): pass --context-length {positions} or less"
        )
    length = context_length or min(DEFAULT_TEXT_WINDOW, positions)
    tokens = np.array(tokenizer.encode(Path(text_file).read_text(encoding="utf-8")), dtype=np.int64)
    windows = TokenWindows(tokens, length)
    result = loss_and_perplexity(model, make_loader(windows, batch_size, shuffle=False))
    return {**result, "data": str(text_file), "windows": len(windows), "context_length": length}
