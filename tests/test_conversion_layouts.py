"""Every exportable layout: ours -> layout -> ours is bit-identical, and the import computes what transformers'
GPT2LMHeadModel computes with the same weights."""

import copy

import pytest
import torch
from transformers import GPT2LMHeadModel

from oracles import TINY_GPT2, random_gpt2

from gpt2_scratch.provenance import Provenance
from gpt2_scratch.conversion import (
    LAYOUTS,
    convert,
    detect_layout,
    export_state_dict,
    from_transformers_gpt2,
    load_model,
    save_model,
    verify,
)
from gpt2_scratch.modeling import ScratchGPT2Config, ScratchGPT2ForCausalLM

TINY = TINY_GPT2
EXPORTABLE = ["scratch", "transformers", "nanogpt", "book", "book-openai-compatible", "llmc", "gguf"]
# llm.c's file header is the only place its vocabulary size is kept (wte is padded), so it has no bare state dict.
STATE_DICT_LAYOUTS = [name for name in EXPORTABLE if name != "llmc"]
# What each format's own program computes in the MLP, from its code: nanoGPT's model.py uses nn.GELU(), the exact
# GELU; the course's GELU module, llm.c's gelu_forward and llama.cpp's ggml_gelu use GPT-2's tanh approximation.
EXACT_GELU_LAYOUTS = ["nanogpt"]
TANH_GELU_LAYOUTS = ["book", "book-openai-compatible", "llmc", "gguf"]


@pytest.fixture(scope="module")
def gpt2():
    return random_gpt2(0)


@pytest.fixture(scope="module")
def ours(gpt2):
    return from_transformers_gpt2(gpt2)


@pytest.fixture(scope="module")
def gpt2_exact_gelu():
    """transformers' GPT-2 computing the exact GELU, as nanoGPT does, with weights wide enough that the tanh
    approximation would move its logits by 6e-4, far past the parity tolerance (with GPT-2's 0.02: 5e-6)."""
    return random_gpt2(0, activation_function="gelu", initializer_range=0.2)


@pytest.fixture(scope="module")
def ours_exact_gelu(gpt2_exact_gelu):
    return from_transformers_gpt2(gpt2_exact_gelu)


@pytest.fixture(scope="module")
def source_for(gpt2, ours, gpt2_exact_gelu, ours_exact_gelu):
    """For a layout, transformers' GPT-2 computing the GELU that the layout's programs compute, and ours of it."""
    return lambda layout: (gpt2_exact_gelu, ours_exact_gelu) if layout in EXACT_GELU_LAYOUTS else (gpt2, ours)


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, TINY["vocab_size"], (2, 24), generator=torch.Generator().manual_seed(1))


def logits(model, tokens):
    with torch.no_grad():
        return model(tokens).logits


