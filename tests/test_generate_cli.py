"""`generate` and `pretrain` refuse sampling settings that cannot sample, with one line and exit status 2."""

import pytest
import torch

from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM
from gpt2_scratch import cli
from gpt2_scratch.cli import main
from gpt2_scratch.tokenization import gpt2_tokenizer


@pytest.fixture(autouse=True)
def only_sampling_commands(monkeypatch):
    """The real dispatcher, with only the commands that sample, so these tests do not depend on other commands."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["generate", "pretrain"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer_dir):
    folder = tmp_path_factory.mktemp("random-model")
    torch.manual_seed(0)
    ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("tiny", n_embd=32, n_head=2)).save_pretrained(folder)
    gpt2_tokenizer(tokenizer_dir).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--temperature", "nan", "temperature must be 0 (greedy) or a positive finite number, got nan."),
        ("--temperature", "inf", "temperature must be 0 (greedy) or a positive finite number, got inf."),
        ("--temperature", "-0.5", "temperature must be 0 (greedy) or a positive finite number, got -0.5."),
        ("--top-k", "-3", "top_k must be a positive integer (or none: all tokens), got -3."),
        ("--max-new-tokens", "0", "max_new_tokens must be at least 1, got 0."),
    ],
)
def test_sampling_settings_that_cannot_sample_are_refused(checkpoint, tmp_path, capsys, option, value, message):
    assert main(["generate", str(checkpoint), "Every effort moves you", option, value, "--seed", "0"]) == 2
    assert capsys.readouterr().err == f"gpt2-scratch generate: error: {message}\n"
    out = tmp_path / "run"
    assert main(["pretrain", "--out", str(out), "--preset", "tiny", option, value]) == 2
    assert capsys.readouterr().err == f"gpt2-scratch pretrain: error: {message}\n"
    assert not out.exists()


def test_a_sound_setting_still_samples(checkpoint, capsys):
    assert main(["generate", str(checkpoint), "Every effort moves you", "--max-new-tokens", "3", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("Every effort moves you")
