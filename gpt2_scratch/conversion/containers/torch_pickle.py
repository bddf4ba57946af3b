"""torch pickles (.pt, .pth, .bin), read with weights_only=True: a state dict, bare or wrapped with training state."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch


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
