"""Decoding in every precision (gpt2_scratch.precision) and llama.cpp's Q8_0 (gpt2_scratch.conversion.q8_0).

Oracles: the `gguf` package's own Q8_0 quantiser and dequantiser (bit for bit), the float32 model holding the
weights each precision computes with (its bfloat16 / float16 rounding, or int8's scale * q), perplexity on The
Verdict, and llama.cpp itself where llama-cpp-python is installed. Speed is measured by benchmarks/run.py."""

import copy
import shlex
import warnings
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM, kernels
from gpt2_scratch.cli import main
from gpt2_scratch.conversion import load_model, save_model
from gpt2_scratch.conversion.containers import q8_0
from gpt2_scratch.generation import PreallocatedCache, decoding_steps
from gpt2_scratch.precision import PRECISIONS, InputMajorLinear, Int8Linear, PackedBF16Linear, decoding_model
from gpt2_scratch.training.decoding_models import resolve_model_dir

REPO = Path(__file__).resolve().parents[1]
SMALL_WIDTH = dict(n_layer=2, n_embd=768, n_head=12, n_positions=256)  # the small preset's width, two blocks


@pytest.fixture(scope="module")
def model():
    """Random weights at the small preset's width, with random biases and LayerNorms too."""
    torch.manual_seed(0)
    model = ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("small", **SMALL_WIDTH)).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return model


def computed_weights(model, precision: str):
    """A float32 copy of `model` holding the weights `precision` computes with: each matmul weight rounded to the
    16-bit dtype and back, or int8's scale * q; the rest as it is (the decoding copy keeps it in float32)."""
    reference = copy.deepcopy(model).float()
    decoder = decoding_model(model, precision)
    with torch.no_grad():
        for (name, module), (_, ours) in zip(reference.named_modules(), decoder.named_modules()):
            if isinstance(module, nn.Linear):
                weight = ours.dequantized_weight() if isinstance(ours, Int8Linear) else module.weight.to(
                    getattr(torch, precision)
                ).float()
                module.weight = nn.Parameter(weight)  # unties the LM head: it is its own kernel in the decoder
    assert all(p.dtype == torch.float32 for p in decoder.parameters())
    return reference, decoder


# Largest logit error, as a share of the logits' spread, of each precision against the float32 model holding its
# weights: only the matmuls' inputs are rounded. Measured: bfloat16 (the prompt's rows on oneDNN, the input rounded
# to 8 bits of mantissa) 2.5%; our float16 and int8 kernels (gpt2_scratch.kernels) 3e-6 (not rounded) and 0.03%
# (rounded to 16-bit integers); torch's where ours cannot be built, float16 0.3% (rounded to 11 bits), int8 2.4%
# (to bfloat16).
TOLERANCE = {"float32": 1e-5, "bfloat16": 0.05, "float16": 1e-4, "int8": 0.001}
TORCH_KERNEL_TOLERANCE = {"float32": 1e-5, "bfloat16": 0.05, "float16": 0.006, "int8": 0.05}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_each_precision_computes_with_its_weights(model, precision):
    reference, decoder = computed_weights(model, precision)
    layer = decoder.transformer.h[0].mlp.c_fc
    ours = getattr(layer, "kernel", None) is not None  # test_kernels: built where it can be
    if precision == "bfloat16" and not ours:
        assert isinstance(layer, PackedBF16Linear) == torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert_computes_with_its_weights(reference, decoder, (TOLERANCE if ours else TORCH_KERNEL_TOLERANCE)[precision])
    assert model.lm_head.weight is model.transformer.wte.weight and model.lm_head.weight.dtype == torch.float32


@pytest.mark.parametrize("precision", PRECISIONS)
def test_without_our_kernels_each_precision_runs_torchs(model, monkeypatch, precision):
    """Where gpt2_scratch.kernels cannot build its kernels (here: switched off), float32 runs torch.addmm over
    input-major weights, bfloat16 oneDNN over packed weights (where it has bfloat16), float16 F.linear and int8
    _weight_int8pack_mm."""
    monkeypatch.setenv(kernels.SWITCH, "0")
    kernels.compiled.cache_clear()
    try:
        reference, decoder = computed_weights(model, precision)
    finally:
        kernels.compiled.cache_clear()
    layer = decoder.transformer.h[0].mlp.c_fc
    if precision == "float32":
        assert isinstance(layer, InputMajorLinear)
    elif precision == "bfloat16" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert isinstance(layer, PackedBF16Linear)
    else:
        assert layer.kernel is None
    assert_computes_with_its_weights(reference, decoder, TORCH_KERNEL_TOLERANCE[precision])


