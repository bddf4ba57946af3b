"""llm.c and GGUF, checked against what outside code writes and reads: an llm.c file written here the way llm.c's
train_gpt2.py writes it, and gguf's own GGUFReader on our GGUF export."""

import json
import math

import numpy as np
import pytest
import torch
from gguf import GGML_QUANT_VERSION, GGUFReader, Keys, LlamaFileType, SpecialVocab, TokenType
from transformers import AutoTokenizer, GPT2LMHeadModel

from oracles import TINY_GPT2, max_logit_difference, random_gpt2

from gpt2_scratch.conversion import convert, detect_layout, from_transformers_gpt2, load_model, save_model
from gpt2_scratch.tokenization import train_tokenizer

TINY = TINY_GPT2
LINEARS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@pytest.fixture(scope="module")
def gpt2():
    return random_gpt2(7)


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, TINY["vocab_size"], (2, 20), generator=torch.Generator().manual_seed(3))


def llmc_bytes(gpt2: GPT2LMHeadModel, dtype: torch.dtype) -> bytes:
    """An llm.c model file as llm.c's train_gpt2.py writes it: header, padded wte, wpe, each kind for all layers."""
    params = {name: tensor.detach() for name, tensor in gpt2.state_dict().items()}
    for name in params:  # llm.c's PyTorch reference model uses nn.Linear: weights (out, in)
        if name.endswith(LINEARS):
            params[name] = params[name].t()
    config = gpt2.config
    padded = math.ceil(config.vocab_size / 128) * 128
    header = torch.zeros(256, dtype=torch.int32)
    header[:8] = torch.tensor(
        [
            20240326,
            {torch.float32: 3, torch.bfloat16: 5}[dtype],
            config.n_positions,
            config.vocab_size,
            config.n_layer,
            config.n_head,
            config.n_embd,
            padded,
        ]
    )
    wte = params["transformer.wte.weight"]
    order = [torch.cat([wte, torch.zeros(padded - wte.shape[0], wte.shape[1])]), params["transformer.wpe.weight"]]
    kinds = [
        "ln_1.weight",
        "ln_1.bias",
        "attn.c_attn.weight",
        "attn.c_attn.bias",
        "attn.c_proj.weight",
        "attn.c_proj.bias",
        "ln_2.weight",
        "ln_2.bias",
        "mlp.c_fc.weight",
        "mlp.c_fc.bias",
        "mlp.c_proj.weight",
        "mlp.c_proj.bias",
    ]
    order += [params[f"transformer.h.{i}.{kind}"] for kind in kinds for i in range(config.n_layer)]
    order += [params["transformer.ln_f.weight"], params["transformer.ln_f.bias"]]
    data = b"".join(t.to(dtype).contiguous().view(-1).view(torch.uint8).numpy().tobytes() for t in order)
    return header.numpy().tobytes() + data


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_llmc_file_written_as_llmc_does_imports_and_our_export_is_byte_identical(gpt2, tokens, tmp_path, dtype):
    (tmp_path / "gpt2_tiny.bin").write_bytes(llmc_bytes(gpt2, dtype))
    assert detect_layout(tmp_path / "gpt2_tiny.bin") == "llmc"
    ours = load_model(tmp_path / "gpt2_tiny.bin", dtype=None)
    assert ours.dtype == dtype and ours.config.n_head == 4 and ours.config.vocab_size == 300
    reference = gpt2 if dtype == torch.float32 else GPT2LMHeadModel(gpt2.config).eval().to(torch.bfloat16)
    if dtype == torch.bfloat16:
        reference.load_state_dict(gpt2.state_dict())
    assert max_logit_difference(ours.float(), reference.float(), tokens) <= 1e-5
    out = save_model(from_transformers_gpt2(gpt2), tmp_path / "export", layout="llmc", dtype=dtype)
    assert (out / "model.bin").read_bytes() == (tmp_path / "gpt2_tiny.bin").read_bytes()


def test_llmc_truncated_file_is_reported(gpt2, tmp_path):
    (tmp_path / "model.bin").write_bytes(llmc_bytes(gpt2, torch.float32)[:-100])
    with pytest.raises(ValueError, match="truncated"):
        load_model(tmp_path / "model.bin")


