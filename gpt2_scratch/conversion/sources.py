"""Where tensors come from: `open_checkpoint(src)` looks at what it was given (a model, a dict, a file, a folder, a
Hub repo id), picks the container that reads it (containers/) and returns a `Checkpoint`: the tensors, plus
whatever metadata the format keeps (a config, hyperparameters, a header).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .containers import StateDictSource, TensorSource, read_json
from .containers import llmc
from .containers.gguf import read_gguf
from .containers.safetensors_stream import SafetensorsSource
from .containers.tf_bundle import TFBundleSource
from .containers.torch_pickle import load_torch_pickle, unwrap_state_dict
from .hparams import DEFAULT_HPARAMS
from .layouts.llmc import LLMC


@dataclass
class Checkpoint:
    """Tensors plus what the format says about them."""

    tensors: TensorSource
    origin: str  # for messages and model cards: a path, a repo id, "a state dict"
    container: str  # "state_dict", "model", "safetensors", "torch", "tf-bundle", "llmc", "gguf"
    metadata: dict = field(default_factory=dict)  # config.json, hparams.json, nanoGPT's model_args, headers
    folder: Path | None = None  # where tokenizer files may sit beside the weights
    tokenizer_files: dict[str, str] = field(default_factory=dict)  # a tokenizer stored inside the weights file


# JSON files beside the weights that say what the tensors are: transformers' config, the course's config as this
# package exports it, OpenAI's hyperparameters. Each lands in the metadata under its stem ("config", ...).
SIDE_FILES = ("config.json", "gpt_config.json", "hparams.json")


def side_metadata(folder: Path) -> dict:
    return {name.removesuffix(".json"): read_json(folder / name) for name in SIDE_FILES if (folder / name).is_file()}


def safetensors_checkpoint(folder: Path, files: list[Path], origin: str) -> Checkpoint:
    return Checkpoint(SafetensorsSource(files), origin, "safetensors", side_metadata(folder), folder)


def torch_checkpoint(path: Path, origin: str) -> Checkpoint:
    loaded = load_torch_pickle(path)
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state dict.")
    tensors, metadata = unwrap_state_dict(loaded, origin)
    return Checkpoint(
        StateDictSource(tensors), origin, "torch", {**side_metadata(path.parent), **metadata}, path.parent
    )


def tf_checkpoint(index_path: Path, origin: str) -> Checkpoint:
    """OpenAI's release: model.ckpt.index + .data-* beside hparams.json (and encoder.json, vocab.bpe)."""
    if index_path.suffix != ".index":
        index_path = Path(str(index_path) + ".index")
    return Checkpoint(
        TFBundleSource(index_path), origin, "tf-bundle", side_metadata(index_path.parent), index_path.parent
    )


def llmc_checkpoint(path: Path, origin: str) -> Checkpoint:
    """An llm.c file has no names: its header gives the sizes, the llmc layout the order and the names."""
    header = llmc.read_header(path)
    hparams = {**DEFAULT_HPARAMS, **LLMC.hparams_from_metadata({"llmc_header": header})}
    items = [item for bound in LLMC.bind(hparams) for item in zip(bound.theirs, bound.their_shapes, strict=True)]
    source = llmc.LlmcSource(path, header, items)
    return Checkpoint(source, origin, "llmc", {"llmc_header": header}, path.parent)


def gguf_checkpoint(path: Path, origin: str) -> Checkpoint:
    source, scalars, tokenizer_files = read_gguf(path)
    return Checkpoint(source, origin, "gguf", {"gguf": scalars}, path.parent, tokenizer_files)


