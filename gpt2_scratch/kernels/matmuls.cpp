// Batch-1 decoding's matmuls, y = x @ W.T + bias with float32 x and y, for the weights of
// gpt2_scratch.precision's decoding copies: int8 with one scale per output row, float16, bfloat16, float32. Compiled for
// this CPU on first use (gpt2_scratch/kernels/__init__.py); a kernel whose instructions the CPU lacks is left out.
//
// At batch 1 every weight is read once per token, so a kernel is as fast as it streams its weight rows: each one
// walks a row with two or four accumulators in flight (hiding the multiply-adds' latency), asks for the bytes
// 8 KB ahead (PREFETCH_BYTES), and gives every thread a run of whole rows. A weight row is read once for all the
// rows of x.

#include "matmuls.h"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

// The hardware prefetchers stop at 4 KB page boundaries, and a token walks 124 MB of int8 weights (GPT-2 small).
// Measured on its 49 int8 matrices at two threads: 4.73 ms without, 4.18 ms with 8 KB (2, 4, 16 and 32 KB did no
// better), against 3.81 ms for a bare read of the same bytes.
constexpr int64_t PREFETCH_BYTES = 8192;

inline void prefetch(const void* row, int64_t byte) {
  _mm_prefetch(static_cast<const char*>(row) + byte + PREFETCH_BYTES, _MM_HINT_T0);  // never faults
}

// Beyond one row a kernel is bound by its arithmetic, not by memory. The int8 one widens each 32 weights once for
// up to ROWS_AT_ONCE rows of x (8 rows of a 3072 x 768 weight: 288 -> 193 us); the float ones are bound by their
// multiply-adds, which no block of rows shares (measured slower in blocks), so they take one row at a time.
constexpr int64_t ROWS_AT_ONCE = 4;

// y[m, n] = output(sum, n, m) with sum = weight row n . x row m for every m, n; dot(n, m, rows, sums) fills
// sums[0..rows) for x rows m..m+rows. Threads split the weight rows.
template <typename Sum, typename Dot, typename Output>
at::Tensor rows_times_weights(const at::Tensor& x, int64_t N, Dot dot, Output output) {
  const int64_t M = x.size(0);
  auto y = at::empty({M, N}, x.options().dtype(at::kFloat));
  float* ys = y.data_ptr<float>();
  at::parallel_for(0, N, 64, [&](int64_t first, int64_t end) {
    Sum sums[ROWS_AT_ONCE];
    for (int64_t n = first; n < end; ++n)
      for (int64_t m = 0; m < M; m += ROWS_AT_ONCE) {
        const int64_t rows = std::min(ROWS_AT_ONCE, M - m);
        dot(n, m, rows, sums);
        for (int64_t r = 0; r < rows; ++r) ys[(m + r) * N + n] = output(sums[r], n, m + r);
      }
  });
  return y;
}

// dot(rows) for a compile-time count of rows: block<R>(sums) for R in 2..ROWS_AT_ONCE, single(sums) for one.
template <typename Block, typename Single>
void by_rows(int64_t rows, Block block, Single single) {
  switch (rows) {
    case 1: single(); break;
    case 2: block(std::integral_constant<int, 2>{}); break;
    case 3: block(std::integral_constant<int, 3>{}); break;
    default: block(std::integral_constant<int, 4>{});
  }
}

void check_input(const at::Tensor& x, const at::Tensor& weight, at::ScalarType weight_dtype,
                 const c10::optional<at::Tensor>& bias) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous(), "x: contiguous float32 (M, K)");
  TORCH_CHECK(weight.dim() == 2 && weight.scalar_type() == weight_dtype && weight.is_contiguous(),
              "weight: contiguous ", weight_dtype, " (N, K)");
  TORCH_CHECK(weight.size(1) == x.size(1), "x has ", x.size(1), " columns, the weight ", weight.size(1));
  TORCH_CHECK(!bias.has_value() || !bias->defined() ||
                  (bias->scalar_type() == at::kFloat && bias->is_contiguous() && bias->numel() == weight.size(0)),
              "bias: float32 (N,)");
}

const float* bias_data(const c10::optional<at::Tensor>& bias) {
  return bias.has_value() && bias->defined() ? bias->data_ptr<float>() : nullptr;
}

#ifdef GPT2_SCRATCH_INT8_LINEAR
// --- int8 ---------------------------------------------------------------------------------------------------------
// Each x row is rounded to 16-bit integers with a scale of its own (max|x| / 32767), so that the dot products are
// exact integer sums: vpmovsxbw widens 32 weights to 16 bits, vpdpwssd multiplies them by 32 activations and adds
// the pairs into 16 int32 lanes; one float multiply per output applies both scales. 16 bits carry about 1/65000 of
// the row's largest value, where torch's _weight_int8pack_mm rounds activations to bfloat16 (8 significant bits).

