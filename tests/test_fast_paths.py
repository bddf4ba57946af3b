"""Every fast path gives what the plain path gives: the lean decoding loop and streaming API against transformers'
GPT-2 generate() with the same weights, and the training levers against plain training. Speed itself is measured
by benchmarks/run.py, never here."""

import copy
import json
import mmap
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

import gpt2_scratch  # noqa: F401  (registers the Auto classes)
from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM, kernels
from gpt2_scratch.conversion import from_transformers_gpt2
from gpt2_scratch.generation import (
    ForwardStep,
    OneTokenDecoder,
    PreallocatedCache,
    decoding_steps,
    generate_tokens,
    stream_generate,
    stream_text,
)
from gpt2_scratch.modeling.configuration_scratch_gpt2 import auto_map
from gpt2_scratch.precision import FloatLinear, InputMajorLinear, decoding_model
from gpt2_scratch.speed import pad_vocabulary
from gpt2_scratch.training.optim import decay_groups

pytestmark = pytest.mark.core

TINY = dict(n_layer=2, n_embd=64, n_head=4, n_positions=128, embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy 2-core machine threads that wait for each
    other at every operator make these tests several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pair():
    """transformers' GPT-2 with random weights (biases and LayerNorms too) and ours converted from it."""
    torch.manual_seed(0)
    reference = GPT2LMHeadModel(GPT2Config(**TINY)).eval()
    with torch.no_grad():
        for name, param in reference.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                param.add_(torch.randn_like(param) * 0.1)
    return reference, from_transformers_gpt2(reference).eval()


def reference_greedy(reference, input_ids, new_tokens, **kwargs):
    output = reference.generate(
        input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=50256,
        **kwargs,
    )
    return output[:, input_ids.shape[1] :]


# --- the lean decoding loop ----------------------------------------------------------------------------------------


def test_greedy_tokens_equal_transformers_generate(pair):
    reference, ours = pair
    input_ids = torch.randint(0, 50257, (3, 9), generator=torch.Generator().manual_seed(1))
    expected = reference_greedy(reference, input_ids, 24, min_new_tokens=24)
    for model in (ours, reference):  # the loop drives any transformers causal LM
        tokens = torch.stack(list(generate_tokens(model, input_ids, 24)), dim=1)
        assert torch.equal(tokens, expected)


def test_logits_over_the_preallocated_cache_equal_a_full_forward(pair):
    _, ours = pair
    input_ids = torch.randint(0, 50257, (2, 12), generator=torch.Generator().manual_seed(2))
    full = ours(input_ids).logits
    cache = PreallocatedCache(ours.config.n_layer, max_length=12)
    stepwise = [ours(input_ids[:, :5], cache=cache).logits]
    for position in range(5, 12):
        stepwise.append(ours(input_ids[:, position : position + 1], cache=cache).logits)
    torch.testing.assert_close(torch.cat(stepwise, dim=1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="preallocated KV cache holds 12 positions"):
        ours(input_ids[:, :1], cache=cache)


def test_one_token_decoder_steps_equal_the_model_forward(pair):
    """The decoder's own single-token steps give the logits of a full forward pass, and leave the cache as the
    model's forward would (a forward after them continues correctly)."""
    reference, ours = pair
    input_ids = torch.randint(0, 50257, (2, 12), generator=torch.Generator().manual_seed(2))
    cache = PreallocatedCache(ours.config.n_layer, max_length=12)
    step = decoding_steps(ours, cache)
    assert type(step) is OneTokenDecoder
    with torch.inference_mode():
        logits = [step(input_ids[:, :5])] + [step(input_ids[:, p : p + 1]) for p in range(5, 10)]
        logits.append(ours(input_ids[:, 10:12], cache=cache).logits[:, -1])
    expected = reference(input_ids).logits
    torch.testing.assert_close(torch.stack(logits[:-1], dim=1), expected[:, 4:10], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[-1], expected[:, -1], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="preallocated KV cache holds 12 positions"), torch.inference_mode():
        step(input_ids[:, :1])


def test_one_token_decoder_follows_the_config_variants():
    """No Q/K/V bias, the exact GELU and a padded vocabulary: the decoder's steps give the logits of transformers'
    GPT-2 with the exact GELU, a zero Q/K/V bias and the unpadded vocabulary, over vocab_size columns."""
    torch.manual_seed(3)
    reference = GPT2LMHeadModel(GPT2Config(**TINY, vocab_size=1000, activation_function="gelu")).eval()
    with torch.no_grad():
        for parameter in reference.parameters():  # large enough that the two GELUs differ, every bias random
            parameter.add_(torch.randn_like(parameter) * 0.1)
        for block in reference.transformer.h:
            block.attn.c_attn.bias.zero_()  # what a model without a Q/K/V bias computes
    converted = from_transformers_gpt2(reference)
    model = ScratchGPT2ForCausalLM(ScratchGPT2Config(**{**converted.config.to_dict(), "qkv_bias": False}))
    without_qkv_bias = {k: v for k, v in converted.state_dict().items() if not k.endswith("attn.c_attn.bias")}
    loaded = model.load_state_dict(without_qkv_bias, strict=False)
    assert not loaded.unexpected_keys and set(loaded.missing_keys) <= {"lm_head.weight"}  # tied to wte
    model = pad_vocabulary(model.eval(), 64)
    assert model.config.padded_vocab_size == 1024 and model.transformer.h[0].attn.c_attn.bias is None
    input_ids = torch.randint(0, 1000, (2, 8), generator=torch.Generator().manual_seed(4))
    step = decoding_steps(model, PreallocatedCache(model.config.n_layer, max_length=8))
    with torch.inference_mode():
        logits = [step(input_ids[:, :4])] + [step(input_ids[:, p : p + 1]) for p in range(4, 8)]
        expected = reference(input_ids).logits[:, 3:]
    torch.testing.assert_close(torch.stack(logits, dim=1), expected, atol=1e-5, rtol=1e-5)


def test_models_in_training_mode_and_others_decode_through_their_forward(pair):
    reference, ours = pair
    cache = PreallocatedCache(ours.config.n_layer, max_length=4)
    assert type(decoding_steps(reference, cache)) is ForwardStep
    try:
        assert type(decoding_steps(ours.train(), cache)) is ForwardStep  # dropout must apply
    finally:
        ours.eval()


def test_float32_decoding_model_changes_no_output_and_leaves_the_model_alone(pair, tmp_path):
    reference, ours = pair
    before = {name: tensor.clone() for name, tensor in ours.state_dict().items()}
    decoder = decoding_model(ours, "float32")
    c_attn = decoder.transformer.h[0].attn.c_attn
    # our float32 kernel where this machine builds it (test_kernels.py), else addmm over input-major weights
    assert isinstance(c_attn, FloatLinear if kernels.float_linear(torch.float32) else InputMajorLinear)
    streamed = getattr(c_attn, c_attn.streamed_weight)
    assert streamed.dtype == torch.float32 and streamed.is_contiguous()
    head = getattr(decoder.lm_head, decoder.lm_head.streamed_weight)
    assert decoder.transformer.wte.weight.data_ptr() == head.data_ptr()  # tied: one copy
    if hasattr(mmap, "MADV_HUGEPAGE"):  # Linux: the weights read per token start on a huge page
        assert streamed.data_ptr() % (2 * 1024 * 1024) == 0
    assert ours.lm_head.weight is ours.transformer.wte.weight and isinstance(ours.lm_head, torch.nn.Linear)
    for name, tensor in ours.state_dict().items():
        assert tensor.is_contiguous() and torch.equal(tensor, before[name]), name

    input_ids = torch.randint(0, 50257, (3, 9), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(decoder(input_ids).logits, reference(input_ids).logits, atol=1e-5, rtol=1e-5)
    expected = reference_greedy(reference, input_ids, 24, min_new_tokens=24)
    assert torch.equal(torch.stack(list(generate_tokens(decoder, input_ids, 24)), dim=1), expected)
    generated = decoder.generate(input_ids, max_new_tokens=24, min_new_tokens=24, do_sample=False, pad_token_id=50256)
    assert torch.equal(generated[:, 9:], expected)

    ours.save_pretrained(tmp_path)  # the model itself saves as ever, its config naming every head for remote code
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"] == auto_map()
    assert len(auto_map()) == 4
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert torch.equal(reloaded(input_ids).logits, ours(input_ids).logits)


def test_stopping_at_end_of_text_matches_transformers(pair):
    reference, ours = pair
    input_ids = torch.randint(0, 50257, (1, 6), generator=torch.Generator().manual_seed(3))
    free_run = reference_greedy(reference, input_ids, 20)[0]
    stop_token = int(free_run[7])  # pretend the 8th greedy token is the end of text
    expected = reference_greedy(reference, input_ids, 20, eos_token_id=stop_token)[0]
    tokens = [int(t) for t in generate_tokens(ours, input_ids, 20, eos_token_id=stop_token)]
    assert tokens == expected.tolist()
    assert tokens[-1] == stop_token and len(tokens) <= 8


def test_sampling_is_repeatable_and_top_k_1_is_greedy(pair):
    _, ours = pair
    input_ids = torch.randint(0, 50257, (2, 5), generator=torch.Generator().manual_seed(4))

    def sample(seed, **options):
        generator = torch.Generator().manual_seed(seed)
        return torch.stack(list(generate_tokens(ours, input_ids, 10, generator=generator, **options)), dim=1)

    assert torch.equal(sample(7, temperature=1.0, top_k=50), sample(7, temperature=1.0, top_k=50))
    assert not torch.equal(sample(7, temperature=1.0), sample(8, temperature=1.0))
    assert torch.equal(sample(7, temperature=0.8, top_k=1), sample(0))


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(max_new_tokens=0), "max_new_tokens must be at least 1"),
        (dict(max_new_tokens=200), "more than the model's 128"),
        (dict(max_new_tokens=5, temperature=-1.0), "temperature must be 0"),
        (dict(max_new_tokens=5, temperature=float("nan")), r"positive finite number, got nan"),
        (dict(max_new_tokens=5, temperature=float("inf")), r"positive finite number, got inf"),
        (dict(max_new_tokens=5, top_k=0), "top_k must be a positive integer"),
        (dict(max_new_tokens=5, top_k=2.5), "top_k must be a positive integer"),
    ],
)
def test_bad_generation_arguments_are_explained(pair, options, message):
    _, ours = pair
    with pytest.raises(ValueError, match=message):
        next(generate_tokens(ours, torch.tensor([[1, 2, 3]]), **options))


