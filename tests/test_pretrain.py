"""Pretraining end to end on the real corpus: the loss falls, the checkpoint is a complete transformers model,
a NaN stops the run before saving the weights that gave it, a resumed run follows its new settings, and a run killed
with SIGKILL resumes exactly."""

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

import gpt2_scratch
from gpt2_scratch.data import prepare_corpus, tokenize_corpus, window_loaders
from gpt2_scratch.provenance import Provenance
from gpt2_scratch.training import NonFiniteLossError, TrainConfig, evaluate_loss, train
from gpt2_scratch.training.decoding_models import generate_text
from gpt2_scratch.training.loop import PretrainLoop, make_accelerator
from gpt2_scratch.training.pretrain import pretrain

TINY = dict(n_positions=64)  # the tiny preset (2 layers, 64 wide) with a short context: fast on a CPU


def test_tiny_pretraining_learns_and_the_checkpoint_reloads(shared_data, tokenizer, tmp_path):
    config = TrainConfig(out_dir=str(tmp_path / "run"), epochs=4, learning_rate=3e-3, warmup_steps=5, batch_size=8,
                         eval_every=1000, eval_batches=4, sample_max_new_tokens=5, progress_bar=False)
    result = pretrain(config, data=shared_data / "the-verdict.txt", preset="tiny", model_overrides=TINY,
                      max_length=32, tokenizer=tokenizer, cache_dir=tmp_path / "cache")

    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    start, end = rows[0], rows[-1]
    assert start["step"] == 0 and abs(start["val_loss"] - math.log(50257)) < 0.3  # a fresh model is near-uniform
    assert end["step"] == result["step"] == 4 * (144 // 8)  # 4 epochs of 18 batches (4630 tokens / 32 = 144 windows)
    assert end["train_loss"] < 7.0 and end["val_loss"] < 7.5, rows  # well below ln(50257) = 10.8
    assert end["tokens_seen"] == end["step"] * 8 * 32
    assert end["val_perplexity"] == pytest.approx(math.exp(end["val_loss"]))
    assert isinstance(end["sample"], str) and end["sample"]
    for plot in ("loss", "temperature", "attention"):
        assert result["plots"][plot].endswith(f"{plot}.png")
        assert open(result["plots"][plot], "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    checkpoint = tmp_path / "run" / f"checkpoint-{end['step']}"
    assert result["checkpoint"] == str(checkpoint)
    args = json.loads((checkpoint / "training_args.json").read_text())
    assert args["learning_rate"] == 3e-3 and args["extra"]["data"]["num_tokens"] == 5145
    assert json.loads((checkpoint / "metrics.json").read_text())["val_loss"] == end["val_loss"]
    assert Provenance.read(checkpoint).kind == "pretrained" and Provenance.read(checkpoint).datasets == ["the-verdict.txt"]

    # A plain transformers load gives the trained model: its validation loss is the one logged at the end.
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert isinstance(model, gpt2_scratch.ScratchGPT2ForCausalLM)
    assert AutoTokenizer.from_pretrained(checkpoint)("Every effort").input_ids == tokenizer("Every effort").input_ids
    tokens = tokenize_corpus(shared_data / "the-verdict.txt", tokenizer, cache_dir=tmp_path / "cache")
    _, val_loader = window_loaders(tokens, max_length=32, batch_size=8)
    assert evaluate_loss(model, val_loader) == pytest.approx(end["val_loss"], rel=1e-5)

    # Greedy generation through the checkpoint folder equals argmax decoding with the model's own forward.
    text = generate_text(tmp_path / "run", "Every effort moves you", max_new_tokens=8, temperature=0)
    ids = tokenizer("Every effort moves you", return_tensors="pt").input_ids
    with torch.no_grad():
        for _ in range(8):
            ids = torch.cat([ids, model(ids).logits[:, -1:].argmax(-1)], dim=1)
    assert text == tokenizer.decode(ids[0, -8:])
    with pytest.raises(ValueError, match="has 64 tokens, .* shorten the prompt to fewer than 64 tokens"):
        generate_text(tmp_path / "run", " word" * 64, max_new_tokens=8)


class FailsAtStep(gpt2_scratch.ScratchGPT2ForCausalLM):
    """A model whose loss turns NaN on its `fail_at`-th training forward pass; it keeps the weights it had then."""

    fail_at = 4

    def forward(self, *args, **kwargs):
        output = super().forward(*args, **kwargs)
        if self.training:
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == self.fail_at:
                self.weights_at_failure = {name: tensor.clone() for name, tensor in self.state_dict().items()}
                output.loss = output.loss * float("nan")
        return output


class PoisonedAtStep(gpt2_scratch.ScratchGPT2ForCausalLM):
    """A model whose `poison_at`-th training step has a finite loss but a NaN gradient: that step's update turns
    the weights NaN, and the loss of every forward pass after it is NaN (as when a too-large step diverges)."""

    poison_at = 4

    def forward(self, *args, **kwargs):
        output = super().forward(*args, **kwargs)
        if self.training:
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == self.poison_at:
                output.loss.register_hook(lambda grad: grad * float("nan"))
        return output


@pytest.fixture(scope="module")
def verdict_loaders(shared_data, tokenizer, tmp_path_factory):
    """The-verdict in windows of 32 tokens, batches of 8: 18 training batches."""
    tokens = tokenize_corpus(shared_data / "the-verdict.txt", tokenizer, cache_dir=tmp_path_factory.mktemp("cache"))
    return window_loaders(tokens, max_length=32, batch_size=8)


@pytest.mark.parametrize("max_steps, stop", [
    (None, r"the training loss became nan at step 5"),  # the weights of step 4 give NaN on the next forward pass
    (4, r"the training loss of the weights after step 4 is nan"),  # ... in the final evaluation
])
def test_a_nan_loss_stops_the_run_before_saving_the_weights_that_gave_it(verdict_loaders, tokenizer, tmp_path,
                                                                          max_steps, stop):
    model = PoisonedAtStep(gpt2_scratch.ScratchGPT2Config.from_preset("tiny", **TINY))
    run = tmp_path / "run"
    config = TrainConfig(out_dir=str(run), max_steps=max_steps, save_every=2, eval_every=0, progress_bar=False)
    with pytest.raises(NonFiniteLossError, match=stop + r".*last good checkpoint is \S*checkpoint-2\b") as error:
        train(model, tokenizer, *verdict_loaders, config)
    assert "checkpoint-4" not in str(error.value)
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint-2"]  # no checkpoint-4, no staging folder left
    # The checkpoint named is good: finite weights that give a finite loss.
    good = AutoModelForCausalLM.from_pretrained(run / "checkpoint-2")
    assert all(torch.isfinite(tensor).all() for tensor in good.state_dict().values())
    assert math.isfinite(evaluate_loss(good, verdict_loaders[1]))


def test_a_nan_loss_before_any_checkpoint_says_so(verdict_loaders, tokenizer, tmp_path):
    """A checkpoint left in out_dir by an earlier run is not this run's last good checkpoint."""
    (tmp_path / "run" / "checkpoint-40").mkdir(parents=True)
    model = FailsAtStep(gpt2_scratch.ScratchGPT2Config.from_preset("tiny", **TINY))
    config = TrainConfig(out_dir=str(tmp_path / "run"), save_every=5, eval_every=0, progress_bar=False)
    with pytest.raises(NonFiniteLossError, match=r"became nan at step 4.*no checkpoint of this run") as error:
        train(model, tokenizer, *verdict_loaders, config)
    assert "None" not in str(error.value) and "checkpoint-40" not in str(error.value)
    assert "start the run again" in str(error.value)
    # The NaN step was not applied: the weights in memory are those that gave the NaN.
    assert all(torch.equal(model.weights_at_failure[name], tensor) for name, tensor in model.state_dict().items())


def cosine_lr(peak, step, total, min_lr_ratio):
    """The schedule's rate after `step` steps without warmup, written out from its definition."""
    return peak * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * step / total)))


