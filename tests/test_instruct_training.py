"""Instruction fine-tuning end to end with a tiny model on the course's instruction-data.json: full fine-tuning,
LoRA, the responses file in the course's format, and two processes under `accelerate launch` with an exact resume."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from gpt2_scratch.instruct import ALPACA, generate_responses, load_records, split_records
from gpt2_scratch.instruct.finetune import InstructConfig, finetune, load_base_model
from gpt2_scratch.tokenization import gpt2_tokenizer
from gpt2_scratch.training import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def tiny_run(out_dir, **overrides):
    settings = dict(max_steps=4, batch_size=4, learning_rate=2e-3, eval_every=2, eval_batches=1, seed=7,
                    sample_max_new_tokens=4, progress_bar=False)
    return TrainConfig(out_dir=str(out_dir), **{**settings, **overrides})


@pytest.fixture(scope="module")
def course_records(shared_data):
    return load_records(shared_data / "instruction-data.json")


def tiny_config(shared_data, tokenizer_dir, **overrides):
    return InstructConfig(model="tiny", data=str(shared_data / "instruction-data.json"), tokenizer=str(tokenizer_dir),
                          max_new_tokens=6, num_responses=3, **overrides)


def test_full_fine_tuning_learns_and_writes_the_course_files(tmp_path, shared_data, tokenizer_dir, course_records):
    metrics = finetune(tiny_config(shared_data, tokenizer_dir), tiny_run(tmp_path))

    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if row["step"] > 0] == [2, 4]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 0.05
    assert rows[-1]["tokens_seen"] > rows[1]["tokens_seen"] > 0
    assert (tmp_path / "loss.png").stat().st_size > 0

    # The responses: the first test records, unchanged, with model_response beside output (course format).
    responses = json.loads((tmp_path / "instruction-data-with-response.json").read_text())
    test_split = split_records(course_records).test
    assert [{k: v for k, v in r.items() if k != "model_response"} for r in responses] == test_split[:3]
    assert all(list(r) == ["instruction", "input", "output", "model_response"] for r in responses)

    # The final model is a plain checkpoint whose greedy answers are the saved ones.
    final = tmp_path / "model"
    model = AutoModelForCausalLM.from_pretrained(final)
    again = generate_responses(model, gpt2_tokenizer(tokenizer_dir), test_split[:3], ALPACA, max_new_tokens=6,
                               batch_size=1, show_progress=False)
    assert again == [r["model_response"] for r in responses]

    # Its tokenizer carries the prompt format as a chat template: the text-generation pipeline takes messages.
    assert AutoTokenizer.from_pretrained(final).chat_template == ALPACA.chat_template()
    chat = pipeline("text-generation", model=str(final))
    for record, response in zip(test_split[:3], responses):
        user = {"role": "user", "content": record["instruction"], **({"input": record["input"]} if record["input"] else {})}
        answer = chat([user], max_new_tokens=6, do_sample=False)[0]["generated_text"][-1]
        assert (answer["role"], answer["content"].strip()) == ("assistant", response["model_response"])

    saved_metrics = json.loads((final / "metrics.json").read_text())
    assert saved_metrics == pytest.approx(metrics)
    assert saved_metrics["val_perplexity"] == pytest.approx(torch.tensor(saved_metrics["val_loss"]).exp().item())
    args = json.loads((final / "training_args.json").read_text())
    assert (args["learning_rate"], args["lora"], args["num_train"], args["num_test"]) == (2e-3, False, 935, 110)
    assert json.loads((final / "provenance.json").read_text())["kind"] == "instruction-tuned"


def test_lora_trains_only_the_adapters_and_merges_them(tmp_path, shared_data, tokenizer_dir):
    config = tiny_config(shared_data, tokenizer_dir, lora=True, lora_rank=4, lora_alpha=8, mask_prompt=True,
                         split=(0.85, 0.01, 0.01))
    finetune(config, tiny_run(tmp_path, max_steps=2, eval_every=0))

    torch.manual_seed(7)  # the run's seed: the same random initial model
    initial = load_base_model("tiny", dropout=0.0).state_dict()
    merged = load_file(tmp_path / "model" / "model.safetensors")
    assert all("lora" not in key for key in merged)
    for key in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight"):
        torch.testing.assert_close(merged[key], initial[key], rtol=0, atol=0)  # frozen
    for key in ("transformer.h.0.attn.c_attn.weight", "transformer.h.1.attn.c_proj.weight",
                "transformer.h.0.mlp.c_fc.weight", "transformer.h.1.mlp.c_proj.weight"):
        assert not torch.equal(merged[key], initial[key])  # adapted, then merged in
    adapter = json.loads((tmp_path / "lora-adapter" / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == ["c_attn", "c_fc", "c_proj"] and adapter["r"] == 4
    assert json.loads((tmp_path / "model" / "provenance.json").read_text())["method"] == "lora"

    # The adapter loads on its own: its config names the saved base (the preset's random initial weights) and the
    # dropout the run trained with, and base + adapter give the merged model's logits.
    assert adapter["lora_dropout"] == config.lora_dropout == 0.05
    assert adapter["base_model_name_or_path"] == str((tmp_path / "base-model").resolve())
    base = load_file(tmp_path / "base-model" / "model.safetensors")
    assert base.keys() <= initial.keys() and all(torch.equal(base[key], initial[key]) for key in base)
    from peft import AutoPeftModelForCausalLM

    alone = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "lora-adapter").eval()
    merged_model = AutoModelForCausalLM.from_pretrained(tmp_path / "model").eval()
    input_ids = torch.randint(0, 50257, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(alone(input_ids=input_ids).logits, merged_model(input_ids).logits,
                                   rtol=1e-5, atol=1e-5)


def launch(out_dir, *extra):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "gpt2_scratch.cli", "instruct", "--model", "tiny", "--out-dir", str(out_dir),
        "--max-steps", "4", "--save-every", "2", "--batch-size", "2", "--lr", "2e-3", "--eval-every", "2",
        "--eval-batches", "1", "--max-new-tokens", "4", "--num-responses", "2", "--mask-prompt", "--no-progress",
        "--split", "0.85", "0.01", "0.01",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_two_processes_and_an_exact_resume(tmp_path):
    out = tmp_path / "run"
    launch(out)
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["step"] == 4
    assert {p.name for p in (out / "checkpoint-4").glob("rng_state_*.pt")} == {"rng_state_0.pt", "rng_state_1.pt"}
    uninterrupted = load_file(out / "checkpoint-4" / "model.safetensors")
    log = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log if json.loads(line)["step"] > 0] == [2, 4]
    assert len(json.loads((out / "instruction-data-with-response.json").read_text())) == 2

    # Stop after step 2 in effect: drop what came later, then resume from checkpoint-2.
    shutil.rmtree(out / "checkpoint-4")
    shutil.rmtree(out / "model")
    launch(out, "--resume", str(out / "checkpoint-2"))
    resumed = load_file(out / "checkpoint-4" / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for key in uninterrupted:
        torch.testing.assert_close(resumed[key], uninterrupted[key], rtol=0, atol=0)
    resumed_log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert resumed_log[:-1] == [json.loads(line) for line in log[:-1]]  # kept from the first run
    assert resumed_log[-1]["step"] == 4
    assert resumed_log[-1]["tokens_seen"] == json.loads(log[-1])["tokens_seen"]
    assert resumed_log[-1]["val_loss"] == pytest.approx(json.loads(log[-1])["val_loss"], rel=1e-6)


def documented_launch() -> list[str]:
    """The example's own multi-process command (its docstring, which --help prints), as a list of arguments."""
    import ast

    docstring = ast.get_docstring(ast.parse((REPO / "examples" / "instruct.py").read_text()))
    line = next(line for line in docstring.splitlines() if "--multi_gpu" in line and "gpt2_scratch.cli" in line)
    return line.split()