# --- the streaming API ---------------------------------------------------------------------------------------------


def test_stream_generate_yields_the_greedy_continuation_piece_by_piece(pair, tokenizer, shared_data):
    reference, ours = pair
    prompt = (shared_data / "the-verdict.txt").read_text(encoding="utf-8")[:200]
    input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    expected = reference_greedy(reference, input_ids, 30, min_new_tokens=30)[0]
    pieces = list(stream_generate(ours, tokenizer, prompt, max_new_tokens=30, stop_at_eos=False))
    assert "".join(pieces) == tokenizer.decode(expected, clean_up_tokenization_spaces=False)
    assert len(pieces) > 1 and all(pieces) and not any(piece.endswith("\ufffd") for piece in pieces)


def test_the_readme_decoding_snippet_streams_transformers_greedy_continuation(pair, tokenizer, tmp_path, capsys):
    """The README's fast-decoding snippet, run as written on a saved checkpoint, prints what transformers' GPT-2
    generates greedily from the same weights."""
    reference, ours = pair
    ours.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("The fast decoding path from Python")[1].split("```python\n")[1].split("```")[0]
    exec(snippet, {"model_dir": str(tmp_path)})
    input_ids = tokenizer("Every effort moves you", return_tensors="pt")["input_ids"]
    expected = reference_greedy(reference, input_ids, 50)[0].tolist()
    if tokenizer.eos_token_id in expected:  # generation stops there, and the snippet prints no end-of-text
        expected = expected[: expected.index(tokenizer.eos_token_id)]
    assert capsys.readouterr().out == tokenizer.decode(expected, clean_up_tokenization_spaces=False)


