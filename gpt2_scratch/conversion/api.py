"""The conversion functions people call: load any checkpoint as our model, and hand our model to transformers."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from ..provenance import Provenance, is_hub_id
from .engine import (
    AssumedHyperparametersWarning,
    LayoutMismatchError,
    assumption_note,
    bind_checked,
    export_plan,
    export_tensors,
    import_tensors,
    our_reader,
    state_dict_reader,
)
from .hparams import TOKEN_EMBEDDING, from_model, gpt2_config, model_class, to_config
from .layouts import LAYOUTS
from .sources import Checkpoint, open_checkpoint
from .writers import DEFAULT_MAX_SHARD_BYTES, write_checkpoint

IN_MEMORY = ("model", "state_dict")  # Checkpoint containers that are no file anyone could name as a source

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "int8": torch.int8,  # 8-bit weights: load_model quantises per output row, a GGUF export writes Q8_0 blocks
    "q8_0": torch.int8,
}

# Which layouts a container can hold, most specific first; detection tries them in this order.
CANDIDATES = {
    "tf-bundle": ["openai-tf"],
    "llmc": ["llmc"],
    "gguf": ["gguf"],
}
TENSOR_DICT_LAYOUTS = ["scratch", "transformers", "nanogpt", "book", "book-openai-compatible"]


def candidate_layouts(checkpoint: Checkpoint) -> list[str]:
    if checkpoint.container in CANDIDATES:
        return CANDIDATES[checkpoint.container]
    model_type = (checkpoint.metadata.get("config") or {}).get("model_type")
    if model_type == "gpt2":
        return ["transformers"]
    if model_type == "scratch-gpt2":
        return ["scratch"]
    if "model_args" in checkpoint.metadata:
        return ["nanogpt"]
    return TENSOR_DICT_LAYOUTS


def layout_named(name: str):
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; choose one of {', '.join(LAYOUTS)}.")
    return LAYOUTS[name]


def bind_any(checkpoint: Checkpoint, layout: str | None = None, **overrides):
    """(layout, bound checkpoint, hyperparameters) for the named layout, or the first candidate that fits."""
    names = [layout] if layout else candidate_layouts(checkpoint)
    failures = []
    for name in names:
        try:
            bound, hparams = bind_checked(layout_named(name), checkpoint, overrides)
        except LayoutMismatchError as error:
            failures.append(error)
            continue
        if note := assumption_note(bound, hparams, overrides):
            warnings.warn(note, AssumedHyperparametersWarning, stacklevel=3)
        return bound.layout, bound, hparams
    if len(failures) == 1:
        raise failures[0]
    closest = min(failures, key=lambda error: error.count)
    tried = ", ".join(repr(error.layout.name) for error in failures)
    raise LayoutMismatchError(
        closest.layout, f"{checkpoint.origin} (fits none of {tried}; closest shown)", None, closest.problems
    )


def detect_layout(src, **overrides) -> str:
    """The name of the layout an unknown checkpoint is in (see LAYOUTS), or one error listing the differences."""
    return bind_any(open_checkpoint(src), **overrides)[0].name


def load_model(src, layout: str | None = None, dtype=torch.float32, **overrides):
    """Any checkpoint (model, state dict, file, folder, Hub repo id) as a ScratchGPT2ForCausalLM, or as a
    ScratchGPT2ForSequenceClassification when it holds a classifier head.

    `layout` names the source's layout (detected when None); `overrides` set hyperparameters the format does
    not record (n_head for a bare state dict whose width is not a multiple of 64, dropouts, ...). dtype "int8"
    gives a model for inference with int8 weights (gpt2_scratch.precision.decoding_model(model, "int8")).
    """
    if parse_dtype(dtype) == torch.int8:
        from gpt2_scratch.precision import decoding_model

        return decoding_model(load_model(src, layout, torch.float32, **overrides), "int8")
    layout_, bound, hparams = bind_any(open_checkpoint(src), layout, **overrides)
    dtype = parse_dtype(dtype)
    # Each tensor is cast as it arrives, so a float32 checkpoint loaded as bfloat16 never holds both copies.
    state_dict = {key: cast(tensor, dtype) for key, tensor in import_tensors(bound, hparams)}
    if dtype is None:  # as stored, in one dtype all the same (GGUF keeps F32 norms in F16 files)
        dtype = state_dict[TOKEN_EMBEDDING].dtype
        state_dict = {key: cast(tensor, dtype) for key, tensor in state_dict.items()}
    with torch.device("meta"):
        model = model_class(hparams)(to_config(hparams))
    model.load_state_dict(state_dict, strict=False, assign=True)
    model.tie_weights()
    leftover = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if leftover:
        raise RuntimeError(f"internal error: the {layout_.name!r} layout left these tensors unset: {leftover}")
    return model.eval()


def cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor


def from_transformers_gpt2(src, **overrides):
    """transformers' GPT-2 (a GPT2LMHeadModel, a state dict, a checkpoint folder or a Hub repo id) as
    ScratchGPT2ForCausalLM (a GPT2ForSequenceClassification becomes ScratchGPT2ForSequenceClassification)."""
    return load_model(src, layout="transformers", **overrides)


def export_state_dict(model, layout: str) -> dict[str, torch.Tensor]:
    """Our model's weights as a state dict in another layout (fine for models that fit in memory twice)."""
    hparams = from_model(model)
    return dict(export_tensors(layout_named(layout), hparams, state_dict_reader(model.state_dict())))


