"""Batching instruction data: padding, the end-of-text token, and which positions the loss learns from.

Labels are aligned with input_ids (labels[i] is the token at position i), as transformers expects: the model
shifts them inside its loss, predicting labels[i + 1] from the logits at position i. The course's collator instead
returns targets already shifted by one; the loss is the same (tests/test_instruct_collate.py checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..training.measurements import IGNORE_INDEX


@dataclass
class InstructionCollator:
    """Turns items `{"input_ids": [...], "prompt_length": k}` into a padded batch.

    Each sequence gets one end-of-text token appended (the model learns to stop there) and is padded with
    `pad_token_id` to the longest sequence of the batch. Labels copy input_ids, with -100 on the padding (the
    end-of-text token stays a target even when it doubles as the pad token) and, with `mask_prompt`, on the
    query too, so that only the response (and its end-of-text token) is learned. `max_length` truncates
    sequences to the model's context length; a truncated sequence loses its end-of-text token.
    """

    pad_token_id: int
    eos_token_id: int
    mask_prompt: bool = False
    max_length: int | None = None

    def __call__(self, items: Sequence[dict]) -> dict[str, torch.Tensor]:
        sequences = [list(item["input_ids"]) + [self.eos_token_id] for item in items]
        if self.max_length is not None:
            sequences = [sequence[: self.max_length] for sequence in sequences]
        width = max(len(sequence) for sequence in sequences)

        input_ids, labels, attention_mask = [], [], []
        for item, sequence in zip(items, sequences):
            padding = width - len(sequence)
            targets = list(sequence)
            if self.mask_prompt:
                prompt_length = min(item["prompt_length"], len(targets))
                targets[:prompt_length] = [IGNORE_INDEX] * prompt_length
            input_ids.append(sequence + [self.pad_token_id] * padding)
            labels.append(targets + [IGNORE_INDEX] * padding)
            attention_mask.append([1] * len(sequence) + [0] * padding)
        return {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.tensor(attention_mask, dtype=torch.long),
        }
