"""The ScratchGPT2 model: configuration and models (base, causal LM, sequence classification).

Importing it registers the model with transformers' Auto classes, so that `AutoModelForCausalLM.from_pretrained`
loads our checkpoints without trust_remote_code. (This file is not part of the remote code copied beside a
checkpoint: there only the two model files travel, and the config's `auto_map` names them.)
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

from .configuration_scratch_gpt2 import PRESETS, ScratchGPT2Config
from .modeling_scratch_gpt2 import (
    ScratchGPT2ForCausalLM,
    ScratchGPT2ForSequenceClassification,
    ScratchGPT2Model,
    ScratchGPT2PreTrainedModel,
)

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
