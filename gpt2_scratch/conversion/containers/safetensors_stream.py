"""safetensors, streamed both ways. The writer writes the header from the shapes alone, then each tensor's bytes
as it arrives, so it holds one tensor in memory, not a shard or the model (safetensors' save_file takes them all
at once). The reader is safetensors' own safe_open: it checks the header as strictly as the format asks (each
tensor's byte range must match its dtype and shape, and the ranges must tile the data exactly) and hands out
tensors that are views of a private memory map, so a tensor read costs clean file pages, which the kernel drops
when it needs the room, and no anonymous memory (docs/performance.md, "Memory").

The format (https://github.com/huggingface/safetensors): 8 bytes little-endian header length, a JSON header
mapping each name to dtype, shape and [begin, end) byte offsets into the data that follows, then the data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from . import TensorSource

DTYPE_NAMES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
DTYPES_BY_NAME = {name: dtype for dtype, name in DTYPE_NAMES.items()}


def element_size(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def plan_shards(items: list[tuple[str, tuple[int, ...]]], dtype: torch.dtype, max_shard_bytes: int) -> list[list]:
    """Consecutive tensors grouped into shards of at most max_shard_bytes (a bigger tensor gets a shard alone)."""
    shards, current, size = [], [], 0
    for name, shape in items:
        nbytes = element_size(dtype) * math.prod(shape)
        if current and size + nbytes > max_shard_bytes:
            shards.append(current)
            current, size = [], 0
        current.append((name, shape))
        size += nbytes
    return shards + ([current] if current else [])


def write_shard(
    path: Path,
    items: list[tuple[str, tuple[int, ...]]],
    dtype: torch.dtype,
    tensors: Iterator[tuple[str, torch.Tensor]],
    metadata: dict[str, str] | None = None,
) -> int:
    """Write the tensors named in `items`, taken in that order from `tensors`; returns the bytes of data written."""
    header, offset = {"__metadata__": metadata or {"format": "pt"}}, 0
    for name, shape in items:
        nbytes = element_size(dtype) * math.prod(shape)
        header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned, as safetensors' own writer does
    with open(path, "wb") as handle:
        handle.write(len(encoded).to_bytes(8, "little"))
        handle.write(encoded)
        for name, shape in items:
            got_name, tensor = next(tensors)
            if got_name != name or tuple(tensor.shape) != tuple(shape):
                raise RuntimeError(
                    f"internal error: expected {name} {list(shape)}, got {got_name} {list(tensor.shape)}"
                )
            handle.write(tensor.to(dtype).contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return offset


def write_sharded(
    folder: Path,
    items: list[tuple[str, tuple[int, ...]]],
    dtype: torch.dtype,
    tensors: Iterator[tuple[str, torch.Tensor]],
    max_shard_bytes: int,
) -> list[str]:
    """model.safetensors, or model-0000i-of-0000n.safetensors and model.safetensors.index.json (transformers' names)."""
    shards = plan_shards(items, dtype, max_shard_bytes)
    if len(shards) == 1:
        write_shard(folder / "model.safetensors", shards[0], dtype, tensors)
        return ["model.safetensors"]
    names = [f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors" for k in range(len(shards))]
    weight_map, total = {}, 0
    for name, shard in zip(names, shards, strict=True):
        total += write_shard(folder / name, shard, dtype, tensors)
        weight_map.update({tensor_name: name for tensor_name, _ in shard})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return [*names, "model.safetensors.index.json"]


class SafetensorsFile:
    """One safetensors file: its header is read and checked (by safetensors) when opened; tensors are read one at
    a time, as views of the file's memory map."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.opened = safe_open(self.path, framework="pt")
        except SafetensorError as error:
            raise ValueError(f"{path} is not a valid safetensors file ({error}); it is corrupt or truncated.") from None
        self.entries = {name: self.opened.get_slice(name) for name in self.opened.keys()}
        for name, entry in self.entries.items():
            if entry.get_dtype() not in DTYPES_BY_NAME:
                raise ValueError(
                    f"{path}: tensor {name!r} has dtype {entry.get_dtype()}, which this reader does not take."
                )

    def names(self) -> list[str]:
        return list(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.entries[name].get_shape())

    def dtype(self, name: str) -> torch.dtype:
        return DTYPES_BY_NAME[self.entries[name].get_dtype()]

    def read(self, name: str) -> torch.Tensor:
        return self.opened.get_tensor(name)


class SafetensorsSource(TensorSource):
    """One or several (sharded) safetensors files; each read is one tensor, a view of its file's memory map."""

    def __init__(self, files: list[Path]):
        self.file_of = {}
        for path in files:
            opened = SafetensorsFile(path)
            self.file_of.update({name: opened for name in opened.names()})

    def names(self):
        return list(self.file_of)

    def shape(self, name):
        return self.file_of[name].shape(name)

    def dtype(self, name) -> torch.dtype:
        return self.file_of[name].dtype(name)

    def read(self, name):
        return self.file_of[name].read(name)