// vpdpwssd adds two products of at most 32767 * 127 into a lane per step; two accumulators take one step each per
// 64 columns, so 4096 columns put at most 2 * 64 * 2 * 32767 * 127 (about 1.1e9) in a lane: below 2^31. The 16
// lanes are then added in 64 bits (sum_lanes).
constexpr int64_t COLUMNS_PER_INT32_SUM = 4096;

inline __m512i widen_32(const int8_t* weights) {
  return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(weights)));
}

inline __m512i multiply_add_32(__m512i sum, __m512i widened, const int16_t* activations) {
  return _mm512_dpwssd_epi32(sum, widened, _mm512_loadu_si512(activations));
}

inline int64_t sum_lanes(__m512i lanes) {
  const __m512i low = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(lanes));
  const __m512i high = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(lanes, 1));
  return _mm512_reduce_add_epi64(_mm512_add_epi64(low, high));
}

int64_t dot_int8(const int8_t* w, const int16_t* x, int64_t K) {
  int64_t total = 0, k = 0;
  while (k + 32 <= K) {
    const int64_t stop = std::min(k + COLUMNS_PER_INT32_SUM, K - (K - k) % 32);
    __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
    for (; k + 64 <= stop; k += 64) {
      prefetch(w, k);
      even = multiply_add_32(even, widen_32(w + k), x + k);
      odd = multiply_add_32(odd, widen_32(w + k + 32), x + k + 32);
    }
    if (k < stop) {
      even = multiply_add_32(even, widen_32(w + k), x + k);
      k += 32;
    }
    total += sum_lanes(_mm512_add_epi32(even, odd));
  }
  for (; k < K; ++k) total += int32_t{w[k]} * int32_t{x[k]};
  return total;
}

// sums[r] = sum_k w[k] * x[r * K + k] for R rows of x: each 32 weights widened once, one accumulator a row (at
// most 128 steps of two products in a lane per 4096 columns, as above).
template <int R>
void dot_int8_rows(const int8_t* w, const int16_t* x, int64_t K, int64_t* sums) {
  for (int r = 0; r < R; ++r) sums[r] = 0;
  int64_t k = 0;
  while (k + 32 <= K) {
    const int64_t stop = std::min(k + COLUMNS_PER_INT32_SUM, K - (K - k) % 32);
    __m512i sum[R];
    for (int r = 0; r < R; ++r) sum[r] = _mm512_setzero_si512();
    for (; k < stop; k += 32) {
      prefetch(w, k);
      const __m512i widened = widen_32(w + k);
      for (int r = 0; r < R; ++r) sum[r] = multiply_add_32(sum[r], widened, x + r * K + k);
    }
    for (int r = 0; r < R; ++r) sums[r] += sum_lanes(sum[r]);
  }
  for (; k < K; ++k)
    for (int r = 0; r < R; ++r) sums[r] += int32_t{w[k]} * int32_t{x[r * K + k]};
}

// x row as int16 in q, returning its scale; NaN where the row is not finite (its outputs become NaN, as a float
// matmul's would).
float round_to_int16(const float* x, int16_t* q, int64_t K) {
  float largest = 0.f;
  bool finite = true;
  for (int64_t k = 0; k < K; ++k) {
    largest = std::max(largest, std::fabs(x[k]));
    finite = finite && std::isfinite(x[k]);
  }
  if (!finite) {
    std::fill(q, q + K, int16_t{0});
    return std::numeric_limits<float>::quiet_NaN();
  }
  const float scale = largest > 0.f ? largest / 32767.f : 1.f;
  const float inverse = 1.f / scale;
  for (int64_t k = 0; k < K; ++k) q[k] = static_cast<int16_t>(std::nearbyint(x[k] * inverse));
  return scale;
}

at::Tensor int8_matmul(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& scale,
                          const c10::optional<at::Tensor>& bias) {
  check_input(x, weight, at::kChar, bias);
  const int64_t M = x.size(0), K = x.size(1), N = weight.size(0);
  TORCH_CHECK(scale.scalar_type() == at::kFloat && scale.is_contiguous() && scale.numel() == N, "scale: float32 (N,)");
  std::vector<int16_t> q(M * K);
  std::vector<float> row_scale(M);
  for (int64_t m = 0; m < M; ++m) row_scale[m] = round_to_int16(x.data_ptr<float>() + m * K, q.data() + m * K, K);
  const int8_t* ws = weight.data_ptr<int8_t>();
  const float* scales = scale.data_ptr<float>();
  const float* biases = bias_data(bias);
  return rows_times_weights<int64_t>(
      x, N,
      [&](int64_t n, int64_t m, int64_t rows, int64_t* sums) {
        const int8_t* w = ws + n * K;
        const int16_t* xs = q.data() + m * K;
        by_rows(rows, [&](auto R) { dot_int8_rows<R>(w, xs, K, sums); }, [&] { sums[0] = dot_int8(w, xs, K); });
      },
      [&](int64_t sum, int64_t n, int64_t m) {
        const float value = static_cast<float>(sum) * (row_scale[m] * scales[n]);
        return biases ? value + biases[n] : value;
      });
}
#endif

