"""ScratchGPT2 against the oracle: transformers' own GPT-2 with the same random weights."""

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
)

import gpt2_scratch  # noqa: F401  (registers the Auto classes)
from gpt2_scratch.conversion import from_transformers_gpt2, to_transformers_gpt2
from oracles import random_gpt2
from gpt2_scratch.modeling import (
    PRESETS,
    ScratchGPT2Config,
    ScratchGPT2ForCausalLM,
    ScratchGPT2ForSequenceClassification,
    ScratchGPT2Model,
)

pytestmark = pytest.mark.core

TINY = dict(n_layer=2, n_embd=64, n_head=4, n_positions=128)
NO_DROPOUT = dict(embd_pdrop=0.0, attn_pdrop=0.0, resid_pdrop=0.0)
GPT2_VOCAB = dict(vocab_size=50257, bos_token_id=50256, eos_token_id=50256)  # generation pads with 50256


def reference_pair(attn_implementation="sdpa", seed=0, **sizes):
    """A transformers GPT2LMHeadModel with random weights and our model converted from it."""
    reference = random_gpt2(seed, **{**GPT2_VOCAB, **TINY, **sizes}, **NO_DROPOUT)
    reference.set_attn_implementation(attn_implementation)
    ours = from_transformers_gpt2(reference).eval()
    ours.set_attn_implementation(attn_implementation)
    return reference, ours


def padded_batch(vocab=50257, pad_side="right", seed=1):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab - 1, (3, 12), generator=generator)
    mask = torch.ones_like(ids)
    for row, length in enumerate([12, 7, 3]):
        if pad_side == "right":
            mask[row, length:] = 0
        else:
            mask[row, : 12 - length] = 0
    return ids, mask


# --- configuration ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(n_embd=100, n_head=3), "n_embd"),
        (dict(n_layer=0), "n_layer"),
        (dict(n_head=-2), "n_head"),
        (dict(vocab_size=0), "vocab_size"),
        (dict(activation_function="swish"), "activation_function"),
        (dict(attn_pdrop=1.5), "attn_pdrop"),
    ],
)
def test_impossible_config_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        ScratchGPT2Config(**overrides)


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match="small"):
        ScratchGPT2Config.from_preset("huge")


@pytest.mark.parametrize("preset", ["small", "medium", "large", "xl"])
def test_preset_parameter_counts_equal_transformers(preset):
    sizes = PRESETS[preset]
    with torch.device("meta"):
        ours = ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset(preset))
        reference = GPT2LMHeadModel(GPT2Config(**sizes))
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in reference.parameters())
    published = {"small": 124_439_808, "medium": 354_823_168, "large": 774_030_080, "xl": 1_557_611_200}
    assert count == published[preset]


def test_initialisation_follows_gpt2():
    config = ScratchGPT2Config.from_preset("small", n_layer=4)
    torch.manual_seed(0)
    model = ScratchGPT2ForCausalLM(config)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # tied
    assert model.transformer.wte.weight.std().item() == pytest.approx(0.02, rel=0.02)
    block = model.transformer.h[0]
    assert block.attn.c_attn.weight.std().item() == pytest.approx(0.02, rel=0.02)
    scaled = 0.02 / (2 * config.n_layer) ** 0.5
    assert block.attn.c_proj.weight.std().item() == pytest.approx(scaled, rel=0.05)
    assert block.mlp.c_proj.weight.std().item() == pytest.approx(scaled, rel=0.05)
    assert torch.all(block.ln_1.weight == 1) and torch.all(block.attn.c_attn.bias == 0)


# --- logits, hidden states, loss and gradients --------------------------------------------------------------------


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("pad_side", [None, "right", "left"])
def test_logits_match_transformers_tiny(attn_implementation, pad_side):
    reference, ours = reference_pair(attn_implementation)
    ids, mask = padded_batch(pad_side=pad_side or "right")
    kwargs = {}
    if pad_side is not None:
        # transformers' GPT-2 does not derive positions from the mask in forward(); give it the positions that
        # ours derives, so both see the same input (generate() does the same for both).
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        kwargs = dict(attention_mask=mask, position_ids=positions)
    with torch.no_grad():
        expected = reference(ids, **kwargs).logits
        actual = ours(ids, attention_mask=kwargs.get("attention_mask")).logits
    valid = mask.bool() if pad_side is not None else torch.ones_like(ids, dtype=torch.bool)
    assert (expected - actual)[valid].abs().max().item() <= 1e-5


@pytest.mark.parametrize("preset", ["small", "medium"])
def test_logits_match_transformers_presets(preset):
    reference, ours = reference_pair(**PRESETS[preset])
    ids, mask = padded_batch(pad_side="right")
    ids, mask = ids[:, :8], mask[:, :8]
    for attn_implementation in ["eager", "sdpa"]:
        reference.set_attn_implementation(attn_implementation)
        ours.set_attn_implementation(attn_implementation)
        with torch.no_grad():
            expected = reference(ids, attention_mask=mask).logits
            actual = ours(ids, attention_mask=mask).logits
        assert (expected - actual)[mask.bool()].abs().max().item() <= 1e-5, attn_implementation


