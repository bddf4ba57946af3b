"""What the loop measures: loss over a loader, a sampled continuation, and the model FLOPs utilisation."""

from __future__ import annotations

import math

import torch

IGNORE_INDEX = -100  # the label value cross-entropy skips

# Dense bf16 peak FLOP/s of common accelerators, matched against torch.cuda.get_device_name().
PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 125e12,
    "V100": 125e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
}


def label_count(labels: torch.Tensor) -> torch.Tensor:
    """How many tokens a batch predicts: the model shifts labels by one, so the first position predicts nothing."""
    return (labels[..., 1:] != IGNORE_INDEX).sum()


def rng_untouched():
    """A context in which random draws (dropout in sampling, data-loader seeds) leave the global RNG as it was, so
    that evaluating or sampling never changes what training does next."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    return torch.random.fork_rng(devices=devices)


@torch.no_grad()
def evaluate_loss(model, loader, max_batches: int | None = None, accelerator=None) -> float:
    """Mean next-token loss per predicted token over the first `max_batches` batches of `loader` (all if None),
    summed over every process when an Accelerate `accelerator` is given. The model is put in eval mode (no
    dropout) and back."""
    was_training = model.training
    model.eval()
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    with rng_untouched():
        for index, batch in enumerate(loader):
            if max_batches is not None and index >= max_batches:
                break
            batch = {key: value.to(device) for key, value in batch.items()}
            loss = model(**batch).loss
            count = label_count(batch["labels"])
            totals += torch.stack([loss.double() * count, count.double()])
    model.train(was_training)
    if accelerator is not None:
        totals = accelerator.reduce(totals, reduction="sum")
    if totals[1] == 0:
        raise ValueError("the evaluation loader yielded no predicted tokens: is it empty, or are all labels -100?")
    return (totals[0] / totals[1]).item()


@torch.no_grad()
def sample_continuation(model, tokenizer, prompt: str, max_new_tokens: int, top_k: int | None, temperature: float) -> str:
    """The prompt continued by sampling (top-k, then temperature), as text without the prompt."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    input_ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
    room = model.config.n_positions - input_ids.shape[1]
    sampling = dict(do_sample=True, top_k=top_k or 0, temperature=temperature) if temperature > 0 else dict(do_sample=False)
    with rng_untouched():
        output = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max(1, min(max_new_tokens, room)),
            pad_token_id=tokenizer.eos_token_id,
            **sampling,
        )
    model.train(was_training)
    return tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=False)


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 700.0))  # exp overflows a float past ~709


def flops_per_token(config, sequence_length: int) -> float:
    """Training FLOPs per token: 6 per parameter (forward + backward) plus attention's 12 * layers * width * time
    (PaLM's estimate). Position embeddings are lookups, not matrix products, so they are not counted."""
    d, layers, vocab = config.n_embd, config.n_layer, config.vocab_size
    per_layer = 4 * d * d + 2 * d * config.intermediate_size  # attention projections + MLP weights
    params = layers * per_layer + vocab * d
    return 6 * params + 12 * layers * d * sequence_length


def device_peak_flops(device: torch.device) -> float | None:
    """bf16 dense peak of the GPU, if its name is in PEAK_BF16_FLOPS; None elsewhere (CPUs have no fixed peak)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)
