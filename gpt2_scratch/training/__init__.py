"""A generic causal-LM training loop on Accelerate, and the pieces it is made of.

- `TrainConfig`, `train(model, tokenizer, train_loader, val_loader, config, accelerator=None) -> dict`
- `make_loader`, `EpochShuffleSampler`: loaders whose order depends only on (seed, epoch), for exact resume
- `build_optimizer`, `cosine_schedule_with_warmup`: AdamW without decay on biases/LayerNorm/embeddings; the schedule
- `evaluate_loss`, `sample_continuation`: the measurements taken at every evaluation
- `latest_checkpoint`: the newest `checkpoint-<step>` folder of a run
- `plot_losses`, `plot_temperature`, `plot_attention`: the figures people look at
See docs/pretraining.md.
"""

from .checkpoint import latest_checkpoint
from .config import TrainConfig
from ..data.order import EpochShuffleSampler, make_loader
from .measurements import evaluate_loss, sample_continuation
from .loop import NonFiniteLossError, train
from .optim import build_optimizer, cosine_schedule_with_warmup
from .figures import plot_attention, plot_losses, plot_temperature

__all__ = [
    "TrainConfig",
    "train",
    "NonFiniteLossError",
    "make_loader",
    "EpochShuffleSampler",
    "build_optimizer",
    "cosine_schedule_with_warmup",
    "evaluate_loss",
    "sample_continuation",
    "latest_checkpoint",
    "plot_losses",
    "plot_temperature",
    "plot_attention",
]
