"""`--no-progress` hides every bar a command shows (ours, transformers', huggingface_hub's, datasets'), and Trainer's
logs do not land as raw dicts between its bars."""

import csv
import warnings

import datasets
import pytest
import torch
from huggingface_hub.utils import are_progress_bars_disabled
from transformers.utils import logging as transformers_logging

from oracles import random_gpt2

from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM
from gpt2_scratch.cli import main
from gpt2_scratch.instruct import ALPACA, generate_responses
from gpt2_scratch.progress import progress_bars_shown
from gpt2_scratch.tokenization import gpt2_tokenizer

BAR_MARKS = ("\r", "it/s", "s/it", "%|")  # what tqdm writes and a line of text does not


def assert_no_bars(captured):
    output = captured.out + captured.err
    assert not [mark for mark in BAR_MARKS if mark in output], output[-2000:]


def assert_all_bars_enabled_again():
    assert progress_bars_shown()
    assert transformers_logging.is_progress_bar_enabled()
    assert not are_progress_bars_disabled()
    assert datasets.is_progress_bar_enabled()


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, tokenizer_dir):
    folder = tmp_path_factory.mktemp("tiny-base")
    torch.manual_seed(0)
    config = ScratchGPT2Config.from_preset("tiny", n_embd=32, n_head=2, n_layer=2, n_positions=32)
    ScratchGPT2ForCausalLM(config).save_pretrained(folder)
    gpt2_tokenizer(tokenizer_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "texts.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        for i in range(40):
            writer.writerow([f"refund my order number {i} please" if i % 2 else f"lovely day number {i}",
                             "complaint" if i % 2 else "praise"])
    return path


def test_pretrain_no_progress_shows_no_bar(shared_data, tokenizer_dir, tmp_path, capfd):
    assert main([
        "pretrain", "--data", str(shared_data / "the-verdict.txt"), "--tokenizer", str(tokenizer_dir),
        "--cache-dir", str(tmp_path / "cache"), "--context", "32", "--n-layer", "1", "--n-embd", "32", "--n-head",
        "2", "--batch-size", "4", "--max-steps", "2", "--eval-every", "0", "--eval-batches", "1",
        "--max-new-tokens", "2", "--out", str(tmp_path / "run"), "--no-progress",
    ]) == 0
    assert_no_bars(capfd.readouterr())  # the corpus was tokenised (fresh cache) and the weights saved
    assert_all_bars_enabled_again()


def test_convert_no_progress_shows_no_bar(tmp_path, capfd):
    random_gpt2(3).save_pretrained(tmp_path / "gpt2")
    capfd.readouterr()  # save_pretrained's own bar
    for layout in ("scratch", "book", "gguf"):
        assert main(["convert", str(tmp_path / "gpt2"), str(tmp_path / layout), "--to", layout, "--no-progress"]) == 0
    assert main(["verify", str(tmp_path / "gpt2"), str(tmp_path / "scratch"), "--no-progress"]) == 0
    assert_no_bars(capfd.readouterr())
    assert_all_bars_enabled_again()


def test_convert_shows_its_bars_without_the_flag(tmp_path, capfd):
    random_gpt2(3).save_pretrained(tmp_path / "gpt2")
    capfd.readouterr()
    assert main(["convert", str(tmp_path / "gpt2"), str(tmp_path / "scratch")]) == 0
    assert "writing scratch" in capfd.readouterr().err  # the check above can fail: bars do reach capfd


def test_train_classifier_no_progress_shows_no_bar(tiny_base, labelled_csv, tmp_path, capfd):
    assert main(["train-classifier", "--base", str(tiny_base), "--data", str(labelled_csv), "--out",
                 str(tmp_path / "clf"), "--max-steps", "2", "--batch-size", "8", "--no-progress"]) == 0
    captured = capfd.readouterr()
    assert_no_bars(captured)
    assert "{'" not in captured.out + captured.err  # no log printed as a raw dict either
    assert_all_bars_enabled_again()


def test_train_classifier_bars_carry_no_raw_log_dicts(tiny_base, labelled_csv, tmp_path, capfd):
    assert main(["train-classifier", "--base", str(tiny_base), "--data", str(labelled_csv), "--out",
                 str(tmp_path / "clf"), "--epochs", "1", "--batch-size", "8"]) == 0
    output = capfd.readouterr()
    shown = output.out + output.err
    assert "%|" in shown  # the bars are there
    assert "{'loss'" not in shown and "{'eval_" not in shown and "{'train_" not in shown
    assert "loss=" in shown  # the loss is on the training bar instead


def test_a_too_long_query_warning_comes_once_per_call(tiny_base, tokenizer_dir):
    tokenizer = gpt2_tokenizer(tokenizer_dir)
    model = ScratchGPT2ForCausalLM.from_pretrained(tiny_base)
    records = [{"instruction": "word " * (40 + i), "input": "", "output": ""} for i in range(3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generate_responses(model, tokenizer, records, ALPACA, max_new_tokens=1, batch_size=1, show_progress=False)
    too_long = [str(warning.message) for warning in caught if "not fit the context" in str(warning.message)]
    assert len(too_long) == 1 and too_long[0].startswith("3 of 3 queries"), too_long
