"""Models loaded through transformers' `from_pretrained`, refused unless the checkpoint fits them.

transformers loads a checkpoint that lacks some of the model's tensors, holds others, or holds them in other
shapes: it initialises the gaps at random and says so only in a logged table. Every place this package loads a model
through transformers goes through `load_pretrained`, which refuses such a checkpoint with one error listing every
difference, as `load_model` does for the layouts it reads itself. `check_fits` refuses the same checkpoints from
their safetensors headers alone, for callers that copy the weights rather than load them, and `read_weights_for`
reads a checkpoint folder's weights for a model already built (a run being resumed, a model inside LoRA layers),
refused in the same way.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .engine import problem_lines
from .sources import check_readable, open_folder


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not fit the model it is loaded into; the message lists every difference."""

    def __init__(self, origin: str, model_name: str, problems: dict[str, list[str]], missing: list[str]):
        self.problems, self.missing = problems, missing  # missing: the names of the model's tensors it lacks
        lines = [f"{origin} does not fit {model_name}; loading it would leave random weights in the model:"]
        lines += problem_lines(problems)
        lines.append(
            "  Load a complete checkpoint of this model (a partial copy or another model's weights will not do); "
            "`gpt2-scratch convert` reads other layouts."
        )
        super().__init__("\n".join(lines))


def load_pretrained(model_class, name_or_path, *, may_be_new=(), may_be_dropped=(), **kwargs):
    """`model_class.from_pretrained(name_or_path, **kwargs)`, refused (CheckpointMismatchError) when a tensor of the
    model is missing from the checkpoint or has another shape there, or the checkpoint holds a tensor the model has
    no place for.

    may_be_new: the model's tensors the caller means to start afresh (a new classifier head), missing or mis-shaped.
    may_be_dropped: the checkpoint's tensors the caller means to leave out (a causal LM's head under a classifier).
    """
    check_readable(name_or_path)  # a corrupt file fails here, in one error naming it, not deep in transformers
    # Mis-shaped tensors are let through here only to be listed with the rest below.
    model, info = model_class.from_pretrained(
        name_or_path, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
    )
    ours = model.state_dict()
    missing = {name: ours[name].shape for name in sorted(set(info["missing_keys"]) - set(may_be_new))}
    unexpected = sorted(set(info["unexpected_keys"]) - set(may_be_dropped))
    wrong = [entry for entry in sorted(info["mismatched_keys"]) if entry[0] not in may_be_new]
    refuse_unless_fits(str(name_or_path), type(model).__name__, missing, unexpected, wrong)
    return model


def check_fits(model_class, config, shapes: dict[str, tuple[int, ...]], origin: str) -> None:
    """Refuse (CheckpointMismatchError), as `load_pretrained` would, a checkpoint whose tensors (`shapes`: name ->
    shape, as its headers give them) are not exactly those of `model_class(config)`, without loading any weights:
    the model is built on the meta device. A tied head may be stored or not, as from_pretrained accepts either."""
    with torch.device("meta"):
        model = model_class(config)
    refuse_unless_shapes_fit(model, shapes, origin)


def read_weights_for(model, folder: str | Path) -> dict[str, torch.Tensor]:
    """The weights of checkpoint folder `folder` (model.safetensors, or its shards), read for `model` as it is built
    (its names and shapes: trained inside LoRA layers, or sharded, whose shapes are the whole tensors'): refused
    (CheckpointMismatchError) unless they are exactly its tensors, a tied head stored or not."""
    tensors = open_folder(Path(folder), str(folder)).tensors
    refuse_unless_shapes_fit(model, {name: tensors.shape(name) for name in tensors.names()}, str(folder))
    return {name: tensors.read(name) for name in tensors.names()}


def refuse_unless_shapes_fit(model, shapes: dict[str, tuple[int, ...]], origin: str) -> None:
    """Refuse (CheckpointMismatchError) stored tensors (`shapes`: name -> shape) that are not exactly `model`'s."""
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    tied = set(getattr(model, "_tied_weights_keys", None) or ()) if model.config.tie_word_embeddings else set()
    missing = {name: expected[name] for name in sorted(set(expected) - set(shapes) - tied)}
    wrong = [(name, shapes[name], shape) for name, shape in sorted(expected.items())
             if name in shapes and tuple(shapes[name]) != shape]
    refuse_unless_fits(origin, type(model).__name__, missing, sorted(set(shapes) - set(expected)), wrong)


def refuse_unless_fits(origin: str, model_name: str, missing: dict, unexpected: list[str], wrong: list[tuple]):
    """Raise CheckpointMismatchError listing `missing` (name -> the model's shape), `unexpected` names and `wrong`
    (name, stored shape, expected shape) entries, if there is any."""
    problems = {
        "missing": [f"{name} {list(shape)}" for name, shape in missing.items()],
        "unexpected": unexpected,
        "wrong shape": [f"{name} is {list(stored)}, expected {list(shape)}" for name, stored, shape in wrong],
    }
    if any(problems.values()):
        raise CheckpointMismatchError(origin, model_name, problems, list(missing))