def tiny_tokenizer_files(tokenizer_dir, folder) -> dict[str, int]:
    """GPT-2's first 299 tokens plus <|endoftext|>, in transformers' file names, for the 300-token test model."""
    encoder = json.loads((tokenizer_dir / "encoder.json").read_text())
    vocab = {token: index for token, index in encoder.items() if index < 299} | {"<|endoftext|>": 299}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    merges = (tokenizer_dir / "vocab.bpe").read_text().splitlines()[:20]  # the "#version" line, then 19 merges
    (folder / "merges.txt").write_text("\n".join(merges) + "\n")
    return vocab


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_gguf_export_read_back_with_ggufs_reader(gpt2, tokens, tmp_path, tokenizer_dir, dtype):
    source = tmp_path / "hf"
    gpt2.save_pretrained(source)
    vocab = tiny_tokenizer_files(tokenizer_dir, source) if dtype == "float16" else None
    out = convert(source, tmp_path / "gguf", to_layout="gguf", dtype=dtype)
    reader = GGUFReader(out / "model.gguf")
    assert reader.fields["general.architecture"].contents() == "gpt2"
    assert (
        reader.fields["gpt2.block_count"].contents() == 2 and reader.fields["gpt2.attention.head_count"].contents() == 4
    )
    if vocab is None:
        assert "tokenizer.ggml.tokens" not in reader.fields
    else:  # vocab.json + merges.txt, as transformers 4 and OpenAI's release have them
        assert_llama_cpps_fields(out / "model.gguf", source, 300, LlamaFileType.MOSTLY_F16)
        assert reader.fields["tokenizer.ggml.tokens"].contents() == sorted(vocab, key=vocab.get)
    stored = {tensor.name: tensor for tensor in reader.tensors}
    expected = {
        "token_embd.weight": gpt2.transformer.wte.weight,
        "position_embd.weight": gpt2.transformer.wpe.weight,
        "blk.1.attn_qkv.weight": gpt2.transformer.h[1].attn.c_attn.weight.t(),
        "blk.1.attn_qkv.bias": gpt2.transformer.h[1].attn.c_attn.bias,
        "blk.0.ffn_down.weight": gpt2.transformer.h[0].mlp.c_proj.weight.t(),
        "blk.0.attn_norm.weight": gpt2.transformer.h[0].ln_1.weight,
        "output_norm.bias": gpt2.transformer.ln_f.bias,
    }
    assert len(stored) == 2 + 12 * 2 + 2 and "output.weight" not in stored  # a tied head is not stored
    for name, tensor in expected.items():
        want = tensor.detach()
        if dtype == "float16" and want.ndim == 2 and name != "position_embd.weight":
            want = want.half()  # F16 rounding; llama.cpp's converter keeps 1-D tensors and position_embd in F32
        assert stored[name].data.dtype == want.numpy().dtype, name
        assert np.array_equal(np.asarray(stored[name].data), want.numpy()), name
    ours = load_model(out)
    assert max_logit_difference(ours, gpt2, tokens) <= (1e-5 if dtype == "float32" else 5e-2)


def test_gguf_tokenizer_comes_back_out_as_vocab_and_merges(gpt2, tmp_path, tokenizer_dir):
    source = tmp_path / "hf"
    gpt2.save_pretrained(source)
    vocab = tiny_tokenizer_files(tokenizer_dir, source)
    exported = convert(source, tmp_path / "gguf", to_layout="gguf")
    alone = tmp_path / "alone"  # only the .gguf file: the tokenizer must come from inside it
    alone.mkdir()
    (exported / "model.gguf").rename(alone / "model.gguf")
    back = convert(alone / "model.gguf", tmp_path / "back", to_layout="transformers")
    assert json.loads((back / "vocab.json").read_text(encoding="utf-8")) == vocab
    assert (back / "merges.txt").read_text().splitlines()[1:] == (source / "merges.txt").read_text().splitlines()[1:]


# --- what llama.cpp's own converter writes ----------------------------------------------------------------------------

# The special tokens a GPT-2 tokenizer names, and the GGUF keys llama.cpp's converter stores their ids under.
SPECIAL_ID_KEYS = {
    "bos": Keys.Tokenizer.BOS_ID,
    "eos": Keys.Tokenizer.EOS_ID,
    "unk": Keys.Tokenizer.UNK_ID,
    "pad": Keys.Tokenizer.PAD_ID,
}
ADD_SPECIAL_KEYS = {"bos": Keys.Tokenizer.ADD_BOS, "eos": Keys.Tokenizer.ADD_EOS}


