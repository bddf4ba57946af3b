"""gpt2-scratch: GPT-2 written from scratch in PyTorch, as a first-class Hugging Face transformers model.

Importing the package registers the model with transformers' Auto classes (gpt2_scratch.modeling does, when
imported), so that `AutoModelForCausalLM.from_pretrained(checkpoint)` works on our checkpoints without
trust_remote_code. The names below are imported on first use.
"""

import importlib
import sys
from pathlib import Path

__version__ = "0.1.0"

MODEL_NAMES = (
    "PRESETS",
    "ScratchGPT2Config",
    "ScratchGPT2PreTrainedModel",
    "ScratchGPT2Model",
    "ScratchGPT2ForCausalLM",
    "ScratchGPT2ForSequenceClassification",
)
__all__ = list(MODEL_NAMES)


def __getattr__(name: str):
    if name in MODEL_NAMES:
        return getattr(importlib.import_module(".modeling", __name__), name)
    if name == "publish":  # gpt2_scratch.publish(...): the Hub code (huggingface_hub, jinja2) only when used
        from .hub_cards import publish

        return publish
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def started_as_the_command_line() -> bool:
    """Whether this process is `gpt2-scratch` (or `python -m gpt2_scratch.cli`, which reads "-m" here): its --help
    must not wait for torch, and its commands import the model (and so register it) before they use it."""
    program = (getattr(sys, "argv", None) or [""])[0]
    return program == "-m" or Path(program).name == "gpt2-scratch"


if not started_as_the_command_line():
    importlib.import_module(".modeling", __name__)
