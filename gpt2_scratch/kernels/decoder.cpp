// One decoding step of GPT-2 (one new token per row, every layer) in a single call, for gpt2_scratch.generation.
//
// The model's own blocks state the maths (gpt2_scratch/modeling); this file does the same sums for the one case
// where torch's per-operator cost dominates: a decoding step on a CPU, whose matmuls stream tens of megabytes of
// weights between operators. After each matmul the caches hold weights, not the code and data of the next
// operator, so every small operator runs cold (a 768-wide addition: 24 us in the step against 2 warm); the twelve
// layers' ~100 small operators cost GPT-2 small about 2 ms a token next to 7.4 ms of float16 matmuls. Here they
// are a few short loops over vectors that stay in the cache, between the kernels of matmuls.cpp.
//
// Per layer, for each row x (width C, H heads of D = C / H):
//   h = LayerNorm_1(x);  q, k, v = h @ W_attn.T + b_attn      (k, v written into the KV cache at the row's position p)
//   x = x + softmax(q . K / sqrt(D)) V @ W_proj.T + b_proj    (per head, over positions 0..p)
//   x = x + gelu_tanh(LayerNorm_2(x) @ W_fc.T + b_fc) @ W_out.T + b_out
// then logits = LayerNorm_f(x) @ W_head.T, of the first vocab_size columns.

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "matmuls.h"

#ifdef GPT2_SCRATCH_FLOAT_LINEAR
namespace gpt2_scratch {
namespace {

// The loops below take sixteen floats at a time: these are the lanes of the group at i that lie below n (all 16
// but in the last group of a length that is not a multiple of 16).
inline __mmask16 lanes(int64_t i, int64_t n) {
  return n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
}

float dot(const float* a, const float* b, int64_t n) {
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    sum = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), sum);
  }
  return _mm512_reduce_add_ps(sum);
}

// y += a * x
void add_scaled(float* y, float a, const float* x, int64_t n) {
  const __m512 scale = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(scale, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

// exp(x) for x <= 0 (what softmax and tanh below ask for): exp(x) = 2^n exp(r), n = round(x / ln 2),
// r = x - n ln 2 in [-ln 2 / 2, ln 2 / 2], exp(r) = 1 + r + r^2 P(r) with Cephes' expf coefficients.
inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.f));  // exp(-104) is 0 in float32; keeps n in scalef's range
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // ln 2 in two parts: exact n * high part
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  return _mm512_scalef_ps(p, n);
}

// gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2 / pi) (x + 0.044715 x^3), in place;
// tanh(u) = sign(u) (1 - t) / (1 + t) with t = exp(-2 |u|), which never overflows.
void gelu_tanh(float* x, int64_t n) {
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.f);
  const __m512 c = _mm512_set1_ps(0.7978845608028654f), cubic = _mm512_set1_ps(0.044715f);
  const __m512i sign_bit = _mm512_set1_epi32(0x80000000);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __m512 u = _mm512_mul_ps(c, _mm512_fmadd_ps(_mm512_mul_ps(cubic, v), _mm512_mul_ps(v, v), v));
    const __m512 t = exp_nonpositive(_mm512_mul_ps(_mm512_set1_ps(-2.f), _mm512_abs_ps(u)));
    const __m512 magnitude = _mm512_div_ps(_mm512_sub_ps(one, t), _mm512_add_ps(one, t));
    const __m512 tanh_u = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(magnitude), _mm512_and_si512(_mm512_castps_si512(u), sign_bit)));
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, tanh_u)));
  }
}

struct Norm {
  at::Tensor weight, bias;
  double eps;
};

