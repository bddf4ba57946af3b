"""FSDP2 through Accelerate, on two CPU processes over gloo, launched with the shipped examples/accelerate/fsdp.yaml:
the losses of one process with the same global batch, a checkpoint gathered into a normal model folder that
AutoModelForCausalLM loads, each process's optimizer shard, and an exact resume from it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

import gpt2_scratch
from gpt2_scratch.tokenization import gpt2_tokenizer
from test_pretrain_distributed import train_tiny

REPO = Path(__file__).resolve().parents[1]

LAUNCHED = """
import sys
sys.path.insert(0, sys.argv[1])
from test_pretrain_distributed import train_tiny
from gpt2_scratch.tokenization import gpt2_tokenizer
train_tiny(sys.argv[2], 2, sys.argv[3], gpt2_tokenizer(sys.argv[4]), resume=sys.argv[5] == "resume", max_steps=4,
           save_every=2, keep_last=3)
"""


def launch_fsdp(script, out_dir, data, tokenizer_dir, resume=False):
    """The script on two CPU processes, launched with the shipped FSDP configuration."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "examples" / "accelerate" / "fsdp.yaml"), str(script), str(Path(__file__).parent),
               str(out_dir), str(data), str(tokenizer_dir), "resume" if resume else "new"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "training on 2 process(es), distributed type FSDP" in done.stdout


@pytest.mark.slow
def test_fsdp_on_two_cpu_processes_matches_one_and_resumes_exactly(shared_data, tokenizer_dir, tmp_path):
    data = shared_data / "the-verdict.txt"
    train_tiny(tmp_path / "one", 4, data, gpt2_tokenizer(tokenizer_dir), max_steps=4)
    script = tmp_path / "launched.py"
    script.write_text(LAUNCHED)
    launch_fsdp(script, tmp_path / "whole", data, tokenizer_dir)

    def rows(run):
        return [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    one, whole = rows("one"), rows("whole")
    assert [r["step"] for r in one] == [r["step"] for r in whole] == [0, 1, 2, 3, 4]
    for a, b in zip(one, whole):
        for key in ("train_loss", "val_loss") + (("step_loss",) if a["step"] else ()):
            assert a[key] == pytest.approx(b[key], rel=1e-5), (key, a["step"])

    checkpoint = tmp_path / "whole" / "checkpoint-4"
    args = json.loads((checkpoint / "training_args.json").read_text())["extra"]
    assert (args["num_processes"], args["distributed_type"], args["device"]) == (2, "FSDP", "cpu:0")
    assert sorted(p.name for p in checkpoint.glob("optimizer*.pt")) == ["optimizer_0.pt", "optimizer_1.pt"]
    # The gathered weights: a normal model folder, the weights of one process's run within float tolerance.
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert isinstance(model, gpt2_scratch.ScratchGPT2ForCausalLM)
    reference = load_file(tmp_path / "one" / "checkpoint-4" / "model.safetensors")
    weights = model.state_dict()
    for name, tensor in reference.items():
        assert torch.allclose(weights[name], tensor, atol=1e-5, rtol=0), name

    # Resumed from checkpoint-2 (weights, optimizer shards, RNG, data position): the same weights, bit for bit.
    (tmp_path / "resumed").mkdir()
    shutil.copytree(tmp_path / "whole" / "checkpoint-2", tmp_path / "resumed" / "checkpoint-2")
    (tmp_path / "resumed" / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in whole[:3]))
    launch_fsdp(script, tmp_path / "resumed", data, tokenizer_dir, resume=True)
    resumed = load_file(tmp_path / "resumed" / "checkpoint-4" / "model.safetensors")
    uninterrupted = load_file(checkpoint / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[name], uninterrupted[name]) for name in uninterrupted)
    assert rows("resumed")[-1]["val_loss"] == whole[-1]["val_loss"]
