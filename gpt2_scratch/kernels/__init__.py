"""Kernels of our own, written where a measured figure says torch has none as fast (docs/performance.md).

They are C++ (matmuls.cpp and decoder.cpp beside this file), compiled for this machine's CPU the first time a
process asks for one (torch.utils.cpp_extension with ninja: about 40 s, once; the library lands in torch's
extension folder, $TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions, and later processes load it in a fraction
of a second).
Where one cannot be built or run (no C++ compiler, a CPU without the instructions it uses, or
GPT2_SCRATCH_NATIVE_KERNELS=0), asking for it gives None, and the caller keeps torch's kernel.

| kernel | y = x @ W.T + bias, float32 x and y, with W | needs (Linux's names) | instead of |
|---|---|---|---|
| `int8_linear(x, q, scale, bias)` | scale * q: int8 q, a float32 scale per row; x rounded to 16-bit integers per row | avx512bw, avx512_vnni | `torch._weight_int8pack_mm` |
| `float32_linear(x, w, bias)` | float32 w | avx512f, f16c (built with float16's) | `torch.addmm` (MKL, which streams a matrix-vector product at about half the memory bandwidth on this AMD CPU) |
| `float16_linear(x, w, bias)` | float16 w; x as it is | avx512f, f16c | `F.linear` in float16 |
| `bfloat16_linear(x, w, bias)` | bfloat16 w; x as it is | avx512f, f16c (built with float16's) | oneDNN's packed bfloat16 kernel (fewer instructions a weight, x rounded to bfloat16), which stays for prompts |

`Decoder` (decoder.cpp, needs avx512f and f16c) runs a whole decoding step of GPT-2 over the weights of these
kernels in one call, see `decoder()`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch


SWITCH = "GPT2_SCRATCH_NATIVE_KERNELS"  # "0": never build or load them
NEEDS = {
    "int8_linear": {"avx512bw", "avx512_vnni"},
    "float32_linear": {"avx512f", "f16c"},  # built with float16_linear
    "float16_linear": {"avx512f", "f16c"},
    "bfloat16_linear": {"avx512f", "f16c"},  # built with float16_linear
    "Decoder": {"avx512f", "f16c"},
}  # matmuls.cpp leaves out a kernel whose instructions the CPU lacks
# Up to how many rows of x (decoding steps, small batches) our kernel for a weight dtype beats torch's: ours is
# compute-bound beyond one row, torch's reuse each weight they read over the rows. Measured on a 768 x 3072 weight
# at two threads: float32, MKL's GEMM (torch.addmm) from 16 rows (8 rows 650 us both, 16 rows 1116 against 867,
# 64 rows 5586 against 2261); bfloat16, oneDNN's (F.linear) from 2 rows (1 row 69 against 130 us, 2 rows 116
# against 124, 4 rows 205 against 131); float16, None: torch's is slower at every row count.
OUR_ROWS = {torch.float32: 8, torch.bfloat16: 1, torch.float16: None}
FLOAT_LINEAR = {torch.float32: "float32_linear", torch.float16: "float16_linear", torch.bfloat16: "bfloat16_linear"}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The instruction-set flags Linux reports for this CPU (read once); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def available(name: str) -> bool:
    """Whether this CPU has the instructions of kernel `name` (see NEEDS)."""
    return NEEDS[name] <= cpu_flags()


@functools.cache
def compiled():
    """The extension module built from matmuls.cpp and decoder.cpp, or None where it cannot be had here."""
    if os.environ.get(SWITCH, "1") == "0" or not any(available(name) for name in NEEDS):
        return None
    from torch.utils import cpp_extension

    ninja_on_path()
    name = "gpt2_scratch_kernels"
    built = Path(cpp_extension.get_default_build_root()).glob(f"*/{name}/{name}*.so")  # one folder per Python, torch
    if not any(built):
        print("gpt2-scratch: compiling its kernels for this CPU (once, about 40 s)", file=sys.stderr)
    try:
        return cpp_extension.load(
            name=name,
            sources=[str(Path(__file__).with_name(source)) for source in ("matmuls.cpp", "decoder.cpp")],
            extra_cflags=["-O3", "-march=native"],  # the build is for this machine only
            verbose=False,
        )
    except (OSError, RuntimeError, ImportError, subprocess.CalledProcessError) as error:
        first_line = (str(error).strip() or type(error).__name__).splitlines()[0]
        print(
            f"gpt2-scratch: could not build its kernels ({first_line}); using torch's instead. "
            f"Install a C++ compiler to build them, or set {SWITCH}=0 to stop trying.",
            file=sys.stderr,
        )
        return None


def ninja_on_path() -> None:
    """torch runs `ninja` by name; the ninja package (a dependency) puts it in the environment's bin folder, which
    is not on PATH when that environment's python runs without being activated."""
    if shutil.which("ninja") is None:
        import ninja

        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")


def kernel(name: str):
    """Kernel `name` of the table above, or None where it cannot be built or run here."""
    module = compiled()
    return getattr(module, name, None) if module is not None and available(name) else None


def int8_linear():
    """int8_linear(x, q, scale, bias) -> y, or None: x contiguous float32 (M, K), q contiguous int8 (N, K),
    scale float32 (N,), bias float32 (N,) or None."""
    return kernel("int8_linear")


def float_linear(dtype: torch.dtype):
    """The kernel for float32, float16 or bfloat16 weights, (x, w, bias) -> y, or None (also for other dtypes):
    x contiguous float32 (M, K), w contiguous (N, K) in `dtype`, bias float32 (N,) or None."""
    return kernel(FLOAT_LINEAR[dtype]) if dtype in FLOAT_LINEAR else None


def decoder():
    """The class Decoder(wte, wpe, blocks, ln_f, head, heads, vocab_size), or None; its step(tokens, positions,
    caches) -> logits is one decoding step of GPT-2, each row at its own position (decoder.cpp). It is built of
    Weights(weight, scale, bias) for each matmul (the tensors of the kernels above), Norm(weight, bias, eps) for
    each LayerNorm and Block(ln_1, c_attn, attn_proj, ln_2, c_fc, mlp_proj) for each layer, classes of the same
    module (`compiled()`)."""
    return kernel("Decoder")


__all__ = ["decoder", "float_linear", "int8_linear"]