def assert_computes_with_its_weights(reference, decoder, tolerance: float):
    input_ids = torch.randint(0, 50257, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = reference(input_ids).logits
        full = decoder(input_ids).logits.float()
        step = decoding_steps(decoder, PreallocatedCache(decoder.config.n_layer, max_length=12))
        stepwise = torch.stack([step(input_ids[:, :6]).float()] + [step(input_ids[:, p : p + 1]).float() for p in range(6, 12)], 1)
    spread = expected.std().item()
    assert (full - expected).abs().max().item() <= tolerance * spread + 1e-5
    assert (stepwise - expected[:, 5:]).abs().max().item() <= tolerance * spread + 1e-5


def test_int8_weights_are_per_channel_symmetric(model):
    linear = model.transformer.h[1].mlp.c_proj
    layer = Int8Linear(linear)
    assert layer.weight_int8.dtype == torch.int8 and layer.weight_int8.shape == linear.weight.shape
    assert torch.equal(layer.weight_int8.abs().amax(dim=1), torch.full((linear.out_features,), 127, dtype=torch.int8))
    error = (layer.dequantized_weight() - linear.weight).abs()
    assert (error <= layer.scale.float()[:, None] * 0.501).all()  # at most half a step


def verdict_perplexity(model, tokens: torch.Tensor, context: int) -> float:
    windows = tokens[: len(tokens) // context * context].view(-1, context)
    with torch.inference_mode():
        losses = [model(window[None], labels=window[None]).loss for window in windows]
    return float(torch.stack(losses).mean().exp())


@pytest.fixture(scope="module")
def verdict_tokens(tokenizer, shared_data):
    return torch.tensor(tokenizer((shared_data / "the-verdict.txt").read_text())["input_ids"])


def main_job_arguments(out_dir) -> list[str]:
    """The README's main job, as scripts/main.sh runs it (`gpt2-scratch pretrain ...`), writing into out_dir."""
    command = next(line for line in (REPO / "scripts" / "main.sh").read_text().splitlines() if line.startswith("exec "))
    arguments = shlex.split(command.split("gpt2-scratch", 1)[1].replace('"$@"', ""))
    arguments[arguments.index("--out") + 1] = str(out_dir)
    return [*arguments, "--no-progress"]


@pytest.mark.slow
def test_every_precision_keeps_perplexity_within_one_percent_of_float32(verdict_tokens, tmp_path):
    """On GPT-2 small with random weights (int8), and on the model the main job trains (every precision)."""
    torch.manual_seed(0)
    small = ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("small")).eval()
    head = verdict_tokens[:1024]  # four windows of 256: GPT-2 small's forward is the slow part
    float32, int8 = verdict_perplexity(small, head, 256), verdict_perplexity(decoding_model(small, "int8"), head, 256)
    assert abs(int8 / float32 - 1) < 0.01, (float32, int8)

    assert main(main_job_arguments(tmp_path / "verdict")) == 0
    trained = AutoModelForCausalLM.from_pretrained(resolve_model_dir(tmp_path / "verdict")).eval()  # its last checkpoint
    float32 = verdict_perplexity(trained, verdict_tokens, 128)
    assert float32 < 2000  # it learnt something: random weights give about 50,000
    for precision in PRECISIONS[1:]:
        perplexity = verdict_perplexity(decoding_model(trained, precision), verdict_tokens, 128)
        assert abs(perplexity / float32 - 1) < 0.01, (precision, float32, perplexity)


# --- Q8_0 ------------------------------------------------------------------------------------------------------------


def test_q8_0_blocks_are_bit_identical_to_gguf(model):
    weight = model.transformer.h[0].attn.c_attn.weight.detach().clone()
    weight[0, :32] = 0  # an all-zero block: scale 0
    weight[1, :32] = torch.arange(32) - 15.5  # ties at .5 round away from zero
    weight[2, 5] = 1e-30
    ours = q8_0.quantize(weight)
    theirs = gguf.quants.quantize(weight.numpy(), gguf.GGMLQuantizationType.Q8_0)
    assert ours.shape == theirs.shape == (2304, 768 // 32 * 34)
    assert np.array_equal(ours.numpy(), theirs)
    assert np.array_equal(
        q8_0.dequantize(ours, tuple(weight.shape)).numpy(), gguf.quants.dequantize(theirs, gguf.GGMLQuantizationType.Q8_0)
    )
    with pytest.raises(ValueError, match="multiple of 32"):
        q8_0.quantize(torch.zeros(3, 40))


def test_gguf_q8_0_export_reads_back_as_its_dequantised_weights(model, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no tokenizer: the export says so
        folder = save_model(model, tmp_path / "q8", layout="gguf", dtype="q8_0")
    reader = gguf.GGUFReader(folder / "model.gguf")
    types = {tensor.name: tensor.tensor_type.name for tensor in reader.tensors}
    assert types["blk.0.attn_qkv.weight"] == types["token_embd.weight"] == "Q8_0"
    assert types["position_embd.weight"] == types["blk.0.attn_qkv.bias"] == "F32"  # as llama.cpp's converter keeps them
    loaded = load_model(folder)
    for name, tensor in model.state_dict().items():
        expected = tensor
        if tensor.ndim == 2 and name != "transformer.wpe.weight":
            raw = gguf.quants.quantize(tensor.numpy(), gguf.GGMLQuantizationType.Q8_0)
            expected = torch.from_numpy(gguf.quants.dequantize(raw, gguf.GGMLQuantizationType.Q8_0))
        assert torch.equal(loaded.state_dict()[name], expected), name
    with pytest.raises(ValueError, match="written as GGUF's Q8_0 only"):
        save_model(model, tmp_path / "nope", layout="transformers", dtype="q8_0")


def test_load_model_as_int8(model, tmp_path):
    model.save_pretrained(tmp_path)
    int8 = load_model(tmp_path, dtype="int8")
    assert isinstance(int8.lm_head, Int8Linear) and isinstance(int8.transformer.h[1].attn.c_attn, Int8Linear)
    input_ids = torch.randint(0, 50257, (1, 8), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert torch.equal(int8(input_ids).logits, decoding_model(model, "int8")(input_ids).logits)


def test_generate_cli_decodes_in_every_precision(model, tmp_path, tokenizer, capsys):
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    for precision in PRECISIONS:
        assert main(["generate", str(tmp_path), "Every effort moves you", "--max-new-tokens", "4",
                     "--temperature", "0", "--dtype", precision, "--no-progress"]) == 0
        assert capsys.readouterr().out.startswith("Every effort moves you")
    assert main(["generate", str(tmp_path), "Every effort", "--dtype", "int4"]) == 2
    assert capsys.readouterr().err == (
        "gpt2-scratch generate: error: unknown precision 'int4' for decoding; choose one of float32, bfloat16, "
        "float16, int8.\n"
    )


@pytest.mark.slow
def test_llama_cpp_reads_our_q8_0_export(model, tmp_path, tokenizer_dir):
    """llama.cpp loads the Q8_0 file and its logits follow our dequantised model's (llama.cpp also rounds the
    activations to 8-bit blocks, so the tolerance is looser than ours)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = save_model(model, tmp_path / "q8", layout="gguf", dtype="q8_0", tokenizer=tokenizer_dir)
    dequantised = load_model(folder)
    llm = llama_cpp.Llama(str(folder / "model.gguf"), n_ctx=64, logits_all=True, verbose=False, n_threads=1)
    input_ids = [int(t) for t in torch.randint(0, 50257, (12,), generator=torch.Generator().manual_seed(3))]
    llm.eval(input_ids)
    theirs = torch.from_numpy(np.array(llm.scores[: len(input_ids)]))
    with torch.inference_mode():
        ours = dequantised(torch.tensor([input_ids])).logits[0]
    assert (theirs - ours).abs().max().item() <= 0.1 * ours.std().item()
    assert torch.equal(theirs.argmax(-1), ours.argmax(-1))
