// y = x·Wᵀ + b for a layer with few outputs: the router's gate (E logits) and the classifier's output
// layer (C classes), over a batch of rows. On a CPU with AVX-512F, in float32, one autograd node runs the
// forward as dot products on W as stored (kernels::row_gemm_nt) and the backward in kernels::row_gemm;
// BLAS spends more on packing these thin operands than on the products (`npm run bench:kernels`).
// Elsewhere (CUDA, float64, other CPUs) it is at::addmm.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

// x [T, H], w [O, H], b [O], one dtype and device; returns [T, O].
at::Tensor narrow_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

}  // namespace moe::ops