@pytest.mark.slow
@pytest.mark.parametrize("drop", [None, "--multi_gpu"])
def test_the_documented_launch_runs_two_processes_and_a_lost_one_is_reported(tmp_path, drop):
    """The command of the docstring trains on 2 CPU processes and records it; without --multi_gpu, accelerate
    starts one process, and the run says so and records what was asked."""
    words = [word for word in documented_launch() if word != drop]
    assert words[:2] == ["accelerate", "launch"] and "--num_processes" in words
    words[words.index("--out-dir") + 1] = str(tmp_path / "run")
    command = [sys.executable, "-m", "accelerate.commands.launch", *words[2:], "--max-steps", "2", "--batch-size", "2",
               "--eval-every", "0", "--eval-batches", "1", "--max-new-tokens", "2", "--num-responses", "2",
               "--split", "0.85", "0.01", "0.01", "--no-progress"]
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    recorded = json.loads((tmp_path / "run" / "checkpoint-2" / "training_args.json").read_text())["extra"]
    final = json.loads((tmp_path / "run" / "model" / "training_args.json").read_text())
    expected = {"num_processes": 2, "distributed_type": "MULTI_CPU", "mixed_precision": "no", "asked_processes": 2}
    if drop:
        expected.update(num_processes=1, distributed_type="NO")
        assert "warning: accelerate launch was asked for 2 processes, but this run has 1" in done.stderr
    else:
        assert "warning: accelerate launch was asked" not in done.stderr
    started = f"training on {expected['num_processes']} process(es), distributed type {expected['distributed_type']}"
    assert started in done.stdout
    for facts in (recorded, final):
        assert {key: facts[key] for key in expected} == expected and facts["device"].startswith("cpu")
