"""Decoding in every precision: a copy of a model whose matmuls run the fastest kernel this CPU has for its weights.

Batch-1 decoding reads every weight once per token, so the bytes per weight and the kernel that streams them set
the pace. `decoding_model(model, precision)` returns a copy of `model` for decoding (the model itself is left as it
is): the same modules, with each nn.Linear swapped for the kernel below (chosen by measurement, figures in
docs/performance.md), so that the model's forward, the lean loop of gpt2_scratch.generation and transformers'
generate() all run it through the model's own blocks; where every matmul is on one of our kernels, the lean loop
runs each one-token step in a single call into C++ (gpt2_scratch.generation.NativeDecoder).

| precision | matmul weights | kernel (where ours, gpt2_scratch.kernels, cannot be built) |
|---|---|---|
| float32  | float32, nn.Linear's layout | ours, float32_linear; MKL over 8 rows (torch.addmm, input-major) |
| bfloat16 | bfloat16, nn.Linear's layout | ours, bfloat16_linear, for one row; oneDNN over more (F.linear) (torch.ops.mkldnn._linear_pointwise over weights packed once in oneDNN's blocked layout) |
| float16  | float16, nn.Linear's layout | ours, float16_linear, float32 activations (F.linear) |
| int8     | int8, one scale per output row | ours, int8_linear, 16-bit integer activations (_weight_int8pack_mm) |

Only the matmul weights change precision. Everything else (embeddings, LayerNorms, attention and its KV cache,
the residual stream) stays float32 in every precision: each kernel takes float32, rounds it as far as it must
(not at all for ours in float32, float16 and bfloat16; bfloat16 for oneDNN's; 16-bit integers for ours in int8)
and hands back float32. Batch-1 attention at one query costs 4-5x as much in bfloat16 as in float32 on a CPU
(65-77 against 13-17 us a layer), which made the all-16-bit model slower by about a millisecond a token; the
roundings at the kernels' inputs are also all the rounding the activations get. The int8 weights are quantised
per output channel, symmetric: scale = max|row| / 127 (kept in the kernel's dtype), q = round(w / scale);
`Int8Linear.dequantized_weight` gives back scale * q.
"""

from __future__ import annotations

import copy
import mmap
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from . import kernels


PRECISIONS = ("float32", "bfloat16", "float16", "int8")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} for decoding; choose one of {', '.join(PRECISIONS)}.")
    return precision


def flat_rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1])


class InputMajorLinear(nn.Module):
    """nn.Linear over a float32 weight stored input-major, as the contiguous (in, out) tensor `weight_in_out`:
    on a CPU the vector-matrix product of decoding streams that layout at memory bandwidth and nn.Linear's
    (out, in) one up to 1.4x slower."""

    streamed_weight = "weight_in_out"

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.register_buffer("weight_in_out", linear.weight.detach().to(torch.float32).t().contiguous())
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(torch.float32).clone())

    @property
    def weight(self) -> torch.Tensor:
        """The (out, in) weight, a view."""
        return self.weight_in_out.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = flat_rows(x)
        y = torch.mm(rows, self.weight_in_out) if self.bias is None else torch.addmm(self.bias, rows, self.weight_in_out)
        return y.view(*x.shape[:-1], -1)