// y = (x - mean) / sqrt(var + eps) * weight + bias over n values (var biased), two passes as in the definition.
void layer_norm(const float* x, const Norm& norm, float* y, int64_t n) {
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(lanes(i, n), x + i));
  const __m512 mean = _mm512_set1_ps(_mm512_reduce_add_ps(sum) / n);
  __m512 squares = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), mean);
    squares = _mm512_fmadd_ps(d, d, squares);
  }
  const __m512 rstd = _mm512_set1_ps(1.f / std::sqrt(_mm512_reduce_add_ps(squares) / n + static_cast<float>(norm.eps)));
  const float* w = norm.weight.data_ptr<float>();
  const float* b = norm.bias.data_ptr<float>();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    const __m512 normal = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mean), rstd);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(normal, _mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
}

// softmax in place over n scores
void softmax(float* s, int64_t n) {
  __m512 largest = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    largest = _mm512_mask_max_ps(largest, m, largest, _mm512_maskz_loadu_ps(m, s + i));
  }
  const __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(largest));
  __m512 total = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    const __m512 e = _mm512_maskz_mov_ps(m, exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + i), top)));
    _mm512_mask_storeu_ps(s + i, m, e);
    total = _mm512_add_ps(total, e);
  }
  const __m512 inverse = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(total));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    _mm512_mask_storeu_ps(s + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + i), inverse));
  }
}

// One head's attention output o (D values) for query q over keys and values (n positions of D each): o =
// softmax(q . k_j * scaling) weighted sum of the v_j. D = 16 * CHUNKS: q and o stay in registers, so a position
// costs D / 16 multiply-adds for its score and as many for its value (no loads and stores of o per position,
// whose chain made a position about 7x dearer).
template <int CHUNKS>
void attend_head(const float* q, const float* keys, const float* values, int64_t n, float scaling, float* scores,
                 float* o) {
  constexpr int64_t D = 16 * CHUNKS;
  __m512 query[CHUNKS];
  for (int c = 0; c < CHUNKS; ++c) query[c] = _mm512_loadu_ps(q + 16 * c);
  for (int64_t j = 0; j < n; ++j) {
    const float* k = keys + j * D;
    __m512 sum = _mm512_mul_ps(query[0], _mm512_loadu_ps(k));
    for (int c = 1; c < CHUNKS; ++c) sum = _mm512_fmadd_ps(query[c], _mm512_loadu_ps(k + 16 * c), sum);
    scores[j] = _mm512_reduce_add_ps(sum) * scaling;
  }
  softmax(scores, n);
  __m512 even[CHUNKS], odd[CHUNKS];  // two sums per chunk: consecutive positions do not wait on each other
  for (int c = 0; c < CHUNKS; ++c) even[c] = odd[c] = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const __m512 first = _mm512_set1_ps(scores[j]), second = _mm512_set1_ps(scores[j + 1]);
    for (int c = 0; c < CHUNKS; ++c) {
      even[c] = _mm512_fmadd_ps(first, _mm512_loadu_ps(values + j * D + 16 * c), even[c]);
      odd[c] = _mm512_fmadd_ps(second, _mm512_loadu_ps(values + (j + 1) * D + 16 * c), odd[c]);
    }
  }
  if (j < n)
    for (int c = 0; c < CHUNKS; ++c)
      even[c] = _mm512_fmadd_ps(_mm512_set1_ps(scores[j]), _mm512_loadu_ps(values + j * D + 16 * c), even[c]);
  for (int c = 0; c < CHUNKS; ++c) _mm512_storeu_ps(o + 16 * c, _mm512_add_ps(even[c], odd[c]));
}

// The same for any D (tests' odd widths).
void attend_head_any(const float* q, const float* keys, const float* values, int64_t n, int64_t D, float scaling,
                     float* scores, float* o) {
  for (int64_t j = 0; j < n; ++j) scores[j] = dot(q, keys + j * D, D) * scaling;
  softmax(scores, n);
  std::fill(o, o + D, 0.f);
  for (int64_t j = 0; j < n; ++j) add_scaled(o, scores[j], values + j * D, D);
}

