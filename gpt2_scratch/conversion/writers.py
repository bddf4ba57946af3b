"""Writing a converted checkpoint: a complete folder (weights, config, generation config, tokenizer when known,
a short model card), built in a temporary folder beside the destination and renamed into place when done."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from ..progress import progress_bar
from ..provenance import Provenance
from ..staging import staged_folder
from .containers.gguf import write_gguf
from .containers.llmc import write_llmc
from .containers.safetensors_stream import write_sharded
from .engine import ExportItem, IncompleteCheckpointWarning
from .hparams import to_config
from .layout import Layout

DEFAULT_MAX_SHARD_BYTES = 2 * 1024**3
# Tokenizer files a checkpoint folder may hold: transformers' names, and OpenAI's original names for the same data.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")
OPENAI_TOKENIZER_FILES = {"encoder.json": "vocab.json", "vocab.bpe": "merges.txt"}
# The containers whose checkpoints carry a tokenizer: transformers folders (AutoTokenizer reads it) and GGUF (embedded).
TOKENIZER_CONTAINERS = ("safetensors", "gguf")


def write_checkpoint(
    dst: Path,
    layout: Layout,
    hparams: dict,
    plan: list[ExportItem],
    tensors: Iterator[tuple[str, torch.Tensor]],
    dtype: torch.dtype,
    provenance: Provenance | None,
    tokenizer_folder: Path | None = None,
    tokenizer_files: dict[str, str] | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    tokenizer_given: bool = False,
) -> Path:
    """Write `tensors` (in `plan`'s order) in the layout's container, with its config files, into folder `dst`.
    `tokenizer_given`: `tokenizer_folder` was asked for, so it must hold a tokenizer; otherwise a checkpoint that
    ends up without one gets an IncompleteCheckpointWarning saying how to add it."""
    dst = Path(dst)
    with staged_folder(dst) as work:
        copied = copy_tokenizer(tokenizer_folder, tokenizer_files or {}, work)  # first: a GGUF export embeds it
        if tokenizer_given and not copied:
            raise ValueError(
                f"the tokenizer folder {tokenizer_folder} holds no GPT-2 tokenizer: give a folder with encoder.json "
                "and vocab.bpe (OpenAI's files), vocab.json and merges.txt, or tokenizer.json."
            )
        if layout.container == "safetensors":  # a transformers folder; GGUF embeds the files as they came
            complete_tokenizer(work, copied)
        with progress_bar(total=len(plan), desc=f"writing {layout.name}", unit="tensor") as bar:
            WRITERS[layout.container](work, layout, hparams, plan, counting(tensors, bar), dtype, max_shard_bytes)
        layout.write_side_files(work, hparams, dtype)
        if provenance is not None:  # what the model card (gpt2-scratch card / push) says of the weights' origin
            provenance.write(work)
    if not copied and layout.container in TOKENIZER_CONTAINERS:
        warnings.warn(
            f"the source has no tokenizer, so {dst} holds none and AutoTokenizer.from_pretrained will fail on it: "
            "convert again with --tokenizer FOLDER (tokenizer=FOLDER in Python), a folder with GPT-2's encoder.json "
            "and vocab.bpe or a saved tokenizer.",
            IncompleteCheckpointWarning, stacklevel=3,
        )
    return dst


def counting(items: Iterator, bar) -> Iterator:
    for item in items:
        bar.update(1)
        yield item


def write_safetensors(work, layout, hparams, plan, tensors, dtype, max_shard_bytes):
    write_sharded(work, [(item.name, item.shape) for item in plan], dtype, tensors, max_shard_bytes)


def write_torch_pickle(work, layout, hparams, plan, tensors, dtype, max_shard_bytes):
    """The course's and nanoGPT's formats are pickles by nature: the state dict is gathered, then saved once."""
    state_dict = {name: tensor.to(dtype).contiguous() for name, tensor in tensors}
    torch.save(layout.wrap_state_dict(state_dict, hparams), work / layout.weights_file)


def write_llmc_file(work, layout, hparams, plan, tensors, dtype, max_shard_bytes):
    write_llmc(work / layout.weights_file, hparams, tensors, dtype)


def write_gguf_file(work, layout, hparams, plan, tensors, dtype, max_shard_bytes):
    """GGUF records the MLP's width always; the tokenizer copied into `work` goes inside the file."""
    hparams = {**hparams, "n_inner": to_config(hparams).intermediate_size}
    write_gguf(work / layout.weights_file, hparams, plan, tensors, dtype, tokenizer_folder=work)


def copy_tokenizer(source: Path | None, embedded: dict[str, str], work: Path) -> list[str]:
    """Copy the tokenizer that came with the source, if any: files beside its weights (OpenAI's encoder.json and
    vocab.bpe become vocab.json and merges.txt), or one stored inside the weights file (GGUF). Returns the names of
    the files written."""
    copied = []
    if source is not None and source.is_dir():
        for name in TOKENIZER_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, work / name)
                copied.append(name)
        for name, ours in OPENAI_TOKENIZER_FILES.items():
            if (source / name).is_file() and not (work / ours).exists():
                shutil.copyfile(source / name, work / ours)
                copied.append(ours)
    for name, text in embedded.items():
        if not (work / name).exists():
            (work / name).write_text(text, encoding="utf-8")
            copied.append(name)
    return copied


def complete_tokenizer(work: Path, copied: list[str]) -> None:
    """Write transformers' whole tokenizer (tokenizer.json, tokenizer_config.json) beside a bare vocab.json and
    merges.txt: those two alone are no tokenizer that AutoTokenizer can load from a checkpoint folder."""
    if "tokenizer.json" not in copied and {"vocab.json", "merges.txt"} <= set(copied):
        from ..tokenization import gpt2_tokenizer

        gpt2_tokenizer(work).save_pretrained(work)


# Container writers by the name a layout gives in `Layout.container`.
WRITERS = {
    "safetensors": write_safetensors,
    "torch": write_torch_pickle,
    "llmc": write_llmc_file,
    "gguf": write_gguf_file,
}
