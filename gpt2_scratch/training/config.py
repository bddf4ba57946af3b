"""Every setting of a training run, in one dataclass that is also written to the checkpoint as training_args.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..generation import check_sampling


@dataclass
class TrainConfig:
    """Settings of `train()`. Steps are optimizer steps (one step = grad_accum_steps micro-batches per process).

    Args:
        out_dir: folder for checkpoints (`checkpoint-<step>/`), the metrics log and plots.
        epochs: passes over the training loader.
        max_steps: stop after this many optimizer steps in all (None: run every epoch to the end).
        learning_rate: peak learning rate of AdamW.
        weight_decay: AdamW's decoupled weight decay, applied to weight matrices only.
        warmup_steps: linear warmup from lr/warmup_steps to the peak.
        min_lr_ratio: the cosine decay ends at learning_rate * min_lr_ratio (1.0 keeps the rate constant).
        grad_clip: clip the global gradient norm to this (None or 0: no clipping).
        grad_accum_steps: micro-batches accumulated into one optimizer step.
        batch_size: micro-batch size per process; recorded here, used by whoever builds the loaders.
        eval_every: evaluate (losses, perplexity, sample) every N steps; 0 evaluates only at the end.
        eval_batches: batches of each loader to evaluate on (None: all of them).
        save_every: write a checkpoint every N steps; 0 writes only the final one.
        keep_last: how many checkpoints to keep (older ones are deleted).
        seed: seeds Python, NumPy and torch, so a run repeats exactly.
        mixed_precision: "no", "fp16" or "bf16" (Accelerate's autocast).
        report_to: trackers Accelerate supports ("tensorboard", "wandb", ...), or None.
        resume: False, True (latest checkpoint in out_dir), or the path of a checkpoint folder.
        sample_prompt: the prompt continued at every evaluation, to watch the model learn.
        sample_max_new_tokens / sample_top_k / sample_temperature: how that continuation is sampled; they
            are also written to the checkpoint's generation config.
        log_file: the metrics log inside out_dir, one JSON object per evaluation.
        peak_flops: the device's peak FLOP/s for the MFU estimate (None: looked up from the GPU's name).
        progress_bar: show a tqdm bar on the main process.
    """

    out_dir: str
    epochs: int = 1
    max_steps: int | None = None
    learning_rate: float = 4e-4
    weight_decay: float = 0.1
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0
    grad_accum_steps: int = 1
    batch_size: int = 8
    eval_every: int = 50
    eval_batches: int | None = 5
    save_every: int = 0
    keep_last: int = 2
    seed: int = 123
    mixed_precision: str = "no"
    report_to: list[str] | str | None = None
    resume: bool | str = False
    sample_prompt: str = "Every effort moves you"
    sample_max_new_tokens: int = 25
    sample_top_k: int | None = 25
    sample_temperature: float = 1.4
    log_file: str = "metrics.jsonl"
    peak_flops: float | None = None
    progress_bar: bool = True
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
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"TrainConfig.mixed_precision must be 'no', 'fp16' or 'bf16', got {self.mixed_precision!r}.")
        # sample_top_k 0 (or None) samples from all tokens.
        check_sampling(self.sample_max_new_tokens, self.sample_temperature, self.sample_top_k or None)

    def to_dict(self) -> dict:
        return asdict(self)