def test_a_resumed_run_follows_its_new_schedule_and_records_it(verdict_loaders, tokenizer, tmp_path):
    """Resumed with --lr 1e-4 and other schedule settings, the optimizer runs at the rates of the new schedule."""
    run = tmp_path / "run"

    def config(**settings):
        return TrainConfig(out_dir=str(run), eval_every=1, eval_batches=1, sample_max_new_tokens=2,
                           progress_bar=False, **settings)

    def tiny():
        return gpt2_scratch.ScratchGPT2ForCausalLM(gpt2_scratch.ScratchGPT2Config.from_preset("tiny", **TINY))

    train(tiny(), tokenizer, *verdict_loaders, config(learning_rate=2e-3, warmup_steps=1, max_steps=2))
    resumed = config(learning_rate=1e-4, min_lr_ratio=0.5, weight_decay=0.01, max_steps=6, resume=True)
    trainer = PretrainLoop(tiny(), tokenizer, *verdict_loaders, resumed, make_accelerator(resumed))
    trainer.run()

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(7))
    for row in rows[3:]:
        assert row["learning_rate"] == pytest.approx(cosine_lr(1e-4, row["step"], 6, 0.5), rel=1e-12)
    # What the optimizer applies, not only what is logged: the rate and weight decay of the new settings.
    groups = trainer.optimizer.param_groups
    assert [group["lr"] for group in groups] == pytest.approx([cosine_lr(1e-4, 6, 6, 0.5)] * 2, rel=1e-12)
    assert [group["weight_decay"] for group in groups] == [0.01, 0.0]
    args = json.loads((run / "checkpoint-6" / "training_args.json").read_text())
    assert (args["learning_rate"], args["min_lr_ratio"], args["weight_decay"]) == (1e-4, 0.5, 0.01)
    assert args["extra"]["total_steps"] == 6