class PackedBF16Linear(nn.Module):
    """nn.Linear over a bfloat16 weight that oneDNN has reordered once into its blocked layout: at batch 1 its
    kernel runs 2-15x faster than F.linear over the same weight in nn.Linear's layout. The input is rounded to
    bfloat16, the bias added inside the kernel, the output returned in the input's dtype."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight = linear.weight.detach().to(torch.bfloat16)
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, 1)  # an opaque oneDNN tensor, not a buffer
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(torch.bfloat16).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.mkldnn._linear_pointwise(x.to(torch.bfloat16), self.packed, self.bias, "none", [], "")
        return y.to(x.dtype)


class FloatLinear(nn.Module):
    """nn.Linear over a float32 or 16-bit weight in nn.Linear's own (out, in) layout. Up to kernels.OUR_ROWS rows
    of input it runs gpt2_scratch.kernels' kernel for the weight's dtype where this machine builds it: the float32
    input as it is, the bias added inside. Over more rows, and where ours cannot be built, F.linear over the input
    rounded to the weight's dtype (MKL's GEMM in float32, oneDNN's in bfloat16). The output comes back in the
    input's dtype."""

    streamed_weight = "weight"  # what onto_huge_pages moves

    def __init__(self, linear: nn.Linear, dtype: torch.dtype):
        super().__init__()
        self.kernel = kernels.float_linear(dtype)
        self.register_buffer("weight", linear.weight.detach().to(dtype).contiguous())
        bias_dtype = dtype if self.kernel is None else torch.float32
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(bias_dtype).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = flat_rows(x)
        most_rows = kernels.OUR_ROWS[self.weight.dtype]
        if self.kernel is None or (most_rows is not None and rows.shape[0] > most_rows):
            bias = None if self.bias is None else self.bias.to(self.weight.dtype)
            return F.linear(x.to(self.weight.dtype), self.weight, bias).to(x.dtype)
        y = self.kernel(rows.to(torch.float32).contiguous(), self.weight, self.bias)
        return y.to(x.dtype).view(*x.shape[:-1], -1)

    def native_weights(self):
        """(weight, None, bias) as gpt2_scratch.kernels' Decoder takes them, or None off our kernel."""
        return None if self.kernel is None else (self.weight, None, self.bias)


class Int8Linear(nn.Module):
    """nn.Linear with int8 weights and one scale per output row (weight-only quantisation): y = x @ (scale * q).T + b.

    The matmul is gpt2_scratch.kernels' int8_linear where this machine builds it: it rounds each activation row to
    16-bit integers, sums the products exactly and adds the bias in the same pass. Elsewhere it is torch's
    _weight_int8pack_mm, which takes bfloat16 activations and scales (float32 ones go through a slow path). The
    scale is kept in the dtype of the kernel that reads it; the output comes back in the input's dtype."""

    streamed_weight = "weight_int8"

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.kernel = kernels.int8_linear()
        weight = linear.weight.detach().to(torch.float32)
        scale = weight.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / 127
        scale = scale.to(torch.bfloat16 if self.kernel is None else torch.float32)
        quantized = torch.round(weight / scale.to(torch.float32)[:, None]).clamp(-127, 127)  # the scale as stored
        self.register_buffer("weight_int8", quantized.to(torch.int8))
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(torch.float32).clone())

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight this layer computes with: scale * q."""
        return self.weight_int8.to(torch.float32) * self.scale.to(torch.float32)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = flat_rows(x)
        if self.kernel is not None:
            y = self.kernel(rows.to(torch.float32).contiguous(), self.weight_int8, self.scale, self.bias)
        else:
            y = torch._weight_int8pack_mm(rows.to(torch.bfloat16), self.weight_int8, self.scale)
            y = y.to(torch.float32) if self.bias is None else torch.add(self.bias, y)
        return y.to(x.dtype).view(*x.shape[:-1], -1)

    def native_weights(self):
        """(weight, scale, bias) as gpt2_scratch.kernels' Decoder takes them, or None off our kernel."""
        return None if self.kernel is None else (self.weight_int8, self.scale, self.bias)


def forwards_share_weight_reads(model) -> bool:
    """Whether a forward over many rows costs `model` much less than a forward per row: true of the float kernels,
    false where an Int8Linear computes: its cost grows with the rows on torch's kernel (25 us a row for a
    768 x 3072 weight at two threads, against 7 for packed bfloat16) and on ours, which is bound by its arithmetic
    beyond one row (a server at 16 clients: p50 time to first token 630 ms grouped against 284 one at a time)."""
    return not any(isinstance(module, Int8Linear) for module in model.modules())


def packed_bf16_available() -> bool:
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def linear_kernel(precision: str):
    """The nn.Linear replacement of `precision` on this machine (chosen by measurement: docs/performance.md)."""
    if check_precision(precision) == "int8":
        return Int8Linear
    if precision == "bfloat16" and kernels.float_linear(torch.bfloat16) is None and packed_bf16_available():
        return PackedBF16Linear
    dtype = getattr(torch, precision)
    if dtype == torch.float32 and kernels.float_linear(dtype) is None:
        return InputMajorLinear
    return partial(FloatLinear, dtype=dtype)


