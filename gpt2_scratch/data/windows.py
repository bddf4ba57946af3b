"""The course's sliding window over a token array, the train/validation split, and the loaders built from them."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .order import make_loader


class TokenWindows(Dataset):
    """Windows of `max_length` tokens starting every `stride` tokens: tokens[0:L], tokens[stride:stride+L], ...
    (the last window ends at or before the end). Each item is {"input_ids": window, "labels": window}: the model
    shifts labels inside, so each window trains the prediction of its tokens 2..L from those before them.
    `tokens` may be a numpy memmap; a window is read from it only when asked for."""

    def __init__(self, tokens: np.ndarray, max_length: int, stride: int | None = None):
        stride = stride or max_length
        if max_length < 2 or stride < 1:
            raise ValueError(f"max_length must be at least 2 and stride at least 1, got {max_length} and {stride}.")
        if len(tokens) < max_length:
            raise ValueError(f"{len(tokens)} tokens are fewer than one window of max_length={max_length}.")
        self.tokens, self.max_length = tokens, max_length
        self.starts = range(0, len(tokens) - max_length + 1, stride)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        start = self.starts[index]
        window = torch.from_numpy(np.asarray(self.tokens[start : start + self.max_length], dtype=np.int64))
        return {"input_ids": window, "labels": window}


def split_tokens(tokens: np.ndarray, train_ratio: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """The first train_ratio of the tokens for training, the rest for validation (views: nothing is copied)."""
    if not 0.0 < train_ratio < 1.0:
        raise ValueError(f"train_ratio must be between 0 and 1 (exclusive), got {train_ratio}.")
    cut = int(len(tokens) * train_ratio)
    return tokens[:cut], tokens[cut:]


def window_loaders(tokens: np.ndarray, max_length: int, batch_size: int, stride: int | None = None,
                   train_ratio: float = 0.9, seed: int = 123) -> tuple[DataLoader, DataLoader]:
    """(train, validation) loaders over the split corpus, as in the course: training windows shuffled (a new
    order each epoch, from the seed) with the last incomplete batch dropped; validation in order, all kept."""
    train_tokens, val_tokens = split_tokens(tokens, train_ratio)
    for name, part in (("training", train_tokens), ("validation", val_tokens)):
        if len(part) < max_length:
            raise ValueError(
                f"the {name} split has {len(part)} tokens (of {len(tokens)} in the corpus, train_ratio={train_ratio}), "
                f"fewer than one window of max_length={max_length}. Lower max_length, change train_ratio, or add text."
            )
    train_windows = TokenWindows(train_tokens, max_length, stride)
    if len(train_windows) < batch_size:
        raise ValueError(
            f"the training split gives {len(train_windows)} windows of {max_length} tokens, fewer than one batch of "
            f"{batch_size}: lower batch_size or max_length, or add text."
        )
    train_loader = make_loader(train_windows, batch_size, shuffle=True, seed=seed, drop_last=True)
    val_loader = make_loader(TokenWindows(val_tokens, max_length, stride), batch_size, shuffle=False, seed=seed)
    return train_loader, val_loader
