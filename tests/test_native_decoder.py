"""One-token decoding steps in one call into C++ (gpt2_scratch.generation.NativeDecoder, gpt2_scratch/kernels/decoder.cpp).

Oracles: transformers' GPT-2 holding the same weights (greedy tokens of its generate(), logits of its forward) and
the model's own blocks stepping the same decoding copy (OneTokenDecoder), at the small preset's width and at
shapes that exercise every tail of the C++ loops (a head of 24 channels, a width of 40, an MLP of 100)."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM, kernels
from gpt2_scratch.conversion import from_transformers_gpt2
from gpt2_scratch.generation import (
    NATIVE_ROWS,
    NativeDecoder,
    OneTokenDecoder,
    PreallocatedCache,
    decoding_steps,
    generate_tokens,
    native_decoder,
)
from gpt2_scratch.precision import decoding_model
from gpt2_scratch.speed import pad_vocabulary

pytestmark = pytest.mark.core

SMALL_WIDTH = dict(n_layer=2, n_embd=768, n_head=12, n_positions=256)  # the small preset's width, two blocks
ODD = dict(n_layer=2, n_embd=72, n_head=3, n_inner=100, n_positions=48, vocab_size=1000)  # tails everywhere


@pytest.fixture(autouse=True)
def decoder_built():
    """The Decoder must be built where this CPU has its instructions and a compiler is here (CI's does)."""
    if not kernels.available("Decoder"):
        pytest.skip(f"this CPU lacks {', '.join(sorted(kernels.NEEDS['Decoder']))}")
    assert kernels.decoder() is not None, "a CPU with the Decoder's instructions and a C++ compiler must build it"


def randomised(model):
    """Random biases and LayerNorms on top of the random weights, so that every term of the sums shows."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return randomised(ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("small", **SMALL_WIDTH)))


def step_both(model, input_ids: torch.Tensor, prompt: int, max_length: int):
    """Logits of every step of `input_ids` (the first `prompt` tokens at once) through the blocks and through C++,
    and the two caches."""
    blocks_cache, native_cache = (PreallocatedCache(model.config.n_layer, max_length) for _ in range(2))
    blocks, native = OneTokenDecoder(model, blocks_cache), decoding_steps(model, native_cache)
    assert type(native) is NativeDecoder
    with torch.inference_mode():
        steps = [(blocks(input_ids[:, :prompt]), native(input_ids[:, :prompt]))]
        steps += [(blocks(input_ids[:, p : p + 1]), native(input_ids[:, p : p + 1])) for p in range(prompt, input_ids.shape[1])]
    expected, got = (torch.stack(side, dim=1) for side in zip(*steps))
    return expected, got, blocks_cache, native_cache


def assert_close_to_spread(got: torch.Tensor, expected: torch.Tensor, tolerance: float):
    error = (got - expected).abs().max().item() / expected.std().item()
    assert error <= tolerance, f"largest error {error:.2e} of the spread, more than {tolerance:.0e}"


# Largest logit error, as a share of the logits' spread, of C++'s steps against the blocks' over the same weights:
# float32 summation in another order (measured 2e-6). int8 rounds each activation row to 16-bit integers, and an
# activation a rounding step away flips its integer (measured 5e-4 over 30 steps); its tolerance is the one its
# kernel keeps against the dequantised weights (tests/test_precision.py).
TOLERANCE = {"float32": 1e-5, "bfloat16": 1e-5, "float16": 1e-5, "int8": 1e-3}


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "float16", "int8"])
def test_native_steps_equal_the_blocks_steps(small, precision):
    decoder = decoding_model(small, precision)
    rows = 1 if precision == "bfloat16" else 2  # the blocks round two rows to bfloat16 for oneDNN (kernels.OUR_ROWS)
    input_ids = torch.randint(0, 50257, (rows, 40), generator=torch.Generator().manual_seed(1))
    expected, got, blocks_cache, native_cache = step_both(decoder, input_ids, prompt=7, max_length=40)
    assert got.shape == expected.shape == (rows, 34, 50257) and got.dtype == torch.float32
    assert_close_to_spread(got, expected, TOLERANCE[precision])
    assert native_cache.get_seq_length() == 40
    for ours, theirs in zip(native_cache.layers, blocks_cache.layers):  # the keys and values written in place
        assert_close_to_spread(ours.keys, theirs.keys, TOLERANCE[precision])
        assert_close_to_spread(ours.values, theirs.values, TOLERANCE[precision])


def test_native_steps_equal_transformers_gpt2_at_the_small_width():
    """Logits of every step against transformers' GPT-2 forward over the same weights, and greedy tokens against
    its generate()."""
    torch.manual_seed(0)
    reference = randomised(GPT2LMHeadModel(GPT2Config(**SMALL_WIDTH)))
    decoder = decoding_model(from_transformers_gpt2(reference).eval(), "float32")
    input_ids = torch.randint(0, 50257, (2, 30), generator=torch.Generator().manual_seed(2))
    step = decoding_steps(decoder, PreallocatedCache(2, 30))
    assert type(step) is NativeDecoder
    with torch.inference_mode():
        logits = [step(input_ids[:, :5])] + [step(input_ids[:, p : p + 1]) for p in range(5, 30)]
        expected = reference(input_ids).logits[:, 4:]
    assert_close_to_spread(torch.stack(logits, dim=1), expected, TOLERANCE["float32"])

    input_ids = input_ids[:1, :9]
    greedy = reference.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=40, min_new_tokens=40, do_sample=False, pad_token_id=50256
    )[:, 9:]
    assert torch.equal(torch.stack(list(generate_tokens(decoder, input_ids, 40)), dim=1), greedy)


@pytest.mark.parametrize(
    "width, heads, activation",
    [(72, 3, "gelu_new"), (72, 3, "gelu_pytorch_tanh"), (48, 3, "gelu_new"), (96, 3, "gelu_new"), (256, 2, "gelu_new")],
    ids=["head-24", "head-24-pytorch-tanh", "head-16", "head-32", "head-128"],
)
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_native_steps_follow_odd_shapes_and_the_config_variants(precision, width, heads, activation):
    """Heads of 24 channels (the loop for any size) and of 16, 32 and 128 (64 is the small preset's: above), an
    MLP of 100, no Q/K/V bias, a vocabulary padded from 1000 to 1024 rows, and every position up to the end of the
    context (attention over 48 keys)."""
    torch.manual_seed(2)
    config = ScratchGPT2Config(**{**ODD, "n_embd": width, "n_head": heads}, qkv_bias=False, activation_function=activation)
    model = pad_vocabulary(randomised(ScratchGPT2ForCausalLM(config)), 64)
    assert model.transformer.h[0].attn.c_attn.bias is None and model.config.padded_vocab_size == 1024
    input_ids = torch.randint(0, 1000, (3, 48), generator=torch.Generator().manual_seed(3))
    expected, got, _, _ = step_both(decoding_model(model, precision), input_ids, prompt=2, max_length=48)
    assert got.shape == (3, 47, 1000)
    assert_close_to_spread(got, expected, TOLERANCE[precision])


def test_native_gelu_holds_far_into_both_tails():
    """MLP inputs from about -60 to 60 (GELU's tanh saturates, its exponential underflows): the logits still
    follow the blocks' (torch's own GELU)."""
    torch.manual_seed(4)
    model = randomised(ScratchGPT2ForCausalLM(ScratchGPT2Config(**{**ODD, "n_embd": 40, "n_head": 4})))
    with torch.no_grad():
        for block in model.transformer.h:
            block.mlp.c_fc.weight.mul_(300)
            block.mlp.c_proj.weight.mul_(0.01)
    decoder = decoding_model(model, "float32")
    hidden = decoder.transformer.h[0].ln_2(torch.randn(1, 40))
    assert decoder.transformer.h[0].mlp.c_fc(hidden).abs().max() > 30
    input_ids = torch.randint(0, 1000, (2, 20), generator=torch.Generator().manual_seed(5))
    expected, got, _, _ = step_both(decoder, input_ids, prompt=3, max_length=20)
    assert_close_to_spread(got, expected, TOLERANCE["float32"])


def test_decoding_steps_take_the_native_decoder_only_where_every_matmul_is_ours(small, monkeypatch):
    cache = PreallocatedCache(2, 8)
    assert type(decoding_steps(small, cache)) is OneTokenDecoder  # nn.Linear: torch's matmuls
    exact_gelu = ScratchGPT2ForCausalLM(ScratchGPT2Config(**ODD, activation_function="gelu")).eval()
    assert type(decoding_steps(decoding_model(exact_gelu, "float32"), cache)) is OneTokenDecoder  # tanh only
    monkeypatch.setenv(kernels.SWITCH, "0")
    kernels.compiled.cache_clear()
    try:
        assert native_decoder(decoding_model(small, "float16")) is None
    finally:
        kernels.compiled.cache_clear()


def test_steps_of_more_rows_go_through_the_blocks(small):
    """Over NATIVE_ROWS rows the matmuls are compute-bound: such steps take the blocks, on the same cache."""
    decoder = decoding_model(small, "float16")
    rows = NATIVE_ROWS + 1
    input_ids = torch.randint(0, 50257, (rows, 6), generator=torch.Generator().manual_seed(6))
    step = decoding_steps(decoder, PreallocatedCache(2, 6))
    with torch.inference_mode():
        logits = [step(input_ids[:, :3])] + [step(input_ids[:, p : p + 1]) for p in range(3, 6)]
        expected = decoder(input_ids).logits[:, 2:]
    assert_close_to_spread(torch.stack(logits, dim=1), expected, TOLERANCE["float16"])


def test_the_decoder_refuses_what_it_cannot_read(small):
    decoder = native_decoder(decoding_model(small, "float16"))
    caches = [torch.zeros(1, 2, 12, 8, 64) for _ in range(2)]
    with torch.inference_mode():
        assert decoder.step(torch.tensor([5]), torch.tensor([3]), caches).shape == (1, 50257)
        with pytest.raises(RuntimeError, match="KV cache: contiguous float32"):
            decoder.step(torch.tensor([5]), torch.tensor([8]), caches)  # no room at position 8
        with pytest.raises(RuntimeError, match="one KV cache per layer"):
            decoder.step(torch.tensor([5]), torch.tensor([3]), caches[:1])
        with pytest.raises(RuntimeError, match="token 50304 is outside the vocabulary"):
            decoder.step(torch.tensor([50304]), torch.tensor([3]), caches)
        with pytest.raises(RuntimeError, match="tokens: int64"):
            decoder.step(torch.tensor([5], dtype=torch.int32), torch.tensor([3]), caches)
    native = kernels.compiled()
    norm, head = native.Norm(torch.ones(768), torch.zeros(768), 1e-5), native.Weights(torch.zeros(10, 768), None, None)
    block = native.Block(
        norm,
        native.Weights(torch.zeros(2304, 768), None, None),
        native.Weights(torch.zeros(768, 700), None, None),
        norm,
        native.Weights(torch.zeros(3072, 768), None, None),
        native.Weights(torch.zeros(768, 3072), None, None),
    )
    with pytest.raises(RuntimeError, match="attn.c_proj: a contiguous \\(768, 768\\) weight"):
        native.Decoder(torch.zeros(10, 768), torch.zeros(4, 768), [block], norm, head, 12, 10)


def test_rows_at_their_own_positions_step_as_they_would_alone(small):
    """The server's batches: rows of one cache (more rows than are stepped), each at its own position, give each
    row's logits of decoding it alone through the blocks, token after token."""
    from gpt2_scratch.serving.scheduler import BatchDecoder

    decoder = decoding_model(small, "float32")
    batch = BatchDecoder(decoder, rows=4, max_length=32)
    assert batch.native is not None
    generator = torch.Generator().manual_seed(7)
    prompts = [torch.randint(0, 50257, (length,), generator=generator).tolist() for length in (3, 9, 5)]
    alone = [OneTokenDecoder(decoder, PreallocatedCache(2, 32)) for _ in prompts]
    with torch.inference_mode():
        logits = batch.prefill(0, prompts)
        expected = torch.cat([step(torch.tensor([prompt])) for step, prompt in zip(alone, prompts)])
        positions = torch.tensor([len(prompt) for prompt in prompts])
        for _ in range(6):
            assert_close_to_spread(logits, expected, TOLERANCE["float32"])
            tokens = expected.argmax(dim=-1)
            logits = batch.step(tokens, positions)
            expected = torch.cat([step(token.view(1, 1)) for step, token in zip(alone, tokens)])
            positions += 1
        assert_close_to_spread(logits, expected, TOLERANCE["float32"])