def llama_cpp_gpt2_fields(folder, vocab_size: int) -> dict:
    """The metadata llama.cpp's convert_hf_to_gguf.py writes for a GPT2LMHeadModel folder, besides general.name,
    restated as rules: the architecture's hyperparameters, the file's type and quantization version, and one token
    per id of the model's vocabulary with its type (fillers for ids the tokenizer lacks, control tokens for special
    ones), read here through transformers' AutoTokenizer; merges and special token ids come from gguf's own
    SpecialVocab, which the converter uses too."""
    config = json.loads((folder / "config.json").read_text())
    fields = {
        Keys.General.ARCHITECTURE: "gpt2",
        Keys.General.TYPE: "model",
        Keys.General.FILE_TYPE: None,  # F32 or F16: checked by the caller
        Keys.General.QUANTIZATION_VERSION: GGML_QUANT_VERSION,
        Keys.LLM.BLOCK_COUNT.format(arch="gpt2"): config["n_layer"],
        Keys.LLM.CONTEXT_LENGTH.format(arch="gpt2"): config["n_positions"],  # OpenAI's config.json: also n_ctx
        Keys.LLM.EMBEDDING_LENGTH.format(arch="gpt2"): config["n_embd"],
        Keys.LLM.FEED_FORWARD_LENGTH.format(arch="gpt2"): 4 * config["n_embd"],
        Keys.Attention.HEAD_COUNT.format(arch="gpt2"): config["n_head"],
        Keys.Attention.LAYERNORM_EPS.format(arch="gpt2"): config["layer_norm_epsilon"],
    }
    tokenizer = AutoTokenizer.from_pretrained(folder)
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = tokenizer.get_added_vocab()
    tokens, types = [], []
    for index in range(vocab_size):
        token = by_id.get(index)
        if token is None:
            tokens.append(f"[PAD{index}]")
            types.append(TokenType.UNUSED)
            continue
        tokens.append(token)
        looks_special = token.startswith("<|") and token.endswith("|>")
        if token in added:
            special = tokenizer.added_tokens_decoder[index].special or looks_special
            types.append(TokenType.CONTROL if special else TokenType.USER_DEFINED)
        else:
            types.append(TokenType.NORMAL)
    # llama.cpp recognises GPT-2's tokenizer by a hash of its output and calls its pre-tokenizer "gpt-2"; the
    # tokenizers here all split text with GPT-2's pattern.
    fields.update({Keys.Tokenizer.MODEL: "gpt2", Keys.Tokenizer.PRE: "gpt-2"})
    fields.update({Keys.Tokenizer.LIST: tokens, Keys.Tokenizer.TOKEN_TYPE: [int(t) for t in types]})
    special = SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    fields[Keys.Tokenizer.MERGES] = special.merges
    fields.update({SPECIAL_ID_KEYS[kind]: index for kind, index in special.special_token_ids.items()})
    fields.update({ADD_SPECIAL_KEYS[kind]: value for kind, value in special.add_special_token.items()})
    return fields


def assert_llama_cpps_fields(gguf_file, source_folder, vocab_size: int, file_type: int):
    """Our GGUF, read by gguf's own reader, holds llama.cpp's converter's fields for the same folder, and no other."""
    reader = GGUFReader(gguf_file)
    ours = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    expected = llama_cpp_gpt2_fields(source_folder, vocab_size)
    expected[Keys.General.FILE_TYPE] = file_type
    assert set(ours) - {Keys.General.NAME} == set(expected)
    for name, value in expected.items():
        assert ours[name] == (pytest.approx(value) if isinstance(value, float) else value), name
    return reader


# The model has 300 tokens; the tokenizer has as many (298 learned + 2 added), or fewer (llama.cpp pads the list).
@pytest.mark.parametrize("learned_tokens", [298, 280])
def test_gguf_from_a_checkpoint_with_only_tokenizer_json_carries_llama_cpps_tokenizer_fields(
    gpt2, tmp_path, shared_data, learned_tokens
):
    source = tmp_path / "hf"
    gpt2.save_pretrained(source)
    trained = train_tokenizer(shared_data / "the-verdict.txt", vocab_size=learned_tokens, show_progress=False)
    trained.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})  # a second special token
    trained.add_tokens(["[[note]]"])  # an added token that is not special
    trained.save_pretrained(source)
    model_files = {"config.json", "generation_config.json", "model.safetensors"}
    assert {p.name for p in source.iterdir()} - model_files == {"tokenizer.json", "tokenizer_config.json"}  # as in v5
    out = convert(source, tmp_path / "gguf", to_layout="gguf")
    assert_llama_cpps_fields(out / "model.gguf", source, 300, LlamaFileType.ALL_F32)

    back = convert(out / "model.gguf", tmp_path / "back", to_layout="transformers")  # the tokenizer comes out again
    assert json.loads((back / "vocab.json").read_text(encoding="utf-8")) == trained.get_vocab()  # no [PADn] fillers


def test_gguf_export_refuses_a_tokenizer_that_is_not_the_models(gpt2, tmp_path, tokenizer):
    source = tmp_path / "hf"
    gpt2.save_pretrained(source)
    tokenizer.save_pretrained(source)  # GPT-2's 50257 tokens beside a model of 300
    with pytest.raises(ValueError, match=r"\(tokenizer.json\) has token ids up to 50256, but the model has 300 tokens"):
        convert(source, tmp_path / "gguf", to_layout="gguf")
    (source / "tokenizer.json").write_text((source / "tokenizer.json").read_text()[:1000])
    with pytest.raises(ValueError, match=r"tokenizer file .*tokenizer.json is not valid JSON"):
        convert(source, tmp_path / "gguf", to_layout="gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # nothing half-written is left
