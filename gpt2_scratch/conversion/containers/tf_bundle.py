"""A reader for TensorFlow's checkpoint format (TensorBundle), written without TensorFlow.

A checkpoint `model.ckpt` is two files:
- `model.ckpt.index`: a LevelDB-style table (sorted key -> value records in blocks, an index block, and a
  48-byte footer). Key "" holds a BundleHeaderProto; every other key is a tensor name whose value is a
  BundleEntryProto: dtype, shape, shard, offset, size, and the masked CRC32C of the tensor's bytes.
- `model.ckpt.data-00000-of-0000N`: the tensors' raw little-endian bytes, at those offsets.
Every block and every tensor carries a CRC32C (Castagnoli), masked as LevelDB masks it; both are checked.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

from . import TensorSource

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked CRC32C
LARGE = 1 << 20  # tensors from this many bytes on are checked with the numpy CRC

# TensorFlow's DataType enum (types.proto) -> numpy dtype; bfloat16 is read as uint16 and reinterpreted.
DTYPES = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    5: np.int16,
    6: np.int8,
    9: np.int64,
    10: np.bool_,
    14: "bfloat16",
    19: np.float16,
}


# ---------------------------------------------------------------------------------------------- CRC32C


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # the reflected Castagnoli polynomial
        table.append(crc)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C of `data`; pass the previous result as `crc` to continue over several chunks."""
    crc ^= 0xFFFFFFFF
    table = CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# Large tensors: the same CRC computed on many lanes at once with numpy, then the lanes' CRCs combined.
# A CRC register without its initial and final XOR ("raw") is linear over GF(2): raw(A + B) =
# zeros(raw(A), len(B)) ^ raw(B), where zeros(c, m) feeds m zero bytes to register c, itself a 32x32 bit
# matrix. So cut the data into 2^k equal lanes, run all lanes byte by byte together, then combine them in pairs.
LANES = 1 << 14
NUMPY_TABLE = np.array(CRC32C_TABLE, dtype=np.uint32)


def crc32c_large(data) -> int:
    """CRC-32C of a large buffer, equal to crc32c(data), in numpy (about a second for 300 MB)."""
    data = np.frombuffer(data, dtype=np.uint8)
    n, length = len(data), -(-len(data) // LANES)
    padded = np.zeros(LANES * length, dtype=np.uint8)
    padded[LANES * length - n :] = data  # leading zeros leave a raw CRC unchanged
    columns = np.ascontiguousarray(padded.reshape(LANES, length).T).astype(np.uint32)
    raw = np.zeros(LANES, dtype=np.uint32)
    for column in columns:
        raw = NUMPY_TABLE[(raw ^ column) & 0xFF] ^ (raw >> 8)
    while len(raw) > 1:
        raw = apply_matrix(zeros_matrix(length), raw[0::2]) ^ raw[1::2]
        length *= 2
    initial = int(apply_matrix(zeros_matrix(n), np.array([0xFFFFFFFF], dtype=np.uint32))[0])
    return int(raw[0]) ^ initial ^ 0xFFFFFFFF


def apply_matrix(columns: list[int], registers: np.ndarray) -> np.ndarray:
    """The GF(2) matrix (one 32-bit column per input bit) applied to every register."""
    result = np.zeros_like(registers)
    for bit, column in enumerate(columns):
        result ^= ((registers >> bit) & 1) * np.uint32(column)
    return result


def zeros_matrix(count: int) -> list[int]:
    """The matrix of feeding `count` zero bytes to a CRC register, by repeated squaring."""
    one_byte = [CRC32C_TABLE[(1 << bit) & 0xFF] ^ ((1 << bit) >> 8) for bit in range(32)]
    result = [1 << bit for bit in range(32)]  # identity
    while count:
        if count & 1:
            result = [apply_bits(one_byte, column) for column in result]
        one_byte = [apply_bits(one_byte, column) for column in one_byte]
        count >>= 1
    return result


def apply_bits(columns: list[int], register: int) -> int:
    value = 0
    for bit in range(32):
        if register >> bit & 1:
            value ^= columns[bit]
    return value


def mask(crc: int) -> int:
    """LevelDB stores CRCs rotated and offset, so that a CRC of data that itself contains CRCs stays robust."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------- protobuf


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def proto_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of a protobuf message: ints for varint/fixed fields, bytes for length-delimited."""
    fields, pos = [], 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = read_varint(data, pos)
        elif wire_type == 1:
            value, pos = struct.unpack_from("<Q", data, pos)[0], pos + 8
        elif wire_type == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire_type == 5:
            value, pos = struct.unpack_from("<I", data, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        fields.append((number, value))
    return fields


def parse_entry(data: bytes) -> dict:
    """A BundleEntryProto: dtype=1, shape=2 (TensorShapeProto: dim=2 {size=1}), shard_id=3, offset=4, size=5,
    crc32c=6, slices=7."""
    entry = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "crc32c": None, "sliced": False}
    for number, value in proto_fields(data):
        if number == 1:
            entry["dtype"] = value
        elif number == 2:
            dims = [dict(proto_fields(dim)).get(1, 0) for n, dim in proto_fields(value) if n == 2]
            entry["shape"] = [size - (1 << 64) if size >= 1 << 63 else size for size in dims]
        elif number in (3, 4, 5):
            entry[{3: "shard_id", 4: "offset", 5: "size"}[number]] = value
        elif number == 6:
            entry["crc32c"] = value
        elif number == 7:
            entry["sliced"] = True
    return entry


# ---------------------------------------------------------------------------------------------- the table


def read_block(data: bytes, offset: int, size: int, path: Path) -> bytes:
    block = data[offset : offset + size]
    trailer = data[offset + size : offset + size + BLOCK_TRAILER_SIZE]
    if len(block) != size or len(trailer) != BLOCK_TRAILER_SIZE:
        raise ValueError(f"{path} is truncated: a block runs past the end of the file.")
    compression, stored_crc = trailer[0], struct.unpack("<I", trailer[1:])[0]
    if mask(crc32c(block + trailer[:1])) != stored_crc:
        raise ValueError(f"{path} is corrupt: a block's CRC32C does not match.")
    if compression != 0:
        raise ValueError(
            f"{path} uses block compression {compression}; only uncompressed tables (TensorFlow's default) are read."
        )
    return block


def block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """The (key, value) records of a block; keys share prefixes with the previous key."""
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end, pos, key, entries = len(block) - 4 - 4 * restarts, 0, b"", []
    while pos < end:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        value_length, pos = read_varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_length]))
        pos += value_length
    return entries


