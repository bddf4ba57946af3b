"""safetensors, streamed both ways: the writer writes the header from the shapes alone, then each tensor's bytes
as it arrives; the reader reads one tensor's bytes with a plain positioned read. Either holds one tensor in
memory, not a shard or the model. (Reading through a memory map, as safetensors' safe_open does, leaves the
pages read resident in the process: converting a 1.4 GB checkpoint that way peaked at 1.9 GB resident,
against 0.9 GB with positioned reads, and the gap grows with the checkpoint.)

The format (https://github.com/huggingface/safetensors): 8 bytes little-endian header length, a JSON header
mapping each name to dtype, shape and [begin, end) byte offsets into the data that follows, then the data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import torch

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
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit (MAX_HEADER_SIZE)


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
    """One safetensors file: its header is read and checked when opened; tensors are read one at a time."""

    def __init__(self, path: Path):
        self.path = Path(path)
        size = self.path.stat().st_size
        with open(self.path, "rb") as handle:
            prefix = handle.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if not 2 <= length <= size - 8:
                raise ValueError(f"{path} is not a safetensors file, or is truncated (its header does not fit).")
            if length > MAX_HEADER_BYTES:
                raise ValueError(f"{path} claims a {length}-byte header, more than safetensors allows; it is corrupt.")
            self.metadata, self.entries = parse_header(handle.read(length), path)
        self.data_start = 8 + length
        check_byte_ranges(self.entries, size - self.data_start, path)

    def names(self) -> list[str]:
        return list(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.entries[name]["shape"])

    def dtype(self, name: str) -> torch.dtype:
        return DTYPES_BY_NAME[self.entries[name]["dtype"]]

    def read(self, name: str) -> torch.Tensor:
        entry = self.entries[name]
        begin, end = entry["data_offsets"]
        buffer = bytearray(end - begin)
        with open(self.path, "rb", buffering=0) as handle:
            handle.seek(self.data_start + begin)
            if handle.readinto(buffer) != len(buffer):
                raise ValueError(f"{self.path} is truncated: tensor {name!r} could not be read whole.")
        dtype = DTYPES_BY_NAME[entry["dtype"]]
        if not buffer:
            return torch.empty(entry["shape"], dtype=dtype)
        return torch.frombuffer(buffer, dtype=dtype).reshape(entry["shape"])


# Reading a header: as strict as the safetensors library (safetensors/src/tensor.rs, `read_metadata` and
# `validate`), because a header that lies makes a reader return other bytes than the tensor's: the header's own, or
# another tensor's.


def parse_header(raw: bytes, path: Path) -> tuple[dict, dict]:
    """(metadata, tensor entries) from the header's JSON object, each entry checked for its types: a dtype this
    reader takes, a shape of sizes, two byte offsets."""
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=refuse_constant)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path} has a corrupt safetensors header (not UTF-8 JSON).") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path} has a corrupt safetensors header (not a JSON object).")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise ValueError(f"{path} has a corrupt safetensors header (__metadata__ must map names to strings).")
    for name, entry in header.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list)
            and all(is_size(n) for n in entry["shape"])
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
            and all(is_size(n) for n in entry["data_offsets"])
        ):
            raise ValueError(
                f"{path}: the header entry of tensor {name!r} is not a dtype, a shape of sizes and two byte offsets "
                f"({json.dumps(entry)[:200]}); the file is corrupt."
            )
        if entry["dtype"] not in DTYPES_BY_NAME:
            raise ValueError(f"{path}: tensor {name!r} has dtype {entry['dtype']}, which this reader does not take.")
    return metadata, header


def refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # Python's json takes NaN and Infinity; the format does not


def is_size(value) -> bool:
    """A JSON number the format takes as a size or an offset: an unsigned 64-bit integer (not a float, not a bool)."""
    return type(value) is int and 0 <= value < 2**64


def check_byte_ranges(entries: dict, data_size: int, path: Path) -> None:
    """The tensors' [begin, end) ranges, in order, must tile the data exactly: no overlap, no gap, nothing after
    the last one, each as long as its dtype and shape say."""
    position = 0
    for name, entry in sorted(entries.items(), key=lambda item: item[1]["data_offsets"]):
        begin, end = entry["data_offsets"]
        if begin != position:
            raise ValueError(
                f"{path}: tensor {name!r} starts at byte {begin} of the data, where the tensors before it end at "
                f"byte {position}: the byte ranges {'overlap' if begin < position else 'leave a gap'}; the file is "
                "corrupt."
            )
        if end - begin != element_size(DTYPES_BY_NAME[entry["dtype"]]) * math.prod(entry["shape"]):
            raise ValueError(
                f"{path}: tensor {name!r} has a byte range that does not match its shape; the file is corrupt."
            )
        if end > data_size:
            raise ValueError(
                f"{path} is truncated: tensor {name!r} runs past the end of the file ({data_size} bytes of data)."
            )
        position = end
    if position != data_size:
        raise ValueError(
            f"{path} has {data_size - position} bytes after its last tensor, which no tensor covers; it is corrupt."
        )


class SafetensorsSource(TensorSource):
    """One or several (sharded) safetensors files; each read is one tensor's bytes (see safetensors_stream)."""

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
