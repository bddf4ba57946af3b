"""The `tokenize` and `train-tokenizer` commands, as a user runs them."""

import pytest
from transformers import AutoTokenizer

from gpt2_scratch import cli
from gpt2_scratch.cli import main
from gpt2_scratch.tokenization.reference import tiktoken_gpt2


@pytest.fixture(autouse=True)
def only_tokenizer_commands(monkeypatch):
    """The real dispatcher, with only this area's commands, so these tests do not depend on other commands."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["tokenize", "train_tokenizer"])


def test_tokenize_prints_tiktokens_ids_and_decodes_them(tokenizer_dir, capsys):
    text = "Hello, world! <|endoftext|> 😀"
    openai = tiktoken_gpt2(tokenizer_dir)
    assert main(["tokenize", text, "--tokenizer", str(tokenizer_dir)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(i) for i in openai.encode(text, disallowed_special=())]
    assert main(["tokenize", text, "--tokenizer", str(tokenizer_dir), "--allow-special"]) == 0
    assert capsys.readouterr().out.split() == [str(i) for i in openai.encode(text, allowed_special="all")]
    assert main(["tokenize", "--decode", *printed, "--tokenizer", str(tokenizer_dir)]) == 0
    assert capsys.readouterr().out == text + "\n"


def test_train_tokenizer_saves_a_loadable_tokenizer(shared_data, tmp_path, capsys):
    verdict = shared_data / "the-verdict.txt"
    for trainer in ([], ["--from-scratch"]):
        output = tmp_path / f"tokenizer{len(trainer)}"
        assert main(["train-tokenizer", str(verdict), "-o", str(output), "--vocab-size", "600", *trainer]) == 0
        assert f"saved a 600-token tokenizer to {output}" in capsys.readouterr().out
        loaded = AutoTokenizer.from_pretrained(output)
        text = verdict.read_text("utf-8")
        assert loaded.decode(loaded.encode(text)) == text and len(loaded) == 600
        assert not [p.name for p in output.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_errors_are_reported_without_traceback(tmp_path, capsys):
    assert main(["train-tokenizer", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "out"), "--vocab-size", "600"]) == 2
    assert "error: training file" in capsys.readouterr().err
    assert main(["tokenize", "hi", "--tokenizer", str(tmp_path)]) == 2
    assert "holds no tokenizer files" in capsys.readouterr().err


def test_train_tokenizer_refuses_an_empty_corpus_and_names_a_file_that_is_not_utf8(tmp_path, capsys):
    empty, blank = tmp_path / "empty.txt", tmp_path / "blank.txt"
    empty.write_text("", encoding="utf-8")
    blank.write_text("\n  \n<|endoftext|>\n", encoding="utf-8")
    for trainer in ([], ["--from-scratch"]):
        output = tmp_path / f"out{len(trainer)}"
        arguments = ["train-tokenizer", str(empty), str(blank), "-o", str(output), "--vocab-size", "300", *trainer]
        assert main(arguments) == 2
        error = capsys.readouterr().err
        assert f"the training corpus ({empty}, {blank}) holds no text" in error and len(error.splitlines()) == 1
        assert not output.exists()  # no 257-token tokenizer saved

    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    for trainer in ([], ["--from-scratch"]):
        assert main(["train-tokenizer", str(latin1), "-o", str(tmp_path / "out"), "--vocab-size", "300", *trainer]) == 2
        error = capsys.readouterr().err
        assert f"{latin1} is not UTF-8 text" in error and len(error.splitlines()) == 1
