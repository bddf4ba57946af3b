"""GGUF, the format of llama.cpp, with the `gguf` package: architecture "gpt2", llama.cpp's tensor names.

Weights are stored as nn.Linear's (out, in) (llama.cpp's converter transposes transformers' Conv1D), F32, or
F16 for the 2-D tensors with LayerNorms and biases kept in F32 as llama.cpp does. A tied LM head has no
`output.weight`. GPT-2's BPE tokenizer, when the source has one, goes into the tokenizer.ggml.* metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..layout import ZEROS, Layout, rule
from ..sources import Checkpoint, TensorSource

OURS, THEIRS = "transformer.h.{i}.", "blk.{i}."
ARCH = "gpt2"


def pair(ours: str, theirs: str, fallback=None):
    return [rule(ours + ".weight", theirs + ".weight"), rule(ours + ".bias", theirs + ".bias", fallback=fallback)]


class GGUFLayout(Layout):
    def hparams_from_metadata(self, metadata):
        fields = metadata.get("gguf") or {}
        if fields.get("general.architecture", ARCH) != ARCH:
            raise ValueError(f"this GGUF file holds a {fields['general.architecture']!r} model, not GPT-2.")
        names = {
            "context_length": "n_positions",
            "embedding_length": "n_embd",
            "block_count": "n_layer",
            "attention.head_count": "n_head",
            "feed_forward_length": "n_inner",
            "attention.layer_norm_epsilon": "layer_norm_epsilon",
        }
        found = {ours: fields[f"{ARCH}.{key}"] for key, ours in names.items() if f"{ARCH}.{key}" in fields}
        if found.get("n_inner") == 4 * found.get("n_embd", -1):
            found["n_inner"] = None
        for key, ours in (("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id")):
            if f"tokenizer.ggml.{key}" in fields:
                found[ours] = fields[f"tokenizer.ggml.{key}"]
        return found


GGUF = GGUFLayout(
    "gguf",
    "GGUF for llama.cpp: token_embd, position_embd, blk.N.attn_qkv|attn_output|ffn_up|ffn_down, F32 or F16",
    [
        rule("transformer.wte.weight", "token_embd.weight"),
        rule("transformer.wpe.weight", "position_embd.weight"),
        *pair(OURS + "ln_1", THEIRS + "attn_norm"),
        *pair(OURS + "attn.c_attn", THEIRS + "attn_qkv", fallback=ZEROS),
        *pair(OURS + "attn.c_proj", THEIRS + "attn_output"),
        *pair(OURS + "ln_2", THEIRS + "ffn_norm"),
        *pair(OURS + "mlp.c_fc", THEIRS + "ffn_up"),
        *pair(OURS + "mlp.c_proj", THEIRS + "ffn_down"),
        *pair("transformer.ln_f", "output_norm"),
        rule("lm_head.weight", "output.weight"),
    ],
    container="gguf",
    weights_file="model.gguf",
)


class GGUFSource(TensorSource):
    """A GGUF file's tensors, memory-mapped by gguf's reader; each read copies one tensor out."""

    def __init__(self, reader):
        self.tensors = {tensor.name: tensor for tensor in reader.tensors}
        unsupported = [t.name for t in self.tensors.values() if t.tensor_type.name not in ("F32", "F16")]
        if unsupported:
            raise ValueError(
                f"this GGUF file has quantized tensors ({unsupported[:3]} ...); only F32 and F16 are read."
            )

    def names(self):
        return list(self.tensors)

    def shape(self, name):
        return tuple(int(size) for size in self.tensors[name].data.shape)

    def read(self, name):
        return torch.from_numpy(np.array(self.tensors[name].data))


def gguf_module():
    """The `gguf` package, needed for GGUF files only."""
    try:
        import gguf
    except ImportError:
        raise RuntimeError("reading or writing GGUF needs the gguf package: pip install 'gpt2-scratch[gguf]'") from None
    return gguf


def gguf_checkpoint(path: Path, origin: str) -> Checkpoint:
    GGUFReader, GGUFValueType = gguf_module().GGUFReader, gguf_module().GGUFValueType

    try:
        reader = GGUFReader(path)
    except (ValueError, OSError, IndexError) as error:
        raise ValueError(f"{path} is not a readable GGUF file ({error}); it may be truncated.") from None
    scalars = {
        name: field.contents()
        for name, field in reader.fields.items()
        if field.types and field.types[0] != GGUFValueType.ARRAY
    }
    return Checkpoint(GGUFSource(reader), origin, "gguf", {"gguf": scalars}, path.parent, embedded_tokenizer(reader))


def embedded_tokenizer(reader) -> dict[str, str]:
    """GPT-2's BPE tokenizer from the tokenizer.ggml.* metadata, as vocab.json and merges.txt."""
    fields = reader.fields
    if "tokenizer.ggml.model" not in fields or fields["tokenizer.ggml.model"].contents() != "gpt2":
        return {}
    tokens, merges = fields["tokenizer.ggml.tokens"].contents(), fields["tokenizer.ggml.merges"].contents()
    vocab = {token: index for index, token in enumerate(tokens)}
    return {
        "vocab.json": json.dumps(vocab, ensure_ascii=False),
        "merges.txt": "\n".join(["#version: 0.2", *merges]) + "\n",
    }


