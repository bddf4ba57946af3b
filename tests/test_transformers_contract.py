"""The rest of transformers' model contract, checked against GPT2LMHeadModel with the same weights on whichever
transformers release is installed (CI runs this module on the declared minimum, the lock and the newest releases).

Each test is one class of check from transformers' own GPT-2 model tests (the common model and generation mixins):
the KV cache under both of its names, continuing from a returned cache, assisted decoding, token type ids,
tuple outputs, a full-graph compile of cached decoding, packed rows, and no deprecated API on our side. The widths
are the tests' tiny one and the `small` preset's, because a bug in the cache shows only from n_embd >= 128 on.
"""

import logging

import pytest
import torch
import transformers
from transformers.cache_utils import StaticCache

import gpt2_scratch  # noqa: F401  (registers the Auto classes)
from gpt2_scratch.conversion import from_transformers_gpt2
from gpt2_scratch.modeling import PRESETS, ScratchGPT2Config, ScratchGPT2ForCausalLM
from gpt2_scratch.modeling.modeling_scratch_gpt2 import CACHE_FIELD
from oracles import random_gpt2

pytestmark = pytest.mark.core

TINY = dict(n_layer=2, n_embd=64, n_head=4, n_positions=128)
WIDTHS = {"tiny": TINY, "small": PRESETS["small"]}
GPT2_VOCAB = dict(vocab_size=50257, bos_token_id=50256, eos_token_id=50256)
NO_DROPOUT = dict(embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0)


@pytest.fixture(scope="module", params=list(WIDTHS))
def pair(request):
    """transformers' GPT-2 with random weights (biases and LayerNorms too) and ours converted from it."""
    reference = random_gpt2(0, **GPT2_VOCAB, **WIDTHS[request.param], **NO_DROPOUT)
    return reference, from_transformers_gpt2(reference).eval()


def left_padded_batch(seed=1, lengths=(12, 7, 3)):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 50256, (len(lengths), max(lengths)), generator=generator)
    mask = torch.ones_like(ids)
    for row, length in enumerate(lengths):
        mask[row, : max(lengths) - length] = 0
    return ids.masked_fill(mask == 0, 50256), mask


def test_the_small_preset_decodes_the_same_with_and_without_the_cache():
    # The reproduction from the issue, as written: any width from 128 on went wrong on transformers 5.24.
    torch.manual_seed(0)
    model = ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("small")).eval()
    x = torch.randint(0, 50257, (1, 20))
    kw = dict(attention_mask=torch.ones_like(x), max_new_tokens=12, do_sample=False, pad_token_id=50256)
    assert torch.equal(model.generate(x, **kw), model.generate(x, use_cache=False, **kw))


@pytest.mark.parametrize(
    "setting",
    [
        dict(do_sample=False),
        dict(do_sample=False, cache_implementation="static"),
        dict(do_sample=False, use_cache=False),
        dict(do_sample=False, num_beams=3, num_return_sequences=2),
        dict(do_sample=False, repetition_penalty=1.3),
        dict(do_sample=True, top_k=20, top_p=0.9, temperature=0.8),
    ],
    ids=["greedy", "static-cache", "no-cache", "beam-search", "repetition-penalty", "sampling"],
)
def test_generate_equals_transformers_gpt2(pair, setting):
    reference, ours = pair
    ids, mask = left_padded_batch()
    kwargs = dict(attention_mask=mask, max_new_tokens=10, pad_token_id=50256, **setting)
    torch.manual_seed(123)
    expected = reference.generate(ids, **kwargs)
    torch.manual_seed(123)
    assert torch.equal(ours.generate(ids, **kwargs), expected)


