"""LoRA on ScratchGPT2 with peft, for every fine-tune (classification and instruction): which layers get adapters,
and folding them back into a plain checkpoint.

The linear layers of our model, by module name (the same names as GPT-2 in transformers):
- `attn.c_attn`: the fused query/key/value projection (n_embd -> 3 n_embd);
- `attn.c_proj`: attention output projection; `mlp.c_fc`: MLP up-projection; `mlp.c_proj`: MLP down-projection.
peft matches target names against the end of module names, so "c_proj" adapts both projections. The embeddings
and `lm_head` (tied to the token embedding) stay frozen; a classifier's new head (`score`) trains (peft's SEQ_CLS).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

LORA_TARGET_MODULES = ("c_attn", "c_proj", "c_fc")


def add_lora(model: nn.Module, rank: int = 16, alpha: int = 16, dropout: float = 0.05,
             target_modules: Sequence[str] = LORA_TARGET_MODULES):
    """Wrap `model` in a peft model whose only trainable weights are LoRA adapters on `target_modules` (and, for a
    sequence classifier, its head)."""
    from peft import LoraConfig, TaskType, get_peft_model

    if rank < 1:
        raise ValueError(f"lora_rank must be a positive integer, got {rank}")
    classifier = hasattr(model, "score")
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS if classifier else TaskType.CAUSAL_LM,
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
    )
    return get_peft_model(model, config)


def merge_lora(model: nn.Module) -> nn.Module:
    """The plain model to save: LoRA adapters folded into the weights they adapt (a no-op without LoRA)."""
    from peft import PeftModel

    return model.merge_and_unload() if isinstance(model, PeftModel) else model


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Trainable and total parameter counts (tied weights counted once, as named_parameters does)."""
    parameters = list(model.parameters())
    return {
        "trainable": sum(p.numel() for p in parameters if p.requires_grad),
        "total": sum(p.numel() for p in parameters),
    }
