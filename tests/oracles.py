"""The oracle most tests compare against: transformers' own GPT-2 with random weights."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel

# A small GPT-2 with a short vocabulary: fast, and every tensor kind of the real thing is there.
TINY_GPT2 = dict(n_layer=2, n_embd=64, n_head=4, n_positions=32, vocab_size=300, bos_token_id=0, eos_token_id=0)


def random_gpt2(seed: int, randomize_norms_and_biases: bool = True, **overrides) -> GPT2LMHeadModel:
    """transformers' GPT2LMHeadModel with random weights (TINY_GPT2 sizes unless overridden).

    Fresh models have zero biases and unit LayerNorm scales, so a conversion that mixed those up would go unseen:
    by default they are made random too.
    """
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**{**TINY_GPT2, **overrides})).eval()
    if randomize_norms_and_biases:
        with torch.no_grad():
            for name, tensor in model.named_parameters():
                if "ln_" in name or name.endswith("bias"):
                    tensor.normal_(0, 0.5)
    return model


def max_logit_difference(a, b, tokens: torch.Tensor) -> float:
    """The largest absolute difference between two causal LMs' logits on `tokens`, compared in float32."""
    with torch.no_grad():
        return (a(tokens).logits.float() - b(tokens).logits.float()).abs().max().item()
