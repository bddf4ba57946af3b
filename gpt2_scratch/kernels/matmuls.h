// The matmul kernels of matmuls.cpp, for the extension's other files: y = x @ W.T + bias, float32 x (M, K) and y.
#pragma once

#include <ATen/ATen.h>

// A kernel is built where the compiler targets its instructions (-march=native: this CPU's).
#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define GPT2_SCRATCH_INT8_LINEAR
#endif
#if defined(__AVX512F__) && defined(__F16C__)
#define GPT2_SCRATCH_FLOAT_LINEAR
#endif

namespace gpt2_scratch {

#ifdef GPT2_SCRATCH_INT8_LINEAR
// W = scale * q: int8 q (N, K), one float32 scale per row.
at::Tensor int8_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& scale,
                       const c10::optional<at::Tensor>& bias);
#endif

#ifdef GPT2_SCRATCH_FLOAT_LINEAR
at::Tensor float32_linear(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias);
at::Tensor float16_linear(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias);
at::Tensor bfloat16_linear(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias);
#endif

// One linear layer's tensors as the kernels take them: the weight in its kernel's dtype (int8, float32 or
// float16 or bfloat16), the int8 scale, the float32 bias.
struct Weights {
  at::Tensor weight;
  c10::optional<at::Tensor> scale, bias;
};

// The kernel of w.weight's dtype.
at::Tensor linear(const at::Tensor& x, const Weights& w);

}  // namespace gpt2_scratch