def open_folder(folder: Path, origin: str) -> Checkpoint:
    """A checkpoint folder: the first weights file found, in order of preference (safetensors first)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(read_json(index)["weight_map"].values()))
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{index} names shards that are not in {folder}: {', '.join(missing)}")
        return safetensors_checkpoint(folder, [folder / name for name in shards], origin)
    if (folder / "model.safetensors").is_file():
        return safetensors_checkpoint(folder, [folder / "model.safetensors"], origin)
    tf_indexes = sorted(folder.glob("*.index"))  # OpenAI's release: model.ckpt.index
    if len(tf_indexes) == 1:
        return open_file(tf_indexes[0], origin)
    candidates = sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".bin", ".pt", ".pth", ".gguf"})
    if len(candidates) == 1:
        return open_file(candidates[0], origin)
    for name in ("pytorch_model.bin", "ckpt.pt", "model.pth"):
        if (folder / name).is_file():
            return open_file(folder / name, origin)
    found = ", ".join(p.name for p in candidates) or "no weights files"
    raise FileNotFoundError(
        f"cannot tell which weights to read in {folder} (found {found}); pass the weights file itself."
    )


def check_readable(folder: str | os.PathLike) -> None:
    """Read a local checkpoint folder's config and weights as this package's readers do (headers, sizes, pickles
    with weights_only), so that a corrupt file fails with one error naming it before another library reads the
    folder. Anything else (a Hub repo id) is left to the library that reads it."""
    if Path(folder).is_dir():
        open_folder(Path(folder), str(folder))


def sniff(path: Path) -> str:
    """A file's format from its first bytes (extensions lie: llm.c and transformers both use .bin)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if path.name.endswith(".index") or path.name.endswith(".ckpt"):
        return "tf-bundle"
    if head[:4] == b"GGUF":
        return "gguf"
    if len(head) >= 4 and int.from_bytes(head[:4], "little") == 20240326:
        return "llmc"
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    raise ValueError(
        f"{path} is in no format this package reads (safetensors, torch pickle, TensorFlow bundle, llm.c .bin, GGUF)."
    )


def open_file(path: Path, origin: str) -> Checkpoint:
    kind = sniff(path)
    if kind == "safetensors":
        return safetensors_checkpoint(path.parent, [path], origin)
    if kind == "torch":
        return torch_checkpoint(path, origin)
    if kind == "tf-bundle":
        return tf_checkpoint(path, origin)
    if kind == "llmc":
        return llmc_checkpoint(path, origin)
    return gguf_checkpoint(path, origin)


def download(repo_id: str) -> Path:
    """A Hub repository's weights and config, downloaded (or found in the cache) with huggingface_hub."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.txt"]))
        if not any(folder.glob("*.safetensors")):  # an older repository: its weights are a pickle
            folder = Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.txt", "pytorch_model.bin"]))
        return folder
    except Exception as error:  # huggingface_hub raises many kinds: offline, unknown repo, gated, network
        raise FileNotFoundError(
            f"{repo_id!r} is neither a local path nor a Hub repository that could be downloaded ({error})."
        ) from None


def open_checkpoint(src) -> Checkpoint:
    """A Checkpoint from a model, a state dict, a file, a folder, or a Hub repo id."""
    if isinstance(src, torch.nn.Module):
        metadata = {"config": src.config.to_dict()} if hasattr(src, "config") else {}
        return Checkpoint(StateDictSource(src.state_dict()), type(src).__name__, "model", metadata)
    if isinstance(src, Checkpoint):
        return src
    if isinstance(src, Mapping):
        tensors, metadata = unwrap_state_dict(src, "the state dict")
        return Checkpoint(StateDictSource(tensors), "a state dict", "state_dict", metadata)
    path = Path(src)
    if path.is_dir():
        return open_folder(path, str(path))
    if path.is_file():
        return open_file(path, str(path))
    if not path.name.endswith(".index") and Path(str(src) + ".index").is_file():
        return open_file(Path(str(src) + ".index"), str(src))  # TF checkpoints are named by their prefix
    if str(src).count("/") <= 1 and not str(src).startswith((".", "/", "~")):
        return open_folder(download(str(src)), str(src))
    raise FileNotFoundError(f"{src} does not exist.")
