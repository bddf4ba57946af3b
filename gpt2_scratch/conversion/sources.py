"""Where tensors come from: a state dict, safetensors files, a torch pickle, and (in their own modules) a
TensorFlow bundle, an llm.c file or a GGUF file, all behind one small interface that reads lazily.

`open_checkpoint(src)` looks at what it was given (a model, a dict, a file, a folder, a Hub repo id) and
returns a `Checkpoint`: the tensors, plus whatever metadata the format keeps (a config, hyperparameters).
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .transforms import Shape


class TensorSource:
    """Named tensors whose shapes are known before their data is read."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def shape(self, name: str) -> Shape:
        raise NotImplementedError

    def read(self, name: str) -> torch.Tensor:
        raise NotImplementedError


class StateDictSource(TensorSource):
    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        self.tensors = tensors

    def names(self):
        return list(self.tensors)

    def shape(self, name):
        return tuple(self.tensors[name].shape)

    def read(self, name):
        return self.tensors[name]


class SafetensorsSource(TensorSource):
    """One or several (sharded) safetensors files; each read is one tensor's bytes (see safetensors_stream)."""

    def __init__(self, files: list[Path]):
        from .safetensors_stream import SafetensorsFile

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


@dataclass
class Checkpoint:
    """Tensors plus what the format says about them."""

    tensors: TensorSource
    origin: str  # for messages and model cards: a path, a repo id, "a state dict"
    container: str  # "state_dict", "model", "safetensors", "torch", "tf-bundle", "llmc", "gguf"
    metadata: dict = field(default_factory=dict)  # config.json, hparams.json, nanoGPT's model_args, headers
    folder: Path | None = None  # where tokenizer files may sit beside the weights
    tokenizer_files: dict[str, str] = field(default_factory=dict)  # a tokenizer stored inside the weights file


# Dicts that checkpoints wrap their state dict in: the book's training checkpoints, nanoGPT's ckpt.pt.
STATE_DICT_WRAPPERS = ("model_state_dict", "model", "state_dict")


def unwrap_state_dict(loaded: Mapping, origin: str) -> tuple[dict, dict]:
    """(state dict, metadata) from a loaded pickle: a bare state dict or one wrapped with training state."""
    if all(isinstance(value, torch.Tensor) for value in loaded.values()):
        return dict(loaded), {}
    for key in STATE_DICT_WRAPPERS:
        if isinstance(loaded.get(key), Mapping):
            metadata = {k: v for k, v in loaded.items() if k != key and not k.startswith("optimizer")}
            return dict(loaded[key]), metadata
    kinds = ", ".join(f"{k!r}: {type(v).__name__}" for k, v in list(loaded.items())[:8])
    raise ValueError(
        f"{origin} holds a dict that is neither a state dict nor one wrapped under {STATE_DICT_WRAPPERS} ({kinds})."
    )


def load_torch_pickle(path: Path) -> dict:
    """torch.load with weights_only=True: a pickle that wants to run code is refused, never executed."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
        return torch.load(path, map_location="cpu", weights_only=True)  # an old (non-zip) pickle cannot be mapped
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            raise unsafe_pickle_error(path, error) from None
        raise unreadable_pickle_error(path, error) from None
    except (RuntimeError, EOFError, KeyError, ValueError, IndexError) as error:
        raise unreadable_pickle_error(path, error) from None


def unreadable_pickle_error(path: Path, error: Exception) -> ValueError:
    if path.stat().st_size == 0:
        what = "is empty"
    elif isinstance(error, RuntimeError):  # torch's own reader says what it found: keep its first sentence
        what = f"is truncated or corrupt ({first_line(error).split('. ')[0]})"
    else:
        what = "is truncated or corrupt"
    return ValueError(f"{path} {what}: it cannot be read as a torch checkpoint; restore it from a good copy.")


def unsafe_pickle_error(path: Path, error: Exception) -> ValueError:
    # torch's message is general advice around one line that says what the pickle wanted: the last but one.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[-2] if len(lines) > 2 else first_line(error)
    return ValueError(
        f"refusing to load {path}: it is a pickle that needs more than tensors and plain containers to load "
        f"({reason}). Unpickling it could run arbitrary code: use a copy from a source you trust (if you trust "
        "this one, load it yourself with torch.load(weights_only=False) and pass what it holds)."
    )


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): repair it or restore it from a good copy.") from None


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
        from .tf_bundle import tf_checkpoint

        return tf_checkpoint(path, origin)
    if kind == "llmc":
        from .layouts.llmc import llmc_checkpoint

        return llmc_checkpoint(path, origin)
    from .layouts.gguf import gguf_checkpoint

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
