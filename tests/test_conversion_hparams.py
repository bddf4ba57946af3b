"""Hyperparameters are part of the model: `verify` compares them and never calls two models identical when they
differ, and `convert` says which ones it had to assume for a checkpoint that does not record them."""

import pytest
import torch

from oracles import TINY_GPT2, max_logit_difference, random_gpt2

from gpt2_scratch.cli import main
from gpt2_scratch.conversion import load_model
from gpt2_scratch.conversion.engine import AssumedHyperparametersWarning
from gpt2_scratch.modeling import ScratchGPT2Config, ScratchGPT2ForCausalLM

TINY = dict(n_layer=2, n_embd=64, n_positions=32, vocab_size=300, bos_token_id=0, eos_token_id=0)


def scratch_model(folder, **config):
    torch.manual_seed(5)  # the same weights whatever the config, as long as the shapes agree
    model = ScratchGPT2ForCausalLM(ScratchGPT2Config(**{**TINY, **config})).eval()
    model.save_pretrained(folder)
    return model


def test_models_that_differ_only_in_n_head_are_reported_as_different(tmp_path, capsys):
    four, eight = scratch_model(tmp_path / "four", n_head=4), scratch_model(tmp_path / "eight", n_head=8)
    tokens = torch.randint(0, 300, (2, 8), generator=torch.Generator().manual_seed(0))
    assert max_logit_difference(four, eight, tokens) > 1e-4  # the same tensors, another model
    capsys.readouterr()

    assert main(["verify", str(tmp_path / "four"), str(tmp_path / "eight")]) == 1
    report = capsys.readouterr().out
    assert "hyperparameters: DIFFER: n_head A=4 B=8" in report
    assert "tensors: 28 of 28 bit-identical" in report and "verdict: DISAGREE" in report
    assert main(["verify", str(tmp_path / "four"), str(tmp_path / "eight"), "--exact"]) == 1
    assert "verdict: DISAGREE" in capsys.readouterr().out


def test_a_difference_that_leaves_the_logits_alone_agrees_but_is_not_identical(tmp_path, capsys):
    scratch_model(tmp_path / "a", n_head=4)
    scratch_model(tmp_path / "b", n_head=4, attn_pdrop=0.0)
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    report = capsys.readouterr().out
    assert "hyperparameters: DIFFER: attn_pdrop A=0.1 B=0.0" in report and "verdict: agree" in report
    assert main(["verify", str(tmp_path / "a"), str(tmp_path / "b"), "--exact"]) == 1
    assert "verdict: agree" in capsys.readouterr().out


@pytest.fixture()
def folder_without_config(tmp_path):
    """transformers' GPT-2 with 4 heads of 16 channels, saved without its config.json."""
    folder = tmp_path / "no-config"
    random_gpt2(21).save_pretrained(folder)
    (folder / "config.json").unlink()
    (folder / "generation_config.json").unlink()
    return folder


def test_convert_says_loudly_which_hyperparameters_it_assumed(folder_without_config, tmp_path, capsys):
    capsys.readouterr()
    assert main(["convert", str(folder_without_config), str(tmp_path / "guessed")]) == 0
    # The folder holds no tokenizer either, which convert also warns about; here only the assumptions count.
    warnings = [line for line in capsys.readouterr().err.splitlines() if ": warning: " in line and "assumed" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"gpt2-scratch convert: warning: {folder_without_config} does not record its number")
    assert "assumed n_head=1 (width 64 / 64 channels per head" in warnings[0] and "pass --n-head N" in warnings[0]
    assert "assumed GPT-2's activation_function='gelu_new', layer_norm_epsilon=1e-05" in warnings[0]

    # Why it matters: the guess is another model than the source, and verify says so.
    original = random_gpt2(21)
    original.save_pretrained(tmp_path / "original")
    assert main(["verify", str(tmp_path / "original"), str(tmp_path / "guessed")]) == 1
    assert "n_head A=4 B=1" in capsys.readouterr().out

    # Told the number of heads, convert assumes nothing it could be wrong about, and the copy is the source.
    assert main(["convert", str(folder_without_config), str(tmp_path / "told"), "--n-head", "4"]) == 0
    assert "assumed" not in capsys.readouterr().err
    tokens = torch.randint(0, TINY_GPT2["vocab_size"], (2, 8), generator=torch.Generator().manual_seed(1))
    assert max_logit_difference(original, load_model(tmp_path / "told"), tokens) < 1e-5


def test_load_model_warns_about_a_guessed_head_count_in_python(folder_without_config):
    with pytest.warns(AssumedHyperparametersWarning, match=r"assumed n_head=1 .* \(n_head=N in Python\)"):
        load_model(folder_without_config)
