"""llm.c's model file (train_gpt2.py's write_model): a header of 256 int32, then every parameter in a fixed order.

Header: [0] magic 20240326, [1] version (3: float32, 5: bfloat16), [2] max_seq_len, [3] vocab_size,
[4] num_layers, [5] num_heads, [6] channels, [7] padded_vocab_size. Then wte with its rows padded to a
multiple of 128, wpe, and for each kind of block parameter all blocks in turn (llm.c keeps each kind as one
(num_layers, ...) array), nn.Linear weights (out, in); last ln_f. The file has no names: the layout gives
each block's slice a name such as "qkvw[3]", after llm.c's ParameterTensors fields.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..layout import ZEROS, Layout, rule
from ..sources import Checkpoint, TensorSource
from ..transforms import PadRows

MAGIC = 20240326
HEADER_INTS = 256
VERSION_DTYPES = {3: torch.float32, 5: torch.bfloat16}
VOCAB_MULTIPLE = 128
OURS = "transformer.h.{i}."


class LlmcLayout(Layout):
    def sized_rules(self, hparams):
        """The fixed order of llm.c's parameters; wte's padding depends on the vocabulary size."""
        kinds = [
            ("ln1w", "ln_1.weight"),
            ("ln1b", "ln_1.bias"),
            ("qkvw", "attn.c_attn.weight"),
            ("qkvb", "attn.c_attn.bias"),
            ("attprojw", "attn.c_proj.weight"),
            ("attprojb", "attn.c_proj.bias"),
            ("ln2w", "ln_2.weight"),
            ("ln2b", "ln_2.bias"),
            ("fcw", "mlp.c_fc.weight"),
            ("fcb", "mlp.c_fc.bias"),
            ("fcprojw", "mlp.c_proj.weight"),
            ("fcprojb", "mlp.c_proj.bias"),
        ]
        return [
            rule("transformer.wte.weight", "wte", PadRows(VOCAB_MULTIPLE, hparams["vocab_size"])),
            rule("transformer.wpe.weight", "wpe"),
            *[
                rule(OURS + ours, theirs + "[{i}]", fallback=ZEROS if theirs == "qkvb" else None)
                for theirs, ours in kinds
            ],
            rule("transformer.ln_f.weight", "lnfw"),
            rule("transformer.ln_f.bias", "lnfb"),
        ]

    def hparams_from_metadata(self, metadata):
        header = metadata.get("llmc_header")
        if header is None:
            return {}
        return {
            "n_positions": header[2],
            "vocab_size": header[3],
            "n_layer": header[4],
            "n_head": header[5],
            "n_embd": header[6],
        }


LLMC = LlmcLayout(
    "llmc",
    "llm.c's .bin: 256-int32 header, then all parameters in a fixed order, vocabulary padded to a multiple of 128",
    [],  # built per model size by sized_rules
    block_major=False,
    tied_head_only=True,
    container="llmc",
    weights_file="model.bin",
)


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
    return header


def header_hparams(header: list[int]) -> dict:
    from ..hparams import DEFAULT_HPARAMS

    hparams = {**DEFAULT_HPARAMS, **LLMC.hparams_from_metadata({"llmc_header": header})}
    padded = math.ceil(hparams["vocab_size"] / VOCAB_MULTIPLE) * VOCAB_MULTIPLE
    if header[7] != padded:
        raise ValueError(
            f"llm.c header says padded_vocab_size={header[7]}; this reader expects {padded} (a multiple of 128)."
        )
    return hparams


class LlmcSource(TensorSource):
    """The parameters of an llm.c file, located by walking the fixed order that the header's sizes imply."""

    def __init__(self, path: Path):
        self.path, header = path, read_header(path)
        self.dtype = VERSION_DTYPES[header[1]]
        self.item_size = torch.empty((), dtype=self.dtype).element_size()
        offset, self.location = HEADER_INTS * 4, {}
        for bound in LLMC.bind(header_hparams(header)):
            for name, shape in zip(bound.theirs, bound.their_shapes, strict=True):
                self.location[name] = (offset, shape)
                offset += math.prod(shape) * self.item_size
        if path.stat().st_size < offset:
            raise ValueError(
                f"{path} is truncated: its header implies {offset} bytes, the file has {path.stat().st_size}."
            )
        self.header = header

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


def llmc_checkpoint(path: Path, origin: str) -> Checkpoint:
    source = LlmcSource(path)
    return Checkpoint(source, origin, "llmc", {"llmc_header": source.header}, path.parent)


def write_llmc(folder, layout, hparams, plan, tensors, dtype, max_shard_bytes):
    """Header, then the tensors in the plan's (llm.c's) order, streamed."""
    version = {dtype: version for version, dtype in VERSION_DTYPES.items()}.get(dtype)
    if version is None:
        raise ValueError(f"llm.c stores float32 or bfloat16, not {dtype}; pass dtype float32 or bfloat16.")
    if hparams["n_inner"] not in (None, 4 * hparams["n_embd"]):
        raise ValueError(f"llm.c's model has an MLP of width 4 * n_embd; this model's is n_inner={hparams['n_inner']}.")
    padded = math.ceil(hparams["vocab_size"] / VOCAB_MULTIPLE) * VOCAB_MULTIPLE
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:8] = [
        MAGIC,
        version,
        hparams["n_positions"],
        hparams["vocab_size"],
        hparams["n_layer"],
        hparams["n_head"],
        hparams["n_embd"],
        padded,
    ]
    with open(Path(folder) / layout.weights_file, "wb") as handle:
        handle.write(header.tobytes())
        for _, tensor in tensors:
            handle.write(tensor.to(dtype).contiguous().reshape(-1).view(torch.uint8).numpy().data)
