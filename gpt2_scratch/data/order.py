"""Data loaders whose order depends only on (seed, epoch), so that a resumed run sees exactly the batches the
interrupted one would have seen, on any number of processes."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffleSampler(Sampler[int]):
    """A fresh permutation of the dataset each epoch, drawn from its own generator seeded with seed + epoch
    (the global RNG is never touched). Without shuffle it yields 0, 1, 2, ..."""

    def __init__(self, size: int, shuffle: bool = True, seed: int = 0):
        self.size, self.shuffle, self.seed, self.epoch = size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.size))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator)
        # Handed out in slices: a web corpus has tens of millions of windows, too many to hold as Python ints.
        return (index for start in range(0, self.size, 1 << 16) for index in order[start : start + (1 << 16)].tolist())

    def __len__(self) -> int:
        return self.size


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 0, drop_last: bool = False,
                collate_fn=None, num_workers: int = 0) -> DataLoader:
    """A DataLoader over `dataset` with an EpochShuffleSampler, ready for `train()` and exact resume."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(dataset), shuffle, seed),
        drop_last=drop_last,
        collate_fn=collate_fn,
        num_workers=num_workers,
        # Starting the loader draws its worker seed from this generator rather than from the global RNG.
        generator=torch.Generator().manual_seed(seed),
    )
