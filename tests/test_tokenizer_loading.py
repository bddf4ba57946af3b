"""One rule for which tokenizer a checkpoint is trained and run with (gpt2_scratch.tokenization.load_tokenizer),
checked against tiktoken's GPT-2 encoding."""

import shutil

import pytest
from gpt2_scratch.tokenization import gpt2_tokenizer, load_tokenizer
from gpt2_scratch.tokenization.reference import tiktoken_gpt2

TEXT = "Every effort moves you forward.<|endoftext|> Hello, world!"


def test_each_kind_of_source_gives_gpt2s_tokenizer_with_a_pad_token(tmp_path, tokenizer_dir):
    expected = tiktoken_gpt2(tokenizer_dir).encode(TEXT, allowed_special="all")
    saved = tmp_path / "saved"
    gpt2_tokenizer(tokenizer_dir).save_pretrained(saved)  # a checkpoint's own tokenizer
    openai = tmp_path / "openai-release"
    shutil.copytree(tokenizer_dir, openai)  # OpenAI's encoder.json + vocab.bpe beside the weights
    bare = tmp_path / "bare"
    bare.mkdir()  # a checkpoint folder without any tokenizer: GPT-2's, fetched
    for model, tokenizer in [(saved, None), (openai, None), (bare, None), ("tiny", None), (bare, saved),
                             ("tiny", openai)]:
        loaded = load_tokenizer(model, tokenizer)
        assert loaded(TEXT)["input_ids"] == expected, (model, tokenizer)
        assert loaded.pad_token == "<|endoftext|>"


def test_a_tokenizer_folder_without_a_tokenizer_is_refused_in_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no tokenizer: give a saved tokenizer folder") as error:
        load_tokenizer("tiny", tmp_path)
    assert "\n" not in str(error.value)

