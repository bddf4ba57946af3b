"""The ScratchGPT2 model: configuration and models (base, causal LM, sequence classification)."""

from .configuration_scratch_gpt2 import PRESETS, ScratchGPT2Config
from .modeling_scratch_gpt2 import (
    ScratchGPT2ForCausalLM,
    ScratchGPT2ForSequenceClassification,
    ScratchGPT2Model,
    ScratchGPT2PreTrainedModel,
)

__all__ = [
    "PRESETS",
    "ScratchGPT2Config",
    "ScratchGPT2PreTrainedModel",
    "ScratchGPT2Model",
    "ScratchGPT2ForCausalLM",
    "ScratchGPT2ForSequenceClassification",
]
