// The input layer, y = x·Wᵀ + b (W given transposed, as w_t = Wᵀ [K,N]), with the method picked per batch. On the CPU, when at most
// kSparseMaxDensity of x's values are nonzero (MNIST images: ~19%), the product and the weight gradient
// skip the zeros (kernels/sparse_rows); otherwise, and on CUDA, it is one addmm. Both compute the same
// sums up to float rounding order. x must not require grad (it is data; the sparse path gives it none).
// The environment variable TORCH_MOE_SKIP_ZEROS=0 disables the zero-skipping path (for comparisons).
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

// Above this share of nonzeros a GEMM is faster than walking the nonzeros (measured on AVX2: the CSR
// product costs about as much as the GEMM near 35% density).
constexpr double kSparseMaxDensity = 0.25;

// x [M,K] float, w_t [K,N] contiguous, b [N] -> [M,N]. The weight gradient comes back in w_t's layout.
at::Tensor input_linear(const at::Tensor& x, const at::Tensor& w_t, const at::Tensor& b);

// Whether input_linear takes the zero-skipping path for this x (exposed for tests and the benchmark).
bool input_linear_skips_zeros(const at::Tensor& x);

}  // namespace moe::ops
