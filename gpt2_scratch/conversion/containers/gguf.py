"""GGUF files, the format of llama.cpp, through the `gguf` package: tensors, the gpt2.* hyperparameter keys and
GPT-2's BPE tokenizer in the tokenizer.ggml.* keys, read and written as llama.cpp's convert_hf_to_gguf.py does.

F32 files, or F16 or Q8_0 (dtype torch.int8, see q8_0.py) for the 2-D tensors with LayerNorms, biases and the
position embedding kept in F32, as llama.cpp's converter does; Q8_0 tensors are read back as float32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...tokenization.vocab_files import read_merges, read_tokenizer_json, read_vocab
from . import TensorSource, q8_0, read_json

ARCH = "gpt2"
# In an F16 file llama.cpp's converter keeps these 2-D tensors in F32, with every 1-D one.
F32_IN_F16 = ("position_embd.weight",)
# The special tokens a GPT-2 tokenizer names (llama.cpp's converter also looks for sep, cls and mask tokens).
SPECIAL_TOKENS = ("bos", "eos", "unk", "pad")


class GGUFSource(TensorSource):
    """A GGUF file's tensors, memory-mapped by gguf's reader; each read copies one tensor out."""

    def __init__(self, reader):
        self.tensors = {tensor.name: tensor for tensor in reader.tensors}
        unsupported = [t.name for t in self.tensors.values() if t.tensor_type.name not in ("F32", "F16", "Q8_0")]
        if unsupported:
            raise ValueError(
                f"this GGUF file has quantized tensors ({unsupported[:3]} ...); only F32, F16 and Q8_0 are read."
            )

    def names(self):
        return list(self.tensors)

    def shape(self, name):
        tensor = self.tensors[name]
        shape = tuple(int(size) for size in tensor.data.shape)
        return shape if tensor.tensor_type.name != "Q8_0" else (*shape[:-1], shape[-1] // q8_0.BLOCK_BYTES * q8_0.BLOCK)

    def read(self, name):
        tensor = torch.from_numpy(np.array(self.tensors[name].data))
        return tensor if self.tensors[name].tensor_type.name != "Q8_0" else q8_0.dequantize(tensor, self.shape(name))


def gguf_module():
    """The `gguf` package, needed for GGUF files only."""
    try:
        import gguf
    except ImportError:
        raise RuntimeError("reading or writing GGUF needs the gguf package: pip install 'gpt2-scratch[gguf]'") from None
    return gguf


def read_gguf(path: Path) -> tuple[GGUFSource, dict, dict[str, str]]:
    """The file's tensors, its scalar metadata keys, and its tokenizer as vocab.json and merges.txt (or none)."""
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
    return GGUFSource(reader), scalars, embedded_tokenizer(reader)


def embedded_tokenizer(reader) -> dict[str, str]:
    """GPT-2's BPE tokenizer from the tokenizer.ggml.* metadata, as vocab.json and merges.txt."""
    fields = reader.fields
    if "tokenizer.ggml.model" not in fields or fields["tokenizer.ggml.model"].contents() != "gpt2":
        return {}
    tokens, merges = fields["tokenizer.ggml.tokens"].contents(), fields["tokenizer.ggml.merges"].contents()
    types = fields["tokenizer.ggml.token_type"].contents() if "tokenizer.ggml.token_type" in fields else []
    unused = {index for index, kind in enumerate(types) if kind == gguf_module().TokenType.UNUSED}
    vocab = {token: index for index, token in enumerate(tokens) if index not in unused}  # not llama.cpp's [PADn]
    return {
        "vocab.json": json.dumps(vocab, ensure_ascii=False),
        "merges.txt": "\n".join(["#version: 0.2", *merges]) + "\n",
    }


