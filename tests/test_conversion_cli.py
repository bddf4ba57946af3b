"""`gpt2-scratch convert` and `gpt2-scratch verify`, through the command-line dispatcher."""

import pytest
import torch
from transformers import GPT2LMHeadModel

from oracles import random_gpt2

from gpt2_scratch.cli import main



@pytest.fixture(scope="module")
def transformers_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    random_gpt2(13, randomize_norms_and_biases=False).save_pretrained(folder)
    return folder


def test_convert_then_verify_agrees(transformers_folder, tmp_path, capsys):
    assert main(["convert", str(transformers_folder), str(tmp_path / "scratch")]) == 0
    capsys.readouterr()
    assert main(["verify", str(transformers_folder), str(tmp_path / "scratch"), "--exact"]) == 0
    report = capsys.readouterr().out
    assert "hyperparameters: the same" in report and "tensors: 28 of 28 bit-identical" in report
    assert "verdict: identical" in report

    assert main(["convert", str(transformers_folder), str(tmp_path / "book"), "--to", "book"]) == 0
    assert (tmp_path / "book" / "model.pth").is_file()
    assert main(["convert", str(tmp_path / "book"), str(tmp_path / "back"), "--to", "transformers"]) == 0
    capsys.readouterr()
    assert main(["verify", str(transformers_folder), str(tmp_path / "back")]) == 0
    report = capsys.readouterr().out
    assert "tensors: 28 of 28 bit-identical" in report and "verdict: agree" in report
    assert "greedy continuations (A decoded by transformers' GPT2LMHeadModel): agree" in report
    # The course's format has no place for token ids: the source's 0 came back as GPT-2's 50256.
    assert "hyperparameters: DIFFER: bos_token_id A=0 B=50256; eos_token_id A=0 B=50256" in report
    assert main(["verify", str(transformers_folder), str(tmp_path / "back"), "--exact"]) == 1


def test_verify_decodes_through_transformers_so_a_broken_generate_cannot_agree_with_itself(
    transformers_folder, tmp_path, capsys, monkeypatch
):
    # The fault transformers 5.24 exposed: our generate() ignored the cache. Both sides loaded into our class agreed
    # with each other all the same; decoding one side through transformers' GPT-2 shows the difference.
    from gpt2_scratch.modeling import ScratchGPT2ForCausalLM

    def generate_without_the_cache(self, input_ids, **kwargs):
        return input_ids.new_zeros(input_ids.shape[0], input_ids.shape[1] + kwargs["max_new_tokens"])

    monkeypatch.setattr(ScratchGPT2ForCausalLM, "generate", generate_without_the_cache)
    assert main(["verify", str(transformers_folder), str(transformers_folder)]) == 1
    assert "greedy continuations (A decoded by transformers' GPT2LMHeadModel): DIFFER" in capsys.readouterr().out


def test_verify_reports_a_changed_model_and_fails(transformers_folder, tmp_path, capsys):
    changed = GPT2LMHeadModel.from_pretrained(transformers_folder)
    with torch.no_grad():
        changed.transformer.h[1].mlp.c_fc.weight.mul_(1.5)
    changed.save_pretrained(tmp_path / "changed")
    assert main(["verify", str(transformers_folder), str(tmp_path / "changed")]) == 1
    report = capsys.readouterr().out
    assert "tensors: 27 of 28 bit-identical" in report and "transformer.h.1.mlp.c_fc.weight" in report
    assert "verdict: DISAGREE" in report


def test_half_precision_copy_agrees_within_tolerance_but_is_not_identical(transformers_folder, tmp_path, capsys):
    assert main(["convert", str(transformers_folder), str(tmp_path / "bf16"), "--dtype", "bfloat16"]) == 0
    assert main(["verify", str(transformers_folder), str(tmp_path / "bf16"), "--atol", "1.0"]) == 0
    assert main(["verify", str(transformers_folder), str(tmp_path / "bf16"), "--exact"]) == 1


def test_errors_are_printed_without_traceback(transformers_folder, tmp_path, capsys):
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["convert", str(transformers_folder), str(transformers_folder)]) == 2
    assert "already exists" in capsys.readouterr().err
    # GPT-2 computes GELU's tanh approximation, nanoGPT's model the exact GELU: refused before anything is written.
    assert main(["convert", str(transformers_folder), str(tmp_path / "nanogpt"), "--to", "nanogpt"]) == 2
    error = capsys.readouterr().err
    assert "the 'nanogpt' layout is read by programs that compute the exact GELU" in error
    assert len(error.splitlines()) == 1 and not (tmp_path / "nanogpt").exists()


def test_a_source_without_a_tokenizer_is_named_at_conversion_and_tokenizer_adds_one(
    transformers_folder, tokenizer_dir, tmp_path, capsys
):
    """A converted folder without a tokenizer is said so in one line that offers --tokenizer; with it, the folder
    loads with AutoTokenizer and encodes as tiktoken's GPT-2 encoding does from OpenAI's files; a --tokenizer
    folder that holds none is refused in one line and leaves nothing behind."""
    from transformers import AutoTokenizer

    from gpt2_scratch.tokenization.reference import tiktoken_gpt2

    assert main(["convert", str(transformers_folder), str(tmp_path / "bare")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("gpt2-scratch convert: warning: the source has no tokenizer")
    assert f"{tmp_path / 'bare'} holds none" in warnings[0] and "--tokenizer FOLDER" in warnings[0]
    with pytest.raises((OSError, ValueError)):  # what the warning says would happen
        AutoTokenizer.from_pretrained(tmp_path / "bare")

    complete = ["convert", str(transformers_folder), str(tmp_path / "complete"), "--tokenizer", str(tokenizer_dir)]
    assert main(complete) == 0
    assert "warning" not in capsys.readouterr().err
    text = "Every effort moves you, 'tis 2024 -- naïve café!\n  indented<|endoftext|>"
    oracle = tiktoken_gpt2(tokenizer_dir).encode(text, allowed_special="all")
    assert AutoTokenizer.from_pretrained(tmp_path / "complete")(text).input_ids == oracle

    refused = ["convert", str(transformers_folder), str(tmp_path / "refused"), "--tokenizer", str(tmp_path / "bare")]
    assert main(refused) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and f"the tokenizer folder {tmp_path / 'bare'} holds no GPT-2 tokenizer" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare", "complete"]
