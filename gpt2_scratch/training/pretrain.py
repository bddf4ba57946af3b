"""Pretraining from raw text in one call: corpus -> token cache -> windows -> a fresh model -> `train` -> plots."""

from __future__ import annotations

import os
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import set_seed

from ..data import tokenize_corpus, window_loaders
from ..modeling import ScratchGPT2Config, ScratchGPT2ForCausalLM
from ..resources import fetch
from .config import TrainConfig
from .loop import make_accelerator, train
from .figures import plot_attention, plot_temperature

DEFAULT_CORPUS = "the-verdict"
DEFAULT_RUN_FOLDER = "runs/pretrain"  # TrainConfig.out_dir of `gpt2-scratch pretrain`


def pretrain(config: TrainConfig, data=None, preset: str = "tiny", model_overrides: dict | None = None,
             max_length: int | None = None, stride: int | None = None, train_ratio: float = 0.9, tokenizer=None,
             text_column: str = "text", cache_dir: str | os.PathLike | None = None,
             num_proc: int = 1, accelerator: Accelerator | None = None) -> dict:
    """Pretrain a ScratchGPT2 of size `preset` (with `model_overrides` such as n_layer or n_positions) on `data`
    (paths or a `datasets` dataset; default: the-verdict, fetched and sha256-checked) and return the final
    metrics, the checkpoint and the plots. Windows are `max_length` tokens (default: the model's context). The
    corpus is prepared into token shards in the cache first (`tokenize_corpus`, on `num_proc` processes)."""
    accelerator = accelerator or make_accelerator(config)
    if tokenizer is None:
        from ..tokenization import gpt2_tokenizer

        tokenizer = gpt2_tokenizer()
    source = data if data is not None else fetch(DEFAULT_CORPUS)
    with accelerator.main_process_first():  # one process tokenises; the others then read its cache
        tokens = tokenize_corpus(source, tokenizer, cache_dir, text_column, num_proc=num_proc,
                                 show_progress=accelerator.is_main_process)

    overrides = {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.eos_token_id,
                 "eos_token_id": tokenizer.eos_token_id, **(model_overrides or {})}
    model_config = ScratchGPT2Config.from_preset(preset, **overrides)
    max_length = max_length or model_config.n_positions
    if max_length > model_config.n_positions:
        raise ValueError(
            f"max_length={max_length} is longer than the model's context n_positions={model_config.n_positions}; "
            "lower max_length or raise n_positions."
        )
    train_loader, val_loader = window_loaders(tokens, max_length, config.batch_size, stride, train_ratio, config.seed)
    set_seed(config.seed)  # the same seed gives the same initial weights
    model = ScratchGPT2ForCausalLM(model_config)

    config.extra = {
        **config.extra,
        "model": {"preset": preset, **{k: getattr(model_config, k) for k in ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size")},
                  "parameters": model.num_parameters()},
        "data": {"source": str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__,
                 "num_tokens": len(tokens), "train_ratio": train_ratio, "max_length": max_length,
                 "stride": stride or max_length, "train_windows": len(train_loader.dataset),
                 "val_windows": len(val_loader.dataset)},
    }
    result = train(model, tokenizer, train_loader, val_loader, config, accelerator)
    if accelerator.is_main_process:
        out_dir = Path(config.out_dir)
        if accelerator.distributed_type.name == "FSDP":  # its weights are sharded: plot with the gathered checkpoint's
            model = ScratchGPT2ForCausalLM.from_pretrained(result["checkpoint"])
        result["plots"] = {
            "loss": str(out_dir / "loss.png"),
            "temperature": str(plot_temperature(model, tokenizer, config.sample_prompt, out_dir / "temperature.png")),
            "attention": str(plot_attention(model, tokenizer, config.sample_prompt, out_dir / "attention.png")),
        }
    return result
