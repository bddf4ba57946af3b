"""Our own kernels (gpt2_scratch.kernels), against exact integer arithmetic and float64 matmuls.

int8_linear rounds each activation row to 16-bit integers and sums the products exactly: with activations that
already are integers below 2^15 and unit scales, its output must equal the int64 matmul's, bit for bit, whatever
the width (chunks of 4096 columns), the tail (columns not a multiple of 32), the rows taken together (up to four)
or the thread split."""

import shutil

import pytest
import torch

from gpt2_scratch import kernels


def built(name: str):
    """Kernel `name`, skipping where this CPU lacks its instructions; where it has them (CI's does) and a C++
    compiler is here, the kernel must have been built, not silently left out."""
    if not kernels.available(name):
        pytest.skip(f"this CPU lacks {', '.join(sorted(kernels.NEEDS[name]))}")
    assert shutil.which("c++") or shutil.which("g++")
    kernel = kernels.kernel(name)
    assert kernel is not None, f"{name}: a CPU with its instructions and a C++ compiler must build it"
    return kernel


@pytest.fixture(scope="module")
def int8_linear():
    return built("int8_linear")


def integer_rows(rows: int, columns: int, generator: torch.Generator) -> torch.Tensor:
    """Float32 rows of integers in [-32767, 32767], each holding 32767 itself: the kernel's scale is then exactly 1."""
    x = torch.randint(-32767, 32768, (rows, columns), generator=generator).to(torch.float32)
    x[:, 0] = 32767
    return x


@pytest.mark.parametrize(
    "rows, columns, outputs",
    [(1, 768, 2304), (3, 3072, 768), (2, 6400, 96), (1, 100, 33), (6, 100, 33), (1, 768, 50257)],
    ids=["small-qkv", "mlp-down-3-rows", "xl-mlp-down-2-rows", "tail", "tail-6-rows", "lm-head"],
)
def test_int8_linear_sums_exactly(int8_linear, rows, columns, outputs):
    generator = torch.Generator().manual_seed(rows * columns + outputs)
    x = integer_rows(rows, columns, generator)
    q = torch.randint(-127, 128, (outputs, columns), generator=generator, dtype=torch.int8)
    ones = torch.ones(outputs)
    exact = (x.to(torch.int64) @ q.to(torch.int64).T).to(torch.float32)
    assert torch.equal(int8_linear(x, q, ones, None), exact)


def test_int8_linear_cannot_overflow(int8_linear):
    """The largest sums: every product 32767 * 127 over XL's widest input, 6400 columns (2.7e10, past int32)."""
    x = torch.full((1, 6400), 32767.0)
    q = torch.full((2, 6400), 127, dtype=torch.int8)
    q[1] = -127
    largest = 6400 * 32767 * 127
    assert torch.equal(int8_linear(x, q, torch.ones(2), None), torch.tensor([[largest, -largest]]).to(torch.float32))


def test_int8_linear_matches_float32_matmul_with_scales_and_bias(int8_linear):
    """Random activations at the small preset's width against x @ (scale * q).T + b in float64: each activation is
    off by at most half its row's step (max|row| / 32767), so each output by at most half a step times sum |w|."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 768, generator=generator) * 3
    x[1, 5] = 40.0  # an outlier: the row's step follows it
    q = torch.randint(-127, 128, (3072, 768), generator=generator, dtype=torch.int8)
    scale = torch.rand(3072, generator=generator) * 0.001
    bias = torch.randn(3072, generator=generator)
    weight = q.double() * scale.double()[:, None]
    expected = x.double() @ weight.T + bias.double()
    step = x.abs().amax(dim=1).double() / 32767
    bound = 0.5 * step[:, None] * weight.abs().sum(dim=1)[None, :] + 1e-6 * expected.abs()  # + float32's rounding
    y = int8_linear(x, q, scale, bias)
    assert y.dtype == torch.float32 and y.shape == (4, 3072)
    assert ((y.double() - expected).abs() <= bound).all()


def test_int8_linear_rows_are_independent_and_non_finite_rows_give_nan(int8_linear):
    generator = torch.Generator().manual_seed(1)
    q = torch.randint(-127, 128, (64, 768), generator=generator, dtype=torch.int8)
    scale, bias = torch.rand(64, generator=generator), torch.randn(64, generator=generator)
    x = torch.randn(4, 768, generator=generator)
    x[1] = 0.0
    x[2, 7] = float("nan")
    x[3, 9] = float("inf")
    y = int8_linear(x, q, scale, bias)
    assert torch.equal(y[0], int8_linear(x[:1].clone(), q, scale, bias)[0])  # a row computes the same alone
    assert torch.equal(y[1], bias)
    assert y[2:].isnan().all()


def test_int8_linear_refuses_what_it_cannot_read(int8_linear):
    q = torch.zeros(8, 64, dtype=torch.int8)
    with pytest.raises(RuntimeError, match="x: contiguous float32"):
        int8_linear(torch.zeros(1, 64, dtype=torch.bfloat16), q, torch.ones(8), None)
    with pytest.raises(RuntimeError, match="x has 32 columns"):
        int8_linear(torch.zeros(1, 32), q, torch.ones(8), None)
    with pytest.raises(RuntimeError, match="scale: float32"):
        int8_linear(torch.zeros(1, 64), q, torch.ones(7), None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["float32", "float16", "bfloat16"])
@pytest.mark.parametrize(
    "rows, columns, outputs",
    [(1, 768, 2304), (3, 3072, 768), (1, 100, 33), (1, 768, 50257)],
    ids=["small-qkv", "mlp-down-3-rows", "tail", "lm-head"],
)
def test_float_linear_matches_float64_matmul(dtype, rows, columns, outputs):
    """Against x @ w.T + b in float64 (x not rounded): within float32 summation's error, 1e-5 of sum |x * w|."""
    kernel = built(kernels.FLOAT_LINEAR[dtype])
    assert kernel is kernels.float_linear(dtype)
    generator = torch.Generator().manual_seed(rows * columns + outputs)
    x = torch.randn(rows, columns, generator=generator)
    w = (torch.randn(outputs, columns, generator=generator) * 0.05).to(dtype)
    b = torch.randn(outputs, generator=generator)
    expected = x.double() @ w.double().T + b.double()
    y = kernel(x, w, b)
    assert y.dtype == torch.float32 and y.shape == (rows, outputs)
    assert ((y.double() - expected).abs() <= 1e-5 * (x.double().abs() @ w.double().abs().T) + 1e-6).all()
    torch.testing.assert_close(kernel(x, w, None) + b, y, rtol=1e-6, atol=1e-5)


def test_float16_linear_refuses_what_it_cannot_read():
    kernel = built("float16_linear")
    with pytest.raises(RuntimeError, match="weight: contiguous Half"):
        kernel(torch.zeros(1, 64), torch.zeros(8, 64, dtype=torch.bfloat16), None)
    with pytest.raises(RuntimeError, match="bias: float32"):
        kernel(torch.zeros(1, 64), torch.zeros(8, 64, dtype=torch.float16), torch.zeros(8, dtype=torch.float16))
