"""Which weights a classification fine-tune trains: freezing policies.

A policy names what stays frozen, so that it reads naturally after `--freeze`:

- "all-but-head": only the new classification head (`score`) trains: a linear probe on the pretrained features.
- "all-but-last-block": the course's policy. The last transformer block, the final LayerNorm and the head train.
- "all-but-last-N-blocks" (e.g. "all-but-last-3-blocks"): the last N blocks, the final LayerNorm and the head.
- "nothing": every weight trains.
- "lora": every pretrained weight stays frozen; low-rank adapters (peft's LoRA) on the attention and MLP projections
  (c_attn, c_proj, c_fc) of every block train, and so does the head. `gpt2_scratch.lora.merge_lora` folds them back in for saving.
"""

from __future__ import annotations

import re

from torch import nn

from ..lora import add_lora

POLICIES = ("all-but-head", "all-but-last-block", "all-but-last-N-blocks", "nothing", "lora")
_LAST_BLOCKS = re.compile(r"all-but-last-(\d+)-blocks")


def apply_freezing(model: nn.Module, policy: str, lora_rank: int = 8, lora_alpha: int = 16) -> nn.Module:
    """Freeze `model` (a ScratchGPT2ForSequenceClassification) according to `policy` and return the model to train:
    the same object, or for "lora" a peft model wrapping it."""
    if policy == "lora":
        return add_lora(model, lora_rank, lora_alpha, dropout=0.0)
    if policy == "nothing":
        model.requires_grad_(True)
        return model
    blocks = model.transformer.h
    trainable_blocks = trainable_block_count(policy, len(blocks))
    model.requires_grad_(False)
    model.score.requires_grad_(True)
    if trainable_blocks > 0:
        for block in blocks[len(blocks) - trainable_blocks :]:
            block.requires_grad_(True)
        model.transformer.ln_f.requires_grad_(True)
    return model


def trainable_block_count(policy: str, n_layer: int) -> int:
    if policy == "all-but-head":
        return 0
    if policy == "all-but-last-block":
        return 1
    match = _LAST_BLOCKS.fullmatch(policy)
    if match is None:
        raise ValueError(
            f"unknown freezing policy {policy!r}; choose all-but-head, all-but-last-block, all-but-last-N-blocks "
            "(N a number, e.g. all-but-last-2-blocks), nothing or lora"
        )
    count = int(match.group(1))
    if not 1 <= count <= n_layer:
        raise ValueError(f"{policy!r}: this model has {n_layer} blocks, so N must be between 1 and {n_layer}")
    return count


def trainable_parameter_names(model: nn.Module) -> list[str]:
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]
