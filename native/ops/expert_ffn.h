// All experts' FFNs (Linear -> ReLU -> Linear) over expert-contiguous rows, as one differentiable op with
// stacked weights, so that autograd sees one node (not E slices) and weight gradients are written in place.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

// rows [A,H]; offsets [E+1] int64 CPU (expert e owns rows [offsets[e], offsets[e+1]));
// w1 [E,F,H], b1 [E,F], w2 [E,O,F], b2 [E,O] -> out [A,O], out_e = relu(rows_e w1_eᵀ + b1_e) w2_eᵀ + b2_e.
// O is H for the experts themselves; inference may pass second layers composed with a later linear map.
at::Tensor expert_ffn(const at::Tensor& rows, const at::Tensor& offsets, const at::Tensor& w1,
                      const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2);

// The checks every expert path shares: rows [R,H] float, stacked expert weights w1 [E,F,H], b1 [E,F],
// w2 [E,O,F], b2 [E,O]. rows_name: what the caller calls its rows in the error messages.
void check_expert_inputs(const at::Tensor& rows, const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2,
                         const at::Tensor& b2, const char* rows_name = "rows");

// The same arithmetic without autograd, for ops that fuse it with their own (ops/routed_experts.h):
// contiguous rows and activations, offsets as host values (checked by the caller). The forward writes
// hidden [A,F] (post-ReLU, the backward's input) and out [A,O]; the backward returns every gradient.
struct ExpertFfnGrads {
  at::Tensor rows, w1, b1, w2, b2;
};
void expert_ffn_forward_cpu(const at::Tensor& rows, const int64_t* offsets, const at::Tensor& w1, const at::Tensor& b1,
                            const at::Tensor& w2, const at::Tensor& b2, at::Tensor& hidden, at::Tensor& out);
ExpertFfnGrads expert_ffn_backward_cpu(const at::Tensor& grad_out, const at::Tensor& rows, const at::Tensor& hidden,
                                       const int64_t* offsets, const at::Tensor& w1, const at::Tensor& w2);

// Inference only (no backward): the same FFNs with the first layers given transposed, w1_t [E,H,F]
// contiguous (prepared once per weights: Classifier::inference), so that each expert's first product runs
// without packing in kernels::row_gemm and its second in kernels::row_gemm_nt, on raw pointers, where the
// CPU has AVX-512 (ATen and BLAS elsewhere). Equals
// expert_ffn(rows, offsets, w1_t.transpose(1, 2), b1, w2, b2) up to float rounding.
at::Tensor expert_ffn_inference(const at::Tensor& rows, const at::Tensor& offsets, const at::Tensor& w1_t,
                                const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2);

// The capacity layout's path ("padded-bmm"): rows [E*C,H] viewed as [E,C,H] and two batched products for
// all experts at once (one launch each, shapes independent of the routing). Padding rows are zero and
// receive zero gradient from combine, so they add nothing to any weight gradient. Autograd of baddbmm.
at::Tensor expert_ffn_padded(const at::Tensor& rows, int64_t capacity, const at::Tensor& w1, const at::Tensor& b1,
                             const at::Tensor& w2, const at::Tensor& b2);

// Which expert path a model on this device runs: "grouped-loop" (CPU: per-expert products over packed
// rows with host offsets) or "padded-bmm" (CUDA: the capacity layout above).
const char* expert_path_name(bool cuda);

}  // namespace moe::ops
