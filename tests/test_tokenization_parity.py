"""Our from-scratch BPE and our Hugging Face tokenizer against OpenAI's tokenizer (tiktoken's gpt2 encoding,
built from the same local files), on every text in the shared data and on hand-written hard cases."""

import csv
import json

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st
from tiktoken_ext.openai_public import r50k_pat_str

from gpt2_scratch.tokenization import ENDOFTEXT, BPETokenizer, gpt2_tokenizer
from gpt2_scratch.tokenization.byte_level import BYTE_TO_UNICODE, pretokenize
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


# --- code points of every plane, including those newer than Python's Unicode tables -----------------------------------

# CJK ideographs whose first byte GPT-2 merges with the last byte of the character before (b"\x88\xe8" is a token):
# only after such a character does it show in the ids whether the two were one piece or two.
CROSS_MERGE_FOLLOWERS = "\u813b\u58eb\u6975\u9192"


def test_the_issues_case_is_cut_as_tiktoken_cuts_it(ours, openai):
    text = "\U00018d88\u813b"  # a Tangut component of Unicode 17.0, then a CJK ideograph
    assert pretokenize(text) == ["\U00018d88", "\u813b"]  # for tiktoken U+18D88 is not a letter (yet)
    assert ours.encode(text) == openai.encode(text, disallowed_special=())


@pytest.mark.parametrize("start", [0x18D80, 0x2EBF0, 0x31350, 0x3D000])
def test_code_points_near_the_newest_blocks_get_tiktokens_ids(ours, openai, start):
    texts = [chr(point) + after for point in range(start - 0x80, start + 0x80) for after in CROSS_MERGE_FOLLOWERS]
    assert [ours.encode(text) for text in texts] == [openai.encode(text, disallowed_special=()) for text in texts]


# A letter, a digit, another symbol, whitespace. The probe vocabulary merges every byte with a probe character that
# follows it, and nothing else: such a merge happens only inside one pre-tokenised piece, so the ids show exactly where
# the pieces end, whatever the characters are.
PROBE_CHARACTERS = "a1!\t "
PROBE_PAIRS = [bytes([byte, ord(probe)]) for probe in PROBE_CHARACTERS for byte in range(256)]


@pytest.fixture(scope="module")
def probe_ours():
    vocab = {BYTE_TO_UNICODE[byte]: byte for byte in range(256)}
    merges = [(BYTE_TO_UNICODE[pair[0]], BYTE_TO_UNICODE[pair[1]]) for pair in PROBE_PAIRS]
    vocab.update({left + right: 256 + rank for rank, (left, right) in enumerate(merges)})
    return BPETokenizer(vocab, merges, source="probe vocabulary")


@pytest.fixture(scope="module")
def probe_openai():
    ranks = {bytes([byte]): byte for byte in range(256)} | {pair: 256 + rank for rank, pair in enumerate(PROBE_PAIRS)}
    return tiktoken.Encoding("probe", pat_str=r50k_pat_str, mergeable_ranks=ranks, special_tokens={})


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_any_code_point_of_any_plane_is_cut_as_tiktoken_cuts_it(ours, openai, probe_ours, probe_openai, random):
    """Texts of 40 characters drawn uniformly from all code points (hypothesis' own integers favour small ones,
    and so would rarely reach the newest blocks), each followed by a probe character or a cross-merge follower
    so that its class shows in the ids."""
    points = [random.randrange(0x110000) for _ in range(40)]
    followers = PROBE_CHARACTERS + CROSS_MERGE_FOLLOWERS
    text = "".join(chr(point) + random.choice(followers) for point in points if not 0xD800 <= point < 0xE000)
    assert probe_ours.encode(text) == probe_openai.encode_ordinary(text)
    assert ours.encode(text) == openai.encode_ordinary(text)


@pytest.mark.slow
def test_every_code_point_is_classed_as_tiktoken_classes_it(probe_openai):
    """Each code point before a letter and before a digit: one piece for tiktoken (the probe pair merged) exactly
    when one piece for us. 5-13 s."""
    differing = set()
    for probe in "a1":
        for point in range(0x110000):
            text = chr(point) + probe
            if not 0xD800 <= point < 0xE000:
                joined_by_tiktoken = len(probe_openai.encode_ordinary(text)) < len(text.encode())
                if joined_by_tiktoken != (pretokenize(text) == [text]):
                    differing.add(point)
    ranges = []
    for point in sorted(differing):
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1][1] = point
        else:
            ranges.append([point, point])
    shown = [(hex(first), hex(last)) for first, last in ranges]
    assert not ranges, f"byte_level.NEWER_THAN_UNICODE_16 needs updating; tiktoken classes otherwise: {shown}"
