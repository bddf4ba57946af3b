"""Model cards and Hub publishing for gpt2_scratch checkpoints.

- `build_card(ckpt_dir, repo_id=None)`: the huggingface_hub `ModelCard` of a checkpoint, from what its run recorded.
- `write_card(ckpt_dir, repo_id=None, output=None)`: the same, written to README.md (atomically).
- `stage(ckpt_dir, staging_dir, ...)`: the clean folder a Hub repository should hold.
- `publish(ckpt_dir, repo_id, private=..., revision=..., create_pr=...)`: stage and upload in one commit.
"""

from .card import build_card, eval_results, write_card
from .publish import publish, stage
from ..provenance import KINDS
from .records import read_records

__all__ = ["KINDS", "build_card", "eval_results", "publish", "read_records", "stage", "write_card"]