def block_handle(value: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = read_varint(value, pos)
    size, pos = read_varint(value, pos)
    return offset, size, pos


def read_index(path: Path) -> tuple[dict, dict[str, dict]]:
    """The BundleHeaderProto (num_shards=1, endianness=2, version=3) and the tensor entries of a .index file."""
    data = path.read_bytes()
    if len(data) < FOOTER_SIZE or struct.unpack("<Q", data[-8:])[0] != TABLE_MAGIC:
        raise ValueError(f"{path} is not a TensorFlow checkpoint index (no table footer); it may be truncated.")
    footer = data[-FOOTER_SIZE:]
    _, _, pos = block_handle(footer)  # the meta-index block: unused by TensorBundle
    index_offset, index_size, _ = block_handle(footer, pos)
    header, entries = {}, {}
    for _, handle in block_entries(read_block(data, index_offset, index_size, path)):
        offset, size, _ = block_handle(handle)
        for key, value in block_entries(read_block(data, offset, size, path)):
            if key:
                entries[key.decode()] = parse_entry(value)
            else:
                header = dict(proto_fields(value))
    if header.get(2, 0) != 0:  # endianness: 0 = little
        raise ValueError(f"{path} was written big-endian; only little-endian checkpoints are read.")
    return header, entries


# ---------------------------------------------------------------------------------------------- tensors


class TFBundleSource(TensorSource):
    """The tensors of a TensorFlow checkpoint, read one at a time from its data shards, CRC-checked."""

    def __init__(self, index_path: Path):
        self.prefix = str(index_path).removesuffix(".index")
        header, self.entries = read_index(index_path)
        self.num_shards = header.get(1, 1)
        unsupported = [name for name, entry in self.entries.items() if entry["sliced"] or entry["dtype"] not in DTYPES]
        if unsupported:
            raise ValueError(
                f"{index_path} holds partitioned or non-numeric tensors this reader does not take: {unsupported[:5]}"
            )

    def shard_path(self, shard_id: int) -> Path:
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}")

    def names(self):
        return list(self.entries)

    def shape(self, name):
        return tuple(self.entries[name]["shape"])

    def read(self, name):
        entry = self.entries[name]
        path = self.shard_path(entry["shard_id"])
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the checkpoint's data file must sit beside its .index file.")
        with open(path, "rb") as handle:
            handle.seek(entry["offset"])
            raw = handle.read(entry["size"])
        if len(raw) != entry["size"]:
            raise ValueError(f"{path} is truncated: tensor {name!r} runs past the end of the file.")
        checksum = crc32c_large(raw) if len(raw) >= LARGE else crc32c(raw)
        if entry["crc32c"] is not None and mask(checksum) != entry["crc32c"]:
            raise ValueError(f"{path} is corrupt: the CRC32C of tensor {name!r} does not match.")
        dtype = DTYPES[entry["dtype"]]
        if dtype == "bfloat16":
            tensor = torch.from_numpy(np.frombuffer(raw, dtype="<u2").copy()).view(torch.bfloat16)
        else:
            tensor = torch.from_numpy(np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).copy())
        return tensor.reshape(entry["shape"])
