"""Bad input to the tokenizers gets a clear error that names the problem."""

import json

import pytest

from gpt2_scratch.tokenization import BPETokenizer, gpt2_tokenizer, to_hf_tokenizer, train_bpe, train_tokenizer


@pytest.fixture(scope="module")
def gpt2(tokenizer_dir):
    return BPETokenizer.from_gpt2(tokenizer_dir)


@pytest.fixture
def files(tokenizer_dir, tmp_path):
    """A writable copy of GPT-2's files, to damage."""
    for name in ("encoder.json", "vocab.bpe"):
        (tmp_path / name).write_bytes((tokenizer_dir / name).read_bytes())
    return tmp_path / "encoder.json", tmp_path / "vocab.bpe"


def test_missing_files(files, tmp_path):
    vocab, merges = files
    with pytest.raises(FileNotFoundError, match="vocabulary file .*nothing.json does not exist"):
        BPETokenizer.from_files(tmp_path / "nothing.json", merges)
    with pytest.raises(FileNotFoundError, match="merges file .*nothing.bpe does not exist"):
        BPETokenizer.from_files(vocab, tmp_path / "nothing.bpe")
    merges.unlink()
    with pytest.raises(FileNotFoundError, match="holds no tokenizer files: expected encoder.json \\+ vocab.bpe"):
        gpt2_tokenizer(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        gpt2_tokenizer(tmp_path / "missing-folder")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda text: text[: len(text) // 2], "not valid JSON"),
        (lambda text: json.dumps(list(json.loads(text))), "must be a JSON object mapping token strings to ids"),
        (lambda text: text.replace('"!": 0', '"!": 1'), "gives the same id to more than one token"),
        (lambda text: text.replace('"\\u0120": 220', '"space": 220'), "lacks 1 of the 256 byte tokens"),
    ],
)
def test_corrupt_vocabulary(files, damage, message):
    vocab, merges = files
    vocab.write_text(damage(vocab.read_text("utf-8")), "utf-8")
    with pytest.raises(ValueError, match=message):
        BPETokenizer.from_files(vocab, merges)
    with pytest.raises(ValueError, match=message):
        gpt2_tokenizer(vocab.parent)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda text: text.replace("\nĠ t\n", "\nĠ t x\n"), "line 2: expected two tokens separated by one space"),
        (lambda text: text.replace("\nĠ t\n", "\nĠt\n"), "line 2: expected two tokens"),
        (lambda text: "#version: 0.2\n", "holds no merges"),
    ],
)
def test_corrupt_merges(files, damage, message):
    vocab, merges = files
    merges.write_text(damage(merges.read_text("utf-8")), "utf-8")
    with pytest.raises(ValueError, match=message):
        BPETokenizer.from_files(vocab, merges)


def test_binary_garbage_is_not_text(files):
    vocab, merges = files
    merges.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="merges file .* is not UTF-8 text"):
        BPETokenizer.from_files(vocab, merges)


def test_vocab_and_merges_from_different_tokenizers(shared_data, files, tmp_path):
    vocab, merges = files
    other = train_bpe((shared_data / "the-verdict.txt").read_text("utf-8"), 400, show_progress=False).save(tmp_path / "other")
    with pytest.raises(ValueError, match=r"vocab/merges mismatch: merge \d+ .* needs token .* different tokenizers"):
        BPETokenizer.from_files(other / "vocab.json", merges)
    with pytest.raises(ValueError, match="vocab/merges mismatch"):
        BPETokenizer.from_files(vocab, other / "merges.txt")


@pytest.mark.parametrize("not_text", [b"bytes", None, ["a", "list"], 42])
def test_encode_refuses_what_is_not_str(gpt2, not_text):
    with pytest.raises(TypeError, match="encode expects a str, got"):
        gpt2.encode(not_text)


def test_encode_refuses_unknown_special_tokens_and_lone_surrogates(gpt2):
    with pytest.raises(ValueError, match=r"\['<\|pad\|>'\] are not special tokens .* add_special_tokens"):
        gpt2.encode("x<|pad|>", allowed_special={"<|pad|>"})
    with pytest.raises(TypeError, match='allowed_special must be "all" or a collection'):
        gpt2.encode("x", allowed_special="<|endoftext|>")
    with pytest.raises(ValueError, match="lone surrogate"):
        gpt2.encode("broken \ud800 text")
    with pytest.raises(ValueError, match="already an ordinary token"):
        gpt2.add_special_tokens(["hello"])


def test_decode_refuses_unknown_ids(gpt2):
    with pytest.raises(ValueError, match="token id 50257 is not in the vocabulary \\(ids 0 to 50256\\)"):
        gpt2.decode([31373, 50257])
    with pytest.raises(ValueError, match="token id -1 is not in the vocabulary"):
        gpt2.decode([-1])
    with pytest.raises(TypeError):
        gpt2.decode(["hello"])
    first_half = gpt2.encode("😀")[:1]  # the emoji's 4 bytes are 2 tokens
    assert gpt2.decode(first_half) == "\ufffd"  # part of a character: replaced, unless errors="strict"
    with pytest.raises(UnicodeDecodeError):
        gpt2.decode(first_half, errors="strict")


def test_training_input_errors(tmp_path):
    with pytest.raises(ValueError, match="vocab_size=200 is too small: it must hold 256 byte tokens"):
        train_bpe("some text", 200)
    with pytest.raises(TypeError, match="training input must be str texts or pathlib.Path files, got bytes"):
        train_bpe([b"bytes"], 300)
    with pytest.raises(ValueError, match="vocab_size=256 is too small"):
        train_tokenizer("some text", 256)
    with pytest.raises(FileNotFoundError, match="training file .*missing.txt does not exist"):
        train_tokenizer([tmp_path / "missing.txt"], 300)
    with pytest.raises(TypeError, match="training input must be str texts or pathlib.Path files, got int"):
        train_tokenizer([1, 2], 300)
    with pytest.raises(ValueError, match='pad="eos" needs an end-of-text token'):
        train_tokenizer("some text", 300, special_tokens=())
    no_endoftext = train_bpe("some text, some more text", 260, special_tokens=["<|bos|>"], show_progress=False)
    with pytest.raises(ValueError, match="eos_token '<\\|endoftext\\|>' is not a special token of this tokenizer"):
        to_hf_tokenizer(no_endoftext)
    assert to_hf_tokenizer(no_endoftext, eos_token="<|bos|>").eos_token_id == no_endoftext.special_tokens["<|bos|>"]
