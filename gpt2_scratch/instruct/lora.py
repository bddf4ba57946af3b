"""LoRA on ScratchGPT2 with peft: which layers get adapters, and folding them back into a plain checkpoint.

The linear layers of our model, by module name (the same names as GPT-2 in transformers):
- `attn.c_attn`: the fused query/key/value projection (n_embd -> 3 n_embd);
- `attn.c_proj`: attention output projection; `mlp.c_fc`: MLP up-projection; `mlp.c_proj`: MLP down-projection.
peft matches target names against the end of module names, so "c_proj" adapts both projections. The embeddings
and `lm_head` (tied to the token embedding) stay frozen.
"""

from __future__ import annotations

from collections.abc import Sequence

LORA_TARGET_MODULES = ("c_attn", "c_proj", "c_fc")


def add_lora(model, rank: int = 16, alpha: int = 16, dropout: float = 0.05,
             target_modules: Sequence[str] = LORA_TARGET_MODULES):
    """Wrap `model` in a peft model whose only trainable weights are LoRA adapters on `target_modules`."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
    )
    return get_peft_model(model, config)


def merge_lora(model):
    """Fold the adapters into the base weights and return the plain model (saves as an ordinary checkpoint)."""
    return model.merge_and_unload()


def count_parameters(model) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total}