def test_the_cache_is_read_under_either_name(pair):
    reference, ours = pair
    ids = torch.randint(0, 50256, (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = ours(ids).logits[:, -1]
        for name in ("cache", "past_key_values"):
            prefix = ours(ids[:, :-1], use_cache=True)
            step = ours(ids[:, -1:], **{name: getattr(prefix, CACHE_FIELD)}).logits[:, -1]
            assert (step - full).abs().max().item() <= 1e-4, name


def test_generation_continues_from_a_returned_cache(pair):
    reference, ours = pair
    ids, mask = left_padded_batch(lengths=(6, 6))
    kwargs = dict(do_sample=False, pad_token_id=50256)
    whole = reference.generate(ids, attention_mask=mask, max_new_tokens=10, **kwargs)
    first = ours.generate(ids, attention_mask=mask, max_new_tokens=4, return_dict_in_generate=True, **kwargs)
    cache = getattr(first, CACHE_FIELD)
    assert cache is not None and cache.get_seq_length() == ids.shape[1] + 3  # the last token is not yet cached
    more_mask = torch.ones_like(first.sequences)
    rest = ours.generate(first.sequences, attention_mask=more_mask, max_new_tokens=6, **{CACHE_FIELD: cache}, **kwargs)
    assert torch.equal(rest, whole)


def test_assisted_decoding_keeps_the_greedy_tokens(pair):
    reference, ours = pair
    torch.manual_seed(5)
    assistant = ScratchGPT2ForCausalLM(ScratchGPT2Config(**TINY, **GPT2_VOCAB)).eval()  # a poor, cheap draft
    ids = torch.randint(0, 50256, (1, 8), generator=torch.Generator().manual_seed(3))
    kwargs = dict(attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False, pad_token_id=50256)
    expected = reference.generate(ids, **kwargs)
    assert torch.equal(ours.generate(ids, assistant_model=assistant, **kwargs), expected)
    assert torch.equal(ours.generate(ids, prompt_lookup_num_tokens=3, **kwargs), expected)


def test_token_type_ids_are_embedded_as_gpt2_does(pair):
    reference, ours = pair
    ids = torch.randint(0, 50256, (2, 10), generator=torch.Generator().manual_seed(4))
    types = torch.randint(0, 3, (2, 10), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = reference(ids, token_type_ids=types).logits
        actual = ours(ids, token_type_ids=types).logits
        assert (expected - actual).abs().max().item() <= 1e-4
        assert (actual - ours(ids).logits).abs().max().item() > 1e-3  # they change the output
    kwargs = dict(token_type_ids=types, max_new_tokens=6, do_sample=False, pad_token_id=50256)
    assert torch.equal(ours.generate(ids, **kwargs), reference.generate(ids, **kwargs))


def test_return_dict_false_gives_the_output_as_a_tuple(pair):
    _, ours = pair
    ids = torch.randint(0, 50256, (2, 6), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        as_dict = ours(ids, labels=ids)
        loss, logits, cache = ours(ids, labels=ids, return_dict=False)
        assert torch.equal(loss, as_dict.loss) and torch.equal(logits, as_dict.logits)
        assert cache.get_seq_length() == 6
        hidden, *_ = ours.transformer(ids, use_cache=False, return_dict=False)
        assert torch.equal(hidden, ours.transformer(ids).last_hidden_state)
        ours.config.return_dict = False
        try:
            assert isinstance(ours(ids), tuple)
        finally:
            ours.config.return_dict = True


def test_cached_decoding_compiles_as_one_graph():
    # What `_can_compile_fullgraph = True` promises: prefill and decode steps over a static cache, compiled with
    # fullgraph=True (no graph break allowed), give the eager logits. aot_eager traces the whole graph without
    # generating C++ kernels, which would take minutes on this CPU.
    reference = random_gpt2(0, **GPT2_VOCAB, **TINY, **NO_DROPOUT)
    ours = from_transformers_gpt2(reference).eval()
    ids = torch.randint(0, 50256, (2, 12), generator=torch.Generator().manual_seed(7))
    compiled = torch.compile(ours, backend="aot_eager", fullgraph=True)

    def decode(model):
        cache = StaticCache(config=ours.config, max_cache_len=16)
        logits = [model(ids[:, :8], cache=cache, position_ids=torch.arange(8)[None]).logits[:, -1]]
        for position in range(8, 12):
            step = model(ids[:, position : position + 1], cache=cache, position_ids=torch.tensor([[position]]))
            logits.append(step.logits[:, -1])
        return torch.stack(logits)

    with torch.no_grad():
        assert (decode(compiled) - decode(ours)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_packed_row_longer_than_the_context_equals_each_document_alone(attn_implementation):
    # TRL's packing and padding-free collators send one (1, N) row whose positions restart at every document, with
    # no attention mask and use_cache=False (as Trainer and SFTTrainer do): N may exceed n_positions (128 here), as
    # long as no position does, and each document sees only itself. (With a cache, transformers' mask builder does
    # not look for packed rows, in its GPT-2 as in ours.)
    reference = random_gpt2(0, **GPT2_VOCAB, **TINY, **NO_DROPOUT)
    ours = from_transformers_gpt2(reference).eval()
    for model in (reference, ours):
        model.set_attn_implementation(attn_implementation)
    lengths = [128, 100, 90, 126]  # 444 tokens
    ids = torch.randint(0, 50256, (1, sum(lengths)), generator=torch.Generator().manual_seed(8))
    positions = torch.cat([torch.arange(n) for n in lengths])[None]
    with torch.no_grad():
        packed = ours(ids, position_ids=positions, use_cache=False).logits
        expected = reference(ids, position_ids=positions, use_cache=False).logits
        alone = torch.cat([ours(document).logits for document in ids.split(lengths, dim=1)], dim=1)
    assert (packed - expected).abs().max().item() <= 1e-4
    assert (packed - alone).abs().max().item() <= 1e-4


def test_positions_past_the_context_get_our_error_in_forward_and_generate(pair):
    _, ours = pair
    n = ours.config.n_positions
    with pytest.raises(ValueError, match="n_positions"):
        ours(torch.zeros(1, n + 1, dtype=torch.long))
    ids = torch.zeros(1, n - 4, dtype=torch.long)
    with pytest.raises(ValueError, match="n_positions"):
        ours.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False, pad_token_id=0)


def test_no_deprecated_transformers_api_is_used(tmp_path, caplog):
    # transformers announces renames through its logger (warning_once) as well as through warnings; the suite turns
    # the warnings raised from our code into errors (pyproject's filterwarnings), this test catches the log lines.
    reference = random_gpt2(0, **GPT2_VOCAB, **TINY, **NO_DROPOUT)
    ours = from_transformers_gpt2(reference)
    ids, mask = left_padded_batch()
    transformers.logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING, logger="transformers"):
            ours.train()
            ours(ids, attention_mask=mask, labels=ids).loss.backward()
            ours.eval()
            ours.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=50256)
            ours.generate(ids, attention_mask=mask, max_new_tokens=4, num_beams=2, pad_token_id=50256)
            ours.save_pretrained(tmp_path)
            ScratchGPT2ForCausalLM.from_pretrained(tmp_path)(ids, attention_mask=mask)
    finally:
        transformers.logging.disable_propagation()
    deprecations = [r.getMessage() for r in caplog.records if "deprecat" in r.getMessage().lower()]
    assert deprecations == []