def test_hidden_states_loss_and_gradients_match_transformers():
    reference, ours = reference_pair("eager")
    ids, _ = padded_batch()
    labels = ids.clone()
    labels[:, :3] = -100
    expected = reference(ids, labels=labels, output_hidden_states=True, output_attentions=True)
    actual = ours(ids, labels=labels, output_hidden_states=True, output_attentions=True)
    assert len(actual.hidden_states) == len(expected.hidden_states) == ours.config.n_layer + 1
    for mine, theirs in zip(actual.hidden_states, expected.hidden_states):
        assert (mine - theirs).abs().max().item() <= 1e-5
    for mine, theirs in zip(actual.attentions, expected.attentions):
        assert (mine - theirs).abs().max().item() <= 1e-6
    assert actual.loss.item() == pytest.approx(expected.loss.item(), abs=1e-5)

    expected.loss.backward()
    actual.loss.backward()
    theirs = dict(reference.named_parameters())
    for name, param in ours.named_parameters():
        grad = theirs[name].grad
        if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            grad = grad.t()  # transformers' Conv1D stores (in, out)
        assert torch.allclose(param.grad, grad, atol=1e-6, rtol=1e-4), name


def test_num_items_in_batch_sums_then_divides_once():
    _, ours = reference_pair()
    ids, _ = padded_batch()
    labels = ids.clone()
    labels[0, 5:] = -100
    mean_loss = ours(ids, labels=labels).loss
    summed = ours(ids, labels=labels, num_items_in_batch=torch.tensor(1)).loss
    n_targets = (labels[:, 1:] != -100).sum()
    assert summed.item() == pytest.approx(mean_loss.item() * n_targets.item(), rel=1e-5)


def test_too_long_input_gets_a_clear_error():
    _, ours = reference_pair()
    with pytest.raises(ValueError, match="n_positions"):
        ours(torch.zeros(1, 129, dtype=torch.long))


def test_output_attentions_needs_eager():
    _, ours = reference_pair("sdpa")
    with pytest.raises(ValueError, match="eager"):
        ours(torch.zeros(1, 4, dtype=torch.long), output_attentions=True)


# --- generation ---------------------------------------------------------------------------------------------------


GENERATION_SETTINGS = {
    "greedy": dict(do_sample=False),
    "sampling": dict(do_sample=True, top_k=20, top_p=0.9, temperature=0.8),
    "beam_search": dict(do_sample=False, num_beams=3, num_return_sequences=2),
    "repetition_penalty": dict(do_sample=False, repetition_penalty=1.3),
}


@pytest.mark.parametrize("setting", list(GENERATION_SETTINGS))
@pytest.mark.parametrize("pad_side", [None, "left"])
def test_generate_matches_transformers(setting, pad_side):
    reference, ours = reference_pair()
    ids, mask = padded_batch(pad_side="left")
    if pad_side is None:
        ids, mask = ids[:1], mask[:1]
    kwargs = dict(
        attention_mask=mask, max_new_tokens=12, pad_token_id=50256, **GENERATION_SETTINGS[setting]
    )
    torch.manual_seed(123)
    expected = reference.generate(ids, **kwargs)
    torch.manual_seed(123)
    actual = ours.generate(ids, **kwargs)
    assert torch.equal(actual, expected)


@pytest.mark.parametrize("cache_implementation", ["dynamic", "static"])
def test_cached_and_uncached_decoding_agree(cache_implementation):
    _, ours = reference_pair()
    ids, mask = padded_batch(pad_side="left")
    kwargs = dict(attention_mask=mask, max_new_tokens=10, do_sample=False, pad_token_id=50256)
    cached = ours.generate(ids, use_cache=True, cache_implementation=cache_implementation, **kwargs)
    uncached = ours.generate(ids, use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)


def test_streamer_receives_every_new_token():
    from transformers.generation.streamers import BaseStreamer

    class Collect(BaseStreamer):
        def __init__(self):
            self.pieces = []

        def put(self, value):
            self.pieces.append(value.flatten().tolist())

        def end(self):
            self.pieces.append("end")

    _, ours = reference_pair()
    streamer = Collect()
    out = ours.generate(torch.tensor([[10, 20, 30]]), max_new_tokens=5, do_sample=False, streamer=streamer)
    assert streamer.pieces[0] == [10, 20, 30] and streamer.pieces[-1] == "end"
    assert [p[0] for p in streamer.pieces[1:-1]] == out[0, 3:].tolist()


# --- sequence classification --------------------------------------------------------------------------------------


def classification_pair(num_labels=3):
    torch.manual_seed(0)
    config = GPT2Config(**TINY, **NO_DROPOUT, num_labels=num_labels, pad_token_id=50256)
    reference = GPT2ForSequenceClassification(config).eval()
    backbone = from_transformers_gpt2(
        {k: v for k, v in reference.state_dict().items() if k.startswith("transformer.")}
    )
    ours = ScratchGPT2ForSequenceClassification(
        ScratchGPT2Config(**TINY, **NO_DROPOUT, num_labels=num_labels, pad_token_id=50256)
    ).eval()
    ours.transformer.load_state_dict(backbone.transformer.state_dict())
    ours.score.weight.data.copy_(reference.score.weight.data)
    return reference, ours