def test_stream_text_waits_for_whole_characters(tokenizer):
    """A token holding part of a multi-byte character yields nothing until the character is complete."""
    text = "snow ☃ and 雪!"
    tokens = tokenizer(text)["input_ids"]
    assert len(tokens) > len(tokenizer("snow x and y!")["input_ids"])  # the two characters take several tokens
    pieces = list(stream_text(iter(tokens), tokenizer))
    assert "".join(pieces) == text
    assert " ☃" in pieces and " 雪" in pieces  # each arrives whole, with the space its first token carries
    assert not any("\ufffd" in piece for piece in pieces)


def test_stream_text_flushes_an_incomplete_character_at_the_end(tokenizer):
    tokens = tokenizer("☃")["input_ids"][:-1]  # the snowman's bytes, cut short
    pieces = list(stream_text(iter(tokens), tokenizer))
    assert pieces == [tokenizer.decode(tokens)]


def test_stream_generate_rejects_an_empty_prompt(pair, tokenizer):
    with pytest.raises(ValueError, match="prompt is empty"):
        next(stream_generate(pair[1], tokenizer, ""))


# --- training levers -----------------------------------------------------------------------------------------------


def test_padded_vocabulary_changes_no_output(pair, tmp_path):
    reference, ours = pair
    padded = pad_vocabulary(copy.deepcopy(ours), 64)
    assert padded.transformer.wte.weight.shape[0] == 50304 and padded.lm_head.weight is padded.transformer.wte.weight
    input_ids = torch.randint(0, 50257, (2, 10), generator=torch.Generator().manual_seed(5))

    expected = reference(input_ids, labels=input_ids)
    actual = padded(input_ids, labels=input_ids)
    assert actual.logits.shape == expected.logits.shape
    torch.testing.assert_close(actual.logits, expected.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(actual.loss, expected.loss, atol=1e-6, rtol=1e-6)
    assert torch.equal(
        padded.generate(input_ids, max_new_tokens=8, do_sample=False, pad_token_id=50256),
        reference.generate(input_ids, max_new_tokens=8, do_sample=False, pad_token_id=50256),
    )

    actual.loss.backward()
    expected.loss.backward()
    gradient = padded.transformer.wte.weight.grad
    torch.testing.assert_close(gradient[:50257], reference.transformer.wte.weight.grad, atol=1e-6, rtol=1e-4)
    assert not gradient[50257:].any()  # the padding rows never learn anything
    padded.zero_grad(), reference.zero_grad()

    with pytest.raises(ValueError, match="multiple must be a positive integer"):
        pad_vocabulary(padded, 0)

    padded.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert torch.equal(reloaded(input_ids).logits, padded(input_ids).logits)


def test_fused_adamw_step_equals_the_plain_one(pair):
    _, ours = pair
    input_ids = torch.randint(0, 50257, (2, 16), generator=torch.Generator().manual_seed(6))
    results = []
    for fused in (False, True):
        model = copy.deepcopy(ours).train()
        optimizer = torch.optim.AdamW(decay_groups(model, 0.1), lr=1e-3, fused=fused)
        for _ in range(2):
            model(input_ids, labels=input_ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        results.append(model.state_dict())
    for name, tensor in results[0].items():
        # Adam divides each step by the gradient's running magnitude, so an element whose gradient is near zero
        # amplifies rounding differences between the two kernels to a few 1e-6 (seen on transformers 5.13's weights).
        torch.testing.assert_close(results[1][name], tensor, atol=1e-5, rtol=1e-5, msg=lambda text: f"{name}: {text}")
    assert not torch.equal(results[0]["transformer.h.0.mlp.c_fc.weight"], ours.state_dict()["transformer.h.0.mlp.c_fc.weight"])