struct Block {
  Norm ln_1;
  Weights c_attn, attn_proj;
  Norm ln_2;
  Weights c_fc, mlp_proj;
};

void check_norm(const Norm& norm, int64_t width, const char* name) {
  TORCH_CHECK(norm.weight.is_cpu() && norm.bias.is_cpu() && norm.weight.scalar_type() == at::kFloat && norm.weight.is_contiguous() && norm.weight.numel() == width &&
                  norm.bias.scalar_type() == at::kFloat && norm.bias.is_contiguous() && norm.bias.numel() == width,
              name, ": float32 weight and bias of ", width, " values");
}

void check_weights(const Weights& w, int64_t out, int64_t in, const char* name) {
  TORCH_CHECK(w.weight.is_cpu() && w.weight.dim() == 2 && w.weight.is_contiguous() && w.weight.size(0) == out && w.weight.size(1) == in,
              name, ": a contiguous (", out, ", ", in, ") weight, got ", w.weight.sizes());
  TORCH_CHECK(w.scale.has_value() == (w.weight.scalar_type() == at::kChar), name, ": a scale with int8 weights only");
  TORCH_CHECK(!w.bias.has_value() || w.bias->numel() == out, name, ": a bias of ", out, " values");
}

class Decoder {
 public:
  Decoder(at::Tensor wte, at::Tensor wpe, std::vector<Block> blocks, Norm ln_f, Weights head, int64_t heads,
          int64_t vocab_size)
      : wte_(std::move(wte)), wpe_(std::move(wpe)), blocks_(std::move(blocks)), ln_f_(std::move(ln_f)),
        head_(std::move(head)), heads_(heads), vocab_size_(vocab_size), width_(wte_.size(1)) {
    TORCH_CHECK(wte_.is_cpu() && wpe_.is_cpu(), "the decoder runs on the CPU");
    TORCH_CHECK(wte_.scalar_type() == at::kFloat && wte_.is_contiguous() && wte_.dim() == 2, "wte: contiguous float32 (vocabulary, width)");
    TORCH_CHECK(wpe_.scalar_type() == at::kFloat && wpe_.is_contiguous() && wpe_.dim() == 2 && wpe_.size(1) == width_,
                "wpe: contiguous float32 (positions, ", width_, ")");
    TORCH_CHECK(heads_ > 0 && width_ % heads_ == 0, "the width ", width_, " must split into ", heads_, " heads");
    TORCH_CHECK(vocab_size_ > 0 && vocab_size_ <= wte_.size(0), "vocab_size: 1 to ", wte_.size(0));
    for (const Block& block : blocks_) {
      const int64_t inner = block.c_fc.weight.size(0);
      check_norm(block.ln_1, width_, "ln_1");
      check_norm(block.ln_2, width_, "ln_2");
      check_weights(block.c_attn, 3 * width_, width_, "attn.c_attn");
      check_weights(block.attn_proj, width_, width_, "attn.c_proj");
      check_weights(block.c_fc, inner, width_, "mlp.c_fc");
      check_weights(block.mlp_proj, width_, inner, "mlp.c_proj");
    }
    check_norm(ln_f_, width_, "ln_f");
    TORCH_CHECK(head_.weight.dim() == 2 && head_.weight.size(0) >= vocab_size_, "lm_head: at least vocab_size rows");
    check_weights(head_, head_.weight.size(0), width_, "lm_head");
  }