#ifdef GPT2_SCRATCH_FLOAT_LINEAR
// --- float32 and float16 ------------------------------------------------------------------------------------------
// Sixteen weights at a time as float32 (float16 ones widened by vcvtph2ps, bfloat16 ones shifted into the upper
// half), multiplied by float32 x as it is: no rounding of the activations in any dtype.

inline __m512 sixteen_weights(const float* w) { return _mm512_loadu_ps(w); }
inline __m512 sixteen_weights(const c10::Half* w) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
}
inline __m512 sixteen_weights(const c10::BFloat16* w) {  // a bfloat16 is a float32's upper half
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w))), 16));
}

template <typename Weight>
float dot_float(const Weight* w, const float* x, int64_t K) {
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps(), c = _mm512_setzero_ps(), d = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) {
    for (int64_t byte = 0; byte < 64 * int64_t{sizeof(Weight)}; byte += 64) prefetch(w, k * sizeof(Weight) + byte);
    a = _mm512_fmadd_ps(sixteen_weights(w + k), _mm512_loadu_ps(x + k), a);
    b = _mm512_fmadd_ps(sixteen_weights(w + k + 16), _mm512_loadu_ps(x + k + 16), b);
    c = _mm512_fmadd_ps(sixteen_weights(w + k + 32), _mm512_loadu_ps(x + k + 32), c);
    d = _mm512_fmadd_ps(sixteen_weights(w + k + 48), _mm512_loadu_ps(x + k + 48), d);
  }
  for (; k + 16 <= K; k += 16) a = _mm512_fmadd_ps(sixteen_weights(w + k), _mm512_loadu_ps(x + k), a);
  float total = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
  for (; k < K; ++k) total += static_cast<float>(w[k]) * x[k];
  return total;
}

template <typename Weight>
at::Tensor float_matmul(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias) {
  check_input(x, weight, c10::CppTypeToScalarType<Weight>::value, bias);
  const int64_t K = x.size(1);
  const float* xs = x.data_ptr<float>();
  const Weight* ws = weight.data_ptr<Weight>();
  const float* biases = bias_data(bias);
  return rows_times_weights<float>(
      x, weight.size(0),
      [&](int64_t n, int64_t m, int64_t rows, float* sums) {
        const Weight* w = ws + n * K;
        const float* x_rows = xs + m * K;
        // one row at a time: dot_float is bound by its multiply-adds, which a block of rows would not share
        for (int64_t r = 0; r < rows; ++r) sums[r] = dot_float(w, x_rows + r * K, K);
      },
      [&](float sum, int64_t n, int64_t) { return biases ? sum + biases[n] : sum; });
}
#endif

}  // namespace

namespace gpt2_scratch {

#ifdef GPT2_SCRATCH_INT8_LINEAR
at::Tensor int8_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& scale,
                       const c10::optional<at::Tensor>& bias) {
  return int8_matmul(x, weight, scale, bias);
}
#endif

#ifdef GPT2_SCRATCH_FLOAT_LINEAR
at::Tensor float32_linear(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias) {
  return float_matmul<float>(x, weight, bias);
}

at::Tensor float16_linear(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias) {
  return float_matmul<c10::Half>(x, weight, bias);
}

at::Tensor bfloat16_linear(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias) {
  return float_matmul<c10::BFloat16>(x, weight, bias);
}
#endif

at::Tensor linear(const at::Tensor& x, const Weights& w) {
  switch (w.weight.scalar_type()) {
#ifdef GPT2_SCRATCH_INT8_LINEAR
    case at::kChar: return int8_linear(x, w.weight, w.scale.value(), w.bias);
#endif
#ifdef GPT2_SCRATCH_FLOAT_LINEAR
    case at::kFloat: return float32_linear(x, w.weight, w.bias);
    case at::kHalf: return float16_linear(x, w.weight, w.bias);
    case at::kBFloat16: return bfloat16_linear(x, w.weight, w.bias);
#endif
    default: TORCH_CHECK(false, "no kernel of ours for ", w.weight.scalar_type(), " weights in this build");
  }
}

}  // namespace gpt2_scratch
