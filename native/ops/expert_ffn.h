// All experts' FFNs (Linear -> ReLU -> Linear) over expert-contiguous rows, as one differentiable op with
// stacked weights, so that autograd sees one node (not E slices) and weight gradients are written in place.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

// rows [A,H]; offsets [E+1] int64 CPU (expert e owns rows [offsets[e], offsets[e+1]));
// w1 [E,F,H], b1 [E,F], w2 [E,H,F], b2 [E,H] -> out [A,H], out_e = relu(rows_e w1_eᵀ + b1_e) w2_eᵀ + b2_e.
at::Tensor expert_ffn(const at::Tensor& rows, const at::Tensor& offsets, const at::Tensor& w1,
                      const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2);

}  // namespace moe::ops