  // tokens (B,) int64: each row's new token; positions (B,) int64: where it goes, each row at its own; caches:
  // each layer's (R, 2, H, L, D) float32 keys and values, R >= B rows of which rows 0..B-1 are stepped, row b
  // filled up to positions[b]. Returns (B, vocab_size) logits; the caches gain the new keys and values.
  at::Tensor step(const at::Tensor& tokens, const at::Tensor& positions, const std::vector<at::Tensor>& caches) const {
    TORCH_CHECK(tokens.is_cpu() && tokens.dim() == 1 && tokens.scalar_type() == at::kLong && tokens.is_contiguous(),
                "tokens: int64 (batch,)");
    const int64_t B = tokens.size(0), C = width_;
    TORCH_CHECK(positions.is_cpu() && positions.dim() == 1 && positions.scalar_type() == at::kLong &&
                    positions.is_contiguous() && positions.size(0) == B,
                "positions: int64 (", B, ",), one per token");
    TORCH_CHECK(caches.size() == blocks_.size(), "one KV cache per layer: ", blocks_.size());
    const int64_t* places = positions.data_ptr<int64_t>();
    const int64_t last = B > 0 ? *std::max_element(places, places + B) : 0;
    for (int64_t b = 0; b < B; ++b)
      TORCH_CHECK(places[b] >= 0 && places[b] < wpe_.size(0), "position ", places[b], " is outside the model's ",
                  wpe_.size(0));
    for (const at::Tensor& cache : caches)
      TORCH_CHECK(cache.is_cpu() && cache.scalar_type() == at::kFloat && cache.is_contiguous() && cache.dim() == 5 &&
                      cache.size(0) >= B && cache.size(1) == 2 && cache.size(2) == heads_ && cache.size(3) > last &&
                      cache.size(4) == C / heads_,
                  "KV cache: contiguous float32 (", B, " rows or more, 2, ", heads_, ", more than ", last, ", ",
                  C / heads_, ")");
    at::Tensor x = at::empty({B, C}, wte_.options()), h = at::empty({B, C}, wte_.options());
    float* xs = x.data_ptr<float>();
    float* hs = h.data_ptr<float>();
    const int64_t* ids = tokens.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t token = ids[b];
      TORCH_CHECK(token >= 0 && token < wte_.size(0), "token ", token, " is outside the vocabulary of ", wte_.size(0));
      const float* embedding = wte_.data_ptr<float>() + token * C;
      const float* place = wpe_.data_ptr<float>() + places[b] * C;
      for (int64_t i = 0; i < C; ++i) xs[b * C + i] = embedding[i] + place[i];
    }
    for (size_t layer = 0; layer < blocks_.size(); ++layer) {
      const Block& block = blocks_[layer];
      for (int64_t b = 0; b < B; ++b) layer_norm(xs + b * C, block.ln_1, hs + b * C, C);
      const at::Tensor qkv = linear(h, block.c_attn);
      attend(qkv.data_ptr<float>(), caches[layer], places, B, last + 1, hs);  // h now holds the heads' outputs
      add_into(xs, linear(h, block.attn_proj));
      for (int64_t b = 0; b < B; ++b) layer_norm(xs + b * C, block.ln_2, hs + b * C, C);
      at::Tensor inner = linear(h, block.c_fc);
      gelu_tanh(inner.data_ptr<float>(), inner.numel());
      add_into(xs, linear(inner, block.mlp_proj));
    }
    for (int64_t b = 0; b < B; ++b) layer_norm(xs + b * C, ln_f_, hs + b * C, C);
    return linear(h, head_).narrow(1, 0, vocab_size_);
  }

 private:
  static void add_into(float* x, const at::Tensor& y) { add_scaled(x, 1.f, y.data_ptr<float>(), y.numel()); }

  // out (B, C): each row's attention output, heads side by side, for the query in qkv (B, 3C: q, k, v, each H
  // heads of D); row b's new key and value are written into the cache at places[b] first, and its query attends
  // over positions 0..places[b] (at most `longest`).
  void attend(const float* qkv, const at::Tensor& cache, const int64_t* places, int64_t B, int64_t longest,
              float* out) const {
    const int64_t C = width_, H = heads_, D = C / H, L = cache.size(3);
    const float scaling = 1.f / std::sqrt(static_cast<float>(D));
    float* kv = cache.data_ptr<float>();
    at::parallel_for(0, B * H, 1, [&](int64_t first, int64_t end) {
      std::vector<float> scores(longest);
      for (int64_t bh = first; bh < end; ++bh) {
        const int64_t b = bh / H, head = bh % H, position = places[b], n = position + 1;
        const float* q = qkv + b * 3 * C + head * D;
        float* keys = kv + ((b * 2 + 0) * H + head) * L * D;
        float* values = kv + ((b * 2 + 1) * H + head) * L * D;
        std::copy(q + C, q + C + D, keys + position * D);
        std::copy(q + 2 * C, q + 2 * C + D, values + position * D);
        float* o = out + b * C + head * D;
        switch (D) {  // GPT-2's presets all have heads of 64
          case 16: attend_head<1>(q, keys, values, n, scaling, scores.data(), o); break;
          case 32: attend_head<2>(q, keys, values, n, scaling, scores.data(), o); break;
          case 64: attend_head<4>(q, keys, values, n, scaling, scores.data(), o); break;
          case 128: attend_head<8>(q, keys, values, n, scaling, scores.data(), o); break;
          default: attend_head_any(q, keys, values, n, D, scaling, scores.data(), o);
        }
      }
    });
  }

  at::Tensor wte_, wpe_;
  std::vector<Block> blocks_;
  Norm ln_f_;
  Weights head_;
  int64_t heads_, vocab_size_, width_;
};

}  // namespace
}  // namespace gpt2_scratch
#endif

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  namespace g = gpt2_scratch;
#ifdef GPT2_SCRATCH_INT8_LINEAR
  module.def("int8_linear", &g::int8_linear, "x @ (scale * q).T + bias: int8 q, float32 x, scale, bias");
