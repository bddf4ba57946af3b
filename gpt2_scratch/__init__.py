"""gpt2-scratch: GPT-2 written from scratch in PyTorch, as a first-class Hugging Face transformers model.

Importing the package registers the model with transformers' Auto classes, so that
`AutoModelForCausalLM.from_pretrained(checkpoint)` works on our checkpoints without trust_remote_code.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
)

from .modeling import (
    PRESETS,
    ScratchGPT2Config,
    ScratchGPT2ForCausalLM,
    ScratchGPT2ForSequenceClassification,
    ScratchGPT2Model,
    ScratchGPT2PreTrainedModel,
)

__version__ = "0.1.0"

AutoConfig.register(ScratchGPT2Config.model_type, ScratchGPT2Config, exist_ok=True)
AutoModel.register(ScratchGPT2Config, ScratchGPT2Model, exist_ok=True)
AutoModelForCausalLM.register(ScratchGPT2Config, ScratchGPT2ForCausalLM, exist_ok=True)
AutoModelForSequenceClassification.register(ScratchGPT2Config, ScratchGPT2ForSequenceClassification, exist_ok=True)

__all__ = [
    "PRESETS",
    "ScratchGPT2Config",
    "ScratchGPT2PreTrainedModel",
    "ScratchGPT2Model",
    "ScratchGPT2ForCausalLM",
    "ScratchGPT2ForSequenceClassification",
]


def __getattr__(name: str):
    # gpt2_scratch.publish(...) loads the Hub code (huggingface_hub, jinja2) only when it is used.
    if name == "publish":
        from .hub_cards import publish

        return publish
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
