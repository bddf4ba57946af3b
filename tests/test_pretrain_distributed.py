"""Data parallelism changes nothing but speed: two CPU processes (torchrun, gloo) with a batch of 2 each give the
losses and weights of one process with a batch of 4."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.utils import set_seed
from safetensors.torch import load_file

import gpt2_scratch
from gpt2_scratch.data import tokenize_corpus, window_loaders
from gpt2_scratch.tokenization import gpt2_tokenizer
from gpt2_scratch.training import TrainConfig, train

LAUNCHED = """
import sys
sys.path.insert(0, sys.argv[1])
from test_pretrain_distributed import train_tiny
from gpt2_scratch.tokenization import gpt2_tokenizer
train_tiny(sys.argv[2], 2, sys.argv[3], gpt2_tokenizer(sys.argv[4]))
"""


def train_tiny(out_dir, batch_size, data, tokenizer, accelerator=None, **settings):
    """Three steps (or `settings`' max_steps) of a tiny model without dropout, evaluated on every window after each
    step."""
    tokens = tokenize_corpus(data, tokenizer, cache_dir=Path(out_dir).parent / "cache", show_progress=False)
    train_loader, val_loader = window_loaders(tokens, max_length=32, batch_size=batch_size, seed=5)
    set_seed(0)
    config = gpt2_scratch.ScratchGPT2Config.from_preset("tiny", n_positions=32, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0)
    model = gpt2_scratch.ScratchGPT2ForCausalLM(config)
    settings = dict(max_steps=3, learning_rate=1e-3, warmup_steps=1, eval_every=1, eval_batches=None,
                    sample_max_new_tokens=2, progress_bar=False) | settings
    return train(model, tokenizer, train_loader, val_loader, TrainConfig(out_dir=str(out_dir), **settings), accelerator)


def test_two_processes_match_one_with_the_same_global_batch(shared_data, tokenizer_dir, tmp_path):
    data = shared_data / "the-verdict.txt"
    train_tiny(tmp_path / "one", 4, data, gpt2_tokenizer(tokenizer_dir))
    script = tmp_path / "launched.py"
    script.write_text(LAUNCHED)
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(Path(__file__).parent), str(tmp_path / "two"), str(data), str(tokenizer_dir)],
        capture_output=True, text=True,
    )
    assert two.returncode == 0, two.stderr[-3000:]

    def rows(run):
        return [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    one_rows, two_rows = rows("one"), rows("two")
    assert [r["step"] for r in one_rows] == [r["step"] for r in two_rows] == [0, 1, 2, 3]
    assert [r["tokens_seen"] for r in two_rows] == [0, 128, 256, 384]  # 2 processes x 2 windows x 32 tokens a step
    for a, b in zip(one_rows, two_rows):
        for key in ("train_loss", "val_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), (key, a["step"])
        if a["step"]:
            assert a["step_loss"] == pytest.approx(b["step_loss"], rel=1e-5)
    assert one_rows[-1]["val_loss"] < one_rows[0]["val_loss"] - 0.05  # the steps did train

    one = load_file(tmp_path / "one" / "checkpoint-3" / "model.safetensors")
    two = load_file(tmp_path / "two" / "checkpoint-3" / "model.safetensors")
    # Sums taken in another order differ in the last bits; Adam, dividing by sqrt(v), turns that into a small
    # share of one update (lr = 1e-3) where a gradient is near zero: 3 steps stay within 1% of lr.
    assert all(torch.allclose(one[name], two[name], atol=1e-5, rtol=0) for name in one)
    assert json.loads((tmp_path / "two" / "checkpoint-3" / "training_args.json").read_text())["extra"]["num_processes"] == 2
