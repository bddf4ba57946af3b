"""The figures people look at: loss curves, next-token probabilities at several temperatures, attention maps.

Each function writes one PNG (a matplotlib Figure without pyplot: no display, no backend switch) and returns its path.
"""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: drawing here leaves the caller's backend alone
import torch  # noqa: E402

from ..staging import staged_file  # noqa: E402


def read_metrics(log_path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]


def plot_losses(log_path: str | Path, out_path: str | Path) -> Path:
    """loss.png: train and validation loss against epochs, tokens seen on a second x axis (as in the course), and
    both perplexities on a log scale beside them."""
    rows = read_metrics(log_path)
    if not rows:
        raise ValueError(f"{log_path} holds no evaluation yet: nothing to plot.")
    epochs = [row["epoch"] for row in rows]
    fig = Figure(figsize=(11, 4))
    loss_ax, ppl_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [row["train_loss"] for row in rows], label="train loss")
    loss_ax.plot(epochs, [row["val_loss"] for row in rows], linestyle="-.", label="validation loss")
    loss_ax.set_xlabel("epochs")
    loss_ax.set_ylabel("loss")
    loss_ax.legend(loc="upper right")
    tokens_ax = loss_ax.twiny()  # same curve against tokens seen, drawn invisibly to align the second axis
    tokens_ax.plot([row["tokens_seen"] for row in rows], [row["train_loss"] for row in rows], alpha=0)
    tokens_ax.set_xlabel("tokens seen")

    ppl_ax.plot(epochs, [row["train_perplexity"] for row in rows], label="train perplexity")
    ppl_ax.plot(epochs, [row["val_perplexity"] for row in rows], linestyle="-.", label="validation perplexity")
    ppl_ax.set_yscale("log")
    ppl_ax.set_xlabel("epochs")
    ppl_ax.set_ylabel("perplexity")
    ppl_ax.legend(loc="upper right")
    fig.tight_layout()
    return _save(fig, out_path)


@torch.no_grad()
def plot_temperature(model, tokenizer, prompt: str, out_path: str | Path, temperatures=(0.1, 1.0, 5.0), top: int = 12) -> Path:
    """temperature.png: the probabilities of the prompt's most likely next tokens, after dividing the logits by
    each temperature (low sharpens the distribution, high flattens it)."""
    model.eval()
    device = next(model.parameters()).device
    input_ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
    logits = model(input_ids).logits[0, -1].float()
    token_ids = torch.topk(logits, top).indices
    labels = [repr(tokenizer.decode([int(i)])) for i in token_ids]
    fig = Figure(figsize=(max(8, top * 0.8), 4))
    ax = fig.subplots()
    width = 0.8 / len(temperatures)
    for index, temperature in enumerate(temperatures):
        probabilities = torch.softmax(logits / temperature, dim=-1)[token_ids]
        positions = [x + (index - (len(temperatures) - 1) / 2) * width for x in range(top)]
        ax.bar(positions, probabilities.cpu().numpy(), width, label=f"temperature {temperature}")
    ax.set_xticks(range(top))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_ylabel("probability")
    ax.set_title(f"next token after {prompt!r}")
    ax.legend()
    fig.tight_layout()
    return _save(fig, out_path)


@torch.no_grad()
def plot_attention(model, tokenizer, prompt: str, out_path: str | Path, layers=None, heads=None) -> Path:
    """attention.png: attention weights (query rows, key columns) of the chosen layers (default: first and last)
    and heads (default: the first four). The model is switched to eager attention, which can return them."""
    model.eval()
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        device = next(model.parameters()).device
        input_ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
        attentions = model(input_ids, output_attentions=True).attentions
    finally:
        model.set_attn_implementation(previous)
    layers = list(layers) if layers is not None else sorted({0, len(attentions) - 1})
    heads = list(heads) if heads is not None else list(range(min(4, attentions[0].shape[1])))
    tokens = [tokenizer.decode([int(i)]) for i in input_ids[0]]
    fig = Figure(figsize=(3.2 * len(heads), 3.2 * len(layers)))
    axes = fig.subplots(len(layers), len(heads), squeeze=False)
    for row, layer in enumerate(layers):
        for col, head in enumerate(heads):
            ax = axes[row][col]
            ax.imshow(attentions[layer][0, head].float().cpu().numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
            ax.set_title(f"layer {layer}, head {head}", fontsize=9)
            ax.set_xticks(range(len(tokens)))
            ax.set_xticklabels(tokens, rotation=90, fontsize=7)
            ax.set_yticks(range(len(tokens)))
            ax.set_yticklabels(tokens, fontsize=7)
    fig.suptitle(f"attention weights for {prompt!r}")
    fig.tight_layout()
    return _save(fig, out_path)


def _save(fig, out_path: str | Path) -> Path:
    """Save through a temporary name and rename, so a reader never sees half a PNG."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with staged_file(out_path) as staging:
        fig.savefig(staging, dpi=110, format="png")
    return out_path
