"""AdamW with GPT-2's weight-decay split, and the learning-rate schedule (linear warmup, then cosine decay)."""

from __future__ import annotations

import math

import torch
from torch import nn


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two parameter groups: weight matrices get weight decay; biases, LayerNorm scales/shifts and embeddings
    do not (decaying them only pulls useful offsets and token vectors towards zero)."""
    no_decay_ids = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if isinstance(module, nn.Embedding) or param.ndim < 2 or "norm" in type(module).__name__.lower():
                no_decay_ids.add(id(param))
    decay, no_decay, seen = [], [], set()
    for param in model.parameters():  # tied weights appear once here
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (no_decay if id(param) in no_decay_ids else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """AdamW over `model`'s trainable parameters, without decay on biases, LayerNorm and embeddings; the fused
    kernel (one launch for all parameters) is used when every parameter sits on a device that has it."""
    groups = decay_groups(model, weight_decay)
    devices = {p.device.type for group in groups for p in group["params"]}
    fused = devices <= {"cuda", "cpu", "xpu", "mps"}
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)


def cosine_schedule_with_warmup(optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.1,
                                start_step: int = 0):
    """LambdaLR: the rate climbs linearly to its peak (the optimizer's lr) over `warmup_steps`, then follows half a
    cosine down to peak * min_lr_ratio at `total_steps`, and stays there. A resumed run passes the `start_step` it
    goes on from: the rate is then the schedule's at that step."""

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]  # the peak LambdaLR scales (a resumed optimizer may hold an older one)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier, last_epoch=start_step - 1)