def write_gguf(folder, layout, hparams, plan, tensors, dtype, max_shard_bytes):
    """Tensor infos first (from the plan), then the header and metadata, then each tensor as it comes."""
    GGUFWriter, LlamaFileType = gguf_module().GGUFWriter, gguf_module().LlamaFileType
    if dtype not in (torch.float32, torch.float16):
        raise ValueError(f"GGUF export writes float32 or float16, not {dtype}.")
    writer = GGUFWriter(Path(folder) / layout.weights_file, ARCH)
    add_model_metadata(writer, hparams, LlamaFileType.MOSTLY_F16 if dtype == torch.float16 else LlamaFileType.ALL_F32)
    add_tokenizer(writer, Path(folder))
    for item in plan:
        stored = np.float16 if stored_dtype(item.shape, dtype) == torch.float16 else np.float32
        writer.add_tensor_info(
            item.name, item.shape, np.dtype(stored), int(np.prod(item.shape)) * np.dtype(stored).itemsize
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, tensor in tensors:
        writer.write_tensor_data(tensor.to(stored_dtype(tensor.shape, dtype)).contiguous().numpy())
    writer.close()


def stored_dtype(shape, dtype: torch.dtype) -> torch.dtype:
    """llama.cpp keeps 1-D tensors (LayerNorms, biases) in F32 even in an F16 file."""
    return dtype if len(shape) >= 2 else torch.float32


def add_model_metadata(writer, hparams: dict, file_type) -> None:
    writer.add_name("GPT-2")
    writer.add_context_length(hparams["n_positions"])
    writer.add_embedding_length(hparams["n_embd"])
    writer.add_feed_forward_length(hparams["n_inner"] or 4 * hparams["n_embd"])
    writer.add_block_count(hparams["n_layer"])
    writer.add_head_count(hparams["n_head"])
    writer.add_layer_norm_eps(hparams["layer_norm_epsilon"])
    writer.add_file_type(file_type)


def add_tokenizer(writer, folder: Path) -> bool:
    """GPT-2's byte-level BPE from vocab.json + merges.txt, when the converted folder has them."""
    TokenType = gguf_module().TokenType
    if not ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()):
        return False
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    merges = [
        line
        for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#version")
    ]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types([TokenType.CONTROL if token == "<|endoftext|>" else TokenType.NORMAL for token in tokens])
    writer.add_token_merges(merges)
    if "<|endoftext|>" in vocab:
        writer.add_bos_token_id(vocab["<|endoftext|>"])
        writer.add_eos_token_id(vocab["<|endoftext|>"])
    return True
