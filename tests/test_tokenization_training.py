"""Training a byte-level BPE tokenizer: ours (from scratch) against `tokenizers`' trainer on the same corpus,
and the result saved and loaded in both file formats."""

import csv

import pytest
from transformers import AutoTokenizer

from gpt2_scratch.tokenization import ENDOFTEXT, BPETokenizer, to_hf_tokenizer, train_bpe, train_tokenizer


@pytest.fixture(scope="module")
def verdict(shared_data):
    return (shared_data / "the-verdict.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def trained(verdict):
    return train_bpe(verdict, vocab_size=1000, show_progress=False)


def learned_merges(hf_tokenizer):
    """The merges of a trained `tokenizers` BPE model, in rank order."""
    import json

    merges = json.loads(hf_tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]


def tokens_of(ids, tokenizer: BPETokenizer):
    id_to_token = {token_id: token for token, token_id in tokenizer.vocab.items()}
    return [id_to_token[i] for i in ids]


# 1000 fills the vocabulary; 5000 is more than the-verdict's pairs seen twice, so both stop early.
@pytest.mark.parametrize("vocab_size", [1000, 5000])
def test_train_bpe_learns_the_same_merges_as_tokenizers(verdict, vocab_size):
    ours = train_bpe(verdict, vocab_size, show_progress=False)
    theirs = train_tokenizer(verdict, vocab_size, show_progress=False)
    assert ours.merges == learned_merges(theirs)
    assert ours.vocab_size == len(theirs) <= vocab_size
    ids = ours.encode(verdict)
    assert tokens_of(ids, ours) == theirs.convert_ids_to_tokens(theirs.encode(verdict))
    assert ours.decode(ids) == verdict


def test_trained_tokenizer_layout_and_round_trip(trained, verdict):
    assert trained.vocab_size == 1000 and len(trained.merges) == 1000 - 256 - 1
    assert trained.special_tokens == {ENDOFTEXT: 999}
    ids = trained.encode(verdict)
    assert trained.decode(ids) == verdict
    assert len(ids) < len(verdict.encode("utf-8")) / 2  # merges compress: GPT-2's own gives 5145 for 20479 bytes
    documents = f"{verdict[:300]}{ENDOFTEXT}{verdict[300:600]}"
    assert trained.encode(documents, allowed_special="all").count(999) == 1
    assert trained.decode(trained.encode(documents, allowed_special="all")) == documents


def test_special_token_text_in_the_corpus_is_not_learned(verdict):
    corpus = ENDOFTEXT.join([verdict[:5000], verdict[5000:10000], verdict[10000:]] * 3)
    ours = train_bpe(corpus, 600, special_tokens=[ENDOFTEXT, "<|pad|>"], show_progress=False)
    assert not any("|" in left + right for left, right in ours.merges)
    assert ours.special_tokens == {ENDOFTEXT: 598, "<|pad|>": 599}
    theirs = train_tokenizer(corpus, 600, special_tokens=[ENDOFTEXT, "<|pad|>"], show_progress=False)
    assert ours.merges == learned_merges(theirs)
    assert theirs.convert_tokens_to_ids([ENDOFTEXT, "<|pad|>"]) == [0, 1]  # tokenizers puts them first


def test_trained_tokenizer_saves_and_loads_in_hugging_face_format(trained, verdict, tmp_path):
    to_hf_tokenizer(trained, model_max_length=256).save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = verdict + ENDOFTEXT + "New document."
    assert loaded.encode(text) == trained.encode(text, allowed_special="all")
    assert loaded.decode(loaded.encode(text)) == text
    assert (loaded.eos_token_id, loaded.pad_token_id, len(loaded), loaded.model_max_length) == (999, 999, 1000, 256)


def test_trained_tokenizer_saves_and_loads_as_vocab_and_merges(trained, verdict, tmp_path):
    trained.save(tmp_path)
    loaded = BPETokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert (loaded.vocab, loaded.merges, loaded.special_tokens) == (trained.vocab, trained.merges, trained.special_tokens)
    assert loaded.encode(verdict) == trained.encode(verdict)


def test_train_tokenizer_from_files_and_texts(shared_data, verdict, tmp_path):
    with open(shared_data / "SMSSpamCollection", encoding="utf-8", newline="") as f:
        messages = [row[1] for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)][:1000]
    corpus = [shared_data / "the-verdict.txt", *messages]
    tokenizer = train_tokenizer(corpus, vocab_size=1500, show_progress=False)
    assert len(tokenizer) == 1500
    assert (tokenizer.eos_token, tokenizer.bos_token, tokenizer.pad_token) == (ENDOFTEXT,) * 3
    assert learned_merges(tokenizer) == train_bpe(corpus, vocab_size=1500, show_progress=False).merges
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in [verdict, *messages[:200], "unseen: 日本語 😀 <tag/>"]:
        assert loaded.encode(text) == tokenizer.encode(text)
        assert loaded.decode(loaded.encode(text)) == text
    # Trained on the SMS messages too, it spends merges on their words.
    assert len(tokenizer.encode(messages[2])) < len(train_tokenizer(verdict, 1500, show_progress=False).encode(messages[2]))