def to_transformers_gpt2(model):
    """Our ScratchGPT2ForCausalLM as transformers' GPT2LMHeadModel with the same weights (our sequence classifier
    as GPT2ForSequenceClassification)."""
    from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel

    hparams = from_model(model)
    state_dict = export_state_dict(model, "transformers")
    gpt2_class = GPT2ForSequenceClassification if hparams["num_labels"] else GPT2LMHeadModel
    with torch.device("meta"):
        gpt2 = gpt2_class(gpt2_config(hparams))
    missing, unexpected = gpt2.load_state_dict(state_dict, strict=False, assign=True)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"internal error: {gpt2_class.__name__} did not take the export: {missing=}, {unexpected=}")
    gpt2.tie_weights()
    return gpt2.eval()


def parse_dtype(dtype) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")
    return DTYPES[dtype]


def convert(
    src,
    dst,
    *,
    from_layout: str | None = None,
    to_layout: str = "scratch",
    dtype=None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    tokenizer=None,
    **overrides,
) -> Path:
    """Convert a checkpoint in any layout into a new folder `dst` in layout `to_layout`, one tensor at a time.

    `dtype` ("float32", "float16", "bfloat16") defaults to the source's. `tokenizer`: a folder whose tokenizer is
    written with the weights (GPT-2's encoder.json + vocab.bpe, or a saved tokenizer), instead of the one beside the
    source; without either, the folder has none and an IncompleteCheckpointWarning says so. `overrides` set
    hyperparameters the source does not record (n_head=...). Returns the folder.
    """
    target = layout_named(to_layout)
    if from_layout:
        layout_named(from_layout)  # a typo fails before any file is read
    checkpoint = open_checkpoint(src)
    source_layout, bound, hparams = bind_any(checkpoint, from_layout, **overrides)
    plan = export_plan(target, hparams)
    source_dtype, tensors = peek_dtype(export_tensors(target, hparams, our_reader(bound, hparams)))
    out_dtype = parse_dtype(dtype) or source_dtype
    if out_dtype == torch.int8 and target.container != "gguf":
        raise ValueError(f"8-bit weights (dtype {dtype!r}) are written as GGUF's Q8_0 only; the {to_layout!r} layout "
                         "takes float32, float16 or bfloat16.")
    provenance = None if checkpoint.container in IN_MEMORY else Provenance(  # a model in memory: its run says
        kind="converted", source=checkpoint.origin, layout=source_layout.name,
        base_model=checkpoint.origin if is_hub_id(checkpoint.origin) else None,
        dtype=str(out_dtype).removeprefix("torch.") if out_dtype != source_dtype else None,
    )
    return write_checkpoint(
        Path(dst),
        target,
        hparams,
        plan,
        tensors,
        out_dtype,
        provenance,
        tokenizer_folder=Path(tokenizer) if tokenizer is not None else checkpoint.folder,
        tokenizer_files={} if tokenizer is not None else checkpoint.tokenizer_files,
        max_shard_bytes=max_shard_bytes,
        tokenizer_given=tokenizer is not None,
    )


def peek_dtype(tensors: Iterator[tuple[str, torch.Tensor]]) -> tuple[torch.dtype, Iterator[tuple[str, torch.Tensor]]]:
    """The first tensor's dtype (the source's), and the tensors again; the first one is not kept once written."""
    first = next(tensors)
    return first[1].dtype, itertools.chain([first], tensors)


def save_model(model, dst, layout: str = "scratch", dtype=None, **kwargs) -> Path:
    """Write our in-memory model as a checkpoint folder in any exportable layout."""
    return convert(model, dst, from_layout="scratch", to_layout=layout, dtype=dtype, **kwargs)
