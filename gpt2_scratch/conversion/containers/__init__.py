"""File containers: how each checkpoint format stores named tensors on disk, knowing nothing of GPT-2's names.

Each reader gives a `TensorSource` (names and shapes first, one tensor's data on demand); each writer takes tensors
one at a time. safetensors (safetensors_stream.py), torch pickles (torch_pickle.py), TensorFlow bundles
(tf_bundle.py), llm.c model files (llmc.py) and GGUF (gguf.py). Which names the tensors have and how they map to
ours is the layouts' business (../layouts/); `../sources.py` picks the container for a path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

class TensorSource:
    """Named tensors whose shapes are known before their data is read."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def shape(self, name: str) -> tuple[int, ...]:
        raise NotImplementedError

    def read(self, name: str) -> torch.Tensor:
        raise NotImplementedError


class StateDictSource(TensorSource):
    """Tensors already in memory: a state dict, or what a torch pickle held."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        self.tensors = tensors

    def names(self):
        return list(self.tensors)

    def shape(self, name):
        return tuple(self.tensors[name].shape)

    def read(self, name):
        return self.tensors[name]


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): repair it or restore it from a good copy.") from None