@pytest.mark.parametrize("pad_side", ["left", "right"])
def test_sequence_classification_matches_transformers(pad_side):
    reference, ours = classification_pair()
    ids, mask = padded_batch(pad_side=pad_side)
    ids = ids.masked_fill(mask == 0, 50256)  # pad with the pad token, as a tokenizer does
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask, position_ids=positions).logits
        actual = ours(ids, attention_mask=mask).logits
        unpadded = torch.cat([ours(ids[i : i + 1, mask[i].bool()]).logits for i in range(3)])
    assert (expected - actual).abs().max().item() <= 1e-5
    assert (unpadded - actual).abs().max().item() <= 1e-5  # padding side and amount do not matter


def test_classification_without_pad_token_or_mask_explains():
    _, ours = classification_pair()
    ours.config.pad_token_id = None
    with pytest.raises(ValueError, match="pad_token_id"):
        ours(torch.zeros(2, 4, dtype=torch.long))


@pytest.mark.parametrize(
    "num_labels, labels, problem_type",
    [
        (3, torch.tensor([0, 2, 1]), "single_label_classification"),
        (1, torch.tensor([0.5, -1.0, 2.0]), "regression"),
        (3, torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0]]), "multi_label_classification"),
    ],
)
def test_classification_losses_match_transformers(num_labels, labels, problem_type):
    reference, ours = classification_pair(num_labels)
    ids, mask = padded_batch(pad_side="right")
    ids = ids.masked_fill(mask == 0, 50256)
    expected = reference(ids, attention_mask=mask, labels=labels)
    actual = ours(ids, attention_mask=mask, labels=labels)
    assert ours.config.problem_type == reference.config.problem_type == problem_type
    assert actual.loss.item() == pytest.approx(expected.loss.item(), abs=1e-5)


# --- saving, loading, Auto classes --------------------------------------------------------------------------------


def test_save_and_load_roundtrip_with_auto_classes(tmp_path):
    _, ours = reference_pair()
    ours.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "scratch-gpt2"
    ids = torch.tensor([[1, 2, 3, 4]])
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, ScratchGPT2ForCausalLM)
    assert torch.equal(loaded(ids).logits, ours(ids).logits)
    assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr()
    trunk = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(trunk, ScratchGPT2Model)
    assert torch.equal(trunk(ids).last_hidden_state, ours.transformer(ids).last_hidden_state)
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2)
    assert isinstance(classifier, ScratchGPT2ForSequenceClassification)


def test_sharded_save_roundtrip(tmp_path):
    _, ours = reference_pair()
    ours.save_pretrained(tmp_path, max_shard_size="2MB")
    assert len(list(tmp_path.glob("model-*-of-*.safetensors"))) > 1
    loaded = ScratchGPT2ForCausalLM.from_pretrained(tmp_path)
    for (name, a), b in zip(ours.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_roundtrip_through_transformers_gpt2_is_exact():
    reference, ours = reference_pair()
    back = to_transformers_gpt2(ours)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name


def test_dtypes_and_gradient_checkpointing():
    _, ours = reference_pair()
    ids, mask = padded_batch()
    expected = ours(ids, attention_mask=mask).logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_logits = ours(ids, attention_mask=mask).logits
    assert (autocast_logits.float() - expected).abs().max() < 0.1
    bf16 = ScratchGPT2ForCausalLM(ours.config).to(torch.bfloat16)
    bf16.load_state_dict(ours.state_dict())
    assert bf16.eval()(ids).logits.dtype == torch.bfloat16

    ours.train()
    # transformers 5.24 renamed gradient checkpointing to activation checkpointing.
    checkpointing = "activation" if hasattr(ours, "activation_checkpointing_enable") else "gradient"
    getattr(ours, f"{checkpointing}_checkpointing_enable")()
    loss = ours(ids, labels=ids).loss
    loss.backward()
    with_checkpointing = {n: p.grad.clone() for n, p in ours.named_parameters()}
    getattr(ours, f"{checkpointing}_checkpointing_disable")()
    ours.zero_grad()
    ours(ids, labels=ids).loss.backward()
    for name, param in ours.named_parameters():
        assert torch.allclose(param.grad, with_checkpointing[name], atol=1e-7), name


def test_torch_compile_forward_matches_eager():
    _, ours = reference_pair()
    ids = torch.randint(0, 50000, (2, 16))
    expected = ours(ids).logits
    # The aot_eager backend traces the whole forward with dynamo (fullgraph: no graph breaks allowed) and AOT
    # autograd without generating C++ kernels, which would take minutes on this CPU.
    compiled = torch.compile(ours, backend="aot_eager", fullgraph=True)
    assert (compiled(ids).logits - expected).abs().max().item() <= 1e-5
