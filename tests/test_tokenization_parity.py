"""Our from-scratch BPE and our Hugging Face tokenizer against OpenAI's tokenizer (tiktoken's gpt2 encoding,
built from the same local files), on every text in the shared data and on hand-written hard cases."""

import csv
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2_scratch.tokenization import ENDOFTEXT, BPETokenizer, gpt2_tokenizer
from gpt2_scratch.tokenization.reference import tiktoken_gpt2

HARD_CASES = [
    "",
    " ",
    "Hello, world!",
    # unicode: accents, combining marks, scripts without spaces, right-to-left, Latin-1 bytes, NBSP, zero width
    "naïve café, Zürich, São Paulo, Ångström, ﬁ ligature",
    "e\u0301 n\u0303 combining marks",
    "日本語のテキスト、中文文本，한국어 텍스트",
    "مرحبا بالعالم שלום עולם",
    "Ελληνικά и русский текст",
    "\x00\x01\x7f\x85\xa0\xad control and Latin-1",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    # emoji: single, skin tone, ZWJ families, flags, keycaps
    "emoji 😀😃 👍🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 1️⃣ #️⃣ ❤️",
    # code
    'def f(x):\n\tif x >= 0:\n\t\treturn {"a": [1, 2]}  # comment\n    return None\n',
    "for (int i = 0; i < n; ++i) { s += a[i] * b[i]; }",
    "<html><body class='x'>&nbsp;&amp;</body></html>",
    # long whitespace runs, mixed, leading and trailing
    "a" + " " * 100 + "b",
    "\n" * 50,
    "   leading and trailing   ",
    "tabs\t\t\tand\r\nwindows\r\n\r\nlines \t \n \u3000 ideographic space",
    " " * 7 + "\n" + " " * 3 + "x",
    # numbers
    "1234567890 3.14159 1,000,000 -42 +7 1e-10 0x1F 2026-11-21",
    "٠١٢٣ Arabic-Indic, ०१२ Devanagari, ½ ² Ⅻ",
    # contractions, upper case and curly apostrophes (only the lower-case ASCII ones are split out)
    "I'm sure you'll see they've said it's what we'd do, don't they're",
    "I'M SURE YOU'LL SEE IT'S 'S 'T 'RE",
    "it’s curly ’ and 's at the start, y'all, rock'n'roll, '' ''' 'x",
    # text that looks like a special token
    "before <|endoftext|> after <|endoftext <|endoftext|><|endoftext|>",
]


def shared_texts(shared_data):
    """Every text in the shared data: the-verdict, every SMS message, every instruction record's fields."""
    texts = [(shared_data / "the-verdict.txt").read_text(encoding="utf-8")]
    with open(shared_data / "SMSSpamCollection", encoding="utf-8", newline="") as f:
        texts += [row[1] for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    for record in json.loads((shared_data / "instruction-data.json").read_text(encoding="utf-8")):
        texts += [record["instruction"], record["input"], record["output"]]
    return texts


@pytest.fixture(scope="module")
def ours(tokenizer_dir):
    return BPETokenizer.from_gpt2(tokenizer_dir)


@pytest.fixture(scope="module")
def openai(tokenizer_dir):
    return tiktoken_gpt2(tokenizer_dir)


@pytest.fixture(scope="module")
def hf(tokenizer_dir):
    return gpt2_tokenizer(tokenizer_dir)


def assert_all_agree(texts, ours, openai, hf):
    expected = [openai.encode(text, disallowed_special=()) for text in texts]
    assert [ours.encode(text) for text in texts] == expected
    assert hf(texts, split_special_tokens=True)["input_ids"] == expected
    assert [ours.decode(ids) for ids in expected] == texts
    assert hf.batch_decode(expected) == texts


def test_shared_data_matches_tiktoken_and_tokenizers(shared_data, ours, openai, hf):
    texts = shared_texts(shared_data)
    assert len(texts) == 1 + 5574 + 3 * 1100
    assert_all_agree(texts, ours, openai, hf)
    # The course's figure for the-verdict with GPT-2's BPE.
    assert len(ours.encode(texts[0])) == 5145


def test_hard_cases_match_tiktoken_and_tokenizers(ours, openai, hf):
    assert_all_agree(HARD_CASES, ours, openai, hf)
    assert_all_agree(["".join(HARD_CASES)], ours, openai, hf)


@pytest.mark.parametrize("text", ["<|endoftext|>", "a<|endoftext|>b", "doc one.<|endoftext|>doc two<|endoftext|>"])
def test_special_tokens_only_when_allowed(text, ours, openai, hf):
    as_special = openai.encode(text, allowed_special="all")
    as_plain = openai.encode(text, disallowed_special=())
    assert as_special.count(50256) == text.count(ENDOFTEXT) and 50256 not in as_plain
    assert ours.encode(text, allowed_special="all") == ours.encode(text, allowed_special={ENDOFTEXT}) == as_special
    assert ours.encode(text) == ours.encode(text, allowed_special=()) == as_plain
    assert hf.encode(text, split_special_tokens=False) == as_special
    assert hf.encode(text, split_special_tokens=True) == as_plain
    assert ours.decode(as_special) == ours.decode(as_plain) == text


def test_user_added_special_tokens(tokenizer_dir):
    ours = BPETokenizer.from_gpt2(tokenizer_dir)
    assert ours.add_special_tokens(["<|pad|>", "<|user|>"]) == [50257, 50258]
    assert ours.add_special_tokens([ENDOFTEXT]) == [50256]  # already there: same id
    text = "<|user|>hi<|pad|><|pad|><|endoftext|>"
    assert ours.encode(text, allowed_special={"<|pad|>"}) == ours.encode("<|user|>hi") + [50257, 50257] + ours.encode(ENDOFTEXT)
    assert ours.encode(text, allowed_special="all") == [50258, 5303, 50257, 50257, 50256]
    assert ours.decode(ours.encode(text, allowed_special="all")) == text
    hf = gpt2_tokenizer(tokenizer_dir, pad="<|pad|>")
    assert hf.pad_token_id == 50257 and hf.encode("hi<|pad|>") == ours.encode("hi<|pad|>", allowed_special="all")


# Fragments that stress the pre-tokenisation pattern: whitespace runs next to words, contractions, digits.
FRAGMENTS = [" ", "  ", "\n", "\t", "\r\n", "\u00a0", "'", "'s", "'ll", "a", "A", "é", "1", "23", "!", ".", "😀", "日", ENDOFTEXT]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS)).map("".join)))
def test_any_unicode_round_trips_with_tiktokens_ids(ours, openai, hf, text):
    ids = ours.encode(text)
    assert ids == openai.encode(text, disallowed_special=()) == hf.encode(text, split_special_tokens=True)
    assert ours.decode(ids) == text
    assert ours.encode(text, allowed_special="all") == openai.encode(text, allowed_special="all")
