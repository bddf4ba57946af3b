"""`verify`: do two checkpoints, in any layouts, hold the same model?

Four checks, from strictest to most practical: every hyperparameter equal; every tensor equal; the largest
difference between their logits on fixed prompts; and whether greedy decoding continues each prompt with the same
tokens. Equal tensors do not make the same model: two models that differ only in n_head compute different logits.
The greedy check decodes A through transformers' own GPT-2 wherever GPT2Config can hold A's architecture, so that
a fault in our `generate()` cannot agree with itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .api import load_model, to_transformers_gpt2
from .hparams import LM_HEAD, TOKEN_EMBEDDING, from_model

PROMPT_COUNT, PROMPT_LENGTH = 4, 16
# Hyperparameters that leave the logits alone (dropout is off at inference; token ids only name tokens): a
# difference in them is reported and rules out "identical", but the two models can still agree.
# How a model is stored, not what it computes: a padded vocabulary's extra rows are never reached (compared above
# on the vocabulary's rows only).
STORAGE_ONLY_HPARAMS = ("pad_vocab_size_to_multiple_of",)
LOGIT_NEUTRAL_HPARAMS = ("embd_pdrop", "attn_pdrop", "resid_pdrop", "bos_token_id", "eos_token_id", "pad_token_id")


@dataclass
class VerifyReport:
    a: str
    b: str
    hparam_differences: dict[str, tuple] = field(default_factory=dict)  # name: (A's value, B's value)
    tensors_equal: dict[str, bool] = field(default_factory=dict)
    tensor_max_difference: dict[str, float] = field(default_factory=dict)
    missing_in_b: list[str] = field(default_factory=list)
    missing_in_a: list[str] = field(default_factory=list)
    max_logit_difference: float = float("nan")
    greedy_agree: bool = False
    greedy_what: str = "greedy continuations"  # for classifiers: the predicted classes
    greedy_through: str = ""  # which implementation decoded A, for the summary
    atol: float = 1e-4

    @property
    def identical(self) -> bool:
        """Every hyperparameter and every tensor equal, and the checks on logits and continuations passed too."""
        return not self.hparam_differences and all(self.tensors_equal.values()) and self.agree

    @property
    def agree(self) -> bool:
        """Same architecture, same tensors by name, logits within atol, same greedy continuations."""
        return (
            not set(self.hparam_differences) - set(LOGIT_NEUTRAL_HPARAMS)
            and not self.missing_in_a
            and not self.missing_in_b
            and self.max_logit_difference <= self.atol
            and self.greedy_agree
        )

    @property
    def verdict(self) -> str:
        return "identical" if self.identical else "agree" if self.agree else "DISAGREE"

    def summary(self) -> str:
        differing = [name for name, equal in self.tensors_equal.items() if not equal]
        hparams = "; ".join(f"{name} A={a!r} B={b!r}" for name, (a, b) in self.hparam_differences.items())
        lines = [
            f"A: {self.a}",
            f"B: {self.b}",
            f"hyperparameters: {'DIFFER: ' + hparams if hparams else 'the same'}",
            f"tensors: {len(self.tensors_equal) - len(differing)} of {len(self.tensors_equal)} bit-identical",
        ]
        for name in differing[:10]:
            lines.append(f"  {name}: max |A - B| = {self.tensor_max_difference[name]:.3g}")
        if len(differing) > 10:
            lines.append(f"  ... and {len(differing) - 10} more")
        for side, names in (("only in A", self.missing_in_b), ("only in B", self.missing_in_a)):
            if names:
                lines.append(f"{side}: {', '.join(names)}")
        lines.append(
            f"max logit difference on {PROMPT_COUNT} fixed prompts: {self.max_logit_difference:.3g} "
            f"(tolerance {self.atol:g})"
        )
        through = f" (A decoded by {self.greedy_through})" if self.greedy_through else ""
        lines.append(f"{self.greedy_what}{through}: {'agree' if self.greedy_agree else 'DIFFER'}")
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)


def fixed_prompts(vocab_size: int, length: int = PROMPT_LENGTH) -> torch.Tensor:
    """The same prompts every run: token ids from a seeded generator (no tokenizer needed, any vocabulary)."""
    return torch.randint(0, vocab_size, (PROMPT_COUNT, length), generator=torch.Generator().manual_seed(0))


def verify(
    a,
    b,
    *,
    layout_a: str | None = None,
    layout_b: str | None = None,
    atol: float = 1e-4,
    max_new_tokens: int = 16,
    **overrides,
) -> VerifyReport:
    """Compare two checkpoints (any source `load_model` takes); `report.agree` says whether they hold the same model."""
    model_a = load_model(a, layout_a, dtype=None, **overrides)
    model_b = load_model(b, layout_b, dtype=None, **overrides)
    report = VerifyReport(
        str(a) if not isinstance(a, torch.nn.Module) else type(a).__name__,
        str(b) if not isinstance(b, torch.nn.Module) else type(b).__name__,
        atol=atol,
    )
    report.hparam_differences = compare_hparams(from_model(model_a), from_model(model_b))
    compare_tensors(own_tensors(model_a), own_tensors(model_b), report)
    if report.missing_in_a or report.missing_in_b:
        return report
    model_a, model_b = model_a.float(), model_b.float()
    positions = min(model_a.config.n_positions, model_b.config.n_positions)
    prompts = fixed_prompts(
        min(model_a.config.vocab_size, model_b.config.vocab_size), min(PROMPT_LENGTH, positions // 2)
    )
    max_new_tokens = min(max_new_tokens, positions - prompts.shape[1])
    mask = torch.ones_like(prompts)
    with torch.no_grad():
        logits_a, logits_b = model_a(prompts, attention_mask=mask).logits, model_b(prompts, attention_mask=mask).logits
        report.max_logit_difference = (
            (logits_a - logits_b).abs().max().item() if logits_a.shape == logits_b.shape else float("inf")
        )
        if hasattr(model_a, "score") or hasattr(model_b, "score"):  # classifiers: the predicted classes, not text
            report.greedy_what = "predicted classes"
            report.greedy_agree = torch.equal(logits_a.argmax(-1), logits_b.argmax(-1))
        else:
            settings = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0, attention_mask=mask)
            decoder_a, report.greedy_through = independent_decoder(model_a)
            report.greedy_agree = torch.equal(
                decoder_a.generate(prompts, **settings), model_b.generate(prompts, **settings)
            )
    return report


def independent_decoder(model):
    """`model`'s weights in transformers' GPT2LMHeadModel, and that implementation's name; the model itself where
    GPT-2's config cannot express its architecture (no Q/K/V bias, for example)."""
    try:
        return to_transformers_gpt2(model), "transformers' GPT2LMHeadModel"
    except (ValueError, KeyError, RuntimeError):
        return model, type(model).__name__