def assert_bit_identical(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key


def test_every_exportable_layout_is_tested():
    assert sorted(name for name, layout in LAYOUTS.items() if layout.can_export) == sorted(EXPORTABLE)


@pytest.mark.parametrize("layout", STATE_DICT_LAYOUTS)
def test_state_dict_round_trip_and_parity(source_for, tokens, layout):
    gpt2, ours = source_for(layout)
    theirs = export_state_dict(ours, layout)
    back = load_model(theirs, layout=layout, n_head=4)
    assert_bit_identical(back, ours)
    assert (logits(back, tokens) - logits(gpt2, tokens)).abs().max() <= 1e-5


@pytest.mark.parametrize("layout", EXPORTABLE)
def test_folder_round_trip_is_detected_and_bit_identical(source_for, tmp_path, layout):
    _, ours = source_for(layout)
    folder = save_model(ours, tmp_path / layout, layout=layout)
    assert (folder / LAYOUTS[layout].weights_file).is_file()
    assert Provenance.read(folder) == Provenance()  # a model in memory: its own run records where it came from
    assert detect_layout(folder) == layout
    back = load_model(folder)  # the head count travels in the layout's own config or metadata
    assert back.config.n_head == 4 and back.config.activation_function == ours.config.activation_function
    assert_bit_identical(back, ours)


def test_book_layout_names_and_mask(ours):
    theirs = export_state_dict(ours, "book")
    assert torch.equal(theirs["trf_blocks.1.att.mask"], torch.triu(torch.ones(32, 32), diagonal=1))
    assert torch.equal(theirs["out_head.weight"], theirs["tok_emb.weight"])  # the course keeps a tied copy
    fused = ours.state_dict()["transformer.h.0.attn.c_attn.weight"]
    assert torch.equal(theirs["trf_blocks.0.att.W_key.weight"], fused[64:128])
    assert torch.equal(
        theirs["trf_blocks.0.ff.layers.2.weight"], ours.state_dict()["transformer.h.0.mlp.c_proj.weight"]
    )
    assert torch.equal(theirs["trf_blocks.0.norm2.shift"], ours.state_dict()["transformer.h.0.ln_2.bias"])


def test_book_without_qkv_bias_matches_gpt2_with_zero_bias(tokens):
    gpt2 = random_gpt2(3)
    with torch.no_grad():
        for block in gpt2.transformer.h:
            block.attn.c_attn.bias.zero_()
    theirs = export_state_dict(from_transformers_gpt2(gpt2), "book")
    for i in range(TINY["n_layer"]):  # the course's default: qkv_bias=False, no bias tensors at all
        for part in ("query", "key", "value"):
            del theirs[f"trf_blocks.{i}.att.W_{part}.bias"]
    ours = load_model(theirs, n_head=4)
    assert ours.config.qkv_bias is False and ours.transformer.h[0].attn.c_attn.bias is None
    assert (logits(ours, tokens) - logits(gpt2, tokens)).abs().max() <= 1e-5
    assert export_state_dict(ours, "book").keys() == theirs.keys()


def test_book_training_checkpoint_with_untied_head(tmp_path, tokens):
    gpt2 = random_gpt2(4, tie_word_embeddings=False)  # the course's 163M model trains its own out_head
    theirs = export_state_dict(from_transformers_gpt2(gpt2), "book")
    assert not torch.equal(theirs["out_head.weight"], theirs["tok_emb.weight"])
    optimizer_state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(3)}},
        "param_groups": [{"lr": 4e-4, "params": [0]}],
    }
    torch.save(
        {"model_state_dict": theirs, "optimizer_state_dict": optimizer_state}, tmp_path / "model_and_optimizer.pth"
    )
    assert detect_layout(tmp_path / "model_and_optimizer.pth", n_head=4) == "book"
    ours = load_model(tmp_path / "model_and_optimizer.pth", n_head=4)
    assert ours.config.tie_word_embeddings is False
    assert (logits(ours, tokens) - logits(gpt2, tokens)).abs().max() <= 1e-5


