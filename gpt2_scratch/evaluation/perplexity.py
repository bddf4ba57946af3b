"""Validation loss and perplexity of a causal LM over a loader of {input_ids, labels[, attention_mask]} batches."""

from __future__ import annotations

from ..training.evaluation import evaluate_loss, perplexity


def loss_and_perplexity(model, loader, max_batches: int | None = None, accelerator=None) -> dict[str, float]:
    """Mean loss per predicted token (every token weighs the same, however the batches are padded) and its
    exponential, the perplexity."""
    loss = evaluate_loss(model, loader, max_batches=max_batches, accelerator=accelerator)
    return {"loss": loss, "perplexity": perplexity(loss)}