def own_tensors(model) -> dict[str, torch.Tensor]:
    """The state dict without a tied LM head, which is the token embedding under a second name, and without the
    rows of a padded vocabulary (config.pad_vocab_size_to_multiple_of), which no token reaches."""
    tensors = model.state_dict()
    if model.config.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
    for name in (TOKEN_EMBEDDING, LM_HEAD):
        if name in tensors:
            tensors[name] = tensors[name][: model.config.vocab_size]
    return tensors


def compare_hparams(a: dict, b: dict) -> dict[str, tuple]:
    """The hyperparameters whose values differ, as {name: (a's, b's)}. Floats are compared as the float32 the
    model computes with: a format that stores layer_norm_epsilon as float32 (GGUF) does not change it."""

    def same(x, y) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return torch.tensor(x, dtype=torch.float32).item() == torch.tensor(y, dtype=torch.float32).item()
        return x == y

    return {
        name: (a[name], b.get(name))
        for name in a
        if name not in STORAGE_ONLY_HPARAMS and not same(a[name], b.get(name))
    }


def compare_tensors(ours_a: dict, ours_b: dict, report: VerifyReport) -> None:
    report.missing_in_b = [name for name in ours_a if name not in ours_b]
    report.missing_in_a = [name for name in ours_b if name not in ours_a]
    for name in ours_a:
        if name not in ours_b:
            continue
        x, y = ours_a[name], ours_b[name]
        same_shape = x.shape == y.shape
        report.tensors_equal[name] = same_shape and x.dtype == y.dtype and torch.equal(x, y)
        report.tensor_max_difference[name] = (x.float() - y.float()).abs().max().item() if same_shape else float("inf")