def test_nanogpt_compiled_checkpoint_with_mask_buffers(ours_exact_gelu, gpt2_exact_gelu, tokens, tmp_path):
    theirs = export_state_dict(ours_exact_gelu, "nanogpt")
    compiled = {"_orig_mod." + name: tensor for name, tensor in theirs.items()}
    for i in range(TINY["n_layer"]):  # nanoGPT keeps this buffer when flash attention is unavailable
        compiled[f"_orig_mod.transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(32, 32)).view(1, 1, 32, 32)
    model_args = dict(n_layer=2, n_head=4, n_embd=64, block_size=32, bias=True, vocab_size=300, dropout=0.0)
    torch.save(
        {
            "model": compiled,
            "model_args": model_args,
            "iter_num": 10,
            "best_val_loss": torch.tensor(3.2),
            "optimizer": {"state": {}, "param_groups": []},
            "config": {},
        },
        tmp_path / "ckpt.pt",
    )
    assert detect_layout(tmp_path) == "nanogpt"
    back = load_model(tmp_path)
    assert back.config.n_head == 4 and back.config.resid_pdrop == 0.0
    assert back.config.activation_function == "gelu"  # model_args does not say: nanoGPT's MLP is nn.GELU()
    assert (logits(back, tokens) - logits(gpt2_exact_gelu, tokens)).abs().max() <= 1e-5


def test_nanogpt_without_biases_is_refused(ours_exact_gelu, tmp_path):
    args = dict(n_layer=2, n_head=4, n_embd=64, block_size=32, bias=False, vocab_size=300, dropout=0.0)
    torch.save({"model": export_state_dict(ours_exact_gelu, "nanogpt"), "model_args": args}, tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match="bias=False"):
        load_model(tmp_path / "ckpt.pt")


@pytest.mark.parametrize(
    "layout, activation",
    [("nanogpt", "gelu_new"), ("nanogpt", "gelu_pytorch_tanh")] + [(layout, "gelu") for layout in TANH_GELU_LAYOUTS],
)
def test_export_refuses_a_layout_whose_programs_compute_the_other_gelu(tmp_path, tokens, layout, activation):
    model = from_transformers_gpt2(random_gpt2(0, activation_function=activation, initializer_range=0.2))
    expected = rf"the '{layout}' layout is read by programs that compute .*activation_function='{activation}'"
    with pytest.raises(ValueError, match=expected):
        save_model(model, tmp_path / layout, layout=layout)
    assert not (tmp_path / layout).exists()
    with pytest.raises(ValueError, match=expected):
        export_state_dict(model, layout)
    for able in ("scratch", "transformers"):  # the layouts that record the activation take either
        assert load_model(save_model(model, tmp_path / able, layout=able)).config.activation_function == activation


@pytest.mark.parametrize("layout, activation", [("nanogpt", "gelu"), ("llmc", "gelu_new")])
def test_an_untied_head_is_refused_by_layouts_whose_programs_tie_it(tmp_path, layout, activation):
    untied = from_transformers_gpt2(random_gpt2(4, tie_word_embeddings=False, activation_function=activation))
    assert untied.config.tie_word_embeddings is False
    with pytest.raises(ValueError, match=f"the '{layout}' layout's LM head is always its token embedding"):
        save_model(untied, tmp_path / layout, layout=layout)
    assert not (tmp_path / layout).exists()


def test_transformers_export_of_a_model_without_qkv_bias_writes_zeros(tokens):
    gpt2 = random_gpt2(5)
    model = from_transformers_gpt2(gpt2)
    no_bias = load_model(
        {k: v for k, v in export_state_dict(model, "book").items() if ".att.W_" not in k or "weight" in k}, n_head=4
    )
    theirs = export_state_dict(no_bias, "transformers")
    assert torch.equal(theirs["transformer.h.1.attn.c_attn.bias"], torch.zeros(192))
    reference = copy.deepcopy(gpt2)
    with torch.no_grad():
        for block in reference.transformer.h:
            block.attn.c_attn.bias.zero_()
    assert (logits(no_bias, tokens) - logits(reference, tokens)).abs().max() <= 1e-5


@pytest.fixture(scope="module")
def book_classifier(gpt2):
    """The course's spam classifier: the GPT body with out_head replaced by nn.Linear(d, 2), which has a bias."""
    theirs = export_state_dict(from_transformers_gpt2(gpt2), "book")
    generator = torch.Generator().manual_seed(9)
    theirs["out_head.weight"] = torch.randn(2, 64, generator=generator) * 0.1
    theirs["out_head.bias"] = torch.randn(2, generator=generator)
    return theirs


def test_book_classifier_head_with_bias_computes_what_the_course_model_computes(gpt2, book_classifier, tokens):
    from gpt2_scratch.modeling import ScratchGPT2ForSequenceClassification

    assert detect_layout(book_classifier, n_head=4) == "book"
    classifier = load_model(book_classifier, n_head=4)
    assert isinstance(classifier, ScratchGPT2ForSequenceClassification) and classifier.config.num_labels == 2
    with torch.no_grad():  # the course: logits of the last position, out_head with its bias, on the GPT body
        hidden = gpt2.transformer(tokens).last_hidden_state[:, -1]
        expected = hidden @ book_classifier["out_head.weight"].t() + book_classifier["out_head.bias"]
        got = classifier(tokens, attention_mask=torch.ones_like(tokens)).logits
    assert (got - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("layout", ["scratch", "transformers", "book", "book-openai-compatible"])
def test_classifier_round_trips_through_every_layout_with_a_classifier_head(book_classifier, tmp_path, layout):
    classifier = load_model(book_classifier, n_head=4)
    folder = save_model(classifier, tmp_path / layout, layout=layout)
    assert_bit_identical(load_model(folder), classifier)


def test_classifier_exports_to_transformers_sequence_classification(book_classifier, tmp_path, tokens):
    from transformers import GPT2ForSequenceClassification

    classifier = load_model(book_classifier, n_head=4)
    reloaded = GPT2ForSequenceClassification.from_pretrained(
        save_model(classifier, tmp_path / "hf", layout="transformers")
    )
    with torch.no_grad():
        for row in tokens:  # transformers' GPT-2 classifier wants a pad token for batches; one row at a time
            assert (reloaded(row[None]).logits - classifier(row[None]).logits).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="'llmc' layout has no classifier head"):
        save_model(classifier, tmp_path / "llmc", layout="llmc")


# --- a padded vocabulary (config.pad_vocab_size_to_multiple_of) -----------------------------------------------------


@pytest.fixture(scope="module")
def padded(ours):
    """Ours with its 300-token vocabulary padded to 320 rows (zeros), as gpt2_scratch.speed.pad_vocabulary does."""
    from gpt2_scratch.speed import pad_vocabulary

    model = pad_vocabulary(copy.deepcopy(ours), 64)
    assert model.transformer.wte.weight.shape == (320, 64)
    return model


@pytest.mark.parametrize("layout", EXPORTABLE)
def test_padded_vocabulary_is_saved_and_converted_to_every_layout(padded, gpt2, tokens, tmp_path, layout):
    if padded.config.activation_function not in LAYOUTS[layout].activations:  # nanoGPT's programs: exact GELU
        padded = copy.deepcopy(padded)
        padded.config.activation_function = LAYOUTS[layout].activations[0]
        for block in padded.transformer.h:
            block.mlp.act.approximate = "none"
    padded.save_pretrained(tmp_path / "saved")
    written = [
        save_model(padded, tmp_path / "from_memory", layout=layout),
        convert(tmp_path / "saved", tmp_path / "from_save_pretrained", to_layout=layout),
    ]
    for folder in written:
        back = load_model(folder)
        assert torch.equal(logits(back, tokens), logits(padded, tokens)), folder
        # Only our own layout keeps the padding rows; the others drop them and hold the 300 tokens.
        assert back.transformer.wte.weight.shape[0] == (320 if layout == "scratch" else 300)
        assert back.config.vocab_size == 300
    if layout == "transformers":  # transformers' own GPT-2 loads the export
        reloaded = GPT2LMHeadModel.from_pretrained(written[0]).eval()
        assert (logits(reloaded, tokens) - logits(gpt2, tokens)).abs().max() <= 1e-5
        assert verify(tmp_path / "saved", written[1]).identical  # the padding rows are no part of the model


def test_padded_untied_head_drops_its_padding_rows_too(tokens, tmp_path):
    config = ScratchGPT2Config(**TINY, tie_word_embeddings=False, pad_vocab_size_to_multiple_of=64)
    model = ScratchGPT2ForCausalLM(config).eval()
    assert model.lm_head.weight.shape == (320, 64)
    theirs = export_state_dict(model, "transformers")
    assert theirs["lm_head.weight"].shape == theirs["transformer.wte.weight"].shape == (300, 64)
    back = load_model(save_model(model, tmp_path / "book", layout="book"))
    assert torch.equal(logits(back, tokens), logits(model, tokens))


def test_padding_can_be_asked_for_on_import(ours, tokens):
    model = load_model(export_state_dict(ours, "transformers"), n_head=4, pad_vocab_size_to_multiple_of=64)
    assert model.config.padded_vocab_size == 320 and not model.transformer.wte.weight[300:].any()
    assert torch.equal(logits(model, tokens), logits(ours, tokens))