#endif
#ifdef GPT2_SCRATCH_FLOAT_LINEAR
  module.def("float32_linear", &g::float32_linear, "x @ w.T + bias: float32 w, x and bias");
  module.def("float16_linear", &g::float16_linear, "x @ w.T + bias: float16 w, float32 x and bias");
  module.def("bfloat16_linear", &g::bfloat16_linear, "x @ w.T + bias: bfloat16 w, float32 x and bias");
  pybind11::class_<g::Weights>(module, "Weights")
      .def(pybind11::init([](at::Tensor weight, c10::optional<at::Tensor> scale, c10::optional<at::Tensor> bias) {
             return g::Weights{std::move(weight), std::move(scale), std::move(bias)};
           }),
           pybind11::arg("weight"), pybind11::arg("scale"), pybind11::arg("bias"));
  pybind11::class_<g::Norm>(module, "Norm")
      .def(pybind11::init([](at::Tensor weight, at::Tensor bias, double eps) {
             return g::Norm{std::move(weight), std::move(bias), eps};
           }),
           pybind11::arg("weight"), pybind11::arg("bias"), pybind11::arg("eps"));
  pybind11::class_<g::Block>(module, "Block")
      .def(pybind11::init<g::Norm, g::Weights, g::Weights, g::Norm, g::Weights, g::Weights>(), pybind11::arg("ln_1"),
           pybind11::arg("c_attn"), pybind11::arg("attn_proj"), pybind11::arg("ln_2"), pybind11::arg("c_fc"),
           pybind11::arg("mlp_proj"));
  pybind11::class_<g::Decoder>(module, "Decoder")
      .def(pybind11::init<at::Tensor, at::Tensor, std::vector<g::Block>, g::Norm, g::Weights, int64_t, int64_t>(),
           pybind11::arg("wte"), pybind11::arg("wpe"), pybind11::arg("blocks"), pybind11::arg("ln_f"),
           pybind11::arg("head"), pybind11::arg("heads"), pybind11::arg("vocab_size"))
      .def("step", &g::Decoder::step, pybind11::arg("tokens"), pybind11::arg("positions"), pybind11::arg("caches"),
           pybind11::call_guard<pybind11::gil_scoped_release>());
#endif
}