@torch.no_grad()
def decoding_model(model, precision: str = "float32"):
    """A copy of `model` (in evaluation mode) for decoding in `precision` (see PRECISIONS); `model` is left as it is.

    The copy has the same modules, in float32, with each nn.Linear swapped for the precision's kernel: it
    computes what `model` computes with its matmul weights rounded to that precision (int8: the dequantised
    weights) and each matmul's input rounded to the dtype its kernel computes in. On Linux its large
    weights lie in one buffer backed by 2 MB pages (huge_page_buffer). It is for inference: its
    state dict holds the kernels' tensors, so save or convert `model`, not the copy.
    """
    kernel = linear_kernel(precision)
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    replacements = {id(linear): kernel(linear) for linear in linears if wants(kernel, linear)}
    onto_huge_pages(list(replacements.values()))
    memo = dict(replacements)  # deepcopy takes these in place of the nn.Linears, and copies everything else
    head, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    head_weight = getattr(replacements.get(id(head)), "weight", None)  # a float32 kernel's (out, in) weight, or view
    if head.weight is embedding.weight and head_weight is not None and head_weight.dtype == torch.float32:
        memo[id(embedding.weight)] = nn.Parameter(head_weight, requires_grad=False)  # tied: one copy, the kernel's
    decoder = copy.deepcopy(model, memo).eval()
    for parameter in decoder.parameters():
        if parameter.is_floating_point() and parameter.dtype != torch.float32:
            parameter.data = parameter.data.to(torch.float32)
    decoder.requires_grad_(False)
    return decoder


def wants(kernel, linear: nn.Linear) -> bool:
    """Whether `kernel` beats nn.Linear on `linear`: everywhere but float32's narrowing matmuls (the MLP's output
    projection), whose gemv is faster over nn.Linear's own layout."""
    return kernel is not InputMajorLinear or linear.out_features >= linear.in_features


def onto_huge_pages(kernels: list[nn.Module]) -> None:
    """Move the kernels' float32 or int8 weights into one buffer backed by huge pages, in model order (CPU only):
    every token walks all of them, and 2 MB pages spare the TLB misses of 4 KB ones (about 3% a token)."""
    named = [(k, k.streamed_weight) for k in kernels if hasattr(k, "streamed_weight")]
    if not named or any(getattr(k, name).device.type != "cpu" for k, name in named):
        return
    buffer = huge_page_buffer(sum(getattr(k, name).numel() for k, name in named), getattr(*named[0]).dtype)
    offset = 0
    for module, name in named:
        weight = getattr(module, name)
        setattr(module, name, buffer[offset : offset + weight.numel()].view(weight.shape).copy_(weight))
        offset += weight.numel()



HUGE_PAGE = 2 * 1024 * 1024  # bytes: the size of a transparent huge page on x86-64 and most arm64 Linux kernels


def huge_page_buffer(numel: int, dtype: torch.dtype) -> torch.Tensor:
    """An empty 1-D CPU tensor of `numel` elements starting on a 2 MB boundary, in private anonymous memory that
    Linux is asked to back with transparent huge pages (madvise MADV_HUGEPAGE). Where the platform has no such
    advice (macOS, Windows), an ordinary tensor.

    Reading a weight walks its pages: with 4 KB pages GPT-2 small's 498 MB of weights span 120,000 of them, and
    every token of batch-1 decoding misses the TLB on each; with 2 MB pages, 250.
    """
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return torch.empty(numel, dtype=dtype)
    itemsize = dtype.itemsize
    memory = mmap.mmap(-1, numel * itemsize + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    memory.madvise(mmap.MADV_HUGEPAGE)
    buffer = torch.frombuffer(memory, dtype=torch.uint8)  # keeps `memory` alive as long as any view of it
    skip = -buffer.data_ptr() % HUGE_PAGE
    return buffer[skip : skip + numel * itemsize].view(dtype)


__all__ = [
    "PRECISIONS",
    "FloatLinear",
    "InputMajorLinear",
    "Int8Linear",
    "PackedBF16Linear",
    "decoding_model",
    "forwards_share_weight_reads",
    "huge_page_buffer",
]
