"""llama.cpp's Q8_0 block quantisation, in torch: every run of 32 values along a row becomes one block of 34 bytes,
a float16 scale d = max|x| / 127 followed by the 32 signed bytes round(x / d), so that x ≈ d * q.

The arithmetic is ggml's reference (ggml-quants.c, and the `gguf` package's numpy copy of it): the scale and the
division are done in float32, rounding is half away from zero, and only then is the scale stored as float16. The
tests hold these functions bit-identical to `gguf.quants.quantize` / `dequantize`.
"""

from __future__ import annotations

import torch

BLOCK = 32  # values per block
BLOCK_BYTES = 2 + BLOCK  # a float16 scale, then 32 int8s


def byte_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The (..., bytes per row) shape a Q8_0 tensor of logical `shape` is stored as."""
    if shape[-1] % BLOCK:
        raise ValueError(f"Q8_0 needs rows whose length is a multiple of {BLOCK}; this tensor's are {shape[-1]} long.")
    return (*shape[:-1], shape[-1] // BLOCK * BLOCK_BYTES)


def quantize(tensor: torch.Tensor) -> torch.Tensor:
    """A float tensor as Q8_0 blocks: a uint8 tensor of shape byte_shape(tensor.shape)."""
    shape = byte_shape(tuple(tensor.shape))
    blocks = tensor.detach().to(torch.float32).reshape(-1, BLOCK)
    scale = blocks.abs().amax(dim=1, keepdim=True) / 127
    inverse = torch.where(scale == 0, 0.0, 1 / scale)
    scaled = blocks * inverse
    magnitude = scaled.abs()
    whole = magnitude.floor()
    quants = (scaled.sign() * (whole + (2 * (magnitude - whole)).floor())).to(torch.int8)  # half away from zero
    packed = torch.cat([scale.to(torch.float16).view(torch.uint8), quants.view(torch.uint8)], dim=1)
    return packed.reshape(shape)


def dequantize(raw: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Q8_0 blocks (uint8, byte_shape(shape)) back to a float32 tensor of logical `shape`."""
    if tuple(raw.shape) != byte_shape(tuple(shape)) or raw.dtype != torch.uint8:
        raise ValueError(f"Q8_0 data of shape {tuple(raw.shape)} ({raw.dtype}) does not hold a {list(shape)} tensor.")
    blocks = raw.reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].contiguous().view(torch.float16).to(torch.float32)
    quants = blocks[:, 2:].contiguous().view(torch.int8).to(torch.float32)
    return (quants * scale).reshape(shape)