def write_gguf(path: Path, hparams: dict, plan, tensors, dtype: torch.dtype, tokenizer_folder: Path) -> None:
    """Tensor infos first (from the plan), then the header and metadata, then each tensor as it comes; the tokenizer
    in `tokenizer_folder`, if any, goes into the metadata."""
    gguf = gguf_module()
    file_types = {torch.float32: "ALL_F32", torch.float16: "MOSTLY_F16", torch.int8: "MOSTLY_Q8_0"}
    if dtype not in file_types:
        raise ValueError(f"GGUF export writes float32, float16 or q8_0 (int8), not {dtype}.")
    vocabulary = gguf_vocabulary(tokenizer_folder, hparams)  # first: a tokenizer that does not fit fails before writing
    writer = gguf.GGUFWriter(path, ARCH)
    add_model_metadata(writer, hparams, getattr(gguf.LlamaFileType, file_types[dtype]))
    if vocabulary is not None:
        add_vocabulary(writer, vocabulary)
    for item in plan:
        stored = stored_dtype(item.name, item.shape, dtype)
        if stored == torch.int8:
            blocks = q8_0.byte_shape(tuple(item.shape))
            writer.add_tensor_info(item.name, blocks, np.dtype(np.uint8), int(np.prod(blocks)),
                                   raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor_info(item.name, item.shape, np.dtype(str(stored).removeprefix("torch.")),
                                   int(np.prod(item.shape)) * stored.itemsize)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for name, tensor in tensors:
        stored = stored_dtype(name, tensor.shape, dtype)
        data = q8_0.quantize(tensor) if stored == torch.int8 else tensor.to(stored).contiguous()
        writer.write_tensor_data(data.numpy())
    writer.close()


def stored_dtype(name: str, shape, dtype: torch.dtype) -> torch.dtype:
    """llama.cpp keeps 1-D tensors (LayerNorms, biases) and the position embedding in F32 even in an F16 or Q8_0
    file."""
    return dtype if len(shape) >= 2 and name not in F32_IN_F16 else torch.float32


def add_model_metadata(writer, hparams: dict, file_type) -> None:
    """The general.* and gpt2.* keys llama.cpp's converter writes for a GPT-2."""
    gguf = gguf_module()
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name("GPT-2")
    writer.add_context_length(hparams["n_positions"])
    writer.add_embedding_length(hparams["n_embd"])
    writer.add_feed_forward_length(hparams["n_inner"])
    writer.add_block_count(hparams["n_layer"])
    writer.add_head_count(hparams["n_head"])
    writer.add_layer_norm_eps(hparams["layer_norm_epsilon"])
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


@dataclass
class GGUFVocabulary:
    """A byte-level BPE tokenizer as GGUF stores it: a token and a type for every id of the model's vocabulary."""

    tokens: list[str]
    types: list[int]  # gguf.TokenType values
    merges: list[str]  # "left right", best first
    special_ids: dict[str, int]  # "bos", "eos", ... -> id
    add_special: dict[str, bool]  # "bos", "eos" -> whether encoding adds that token


def gguf_vocabulary(folder: Path, hparams: dict) -> GGUFVocabulary | None:
    """The tokenizer in `folder` (tokenizer.json, all that transformers 5 saves, or vocab.json + merges.txt) as
    llama.cpp's convert_hf_to_gguf.py stores a GPT-2's, or None when there is none."""
    if (folder / "tokenizer.json").is_file():
        source = folder / "tokenizer.json"
        vocab, merges, added = read_tokenizer_json(source)
    elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        source = folder / "vocab.json"
        vocab, merges = read_vocab(source), read_merges(folder / "merges.txt")
        added = {token: True for token in vocab if looks_special(token)}  # as transformers loads GPT-2's files
    else:
        return None
    size = hparams["vocab_size"]
    if vocab and max(vocab.values()) >= size:
        raise ValueError(
            f"the tokenizer that came with the source ({source.name}) has token ids up to {max(vocab.values())}, "
            f"but the model has {size} tokens: they do not belong together. Convert from a folder that holds the "
            "model's own tokenizer, or none."
        )
    TokenType = gguf_module().TokenType
    by_id = {token_id: token for token, token_id in vocab.items()}
    tokens, types = [], []
    for token_id in range(size):  # llama.cpp wants a token for every row of the embedding
        token = by_id.get(token_id)
        if token is None:
            tokens.append(f"[PAD{token_id}]")
            types.append(TokenType.UNUSED)
        else:
            tokens.append(token)
            if token not in added:
                types.append(TokenType.NORMAL)
            else:
                types.append(TokenType.CONTROL if added[token] or looks_special(token) else TokenType.USER_DEFINED)
    special_ids, add_special = special_tokens(folder, vocab, hparams)
    return GGUFVocabulary(tokens, types, [f"{left} {right}" for left, right in merges], special_ids, add_special)


def looks_special(token: str) -> bool:
    """llama.cpp's converter types an added token like <|endoftext|> as a control token even when not marked special."""
    return token.startswith("<|") and token.endswith("|>")


def special_tokens(folder: Path, vocab: dict[str, int], hparams: dict) -> tuple[dict[str, int], dict[str, bool]]:
    """The special token ids and add-token flags, where llama.cpp's converter takes them: the tokens that
    tokenizer_config.json names, then the model config's bos/eos/pad_token_id."""
    config = read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
    if not isinstance(config, dict):
        raise ValueError(f"{folder / 'tokenizer_config.json'} is not a JSON object; the file is corrupt.")
    ids = {}
    for kind in SPECIAL_TOKENS:
        named = config.get(f"{kind}_token")
        named = named.get("content") if isinstance(named, dict) else named  # an AddedToken's fields
        token_id = vocab.get(named) if isinstance(named, str) else None
        token_id = hparams.get(f"{kind}_token_id") if token_id is None else token_id
        if type(token_id) is int and 0 <= token_id < hparams["vocab_size"]:
            ids[kind] = token_id
    flags = {kind: config.get(f"add_{kind}_token") for kind in ("bos", "eos")}
    return ids, {kind: value for kind, value in flags.items() if isinstance(value, bool)}


def add_vocabulary(writer, vocabulary: GGUFVocabulary) -> None:
    """The tokenizer.ggml.* keys, in the order llama.cpp's converter writes them."""
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")  # GPT-2's pre-tokenizer pattern, which every byte-level BPE here uses
    writer.add_token_list(vocabulary.tokens)
    writer.add_token_types(vocabulary.types)
    writer.add_token_merges(vocabulary.merges)
    for kind, token_id in vocabulary.special_ids.items():
        getattr(writer, f"add_{kind}_token_id")(token_id)
    for kind, value in vocabulary.add_special.items():
        getattr(writer, f"add_add_{kind}_token")(value)
