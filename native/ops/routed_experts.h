// Top-k dispatch on the CPU as one autograd node: the dispatch plan, the permute of the tokens into
// expert-contiguous rows, all experts' FFNs and the weighted combine back to the tokens. On a 64-input
// batch the three nodes it stands for (permute_tokens, expert_ffn, combine_tokens, with the plan and their
// saved tensors) cost more in op and autograd overhead than the permute and combine cost in arithmetic;
// this runs the same kernels in one node each way. Those ops stay the reference (and the CUDA path), and a
// test compares the two.
#pragma once
#include <ATen/ATen.h>

namespace moe::ops {

// x [T,H] with T >= 1, weights [T,k], w1 [E,F,H], b1 [E,F], w2 [E,H,F], b2 [E,H]: float32 on the CPU.
bool routed_experts_applies(const at::Tensor& x, const at::Tensor& weights, const at::Tensor& w1);

// y[t] = sum_j weights[t,j] * FFN_{idx[t,j]}(x[t]) for idx [T,k] int64 (distinct experts per row, in
// [0,E)); differentiable in x, weights and the expert weights. Needs routed_experts_applies.
at::Tensor routed_experts(const at::Tensor& x, const at::Tensor& idx, const at::Tensor& weights, const at::Tensor& w1,
                          const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2);

}  // namespace moe::ops
