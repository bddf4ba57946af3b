"""Every setting of a training run, in one dataclass that is also written to the checkpoint as training_args.json."""

from __future__ import annotations

import os
from dataclasses import MISSING, asdict, dataclass, field

from ..generation import check_sampling


def setting(default=MISSING, help: str = "", **cli):
    """A field whose help (and command-line spelling, see gpt2_scratch/cli/settings.py) lives with its default."""
    return field(default=default, metadata={"help": help, **cli})


MIXED_PRECISIONS = ("no", "fp16", "bf16")


@dataclass
class TrainConfig:
    """Settings of `train()`, written to the checkpoint as training_args.json; `gpt2-scratch pretrain` and
    `gpt2-scratch instruct` take them as options. The defaults are pretraining's (the course's 10 epochs on one
    text); instruction tuning replaces some (gpt2_scratch/instruct/finetune.py, TRAINING_DEFAULTS). Steps are
    optimizer steps: one step = grad_accum_steps micro-batches per process."""

    out_dir: str = setting(help="folder for checkpoints (checkpoint-<step>/), the metrics log and plots",
                           flags=("--out-dir", "--out"))
    epochs: int = setting(10, "passes over the training data")
    max_steps: int | None = setting(None, "stop after this many optimizer steps, whatever --epochs says")
    learning_rate: float = setting(4e-4, "peak learning rate of AdamW", flags=("--lr",))
    weight_decay: float = setting(0.1, "AdamW's decoupled weight decay, on weight matrices only")
    warmup_steps: int = setting(0, "linear warmup from lr/warmup_steps to the peak")
    min_lr_ratio: float = setting(0.1, "the cosine decay ends at the peak lr times this (1.0: a constant rate)")
    grad_clip: float | None = setting(1.0, "clip the global gradient norm to this (0: no clipping)")
    grad_accum_steps: int = setting(1, "micro-batches accumulated into one optimizer step")
    batch_size: int = setting(8, "micro-batch size per process")
    eval_every: int = setting(50, "evaluate (losses, perplexity, sample) every N steps (0: at the end only)")
    eval_batches: int | None = setting(5, "batches of each loader per evaluation (0: all)")
    save_every: int = setting(0, "write a checkpoint every N steps (0: at the end only)")
    keep_last: int = setting(2, "checkpoints kept (older ones are deleted)")
    seed: int = setting(123, "seeds Python, NumPy and torch, so that a run repeats exactly")
    mixed_precision: str = setting("no", "Accelerate's autocast: no, fp16, bf16, or auto (what `accelerate config` "
                                   "chose, else bf16 on GPUs that have it, fp16 on older GPUs, none on CPU)",
                                   choices=("auto", *MIXED_PRECISIONS))
    report_to: list[str] | str | None = setting(None, "trackers Accelerate supports: tensorboard, wandb, ...")
    resume: bool | str = setting(False, "continue from the latest checkpoint in the run folder, or from CHECKPOINT",
                                 nargs="?", const=True, metavar="CHECKPOINT")
    sample_prompt: str = setting("Every effort moves you", "the prompt continued at every evaluation",
                                 flags=("--prompt",), free_text=True)
    sample_max_new_tokens: int = setting(25, "length of that continuation; this and the two below are also "
                                         "written to the checkpoint's generation config", flags=("--max-new-tokens",))
    sample_top_k: int | None = setting(25, "sample it among the k likeliest tokens (0: all)", flags=("--top-k",))
    sample_temperature: float = setting(1.4, "its temperature (0: greedy)", flags=("--temperature",))
    log_file: str = setting("metrics.jsonl", "the metrics log inside the run folder, one JSON object per evaluation")
    peak_flops: float | None = setting(None, "the device's peak FLOP/s for the MFU estimate (default: looked up "
                                       "from the GPU's name)")
    progress_bar: bool = True  # a tqdm bar on the main process (the command line's --no-progress)
    extra: dict = field(default_factory=dict)  # facts about the run (data, model size) recorded with the settings

    def __post_init__(self):
        positive = {"epochs": self.epochs, "grad_accum_steps": self.grad_accum_steps, "batch_size": self.batch_size}
        positive["keep_last"] = self.keep_last
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}.")
        for name in ("eval_every", "save_every", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be 0 or more, got {getattr(self, name)!r}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"TrainConfig.max_steps must be positive or None, got {self.max_steps!r}.")
        if self.learning_rate <= 0:
            raise ValueError(f"TrainConfig.learning_rate must be positive, got {self.learning_rate!r}.")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}.")
        if self.mixed_precision == "auto":
            self.mixed_precision = automatic_mixed_precision()
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"TrainConfig.mixed_precision must be 'auto', 'no', 'fp16' or 'bf16', got "
                             f"{self.mixed_precision!r}.")
        self.eval_batches = self.eval_batches or None  # 0 evaluates on every batch, as None does
        self.grad_clip = self.grad_clip or None  # 0 clips nothing, as None does
        # sample_top_k 0 (or None) samples from all tokens.
        check_sampling(self.sample_max_new_tokens, self.sample_temperature, self.sample_top_k or None)

    def to_dict(self) -> dict:
        return asdict(self)


def automatic_mixed_precision() -> str:
    """What `accelerate config` chose, else bf16 on GPUs that have it, fp16 on older GPUs, none on CPU."""
    configured = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if configured:
        return configured
    import torch

    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"