def test_a_resume_refuses_settings_that_move_the_data_position(shared_data, tokenizer, tmp_path):
    """Batch size, accumulation, seed and the data's windows decide which batch comes next: changed on resume, the
    run would skip the wrong batches. Each is refused before anything in the run folder changes."""
    run = tmp_path / "run"
    settings = dict(batch_size=8, grad_accum_steps=1, seed=123)

    def attempt(resume, max_steps, max_length=32, **changed):
        config = TrainConfig(out_dir=str(run), max_steps=max_steps, eval_every=0, sample_max_new_tokens=2,
                             progress_bar=False, resume=resume, **{**settings, **changed})
        pretrain(config, data=shared_data / "the-verdict.txt", preset="tiny", model_overrides=TINY,
                 max_length=max_length, tokenizer=tokenizer, cache_dir=tmp_path / "cache")

    attempt(False, 1)
    before = sorted(p.name for p in run.iterdir()), (run / "metrics.jsonl").read_text()
    for setting, value, saved in [("batch_size", 16, 8), ("grad_accum_steps", 2, 1), ("seed", 7, 123),
                                  ("data max_length", 16, 32)]:
        with pytest.raises(ValueError, match=rf"checkpoint-1 was trained with [^;]*{setting}={saved}\b.*"
                                             rf"{setting}={value}\b.*resume with [^;]*{setting}={saved}\b"):
            attempt(True, 2, **{setting.removeprefix("data "): value})
        assert (sorted(p.name for p in run.iterdir()), (run / "metrics.jsonl").read_text()) == before  # untouched


def pretrain_tiny(out_dir, resume, data, tokenizer):
    """The run of the resume test, the same in this process and in the one that gets killed."""
    config = TrainConfig(out_dir=str(out_dir), epochs=2, learning_rate=2e-3, warmup_steps=3, grad_accum_steps=2,
                         batch_size=16, eval_every=5, eval_batches=1, save_every=3, keep_last=2, resume=resume,
                         sample_max_new_tokens=4, progress_bar=False)
    pretrain(config, data=data, preset="tiny", model_overrides=TINY, max_length=32, tokenizer=tokenizer,
             cache_dir=Path(out_dir).parent / "cache")


KILLED_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
from test_pretrain import pretrain_tiny
from gpt2_scratch.tokenization import gpt2_tokenizer
pretrain_tiny(sys.argv[2], False, sys.argv[3], gpt2_tokenizer(sys.argv[4]))
"""


@pytest.mark.parametrize("sharded", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(shared_data, tokenizer_dir, tokenizer, tmp_path, sharded):
    """9 batches of 16 per epoch, 2 per step: 5 steps an epoch (the last one a single batch), 10 in all, dropout on.
    The run is killed once checkpoint-6 exists (epoch 1, 2 batches in), and resumed from the latest checkpoint. The
    corpus is the text file, or the same text prepared into 8 shards (windows shuffled across all of them)."""
    data = shared_data / "the-verdict.txt"
    if sharded:
        shards = prepare_corpus(data, tmp_path / "shards", tokenizer, chunk_chars=2000, chunks_per_shard=1,
                                show_progress=False)
        assert len(shards.parts) == 8
        data = tmp_path / "shards"
    pretrain_tiny(tmp_path / "whole", False, data, tokenizer)

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(Path(__file__).parent), str(killed), str(data), str(tokenizer_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint-6").is_dir():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (killed / "checkpoint-10").exists()

    pretrain_tiny(killed, True, data, tokenizer)
    whole = load_file(tmp_path / "whole" / "checkpoint-10" / "model.safetensors")
    resumed = load_file(killed / "checkpoint-10" / "model.safetensors")
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)

    def log(run):  # every field but the timings
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if k not in ("tokens_per_s", "mfu")} for row in rows]

    # The log, too, reads as one uninterrupted run: the step-loss average at step 10 covers steps 6 to 10.
    assert log(killed) == log(tmp_path / "whole")
    assert {p.name for p in killed.iterdir() if p.name.startswith("checkpoint")} == {"checkpoint-9", "checkpoint-10"}
    assert not [p for p in killed.iterdir() if p.name.startswith(".")]
