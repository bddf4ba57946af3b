"""llm.c's model file (train_gpt2.py's write_model): a header of 256 int32, then every parameter's bytes, no names.

Header: [0] magic 20240326, [1] version (3: float32, 5: bfloat16), [2] max_seq_len, [3] vocab_size,
[4] num_layers, [5] num_heads, [6] channels, [7] padded_vocab_size (vocab_size rounded up to a multiple of 128).
Which tensor comes where, and so its name, is the llmc layout's fixed order (../layouts/llmc.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ...modeling.configuration_scratch_gpt2 import padded_vocab_size
from . import TensorSource

MAGIC = 20240326
HEADER_INTS = 256
VERSION_DTYPES = {3: torch.float32, 5: torch.bfloat16}
VOCAB_MULTIPLE = 128


def padded_vocab(vocab_size: int) -> int:
    return padded_vocab_size(vocab_size, VOCAB_MULTIPLE)


def read_header(path: Path) -> list[int]:
    with open(path, "rb") as handle:
        raw = handle.read(HEADER_INTS * 4)
    if len(raw) < HEADER_INTS * 4:
        raise ValueError(f"{path} is too short to hold llm.c's 256-int header; it is truncated.")
    header = np.frombuffer(raw, dtype="<i4").tolist()
    if header[0] != MAGIC:
        raise ValueError(f"{path} is not an llm.c model file (magic {header[0]}, expected {MAGIC}).")
    if header[1] not in VERSION_DTYPES:
        raise ValueError(f"{path} is llm.c version {header[1]}; versions 3 (float32) and 5 (bfloat16) are read.")
    if header[7] != padded_vocab(header[3]):
        raise ValueError(
            f"llm.c header says padded_vocab_size={header[7]}; this reader expects {padded_vocab(header[3])} "
            f"(a multiple of {VOCAB_MULTIPLE})."
        )
    return header


class LlmcSource(TensorSource):
    """The parameters of an llm.c file, located by walking `items` ((name, shape) in the file's order)."""

    def __init__(self, path: Path, header: list[int], items: list[tuple[str, tuple[int, ...]]]):
        self.path, self.dtype = path, VERSION_DTYPES[header[1]]
        self.item_size = torch.empty((), dtype=self.dtype).element_size()
        offset, self.location = HEADER_INTS * 4, {}
        for name, shape in items:
            self.location[name] = (offset, shape)
            offset += math.prod(shape) * self.item_size
        if path.stat().st_size < offset:
            raise ValueError(
                f"{path} is truncated: its header implies {offset} bytes, the file has {path.stat().st_size}."
            )

    def names(self):
        return list(self.location)

    def shape(self, name):
        return self.location[name][1]

    def read(self, name):
        offset, shape = self.location[name]
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            raw = handle.read(math.prod(shape) * self.item_size)
        return torch.frombuffer(bytearray(raw), dtype=self.dtype).reshape(shape)


def write_llmc(path: Path, hparams: dict, tensors: Iterator[tuple[str, torch.Tensor]], dtype: torch.dtype) -> None:
    """Header, then the tensors as they come (in llm.c's order), streamed."""
    version = {dtype: version for version, dtype in VERSION_DTYPES.items()}.get(dtype)
    if version is None:
        raise ValueError(f"llm.c stores float32 or bfloat16, not {dtype}; pass dtype float32 or bfloat16.")
    if hparams["n_inner"] not in (None, 4 * hparams["n_embd"]):
        raise ValueError(f"llm.c's model has an MLP of width 4 * n_embd; this model's is n_inner={hparams['n_inner']}.")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:8] = [
        MAGIC,
        version,
        hparams["n_positions"],
        hparams["vocab_size"],
        hparams["n_layer"],
        hparams["n_head"],
        hparams["n_embd"],
        padded_vocab(hparams["vocab_size"]),
    ]
    with open(path, "wb") as handle:
        handle.write(header.tobytes())
        for _, tensor in tensors:
            handle.write(tensor.to(dtype).contiguous().reshape(-1).view(torch.uint8).numpy().data)
